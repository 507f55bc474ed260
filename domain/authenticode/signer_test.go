package authenticode

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"io"
	"math/big"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/cryptobyte"

	"github.com/chronolog/chronolog/domain/rfc3161"
	"github.com/chronolog/chronolog/internal/testpki"
)

func TestSignVerifyRoundTrip(t *testing.T) {
	wantDigest := map[keyKind]rfc3161.HashAlgorithm{p256: rfc3161.SHA256, p384: rfc3161.SHA384, rsa2048: rfc3161.SHA256, ed: rfc3161.SHA512}
	wantSigAlg := map[keyKind]asn1.ObjectIdentifier{p256: oidECDSAWithSHA256, p384: oidECDSAWithSHA384, rsa2048: oidRSAEncryption, ed: oidEd25519}
	for _, kind := range allKinds {
		t.Run(string(kind), func(t *testing.T) {
			p := newTestPKI(t, kind)
			s := p.signer(t)
			content := make([]byte, 256)
			rand.Read(content)
			at := time.Date(2026, 3, 4, 5, 6, 7, 890_000_000, time.FixedZone("CET", 3600))
			der, err := s.Sign(content, at, rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			v, err := Verify(der)
			if err != nil {
				t.Fatal(err)
			}
			want := time.Date(2026, 3, 4, 4, 6, 7, 0, time.UTC)
			if !bytes.Equal(v.Content, content) || !v.SigningTime.Equal(want) || v.SigningTime.Location() != time.UTC {
				t.Fatalf("verified content %x at %s", v.Content, v.SigningTime)
			}
			if !v.Certificate.Equal(p.tsa) || len(v.Certificates) != 2 || !v.Certificates[1].Equal(p.root) {
				t.Fatalf("certificates %v", v.Certificates)
			}
			if v.Digest.Name != wantDigest[kind].Name || s.Digest().Name != wantDigest[kind].Name {
				t.Fatalf("digest %s, want %s", v.Digest.Name, wantDigest[kind].Name)
			}
			ci := decodeIndependently(t, der)
			sd := ci.SignedData
			si := sd.SignerInfos[0]
			if sd.Version != 1 || si.Version != 1 || !sd.Encap.Type.Equal(oidData) || !bytes.Equal(sd.Encap.Content, content) ||
				!si.SignatureAlgorithm.Algorithm.Equal(wantSigAlg[kind]) || !si.DigestAlgorithm.Algorithm.Equal(wantDigest[kind].OID) {
				t.Fatalf("encoding/asn1 reads %+v", sd)
			}
			if null := si.SignatureAlgorithm.Parameters.Tag == asn1.TagNull; null != (kind == rsa2048) {
				t.Fatalf("signatureAlgorithm parameters %+v", si.SignatureAlgorithm.Parameters)
			}
			if si.SID.Serial.Cmp(p.tsa.SerialNumber) != 0 || !bytes.Equal(si.SID.Issuer.FullBytes, p.tsa.RawIssuer) {
				t.Fatal("sid does not name the TSA certificate")
			}
		})
	}
}

type independentContentInfo struct {
	Type       asn1.ObjectIdentifier
	SignedData struct {
		Version          int
		DigestAlgorithms []pkix.AlgorithmIdentifier `asn1:"set"`
		Encap            struct {
			Type    asn1.ObjectIdentifier
			Content []byte `asn1:"explicit,tag:0"`
		}
		Certificates asn1.RawValue `asn1:"optional,tag:0"`
		SignerInfos  []struct {
			Version int
			SID     struct {
				Issuer asn1.RawValue
				Serial *big.Int
			}
			DigestAlgorithm    pkix.AlgorithmIdentifier
			SignedAttrs        asn1.RawValue `asn1:"tag:0"`
			SignatureAlgorithm pkix.AlgorithmIdentifier
			Signature          []byte
		} `asn1:"set"`
	} `asn1:"explicit,tag:0"`
}

// decodeIndependently reads a response with encoding/asn1, not cryptobyte.
func decodeIndependently(t *testing.T, der []byte) independentContentInfo {
	t.Helper()
	var ci independentContentInfo
	if rest, err := asn1.Unmarshal(der, &ci); err != nil || len(rest) != 0 {
		t.Fatalf("encoding/asn1: %v (%d bytes left)", err, len(rest))
	}
	if len(ci.SignedData.SignerInfos) != 1 {
		t.Fatalf("%d SignerInfos", len(ci.SignedData.SignerInfos))
	}
	return ci
}

// signingTimeValue returns the encoded signingTime attribute value.
func signingTimeValue(t *testing.T, der []byte) asn1.RawValue {
	t.Helper()
	attrs := decodeIndependently(t, der).SignedData.SignerInfos[0].SignedAttrs.Bytes
	for len(attrs) > 0 {
		var a struct {
			Type   asn1.ObjectIdentifier
			Values []asn1.RawValue `asn1:"set"`
		}
		var err error
		if attrs, err = asn1.Unmarshal(attrs, &a); err != nil {
			t.Fatal(err)
		}
		if a.Type.Equal(oidSigningTime) {
			return a.Values[0]
		}
	}
	t.Fatal("no signingTime")
	return asn1.RawValue{}
}

func TestSigningTimeEncoding(t *testing.T) {
	s := newTestPKI(t, p256).signer(t)
	for _, tt := range []struct {
		at   time.Time
		tag  int
		text string
	}{
		{time.Date(2026, 11, 22, 16, 7, 45, 999_999_999, time.UTC), asn1.TagUTCTime, "261122160745Z"},
		{time.Date(1950, 1, 1, 0, 0, 0, 0, time.UTC), asn1.TagUTCTime, "500101000000Z"},
		{time.Date(2049, 12, 31, 23, 59, 59, 0, time.UTC), asn1.TagUTCTime, "491231235959Z"},
		{time.Date(2050, 1, 1, 0, 0, 0, 0, time.UTC), asn1.TagGeneralizedTime, "20500101000000Z"},
		{time.Date(1949, 12, 31, 23, 59, 59, 0, time.UTC), asn1.TagGeneralizedTime, "19491231235959Z"},
		{time.Date(2050, 1, 1, 0, 30, 0, 0, time.FixedZone("", 3600)), asn1.TagUTCTime, "491231233000Z"},
		{time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC), asn1.TagGeneralizedTime, "99991231235959Z"},
	} {
		der, err := s.Sign([]byte{1}, tt.at, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		v := signingTimeValue(t, der)
		if v.Tag != tt.tag || string(v.Bytes) != tt.text {
			t.Errorf("%s: tag %d %q, want %d %q", tt.at, v.Tag, v.Bytes, tt.tag, tt.text)
		}
		got, err := Verify(der)
		if err != nil || !got.SigningTime.Equal(tt.at.Truncate(time.Second)) {
			t.Errorf("%s: verified %v %v", tt.at, got, err)
		}
	}
	for _, at := range []time.Time{time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(0, 12, 31, 0, 0, 0, 0, time.UTC)} {
		if _, err := s.Sign([]byte{1}, at, rand.Reader); err == nil {
			t.Errorf("%s: signed a time GeneralizedTime cannot hold", at)
		}
	}
}

func TestParseSigningTimeIsStrict(t *testing.T) {
	for _, tt := range []struct {
		elem []byte
		ok   bool
	}{
		{tlv(0x17, []byte("261122160745Z")), true},
		{tlv(0x17, []byte("991122160745Z")), true},
		{tlv(0x18, []byte("20500101000000Z")), true},
		{tlv(0x18, []byte("20261122160745Z")), false}, // GeneralizedTime inside UTCTime's range
		{tlv(0x18, []byte("20500101000000.5Z")), false},
		{tlv(0x17, []byte("2611221607Z")), false},            // no seconds
		{tlv(0x17, []byte("261122160745+0100")), false},      // offset
		{tlv(0x17, []byte("261322160745Z")), false},          // month 13
		{tlv(0x17, []byte("260230160745Z")), false},          // 30 February
		{tlv(0x17, []byte("261122160760Z")), false},          // leap second
		{tlv(0x18, []byte("2050010100000Z")), false},         // short
		{tlv(0x0c, []byte("261122160745Z")), false},          // UTF8String
		{[]byte{0x17, 0x0d, '2', '6', '1', '1', '2'}, false}, // truncated
	} {
		_, err := parseSigningTime(tt.elem)
		if (err == nil) != tt.ok {
			t.Errorf("%q: err = %v", tt.elem, err)
		}
	}
}

func TestSignedAttributesMustBeSorted(t *testing.T) {
	a := rfc3161.Attribute(oidContentType, func(b *cryptobyte.Builder) { b.AddASN1ObjectIdentifier(oidData) })
	b := rfc3161.Attribute(oidMessageDigest, func(b *cryptobyte.Builder) { b.AddASN1OctetString(make([]byte, 32)) })
	first, second := a, b
	if bytes.Compare(a, b) > 0 {
		first, second = b, a
	}
	if _, err := signedAttributes(append(append([]byte{}, first...), second...)); err != nil {
		t.Fatalf("sorted: %v", err)
	}
	if _, err := signedAttributes(append(append([]byte{}, second...), first...)); err == nil || !strings.Contains(err.Error(), "DER order") {
		t.Fatalf("unsorted: %v", err)
	}
	if _, err := signedAttributes(append(append([]byte{}, a...), a...)); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Fatalf("duplicate: %v", err)
	}
}

func TestVerifyDetectsTampering(t *testing.T) {
	p := newTestPKI(t, rsa2048)
	s := p.signer(t)
	content := bytes.Repeat([]byte{0x42}, 256)
	der, err := s.Sign(content, time.Now(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	flip := func(i int) []byte {
		out := append([]byte{}, der...)
		out[i] ^= 1
		return out
	}
	other := newTestPKI(t, rsa2048)
	otherSigner, err := NewSigner(rfc3161.SigningIdentity{Signer: p.key, Certificate: p.tsa, Chain: []*x509.Certificate{other.root}})
	if err != nil {
		t.Fatal(err)
	}
	chainSwapped, _ := otherSigner.Sign(content, time.Now(), rand.Reader)
	ci := bytes.Index(der, content)
	for _, tt := range []struct {
		name string
		der  []byte
		want string
	}{
		{"content byte", flip(ci + 10), "messageDigest does not match"},
		{"signature byte", flip(len(der) - 1), "signature:"},
		{"signing time digit", flip(bytes.LastIndex(der, []byte{0x17, 0x0d}) + 3), "signature:"},
		{"trailing byte", append(append([]byte{}, der...), 0), "not a DER ContentInfo"},
		{"truncated", der[:len(der)-1], "not a DER ContentInfo"},
		{"empty", nil, "not a DER ContentInfo"},
		{"a request", mustDecode(t, NewRequest(content)), "not a DER ContentInfo"},
	} {
		if _, err := Verify(tt.der); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want %q", tt.name, err, tt.want)
		}
	}
	if _, err := Verify(chainSwapped); err != nil {
		t.Errorf("the chain is not Verify's business: %v", err)
	}
}

func TestNewSignerRefuses(t *testing.T) {
	p := newTestPKI(t, p256)
	edPKI := newTestPKI(t, ed)
	for _, tt := range []struct {
		name string
		id   rfc3161.SigningIdentity
		want string
	}{
		{"no signer", rfc3161.SigningIdentity{Certificate: p.tsa}, "needs a signer"},
		{"no certificate", rfc3161.SigningIdentity{Signer: p.key}, "needs a signer"},
		{"another key's certificate", rfc3161.SigningIdentity{Signer: testpki.NewKey(t, p256), Certificate: p.tsa}, "does not match"},
		{"SHA-1", rfc3161.SigningIdentity{Signer: p.key, Certificate: p.tsa, Digest: rfc3161.SHA1}, "sha1 is not supported"},
		{"SHA-3", rfc3161.SigningIdentity{Signer: p.key, Certificate: p.tsa, Digest: rfc3161.SHA3_256}, "sha3-256 is not supported"},
		{"Ed25519 with SHA-256", rfc3161.SigningIdentity{Signer: edPKI.key, Certificate: edPKI.tsa, Digest: rfc3161.SHA256}, "needs SHA-512"},
		{"unknown key type", rfc3161.SigningIdentity{Signer: oddSigner{}, Certificate: p.tsa}, "unsupported TSA key type"},
	} {
		if _, err := NewSigner(tt.id); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want %q", tt.name, err, tt.want)
		}
	}
	s, err := NewSigner(rfc3161.SigningIdentity{Signer: p.key, Certificate: p.tsa, Digest: rfc3161.SHA512})
	if err != nil {
		t.Fatal(err)
	}
	der, _ := s.Sign([]byte("x"), time.Now(), rand.Reader)
	if v, err := Verify(der); err != nil || v.Digest.Name != "sha512" {
		t.Fatalf("P-256 with SHA-512: %v", err)
	}
}

type oddSigner struct{}

func (oddSigner) Public() crypto.PublicKey                                  { return []byte("not a key") }
func (oddSigner) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) { return nil, nil }

func mustDecode(t *testing.T, body []byte) []byte {
	t.Helper()
	r, err := ParseRequest(body)
	if err != nil {
		t.Fatal(err)
	}
	return r.DER
}

// TestOpenSSLVerifies is the check that matters: OpenSSL's CMS code, the
// one osslsigncode verifies countersignatures with, accepts the signature.
func TestOpenSSLVerifies(t *testing.T) {
	openssl := tool(t, "openssl")
	for _, kind := range allKinds {
		t.Run(string(kind), func(t *testing.T) {
			p := newTestPKI(t, kind)
			content := make([]byte, 256)
			rand.Read(content)
			at := time.Now().UTC().Truncate(time.Second)
			der, err := p.signer(t).Sign(content, at, rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			resp := writeFile(t, dir, "resp.der", der)
			ca := writeFile(t, dir, "ca.pem", certPEM(p.root))

			// What osslsigncode decodes the response with: d2i_PKCS7.
			printed, err := exec.Command(openssl, "pkcs7", "-inform", "DER", "-in", resp, "-print", "-noout").CombinedOutput()
			if err != nil {
				t.Fatalf("openssl pkcs7: %v\n%s", err, printed)
			}
			stamp := "UTCTIME:" + at.Format("Jan _2 15:04:05 2006 GMT")
			if !strings.Contains(string(printed), stamp) {
				t.Fatalf("openssl pkcs7 -print lacks %q:\n%s", stamp, printed)
			}

			if kind == ed {
				// OpenSSL's CMS code cannot verify Ed25519 with signed
				// attributes (openssl/openssl#32248): check the pieces.
				openSSLVerifyEd25519(t, openssl, dir, p, der, content)
				return
			}
			cmd := exec.Command(openssl, "cms", "-verify", "-binary", "-inform", "DER", "-in", resp, "-CAfile", ca, "-purpose", "any")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil || !bytes.Equal(out, content) {
				t.Fatalf("openssl cms -verify: %v\n%s\nout %x", err, stderr.Bytes(), out)
			}
			if !strings.Contains(stderr.String(), "Verification successful") {
				t.Fatalf("openssl says %s", stderr.Bytes())
			}

			tampered := append([]byte{}, der...)
			tampered[bytes.Index(tampered, content)] ^= 1
			if out, err := exec.Command(openssl, "cms", "-verify", "-binary", "-inform", "DER", "-in", writeFile(t, dir, "bad.der", tampered),
				"-CAfile", ca, "-purpose", "any").CombinedOutput(); err == nil {
				t.Fatalf("openssl accepts a tampered response:\n%s", out)
			}
		})
	}
}

// openSSLVerifyEd25519 checks with OpenSSL what its CMS code cannot: the
// Ed25519 signature over the signed attributes, re-tagged as a SET, and the
// SHA-512 messageDigest.
func openSSLVerifyEd25519(t *testing.T, openssl, dir string, p testPKI, der, content []byte) {
	t.Helper()
	si := decodeIndependently(t, der).SignedData.SignerInfos[0]
	set := append([]byte{}, si.SignedAttrs.FullBytes...)
	set[0] = 0x31
	pub, err := x509.MarshalPKIXPublicKey(p.key.Public())
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(openssl, "pkeyutl", "-verify", "-pubin", "-rawin",
		"-inkey", writeFile(t, dir, "pub.pem", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub})),
		"-in", writeFile(t, dir, "attrs.der", set), "-sigfile", writeFile(t, dir, "sig.bin", si.Signature)).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Signature Verified Successfully") {
		t.Fatalf("openssl pkeyutl -verify: %v\n%s", err, out)
	}
	md, err := exec.Command(openssl, "dgst", "-sha512", "-binary", writeFile(t, dir, "content.bin", content)).Output()
	if err != nil || len(md) != 64 || !bytes.Contains(set, md) {
		t.Fatalf("openssl's SHA-512 of the content is not the messageDigest: %v", err)
	}
}

func FuzzVerify(f *testing.F) {
	// Small seeds, without the chain: the fuzzer spends its time
	// minimizing what it finds, at a cost that grows with input size.
	for _, kind := range allKinds {
		p := newTestPKI(f, kind)
		s, err := NewSigner(rfc3161.SigningIdentity{Signer: p.key, Certificate: p.tsa})
		if err != nil {
			f.Fatal(err)
		}
		for _, n := range []int{1, 64} {
			der, err := s.Sign(bytes.Repeat([]byte{7}, n), time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC), rand.Reader)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(der)
		}
	}
	f.Fuzz(func(t *testing.T, der []byte) {
		v, err := Verify(der)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "authenticode response: ") {
				t.Fatalf("unprefixed error %v", err)
			}
			return
		}
		if v.Certificate == nil || v.SigningTime.Location() != time.UTC || v.SigningTime.Nanosecond() != 0 {
			t.Fatalf("verified %+v", v)
		}
		h := v.Digest.Hash.New()
		h.Write(v.Content)
		if !bytes.Contains(der, h.Sum(nil)) {
			t.Fatal("verified a response whose messageDigest is not in it")
		}
	})
}

func BenchmarkSign(b *testing.B) {
	for _, kind := range []keyKind{p256, ed} {
		b.Run(string(kind), func(b *testing.B) {
			s := newTestPKI(b, kind).signer(b)
			content := make([]byte, 256)
			at := time.Now()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Sign(content, at, rand.Reader); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkParseRequest(b *testing.B) {
	body := []byte(wrapLines(string(NewRequest(make([]byte, 256))), 64, "\n"))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseRequest(body); err != nil {
			b.Fatal(err)
		}
	}
}

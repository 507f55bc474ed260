package rfc3161

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/digitorus/timestamp"

	"github.com/chronolog/chronolog/internal/testpki"
)

var testPolicy = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 32473, 3161, 1}

type testPKI struct {
	root, tsa *x509.Certificate
	key       crypto.Signer
}

func newTestPKI(tb testing.TB, rsaKey bool) testPKI {
	tb.Helper()
	kind := testpki.ECDSAP256
	if rsaKey {
		kind = testpki.RSA2048
	}
	ca := testpki.New(tb)
	tsa := ca.TSA(tb, kind, testpki.Subject("test TSA", "Chronolog"))
	return testPKI{root: ca.Cert, tsa: tsa.Cert, key: tsa.Key}
}

func issue(t *testing.T, p testPKI, q *TimeStampReq, genTime time.Time) []byte {
	t.Helper()
	s, err := NewTokenSigner(SigningIdentity{Signer: p.key, Certificate: p.tsa, Chain: []*x509.Certificate{p.root}})
	if err != nil {
		t.Fatal(err)
	}
	info := &TSTInfo{Policy: testPolicy, MessageImprint: q.MessageImprint.Raw, SerialNumber: new(big.Int).SetBytes(bytes.Repeat([]byte{0x7f}, 16)),
		GenTime: genTime, Accuracy: &Accuracy{Seconds: 1, Millis: 500}, Nonce: q.Nonce, TSAName: p.tsa.RawSubject}
	der, err := info.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	tok, err := s.Sign(der, q.CertReq, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestTokenRoundTrip(t *testing.T) {
	for _, rsaKey := range []bool{false, true} {
		for _, certReq := range []bool{true, false} {
			name := map[bool]string{false: "ecdsa", true: "rsa"}[rsaKey] + map[bool]string{true: "-certs", false: "-nocerts"}[certReq]
			t.Run(name, func(t *testing.T) {
				p := newTestPKI(t, rsaKey)
				digest := bytes.Repeat([]byte{0x42}, 32)
				q, err := NewTimeStampReq(SHA256, digest, new(big.Int).Lsh(big.NewInt(1), 255), nil, certReq)
				if err != nil {
					t.Fatal(err)
				}
				gen := time.Now().UTC().Truncate(time.Second).Add(120 * time.Millisecond)
				tok := issue(t, p, q, gen)
				roots := x509.NewCertPool()
				roots.AddCert(p.root)
				opts := VerifyOptions{Roots: roots, Request: q, Digest: digest}
				if !certReq {
					opts.Certificates = []*x509.Certificate{p.tsa}
				}
				v, err := VerifyToken(tok, opts)
				if err != nil {
					t.Fatal(err)
				}
				if !v.TSTInfo.GenTime.Equal(gen) || v.Signer != p.tsa && !bytes.Equal(v.Signer.Raw, p.tsa.Raw) {
					t.Fatalf("verified %+v", v.TSTInfo)
				}

				// Independent parser: digitorus.
				resp := GrantedResponse(tok)
				ts, err := timestamp.ParseResponse(resp)
				if err != nil {
					t.Fatalf("digitorus: %v", err)
				}
				if !ts.Time.Equal(gen) || !bytes.Equal(ts.HashedMessage, digest) || !ts.Policy.Equal(testPolicy) ||
					ts.Accuracy != 1500*time.Millisecond || ts.SerialNumber.Cmp(v.TSTInfo.SerialNumber) != 0 {
					t.Fatalf("digitorus reads time %s accuracy %s serial %x", ts.Time, ts.Accuracy, ts.SerialNumber)
				}
				if !bytes.Equal(ts.Nonce.Bytes(), q.Nonce[1:]) {
					t.Fatalf("digitorus nonce %x", ts.Nonce)
				}

				// Go's strict decoder on genTime.
				var strict struct {
					Version int
					Policy  asn1.ObjectIdentifier
					MI      asn1.RawValue
					Serial  *big.Int
					GenTime time.Time       `asn1:"generalized"`
					Rest    []asn1.RawValue `asn1:"optional"`
				}
				if _, err := asn1.Unmarshal(mustTSTInfo(t, tok), &strict); err != nil || !strict.GenTime.Equal(gen) {
					t.Fatalf("strict genTime: %v %s", err, strict.GenTime)
				}
				openSSLVerify(t, p, q, resp, certReq)
			})
		}
	}
}

func mustTSTInfo(t *testing.T, tok []byte) []byte {
	st, err := parseSignedToken(tok)
	if err != nil {
		t.Fatal(err)
	}
	return st.eContent
}

func openSSLVerify(t *testing.T, p testPKI, q *TimeStampReq, resp []byte, certReq bool) {
	t.Helper()
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("openssl is missing and CI must not skip")
		}
		t.Log("openssl not installed: cross-check skipped")
		return
	}
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		path := filepath.Join(dir, name)
		os.WriteFile(path, b, 0o644)
		return path
	}
	qder, _ := q.Marshal()
	args := []string{"ts", "-verify", "-in", write("r.tsr", resp), "-queryfile", write("q.tsq", qder),
		"-CAfile", write("ca.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.root.Raw}))}
	if !certReq {
		args = append(args, "-untrusted", write("tsa.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.tsa.Raw})))
	}
	out, err := exec.Command(openssl, args...).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Verification: OK") {
		t.Fatalf("openssl ts -verify: %v\n%s", err, out)
	}
}

func TestVerifyTokenDetectsTampering(t *testing.T) {
	p := newTestPKI(t, false)
	digest := bytes.Repeat([]byte{0x42}, 32)
	q, _ := NewTimeStampReq(SHA256, digest, big.NewInt(99), nil, true)
	tok := issue(t, p, q, time.Now().UTC().Truncate(time.Microsecond))
	roots := x509.NewCertPool()
	roots.AddCert(p.root)
	other := newTestPKI(t, false)
	otherRoots := x509.NewCertPool()
	otherRoots.AddCert(other.root)
	q2, _ := NewTimeStampReq(SHA256, digest, big.NewInt(100), nil, true)

	info := mustTSTInfo(t, tok)
	i := bytes.Index(tok, info)
	tampered := append([]byte{}, tok...)
	tampered[i+len(info)-1] ^= 1

	cases := map[string]struct {
		tok  []byte
		opts VerifyOptions
	}{
		"changed TSTInfo byte": {tampered, VerifyOptions{Roots: roots}},
		"wrong nonce":          {tok, VerifyOptions{Roots: roots, Request: q2}},
		"wrong digest":         {tok, VerifyOptions{Roots: roots, Digest: bytes.Repeat([]byte{1}, 32)}},
		"wrong root":           {tok, VerifyOptions{Roots: otherRoots}},
	}
	for name, c := range cases {
		if _, err := VerifyToken(c.tok, c.opts); err == nil {
			t.Errorf("%s: verified", name)
		}
	}
	if _, err := VerifyToken(tok, VerifyOptions{Roots: roots, Request: q, Digest: digest}); err != nil {
		t.Fatalf("the untampered token fails: %v", err)
	}
}

func TestFormatGeneralizedTime(t *testing.T) {
	base := time.Date(2026, 11, 22, 16, 7, 45, 0, time.UTC)
	for _, tt := range []struct {
		ns   int
		want string
	}{
		{0, "20261122160745Z"},
		{500000000, "20261122160745.5Z"},
		{123456000, "20261122160745.123456Z"},
		{120000000, "20261122160745.12Z"},
		{1000, "20261122160745.000001Z"},
	} {
		got := FormatGeneralizedTime(base.Add(time.Duration(tt.ns)))
		if got != tt.want {
			t.Errorf("%d ns: %s, want %s", tt.ns, got, tt.want)
		}
		back, err := ParseGeneralizedTime(got)
		if err != nil || !back.Equal(base.Add(time.Duration(tt.ns))) {
			t.Errorf("parse %s: %v", got, err)
		}
	}
	if _, err := ParseGeneralizedTime("20261122160745.10Z"); err == nil {
		t.Error("trailing zero accepted")
	}
}

func TestRejectionResponseIsMinimal(t *testing.T) {
	for _, f := range []FailInfo{BadAlg, BadRequest, BadDataFormat, UnacceptedPolicy, UnacceptedExtension, SystemFailure} {
		der := RejectionResponse(Reject(f, "because"))
		var r struct {
			Status struct {
				Status int
				Text   []string `asn1:"optional,utf8"`
				Fail   asn1.BitString
			}
		}
		if _, err := asn1.Unmarshal(der, &r); err != nil {
			t.Fatal(err)
		}
		if r.Status.Status != 2 || r.Status.Fail.BitLength != int(f)+1 || r.Status.Fail.At(int(f)) != 1 {
			t.Fatalf("%s: %+v", f, r.Status)
		}
		parsed, err := ParseTimeStampResp(der)
		if err != nil || *parsed.FailInfo != f || parsed.Token != nil {
			t.Fatalf("%s: parsed %+v %v", f, parsed, err)
		}
	}
}

// The client reads a fixed text; the reason, which may name addresses,
// clients and errors, stays on the server.
func TestRejectionResponseCarriesTheClientText(t *testing.T) {
	secret := "ntp 127.0.0.1:12323: no answer: read udp 127.0.0.1:51790->127.0.0.1:12323: recvmsg: connection refused"
	for _, tc := range []struct {
		rej  *Rejection
		want string
	}{
		{&Rejection{FailInfo: TimeNotAvailable, Reason: secret}, "the TSA's time source is not available"},
		{&Rejection{FailInfo: SystemFailure, Reason: secret}, "the request cannot be handled due to system failure"},
		{&Rejection{FailInfo: BadRequest, Reason: secret, Text: "rate limit exceeded: retry later"}, "rate limit exceeded: retry later"},
		{Reject(BadDataFormat, "%d bytes after the TimeStampReq", 3), "the data submitted has the wrong format"},
	} {
		parsed, err := ParseTimeStampResp(RejectionResponse(tc.rej))
		if err != nil {
			t.Fatal(err)
		}
		if len(parsed.StatusString) != 1 || parsed.StatusString[0] != tc.want {
			t.Errorf("%s: statusString %q, want [%q]", tc.rej.FailInfo, parsed.StatusString, tc.want)
		}
	}
	for f := range failNames {
		if f.Text() == "" || f.Text() == failTexts[SystemFailure] && f != SystemFailure {
			t.Errorf("%s has no text of its own", f)
		}
	}
}

func BenchmarkSign(b *testing.B) {
	p := newTestPKI(b, false)
	s, _ := NewTokenSigner(SigningIdentity{Signer: p.key, Certificate: p.tsa})
	q, _ := NewTimeStampReq(SHA256, make([]byte, 32), big.NewInt(1), nil, true)
	info := &TSTInfo{Policy: testPolicy, MessageImprint: q.MessageImprint.Raw, SerialNumber: big.NewInt(5), GenTime: time.Now()}
	der, _ := info.Marshal()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := s.Sign(der, true, rand.Reader); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseTimeStampReq(b *testing.B) {
	q, _ := NewTimeStampReq(SHA256, make([]byte, 32), big.NewInt(1), nil, true)
	der, _ := q.Marshal()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := ParseTimeStampReq(der); err != nil {
			b.Fatal(err)
		}
	}
}

package pkcs11

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"testing"
)

var hashes = []crypto.Hash{crypto.SHA256, crypto.SHA384, crypto.SHA512}

func digest(h crypto.Hash, msg string) []byte {
	w := h.New()
	w.Write([]byte(msg))
	return w.Sum(nil)
}

// verifier checks a signature over msg with Go's crypto.
type verifier func(pub crypto.PublicKey, msg string, sig []byte) error

// signCase is one way to sign with one key type.
type signCase struct {
	name   string
	opts   crypto.SignerOpts
	input  func(msg string) []byte
	verify verifier
}

func casesFor(typ KeyType) []signCase {
	var cases []signCase
	switch typ {
	case Ed25519:
		return []signCase{{"pure", crypto.Hash(0), func(m string) []byte { return []byte(m) },
			func(pub crypto.PublicKey, m string, sig []byte) error {
				if !ed25519.Verify(pub.(ed25519.PublicKey), []byte(m), sig) {
					return errors.New("ed25519.Verify failed")
				}
				return nil
			}}}
	case ECDSAP256, ECDSAP384:
		for _, h := range hashes {
			cases = append(cases, signCase{h.String(), h, func(m string) []byte { return digest(h, m) },
				func(pub crypto.PublicKey, m string, sig []byte) error {
					if !ecdsa.VerifyASN1(pub.(*ecdsa.PublicKey), digest(h, m), sig) {
						return errors.New("ecdsa.VerifyASN1 failed")
					}
					return nil
				}})
		}
	default:
		for _, h := range hashes {
			cases = append(cases, signCase{"PKCS1v15 " + h.String(), h, func(m string) []byte { return digest(h, m) },
				func(pub crypto.PublicKey, m string, sig []byte) error {
					return rsa.VerifyPKCS1v15(pub.(*rsa.PublicKey), h, digest(h, m), sig)
				}})
			for _, salt := range []struct {
				name string
				len  int
			}{{"EqualsHash", rsa.PSSSaltLengthEqualsHash}, {"Auto", rsa.PSSSaltLengthAuto}} {
				opts := &rsa.PSSOptions{Hash: h, SaltLength: salt.len}
				cases = append(cases, signCase{"PSS salt " + salt.name + " " + h.String(), opts, func(m string) []byte { return digest(h, m) },
					func(pub crypto.PublicKey, m string, sig []byte) error {
						// Checked with the salt length spelt out: Auto
						// signs with the longest salt, as rsa.SignPSS does.
						want := &rsa.PSSOptions{Hash: h, SaltLength: h.Size()}
						if salt.len == rsa.PSSSaltLengthAuto {
							want.SaltLength = (pub.(*rsa.PublicKey).N.BitLen()+6)/8 - h.Size() - 2
						}
						return rsa.VerifyPSS(pub.(*rsa.PublicKey), h, digest(h, m), sig, want)
					}})
			}
		}
	}
	return cases
}

func TestSignVerifiesWithGoCrypto(t *testing.T) {
	module, _ := newToken(t)
	for _, tc := range allTypes {
		generate(t, module, testToken, tc.typ, string(tc.typ))
		k := open(t, Config{Module: module, KeyLabel: string(tc.typ)})
		var _ crypto.Signer = k
		for _, c := range casesFor(tc.typ) {
			t.Run(string(tc.typ)+"/"+c.name, func(t *testing.T) {
				sig, err := k.Sign(rand.Reader, c.input("time-stamp me"), c.opts)
				if err != nil {
					t.Fatal(err)
				}
				if err := c.verify(k.Public(), "time-stamp me", sig); err != nil {
					t.Errorf("the signature does not verify: %v", err)
				}
				// The same check must fail on another message.
				if err := c.verify(k.Public(), "time-stamp you", sig); err == nil {
					t.Error("the signature verifies over another message too")
				}
			})
		}
	}
}

func TestSignRefusesWhatItCannotSign(t *testing.T) {
	module, _ := newToken(t)
	keys := map[KeyType]*Key{}
	for _, typ := range []KeyType{ECDSAP256, RSA2048, Ed25519} {
		generate(t, module, testToken, typ, string(typ))
		keys[typ] = open(t, Config{Module: module, KeyLabel: string(typ)})
	}
	for name, tc := range map[string]struct {
		typ    KeyType
		digest []byte
		opts   crypto.SignerOpts
		want   string
	}{
		"ECDSA digest of the wrong size": {ECDSAP256, make([]byte, 20), crypto.SHA256, "20 bytes given for SHA-256"},
		"ECDSA without a hash":           {ECDSAP256, make([]byte, 32), crypto.Hash(0), "ECDSA signs a digest"},
		"RSA with SHA-1":                 {RSA2048, make([]byte, 20), crypto.SHA1, "SHA-256, SHA-384 or SHA-512"},
		"RSA-PSS with SHA-1":             {RSA2048, make([]byte, 20), &rsa.PSSOptions{Hash: crypto.SHA1}, "SHA-256, SHA-384 or SHA-512"},
		"RSA-PSS salt too long":          {RSA2048, make([]byte, 32), &rsa.PSSOptions{Hash: crypto.SHA256, SaltLength: 300}, "does not fit"},
		"Ed25519ph":                      {Ed25519, make([]byte, 64), crypto.SHA512, "Ed25519ph is not supported"},
		"Ed25519ctx":                     {Ed25519, []byte("m"), &ed25519.Options{Context: "c"}, "Ed25519ctx"},
	} {
		_, err := keys[tc.typ].Sign(rand.Reader, tc.digest, tc.opts)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error saying %q", name, err, tc.want)
		}
	}
}

func TestECDSADER(t *testing.T) {
	for name, tc := range map[string]struct {
		raw  []byte
		size int
		want string // hex of the DER, "" for an error
	}{
		"small integers":       {[]byte{0, 1, 0, 2}, 2, "3006020101020102"},
		"high bit gets a zero": {[]byte{0x80, 0, 0x7f, 0xff}, 2, "3009020300800002027fff"},
		"odd length":           {[]byte{1, 2, 3}, 2, ""},
		"zero r":               {[]byte{0, 0, 0, 1}, 2, ""},
	} {
		der, err := ecdsaDER(tc.raw, tc.size)
		if got := fmt.Sprintf("%x", der); (tc.want == "") != (err != nil) || got != tc.want && tc.want != "" {
			t.Errorf("%s: %s, %v; want %q", name, got, err, tc.want)
		}
	}
}

// ecdsaDER writes by hand what encoding/asn1 makes of r and s.
func FuzzECDSADER(f *testing.F) {
	f.Add([]byte{0, 1, 0, 2}, 2)
	f.Add([]byte{0x80, 0, 0x7f, 0xff}, 2)
	f.Add(bytes.Repeat([]byte{0xff}, 132), 66)
	f.Add(append(make([]byte, 65), bytes.Repeat([]byte{1}, 67)...), 66)
	f.Fuzz(func(t *testing.T, raw []byte, size int) {
		der, err := ecdsaDER(raw, size)
		if size <= 0 || size > 66 || len(raw) != 2*size {
			if err == nil {
				t.Fatalf("ecdsaDER(%x, %d) = %x, want an error", raw, size, der)
			}
			return
		}
		r, s := new(big.Int).SetBytes(raw[:size]), new(big.Int).SetBytes(raw[size:])
		if r.Sign() == 0 || s.Sign() == 0 {
			if err == nil {
				t.Fatalf("ecdsaDER(%x, %d) = %x with a zero r or s, want an error", raw, size, der)
			}
			return
		}
		want, _ := asn1.Marshal(struct{ R, S *big.Int }{r, s})
		if err != nil || !bytes.Equal(der, want) {
			t.Fatalf("ecdsaDER(%x, %d) = %x, %v; encoding/asn1 makes %x", raw, size, der, err, want)
		}
	})
}

func TestPSSSaltLength(t *testing.T) {
	for name, tc := range map[string]struct {
		salt, hashLen, bits, want int
		ok                        bool
	}{
		"auto is the longest, as rsa.SignPSS": {rsa.PSSSaltLengthAuto, 32, 2048, 256 - 32 - 2, true},
		"auto, modulus of 8n+1 bits":          {rsa.PSSSaltLengthAuto, 32, 2049, 256 - 32 - 2, true},
		"equals hash":                         {rsa.PSSSaltLengthEqualsHash, 48, 3072, 48, true},
		"explicit":                            {20, 64, 4096, 20, true},
		"explicit, longest":                   {222, 32, 2048, 222, true},
		"explicit, too long":                  {223, 32, 2048, 0, false},
		"negative":                            {-2, 32, 2048, 0, false},
	} {
		got, err := pssSaltLength(tc.salt, tc.hashLen, tc.bits)
		if tc.ok != (err == nil) || got != tc.want {
			t.Errorf("%s: %d, %v; want %d", name, got, err, tc.want)
		}
	}
}

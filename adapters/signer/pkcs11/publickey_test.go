package pkcs11

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/asn1"
	"testing"
)

func TestECPublicReadsBareAndWrappedPoints(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	point, err := key.PublicKey.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	wrapped, _ := asn1.Marshal(point)
	p384, _ := asn1.Marshal(oidP384)
	p256, _ := asn1.Marshal(oidP256)
	for name, tc := range map[string]struct {
		params, point []byte
		ok            bool
	}{
		"in an OCTET STRING (PKCS#11)":  {p384, wrapped, true},
		"bare (some modules)":           {p384, point, true},
		"point of another curve":        {p256, wrapped, false},
		"truncated":                     {p384, wrapped[:40], false},
		"compressed":                    {p384, append([]byte{0x02}, point[1:49]...), false},
		"params not an OID":             {[]byte("P-384"), wrapped, false},
		"curve Chronolog does not know": {mustOID(asn1.ObjectIdentifier{1, 3, 132, 0, 10}), wrapped, false},
	} {
		pub, err := ecPublic(tc.params, tc.point)
		if tc.ok != (err == nil) || (tc.ok && !key.PublicKey.Equal(pub)) {
			t.Errorf("%s: %v, %v", name, pub, err)
		}
	}
}

func TestEdwardsPublicReadsEitherParamsAndEitherPoint(t *testing.T) {
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	wrapped, _ := asn1.Marshal([]byte(pub))
	printable, _ := asn1.MarshalWithParams("edwards25519", "printable")
	ed448, _ := asn1.MarshalWithParams("edwards448", "printable")
	for name, tc := range map[string]struct {
		params, point []byte
		ok            bool
	}{
		"OID, wrapped (SoftHSM 2.6)":    {mustOID(oidEd25519), wrapped, true},
		"OID, bare":                     {mustOID(oidEd25519), pub, true},
		"printable string, wrapped":     {printable, wrapped, true},
		"Ed448 by OID":                  {mustOID(asn1.ObjectIdentifier{1, 3, 101, 113}), wrapped, false},
		"Ed448 by name":                 {ed448, wrapped, false},
		"31 bytes":                      {mustOID(oidEd25519), pub[:31], false},
		"wrapped with trailing garbage": {mustOID(oidEd25519), append(wrapped, 0), false},
	} {
		got, err := edwardsPublic(tc.params, tc.point)
		if tc.ok != (err == nil) || (tc.ok && !pub.Equal(got)) {
			t.Errorf("%s: %x, %v", name, got, err)
		}
	}
}

func mustOID(oid asn1.ObjectIdentifier) []byte {
	der, err := asn1.Marshal(oid)
	if err != nil {
		panic(err)
	}
	return der
}

func TestKeyTypeOf(t *testing.T) {
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p521, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	r, _ := rsa.GenerateKey(rand.Reader, 2048)
	ed, _, _ := ed25519.GenerateKey(rand.Reader)
	for want, pub := range map[KeyType]any{ECDSAP256: &p256.PublicKey, "ecdsa-p521": &p521.PublicKey, RSA2048: &r.PublicKey, Ed25519: ed} {
		if got := KeyTypeOf(pub); got != want {
			t.Errorf("KeyTypeOf = %q, want %q", got, want)
		}
	}
}

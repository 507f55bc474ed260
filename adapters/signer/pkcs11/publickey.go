package pkcs11

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"

	p11 "github.com/miekg/pkcs11"
)

// identity is what a private key object says of itself.
type identity struct {
	label string
	id    []byte
	pub   crypto.PublicKey
}

var (
	oidP256    = asn1.ObjectIdentifier{1, 2, 840, 10045, 3, 1, 7}
	oidP384    = asn1.ObjectIdentifier{1, 3, 132, 0, 34}
	oidP521    = asn1.ObjectIdentifier{1, 3, 132, 0, 35}
	oidEd25519 = asn1.ObjectIdentifier{1, 3, 101, 112}
)

// readIdentity reads the label, id and public key of the private key obj.
// A private EC or Edwards key does not carry its point, so it comes from
// the public key object beside it, or else from its certificate.
func readIdentity(ctx *p11.Ctx, sh p11.SessionHandle, obj p11.ObjectHandle) (identity, error) {
	a, err := attributes(ctx, sh, obj, p11.CKA_KEY_TYPE, p11.CKA_LABEL, p11.CKA_ID)
	if err != nil {
		return identity{}, fmt.Errorf("read the private key: %w", err)
	}
	kt, err := ulong(a[p11.CKA_KEY_TYPE])
	if err != nil {
		return identity{}, fmt.Errorf("the private key's CKA_KEY_TYPE: %w", err)
	}
	id := identity{label: string(a[p11.CKA_LABEL]), id: a[p11.CKA_ID]}
	switch kt {
	case p11.CKK_RSA:
		var ra map[uint][]byte
		if ra, err = attributes(ctx, sh, obj, p11.CKA_MODULUS, p11.CKA_PUBLIC_EXPONENT); err != nil {
			return identity{}, fmt.Errorf("read the RSA key's modulus and exponent: %w", err)
		}
		id.pub, err = rsaPublic(ra[p11.CKA_MODULUS], ra[p11.CKA_PUBLIC_EXPONENT])
	case p11.CKK_EC, ckkECEdwards:
		id.pub, err = curvePublic(ctx, sh, obj, kt, id)
	default:
		err = fmt.Errorf("the key is of type %#x: Chronolog signs with EC, Edwards and RSA keys", kt)
	}
	if err != nil {
		return identity{}, fmt.Errorf("key %q (id %x): %w", id.label, id.id, err)
	}
	return id, nil
}

func rsaPublic(modulus, exponent []byte) (*rsa.PublicKey, error) {
	e := new(big.Int).SetBytes(exponent)
	if len(modulus) == 0 || !e.IsInt64() || e.Int64() < 3 || e.Int64() > 1<<31-1 {
		return nil, errors.New("the RSA key's modulus or public exponent is unusable")
	}
	return &rsa.PublicKey{N: new(big.Int).SetBytes(modulus), E: int(e.Int64())}, nil
}

func curvePublic(ctx *p11.Ctx, sh p11.SessionHandle, obj p11.ObjectHandle, kt uint64, id identity) (crypto.PublicKey, error) {
	a, err := attributes(ctx, sh, obj, p11.CKA_EC_PARAMS)
	if err != nil {
		return nil, fmt.Errorf("read the key's CKA_EC_PARAMS: %w", err)
	}
	params := a[p11.CKA_EC_PARAMS]
	point, err := publicPoint(ctx, sh, kt, id)
	if err != nil {
		return nil, err
	}
	if point == nil {
		cert, err := certificateOf(ctx, sh, id.id, nil)
		if err != nil {
			return nil, fmt.Errorf("the token holds no public key object for the key, so its public key comes from its certificate: %w", err)
		}
		return cert.PublicKey, nil
	}
	if kt == ckkECEdwards {
		return edwardsPublic(params, point)
	}
	return ecPublic(params, point)
}

// publicPoint is the CKA_EC_POINT of the public key object with the
// private key's id (or label, for a key without one); nil if there is
// none.
func publicPoint(ctx *p11.Ctx, sh p11.SessionHandle, kt uint64, id identity) ([]byte, error) {
	template := []*p11.Attribute{
		p11.NewAttribute(p11.CKA_CLASS, p11.CKO_PUBLIC_KEY),
		p11.NewAttribute(p11.CKA_KEY_TYPE, kt),
	}
	if len(id.id) > 0 {
		template = append(template, p11.NewAttribute(p11.CKA_ID, id.id))
	} else {
		template = append(template, p11.NewAttribute(p11.CKA_LABEL, id.label))
	}
	objs, err := findObjects(ctx, sh, template)
	if err != nil {
		return nil, fmt.Errorf("look for the public key: %w", err)
	}
	var point []byte
	for _, o := range objs {
		a, err := attributes(ctx, sh, o, p11.CKA_EC_POINT)
		if err != nil {
			return nil, fmt.Errorf("read the public key's CKA_EC_POINT: %w", err)
		}
		if point != nil && string(point) != string(a[p11.CKA_EC_POINT]) {
			return nil, fmt.Errorf("%d different public keys share the key's id %x", len(objs), id.id)
		}
		point = a[p11.CKA_EC_POINT]
	}
	return point, nil
}

// ecPublic reads a named curve (CKA_EC_PARAMS) and an uncompressed point,
// which PKCS#11 wraps in a DER OCTET STRING and some modules do not.
func ecPublic(params, point []byte) (*ecdsa.PublicKey, error) {
	var oid asn1.ObjectIdentifier
	if rest, err := asn1.Unmarshal(params, &oid); err != nil || len(rest) > 0 {
		return nil, fmt.Errorf("CKA_EC_PARAMS %x is not a named curve", params)
	}
	var curve elliptic.Curve
	switch {
	case oid.Equal(oidP256):
		curve = elliptic.P256()
	case oid.Equal(oidP384):
		curve = elliptic.P384()
	case oid.Equal(oidP521):
		curve = elliptic.P521()
	default:
		return nil, fmt.Errorf("curve %v is none of P-256, P-384, P-521", oid)
	}
	size := 1 + 2*((curve.Params().BitSize+7)/8)
	raw := point
	if len(point) != size {
		if rest, err := asn1.Unmarshal(point, &raw); err != nil || len(rest) > 0 {
			return nil, fmt.Errorf("CKA_EC_POINT is neither a %d-byte point nor one in an OCTET STRING", size)
		}
	}
	pub, err := ecdsa.ParseUncompressedPublicKey(curve, raw)
	if err != nil {
		return nil, fmt.Errorf("CKA_EC_POINT on %s: %w", curve.Params().Name, err)
	}
	return pub, nil
}

// edwardsPublic reads an Ed25519 key: CKA_EC_PARAMS names the curve by
// OID or by the printable string "edwards25519" (PKCS#11 v3.0 allows
// both), and the point is the 32-byte key, bare or in an OCTET STRING.
func edwardsPublic(params, point []byte) (ed25519.PublicKey, error) {
	var oid asn1.ObjectIdentifier
	var name string
	if _, err := asn1.Unmarshal(params, &oid); err == nil {
		if !oid.Equal(oidEd25519) {
			return nil, fmt.Errorf("the Edwards curve %v is not Ed25519", oid)
		}
	} else if _, err := asn1.UnmarshalWithParams(params, &name, "printable"); err != nil || name != "edwards25519" {
		return nil, fmt.Errorf("CKA_EC_PARAMS %x names no Edwards curve Chronolog knows (Ed25519)", params)
	}
	raw := point
	if len(point) != ed25519.PublicKeySize {
		if rest, err := asn1.Unmarshal(point, &raw); err != nil || len(rest) > 0 || len(raw) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("CKA_EC_POINT of %d bytes is no Ed25519 key", len(point))
		}
	}
	return ed25519.PublicKey(raw), nil
}

// samePublic says whether a and b are the same key.
func samePublic(a, b crypto.PublicKey) bool {
	eq, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && eq.Equal(b)
}

// KeyTypeOf names a public key as KeyType does ("ecdsa-p256", "rsa-3072",
// "ed25519"), for any key, not only those GenerateKey makes.
func KeyTypeOf(pub crypto.PublicKey) KeyType {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return ECDSAP256
		case elliptic.P384():
			return ECDSAP384
		case elliptic.P521():
			return "ecdsa-p521"
		}
	case *rsa.PublicKey:
		return KeyType(fmt.Sprintf("rsa-%d", k.N.BitLen()))
	case ed25519.PublicKey:
		return Ed25519
	}
	return KeyType(fmt.Sprintf("%T", pub))
}

// certificateOf is the newest X.509 certificate stored with CKA_ID id
// whose public key is pub (any, when pub is nil).
func certificateOf(ctx *p11.Ctx, sh p11.SessionHandle, id []byte, pub crypto.PublicKey) (*x509.Certificate, error) {
	if len(id) == 0 {
		return nil, errors.New("the key has no CKA_ID, by which its certificate is found")
	}
	objs, err := findObjects(ctx, sh, []*p11.Attribute{
		p11.NewAttribute(p11.CKA_CLASS, p11.CKO_CERTIFICATE),
		p11.NewAttribute(p11.CKA_CERTIFICATE_TYPE, p11.CKC_X_509),
		p11.NewAttribute(p11.CKA_ID, id),
	})
	if err != nil {
		return nil, fmt.Errorf("look for the certificate: %w", err)
	}
	var best *x509.Certificate
	for _, o := range objs {
		a, err := attributes(ctx, sh, o, p11.CKA_VALUE)
		if err != nil {
			return nil, fmt.Errorf("read the certificate: %w", err)
		}
		cert, err := x509.ParseCertificate(a[p11.CKA_VALUE])
		if err != nil {
			return nil, fmt.Errorf("the certificate stored with id %x: %w", id, err)
		}
		if pub != nil && !samePublic(pub, cert.PublicKey) {
			continue
		}
		if best == nil || cert.NotBefore.After(best.NotBefore) {
			best = cert
		}
	}
	if best == nil {
		return nil, errNoCertificate
	}
	return best, nil
}

var errNoCertificate = errors.New("no certificate is stored with the key's id")

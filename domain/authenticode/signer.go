package authenticode

import (
	"crypto"
	"crypto/ed25519"
	"crypto/x509"
	"fmt"
	"io"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/chronolog/chronolog/domain/rfc3161"
)

// Signer countersigns signatures. Everything constant for one key is
// encoded once, here, so signing costs two hashes, one signature and a few
// appends.
type Signer struct {
	id     rfc3161.SigningIdentity
	parts  *rfc3161.SignerInfoParts
	ctAttr []byte // DER Attribute contentType = data
}

// NewSigner checks the identity and precomputes its encodings. The keys
// and digests are rfc3161.NewTokenSigner's: ECDSA (SHA-256, SHA-384 from
// P-384 up), RSA (SHA-256) and Ed25519 (SHA-512, RFC 8419), unless
// id.Digest names another SHA-2.
//
// The signatureAlgorithm differs from TokenSigner's for RSA: rsaEncryption,
// not sha256WithRSAEncryption. It is what OpenSSL's PKCS#7 and CMS signers
// and signtool's Authenticode signatures carry, so it is the form every
// Authenticode verifier has met in a countersignature; the hash comes from
// digestAlgorithm (OpenSSL's CMS verifier accepts either OID). ECDSA has no
// such legacy form: it gets ecdsa-with-SHA*, as RFC 5754 requires and as
// OpenSSL writes. Ed25519 is here for symmetry with the RFC 3161 signer;
// Windows does not verify it in Authenticode and OpenSSL's CMS code cannot
// verify it with signed attributes (openssl/openssl#32248).
func NewSigner(id rfc3161.SigningIdentity) (*Signer, error) {
	if id.Signer != nil {
		if _, ed := id.Signer.Public().(ed25519.PublicKey); ed && id.Digest.OID != nil && id.Digest.Hash != crypto.SHA512 {
			return nil, fmt.Errorf("authenticode: Ed25519 needs SHA-512 (RFC 8419), not %s", id.Digest.Name)
		}
	}
	if id.Digest.OID != nil && id.Digest.Hash != crypto.SHA256 && id.Digest.Hash != crypto.SHA384 && id.Digest.Hash != crypto.SHA512 {
		return nil, fmt.Errorf("authenticode: digest %s is not supported", id.Digest.Name)
	}
	parts, err := rfc3161.NewSignerInfoParts(id, true)
	if err != nil {
		return nil, fmt.Errorf("authenticode: %w", err)
	}
	id.Digest = parts.Digest
	return &Signer{
		id:     id,
		parts:  parts,
		ctAttr: rfc3161.Attribute(oidContentType, func(b *cryptobyte.Builder) { b.AddASN1ObjectIdentifier(oidData) }),
	}, nil
}

// Certificate is the TSA certificate.
func (s *Signer) Certificate() *x509.Certificate { return s.id.Certificate }

// Digest is the hash used for messageDigest and the signature.
func (s *Signer) Digest() rfc3161.HashAlgorithm { return s.id.Digest }

// Sign returns the DER ContentInfo (SignedData) countersigning content at
// signingTime, taken in UTC and truncated to the second, all UTCTime holds.
func (s *Signer) Sign(content []byte, signingTime time.Time, rand io.Reader) ([]byte, error) {
	st, err := signingTimeElement(signingTime)
	if err != nil {
		return nil, err
	}
	p := s.parts
	h := p.Digest.Hash.New()
	h.Write(content)
	mdAttr := rfc3161.Attribute(oidMessageDigest, func(b *cryptobyte.Builder) { b.AddASN1OctetString(h.Sum(nil)) })
	stAttr := rfc3161.Attribute(oidSigningTime, func(b *cryptobyte.Builder) { b.AddBytes(st) })
	signed, sig, err := p.SignAttributes(rand, s.ctAttr, stAttr, mdAttr)
	if err != nil {
		return nil, fmt.Errorf("authenticode: %w", err)
	}

	// Version 1: data content, issuerAndSerialNumber, no attribute
	// certificates (RFC 5652 §5.1), as PKCS#7 had it. Certificates always:
	// the client copies them into its signature, where verifiers look for
	// the countersigner.
	return p.SignedData(1, oidData, content, signed, sig, true)
}

// signingTimeElement encodes t as RFC 5652 §11.3 demands: UTCTime for
// 1950 through 2049, GeneralizedTime otherwise, whole seconds, "Z". Only
// UTCTime is read by osslsigncode, which is fine until 2050.
func signingTimeElement(t time.Time) ([]byte, error) {
	t = t.UTC().Truncate(time.Second)
	tag, layout := cbasn1.UTCTime, utcTimeLayout
	if y := t.Year(); y < 1 || y > 9999 {
		return nil, fmt.Errorf("authenticode: signing time %s cannot be encoded", t)
	} else if y < 1950 || y > 2049 {
		tag, layout = cbasn1.GeneralizedTime, genTimeLayout
	}
	var b cryptobyte.Builder
	b.AddASN1(tag, func(b *cryptobyte.Builder) { b.AddBytes([]byte(t.Format(layout))) })
	return b.Bytes()
}

const (
	utcTimeLayout = "060102150405Z"
	genTimeLayout = "20060102150405Z"
)

package rfc3161

import (
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"io"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// SigningIdentity is the TSA's key and certificates.
type SigningIdentity struct {
	Signer      crypto.Signer
	Certificate *x509.Certificate
	// Chain holds the issuers, included after Certificate when certificates are requested.
	Chain []*x509.Certificate
	// Digest is used for messageDigest and the signature; zero means SHA-256
	// (SHA-512 for Ed25519, per RFC 8419).
	Digest HashAlgorithm
}

// TokenSigner wraps TSTInfo in CMS SignedData. Everything constant for one
// key is encoded once, here, so signing costs one hash, one signature and
// a few appends.
type TokenSigner struct {
	id      SigningIdentity
	parts   *SignerInfoParts
	essAttr []byte // DER Attribute signingCertificateV2
	ctAttr  []byte // DER Attribute contentType
}

// NewTokenSigner checks the identity and precomputes its encodings.
func NewTokenSigner(id SigningIdentity) (*TokenSigner, error) {
	parts, err := NewSignerInfoParts(id, false)
	if err != nil {
		return nil, err
	}
	id.Digest = parts.Digest
	s := &TokenSigner{id: id, parts: parts}
	certHash := sha256.Sum256(id.Certificate.Raw)
	s.essAttr = Attribute(oidSigningCertV2, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // SigningCertificateV2
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // certs
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // ESSCertIDv2
					// hashAlgorithm is omitted: SHA-256 is its DEFAULT.
					b.AddASN1OctetString(certHash[:])
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // IssuerSerial
						b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // GeneralNames
							b.AddASN1(tagCtx4C, func(b *cryptobyte.Builder) { b.AddBytes(id.Certificate.RawIssuer) })
						})
						b.AddASN1BigInt(id.Certificate.SerialNumber)
					})
				})
			})
		})
	})
	s.ctAttr = Attribute(oidContentType, func(b *cryptobyte.Builder) { b.AddASN1ObjectIdentifier(oidTSTInfo) })
	return s, nil
}

// Certificate is the TSA certificate.
func (s *TokenSigner) Certificate() *x509.Certificate { return s.id.Certificate }

// Sign returns a DER ContentInfo holding SignedData over tstInfo.
func (s *TokenSigner) Sign(tstInfo []byte, includeCerts bool, rand io.Reader) ([]byte, error) {
	p := s.parts
	h := p.Digest.Hash.New()
	h.Write(tstInfo)
	mdAttr := Attribute(oidMessageDigest, func(b *cryptobyte.Builder) { b.AddASN1OctetString(h.Sum(nil)) })
	content, sig, err := p.SignAttributes(rand, s.ctAttr, mdAttr, s.essAttr)
	if err != nil {
		return nil, fmt.Errorf("token: %w", err)
	}

	return p.SignedData(3, oidTSTInfo, tstInfo, content, sig, includeCerts)
}

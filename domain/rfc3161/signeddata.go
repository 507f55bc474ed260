package rfc3161

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"slices"

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
	id          SigningIdentity
	digestAlgID []byte // DER AlgorithmIdentifier
	sigAlgID    []byte
	sid         []byte // DER IssuerAndSerialNumber
	essAttr     []byte // DER Attribute signingCertificateV2
	ctAttr      []byte // DER Attribute contentType
	certSet     []byte // content of certificates [0] IMPLICIT
	signHash    crypto.Hash
}

// NewTokenSigner checks the identity and precomputes its encodings.
func NewTokenSigner(id SigningIdentity) (*TokenSigner, error) {
	if id.Signer == nil || id.Certificate == nil {
		return nil, errors.New("signing identity needs a signer and a certificate")
	}
	s := &TokenSigner{id: id}
	var sigOID asn1.ObjectIdentifier
	sigNULL := false
	switch pub := id.Signer.Public().(type) {
	case *ecdsa.PublicKey:
		if s.id.Digest.OID == nil {
			s.id.Digest = SHA256
			if pub.Curve.Params().BitSize > 256 {
				s.id.Digest = SHA384
			}
		}
		switch s.id.Digest.Hash {
		case crypto.SHA256:
			sigOID = oidECDSAWithSHA256
		case crypto.SHA384:
			sigOID = oidECDSAWithSHA384
		case crypto.SHA512:
			sigOID = oidECDSAWithSHA512
		}
		s.signHash = s.id.Digest.Hash
	case *rsa.PublicKey:
		if s.id.Digest.OID == nil {
			s.id.Digest = SHA256
		}
		switch s.id.Digest.Hash {
		case crypto.SHA256:
			sigOID = oidSHA256WithRSA
		case crypto.SHA384:
			sigOID = oidSHA384WithRSA
		case crypto.SHA512:
			sigOID = oidSHA512WithRSA
		}
		sigNULL = true
		s.signHash = s.id.Digest.Hash
	case ed25519.PublicKey:
		s.id.Digest = SHA512
		sigOID = oidEd25519
		s.signHash = crypto.Hash(0)
	default:
		return nil, fmt.Errorf("unsupported TSA key type %T", pub)
	}
	if sigOID == nil {
		return nil, fmt.Errorf("digest %s is not supported with this key", s.id.Digest.Name)
	}
	if !bytes.Equal(publicKeyDER(id.Signer.Public()), publicKeyDER(id.Certificate.PublicKey)) {
		return nil, errors.New("the TSA certificate does not match the signing key")
	}
	s.digestAlgID = algorithmID(s.id.Digest.OID, false)
	s.sigAlgID = algorithmID(sigOID, sigNULL)

	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddBytes(id.Certificate.RawIssuer)
		b.AddASN1BigInt(id.Certificate.SerialNumber)
	})
	s.sid = b.BytesOrPanic()

	certHash := sha256.Sum256(id.Certificate.Raw)
	s.essAttr = attribute(oidSigningCertV2, func(b *cryptobyte.Builder) {
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
	s.ctAttr = attribute(oidContentType, func(b *cryptobyte.Builder) { b.AddASN1ObjectIdentifier(oidTSTInfo) })
	var certs []byte
	for _, c := range append([]*x509.Certificate{id.Certificate}, id.Chain...) {
		certs = append(certs, c.Raw...)
	}
	s.certSet = certs
	return s, nil
}

// Certificate is the TSA certificate.
func (s *TokenSigner) Certificate() *x509.Certificate { return s.id.Certificate }

// Sign returns a DER ContentInfo holding SignedData over tstInfo.
func (s *TokenSigner) Sign(tstInfo []byte, includeCerts bool, rand io.Reader) ([]byte, error) {
	h := s.id.Digest.Hash.New()
	h.Write(tstInfo)
	mdAttr := attribute(oidMessageDigest, func(b *cryptobyte.Builder) { b.AddASN1OctetString(h.Sum(nil)) })

	// DER orders a SET OF by the encodings of its elements.
	attrs := [][]byte{s.ctAttr, mdAttr, s.essAttr}
	slices.SortFunc(attrs, bytes.Compare)
	var content []byte
	for _, a := range attrs {
		content = append(content, a...)
	}
	sb := cryptobyte.NewBuilder(make([]byte, 0, len(content)+4))
	sb.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) { b.AddBytes(content) })
	signed, err := sb.Bytes()
	if err != nil {
		return nil, err
	}
	var sig []byte
	if s.signHash == 0 {
		sig, err = s.id.Signer.Sign(rand, signed, crypto.Hash(0))
	} else {
		d := s.signHash.New()
		d.Write(signed)
		sig, err = s.id.Signer.Sign(rand, d.Sum(nil), s.signHash)
	}
	if err != nil {
		return nil, fmt.Errorf("sign token: %w", err)
	}

	// Sized once: a growing builder re-copies the token at every nesting level.
	size := len(tstInfo) + len(content) + len(sig) + len(s.sid) + 2*len(s.digestAlgID) + len(s.sigAlgID) + 96
	if includeCerts {
		size += len(s.certSet)
	}
	b := cryptobyte.NewBuilder(make([]byte, 0, size))
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // ContentInfo
		b.AddASN1ObjectIdentifier(oidSignedData)
		b.AddASN1(tagCtx0C, func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // SignedData
				b.AddASN1Int64(3)
				b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) { b.AddBytes(s.digestAlgID) })
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // EncapsulatedContentInfo
					b.AddASN1ObjectIdentifier(oidTSTInfo)
					b.AddASN1(tagCtx0C, func(b *cryptobyte.Builder) { b.AddASN1OctetString(tstInfo) })
				})
				if includeCerts {
					b.AddASN1(tagCtx0C, func(b *cryptobyte.Builder) { b.AddBytes(s.certSet) })
				}
				b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) {
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // SignerInfo
						b.AddASN1Int64(1)
						b.AddBytes(s.sid)
						b.AddBytes(s.digestAlgID)
						b.AddASN1(tagCtx0C, func(b *cryptobyte.Builder) { b.AddBytes(content) })
						b.AddBytes(s.sigAlgID)
						b.AddASN1OctetString(sig)
					})
				})
			})
		})
	})
	return b.Bytes()
}

func algorithmID(oid asn1.ObjectIdentifier, null bool) []byte {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1ObjectIdentifier(oid)
		if null {
			b.AddASN1NULL()
		}
	})
	return b.BytesOrPanic()
}

func attribute(oid asn1.ObjectIdentifier, value func(*cryptobyte.Builder)) []byte {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1ObjectIdentifier(oid)
		b.AddASN1(cbasn1.SET, value)
	})
	return b.BytesOrPanic()
}

func publicKeyDER(pub crypto.PublicKey) []byte {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil
	}
	return der
}

package authenticode

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/chronolog/chronolog/domain/rfc3161"
)

// Signer countersigns signatures. Everything constant for one key is
// encoded once, here, so signing costs two hashes, one signature and a few
// appends.
type Signer struct {
	id          rfc3161.SigningIdentity
	digestAlgID []byte // DER AlgorithmIdentifier
	sigAlgID    []byte
	sid         []byte // DER IssuerAndSerialNumber
	ctAttr      []byte // DER Attribute contentType = data
	certSet     []byte // content of certificates [0] IMPLICIT
	signHash    crypto.Hash
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
	if id.Signer == nil || id.Certificate == nil {
		return nil, errors.New("authenticode: signing identity needs a signer and a certificate")
	}
	s := &Signer{id: id}
	var sigOID asn1.ObjectIdentifier
	sigNULL := false
	switch pub := id.Signer.Public().(type) {
	case *ecdsa.PublicKey:
		if s.id.Digest.OID == nil {
			s.id.Digest = rfc3161.SHA256
			if pub.Curve.Params().BitSize > 256 {
				s.id.Digest = rfc3161.SHA384
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
			s.id.Digest = rfc3161.SHA256
		}
		switch s.id.Digest.Hash {
		case crypto.SHA256, crypto.SHA384, crypto.SHA512:
			sigOID, sigNULL = oidRSAEncryption, true
		}
		s.signHash = s.id.Digest.Hash
	case ed25519.PublicKey:
		if s.id.Digest.OID != nil && s.id.Digest.Hash != crypto.SHA512 {
			return nil, fmt.Errorf("authenticode: Ed25519 needs SHA-512 (RFC 8419), not %s", s.id.Digest.Name)
		}
		s.id.Digest = rfc3161.SHA512
		sigOID = oidEd25519
	default:
		return nil, fmt.Errorf("authenticode: unsupported TSA key type %T", pub)
	}
	if sigOID == nil {
		return nil, fmt.Errorf("authenticode: digest %s is not supported with this key", s.id.Digest.Name)
	}
	want, err := x509.MarshalPKIXPublicKey(id.Signer.Public())
	if err != nil {
		return nil, fmt.Errorf("authenticode: signing key: %w", err)
	}
	if got, err := x509.MarshalPKIXPublicKey(id.Certificate.PublicKey); err != nil || !bytes.Equal(got, want) {
		return nil, errors.New("authenticode: the TSA certificate does not match the signing key")
	}
	s.digestAlgID = algorithmID(s.id.Digest.OID, false)
	s.sigAlgID = algorithmID(sigOID, sigNULL)

	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddBytes(id.Certificate.RawIssuer)
		b.AddASN1BigInt(id.Certificate.SerialNumber)
	})
	if s.sid, err = b.Bytes(); err != nil {
		return nil, fmt.Errorf("authenticode: TSA certificate serial: %w", err)
	}
	s.ctAttr = attribute(oidContentType, func(b *cryptobyte.Builder) { b.AddASN1ObjectIdentifier(oidData) })
	for _, c := range append([]*x509.Certificate{id.Certificate}, id.Chain...) {
		s.certSet = append(s.certSet, c.Raw...)
	}
	return s, nil
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
	h := s.id.Digest.Hash.New()
	h.Write(content)
	mdAttr := attribute(oidMessageDigest, func(b *cryptobyte.Builder) { b.AddASN1OctetString(h.Sum(nil)) })
	stAttr := attribute(oidSigningTime, func(b *cryptobyte.Builder) { b.AddBytes(st) })

	// DER orders a SET OF by the encodings of its elements, and OpenSSL
	// re-encodes the set to verify it: unsorted, its check would fail.
	attrs := [][]byte{s.ctAttr, stAttr, mdAttr}
	slices.SortFunc(attrs, bytes.Compare)
	signed := slices.Concat(attrs...)
	sb := cryptobyte.NewBuilder(make([]byte, 0, len(signed)+4))
	sb.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) { b.AddBytes(signed) })
	set, err := sb.Bytes()
	if err != nil {
		return nil, err
	}
	var sig []byte
	if s.signHash == 0 {
		sig, err = s.id.Signer.Sign(rand, set, crypto.Hash(0))
	} else {
		d := s.signHash.New()
		d.Write(set)
		sig, err = s.id.Signer.Sign(rand, d.Sum(nil), s.signHash)
	}
	if err != nil {
		return nil, fmt.Errorf("authenticode: sign: %w", err)
	}

	// Sized once: a growing builder re-copies everything at every level.
	size := len(content) + len(signed) + len(sig) + len(s.sid) + 2*len(s.digestAlgID) + len(s.sigAlgID) + len(s.certSet) + 96
	b := cryptobyte.NewBuilder(make([]byte, 0, size))
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // ContentInfo
		b.AddASN1ObjectIdentifier(oidSignedData)
		b.AddASN1(tagCtx0C, func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // SignedData
				// Version 1: data content, issuerAndSerialNumber, no
				// attribute certificates (RFC 5652 §5.1), as PKCS#7 had it.
				b.AddASN1Int64(1)
				b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) { b.AddBytes(s.digestAlgID) })
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // EncapsulatedContentInfo
					b.AddASN1ObjectIdentifier(oidData)
					b.AddASN1(tagCtx0C, func(b *cryptobyte.Builder) { b.AddASN1OctetString(content) })
				})
				// Always: the client copies them into its signature, where
				// verifiers look for the countersigner.
				b.AddASN1(tagCtx0C, func(b *cryptobyte.Builder) { b.AddBytes(s.certSet) })
				b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) {
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // SignerInfo
						b.AddASN1Int64(1)
						b.AddBytes(s.sid)
						b.AddBytes(s.digestAlgID)
						b.AddASN1(tagCtx0C, func(b *cryptobyte.Builder) { b.AddBytes(signed) })
						b.AddBytes(s.sigAlgID)
						b.AddASN1OctetString(sig)
					})
				})
			})
		})
	})
	return b.Bytes()
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

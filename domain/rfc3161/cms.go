package rfc3161

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

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// SignerInfoParts are the parts of a CMS SignerInfo that stay the same for
// one key, encoded once. Both RFC 3161 tokens and Authenticode
// countersignatures are built from them.
type SignerInfoParts struct {
	// Digest is used for messageDigest and the signature.
	Digest HashAlgorithm
	// DigestAlgorithm and SignatureAlgorithm are DER AlgorithmIdentifiers;
	// SID is the DER IssuerAndSerialNumber of the certificate.
	DigestAlgorithm, SignatureAlgorithm, SID []byte
	// Certificates is the content of certificates [0] IMPLICIT: the
	// certificate, then the chain.
	Certificates []byte

	signer   crypto.Signer
	signHash crypto.Hash
}

// NewSignerInfoParts checks that the certificate matches the key and picks
// the algorithms: SHA-256 (SHA-384 from P-384 up) unless id.Digest names
// another SHA-2, and SHA-512 for Ed25519 (RFC 8419). With legacyRSA an RSA
// signature is identified as rsaEncryption, the hash coming from the
// digest algorithm, as PKCS#7 signers write it; otherwise as
// sha*WithRSAEncryption.
func NewSignerInfoParts(id SigningIdentity, legacyRSA bool) (*SignerInfoParts, error) {
	if id.Signer == nil || id.Certificate == nil {
		return nil, errors.New("signing identity needs a signer and a certificate")
	}
	p := &SignerInfoParts{Digest: id.Digest, signer: id.Signer}
	var sigOID asn1.ObjectIdentifier
	sigNULL := false
	switch pub := id.Signer.Public().(type) {
	case *ecdsa.PublicKey:
		if p.Digest.OID == nil {
			p.Digest = SHA256
			if pub.Curve.Params().BitSize > 256 {
				p.Digest = SHA384
			}
		}
		sigOID = map[crypto.Hash]asn1.ObjectIdentifier{
			crypto.SHA256: oidECDSAWithSHA256, crypto.SHA384: oidECDSAWithSHA384, crypto.SHA512: oidECDSAWithSHA512,
		}[p.Digest.Hash]
		p.signHash = p.Digest.Hash
	case *rsa.PublicKey:
		if p.Digest.OID == nil {
			p.Digest = SHA256
		}
		sigOID = map[crypto.Hash]asn1.ObjectIdentifier{
			crypto.SHA256: oidSHA256WithRSA, crypto.SHA384: oidSHA384WithRSA, crypto.SHA512: oidSHA512WithRSA,
		}[p.Digest.Hash]
		if legacyRSA && sigOID != nil {
			sigOID = oidRSAEncryption
		}
		sigNULL = true
		p.signHash = p.Digest.Hash
	case ed25519.PublicKey:
		p.Digest = SHA512
		sigOID = oidEd25519
	default:
		return nil, fmt.Errorf("unsupported TSA key type %T", pub)
	}
	if sigOID == nil {
		return nil, fmt.Errorf("digest %s is not supported with this key", p.Digest.Name)
	}
	if !bytes.Equal(publicKeyDER(id.Signer.Public()), publicKeyDER(id.Certificate.PublicKey)) {
		return nil, errors.New("the TSA certificate does not match the signing key")
	}
	p.DigestAlgorithm = AlgorithmIdentifier(p.Digest.OID, false)
	p.SignatureAlgorithm = AlgorithmIdentifier(sigOID, sigNULL)
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddBytes(id.Certificate.RawIssuer)
		b.AddASN1BigInt(id.Certificate.SerialNumber)
	})
	sid, err := b.Bytes()
	if err != nil {
		return nil, fmt.Errorf("TSA certificate serial: %w", err)
	}
	p.SID = sid
	for _, c := range append([]*x509.Certificate{id.Certificate}, id.Chain...) {
		p.Certificates = append(p.Certificates, c.Raw...)
	}
	return p, nil
}

// SignAttributes signs the signed attributes: it orders them as DER orders
// a SET OF (by their encodings; OpenSSL re-encodes the set to verify it,
// so unsorted its check would fail), signs the SET's encoding, and
// returns the content of signedAttrs [0] and the signature.
func (p *SignerInfoParts) SignAttributes(rand io.Reader, attrs ...[]byte) (signed, sig []byte, err error) {
	slices.SortFunc(attrs, bytes.Compare)
	signed = slices.Concat(attrs...)
	sb := cryptobyte.NewBuilder(make([]byte, 0, len(signed)+4))
	sb.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) { b.AddBytes(signed) })
	set, err := sb.Bytes()
	if err != nil {
		return nil, nil, err
	}
	if p.signHash == 0 {
		sig, err = p.signer.Sign(rand, set, crypto.Hash(0))
	} else {
		d := p.signHash.New()
		d.Write(set)
		sig, err = p.signer.Sign(rand, d.Sum(nil), p.signHash)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("sign: %w", err)
	}
	return signed, sig, nil
}

// AlgorithmIdentifier encodes an AlgorithmIdentifier, with NULL
// parameters when null is set.
func AlgorithmIdentifier(oid asn1.ObjectIdentifier, null bool) []byte {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1ObjectIdentifier(oid)
		if null {
			b.AddASN1NULL()
		}
	})
	return b.BytesOrPanic()
}

// Attribute encodes a CMS Attribute with one value.
func Attribute(oid asn1.ObjectIdentifier, value func(*cryptobyte.Builder)) []byte {
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

// SignedData encodes a ContentInfo holding SignedData with one SignerInfo:
// content of eContentType, the signed attributes and signature that
// SignAttributes returned, and the certificates when includeCerts is set.
// version is the SignedData version (3 for an RFC 3161 token, 1 for the
// PKCS#7 data content of an Authenticode countersignature); the SignerInfo
// is version 1, identified by issuer and serial.
func (p *SignerInfoParts) SignedData(version int64, eContentType asn1.ObjectIdentifier, content, signed, sig []byte, includeCerts bool) ([]byte, error) {
	// Sized once: a growing builder re-copies everything at every nesting level.
	size := len(content) + len(signed) + len(sig) + len(p.SID) + 2*len(p.DigestAlgorithm) + len(p.SignatureAlgorithm) + 96
	if includeCerts {
		size += len(p.Certificates)
	}
	b := cryptobyte.NewBuilder(make([]byte, 0, size))
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // ContentInfo
		b.AddASN1ObjectIdentifier(oidSignedData)
		b.AddASN1(tagCtx0C, func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // SignedData
				b.AddASN1Int64(version)
				b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) { b.AddBytes(p.DigestAlgorithm) })
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // EncapsulatedContentInfo
					b.AddASN1ObjectIdentifier(eContentType)
					b.AddASN1(tagCtx0C, func(b *cryptobyte.Builder) { b.AddASN1OctetString(content) })
				})
				if includeCerts {
					b.AddASN1(tagCtx0C, func(b *cryptobyte.Builder) { b.AddBytes(p.Certificates) })
				}
				b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) {
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // SignerInfo
						b.AddASN1Int64(1)
						b.AddBytes(p.SID)
						b.AddBytes(p.DigestAlgorithm)
						b.AddASN1(tagCtx0C, func(b *cryptobyte.Builder) { b.AddBytes(signed) })
						b.AddBytes(p.SignatureAlgorithm)
						b.AddASN1OctetString(sig)
					})
				})
			})
		})
	})
	return b.Bytes()
}

// Package rfc3161 parses time-stamp requests and builds time-stamp tokens
// and responses (RFC 3161, RFC 5816, CMS per RFC 5652). It encodes DER by
// hand with cryptobyte: encoding/asn1 drops genTime's fractional seconds.
// It is pure: randomness comes in as an io.Reader, time as values.
package rfc3161

import (
	"crypto"
	"encoding/asn1"

	_ "crypto/sha1"
	_ "crypto/sha256"
	_ "crypto/sha512"

	_ "crypto/sha3"
)

// HashAlgorithm is a message-imprint hash the parser knows.
type HashAlgorithm struct {
	Name string
	OID  asn1.ObjectIdentifier
	Hash crypto.Hash
	Size int
}

var (
	OIDSHA1     = asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}
	OIDSHA256   = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	OIDSHA384   = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 2}
	OIDSHA512   = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 3}
	OIDSHA3_256 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 8}
	OIDSHA3_384 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 9}
	OIDSHA3_512 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 10}

	SHA1     = HashAlgorithm{"sha1", OIDSHA1, crypto.SHA1, 20}
	SHA256   = HashAlgorithm{"sha256", OIDSHA256, crypto.SHA256, 32}
	SHA384   = HashAlgorithm{"sha384", OIDSHA384, crypto.SHA384, 48}
	SHA512   = HashAlgorithm{"sha512", OIDSHA512, crypto.SHA512, 64}
	SHA3_256 = HashAlgorithm{"sha3-256", OIDSHA3_256, crypto.SHA3_256, 32}
	SHA3_384 = HashAlgorithm{"sha3-384", OIDSHA3_384, crypto.SHA3_384, 48}
	SHA3_512 = HashAlgorithm{"sha3-512", OIDSHA3_512, crypto.SHA3_512, 64}
)

// catalog is every hash the parser recognises. SHA-1 is here so that a
// service may allow it; MD5 is not, so it is always badAlg.
var catalog = []HashAlgorithm{SHA1, SHA256, SHA384, SHA512, SHA3_256, SHA3_384, SHA3_512}

// HashByOID finds a catalog hash by OID.
func HashByOID(oid asn1.ObjectIdentifier) (HashAlgorithm, bool) {
	for _, h := range catalog {
		if h.OID.Equal(oid) {
			return h, true
		}
	}
	return HashAlgorithm{}, false
}

// HashByName finds a catalog hash by its name ("sha256", "sha3-512", …).
func HashByName(name string) (HashAlgorithm, bool) {
	for _, h := range catalog {
		if h.Name == name {
			return h, true
		}
	}
	return HashAlgorithm{}, false
}

// DefaultHashes is the allow-list of a service that names none: SHA-2 and
// SHA-3 at 256, 384 and 512 bits.
func DefaultHashes() []HashAlgorithm {
	return []HashAlgorithm{SHA256, SHA384, SHA512, SHA3_256, SHA3_384, SHA3_512}
}

// CMS and PKIX object identifiers.
var (
	oidSignedData      = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 2}
	oidTSTInfo         = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 1, 4}
	oidContentType     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 3}
	oidMessageDigest   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 4}
	oidSigningCertV2   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 2, 47}
	oidSigningCert     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 2, 12}
	oidRSAEncryption   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 1}
	oidSHA256WithRSA   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11}
	oidSHA384WithRSA   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 12}
	oidSHA512WithRSA   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 13}
	oidECDSAWithSHA256 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}
	oidECDSAWithSHA384 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 3}
	oidECDSAWithSHA512 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 4}
	oidEd25519         = asn1.ObjectIdentifier{1, 3, 101, 112}
)

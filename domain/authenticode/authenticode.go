// Package authenticode answers Microsoft's legacy Authenticode time-stamp
// requests, the protocol behind `signtool /t` and `osslsigncode -t`: the
// client posts, in base64, the signature it wants countersigned, and gets
// back, in base64, a PKCS#7 SignedData whose SignerInfo it grafts into its
// own signature as a PKCS#9 countersignature.
//
// Like rfc3161 it encodes DER by hand with cryptobyte and is pure:
// randomness comes in as an io.Reader, time as values.
package authenticode

import (
	"encoding/asn1"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// OIDCounterSignatureType (SPC_TIME_STAMP_REQUEST_OBJID) opens every
// legacy request.
var OIDCounterSignatureType = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 3, 2, 1}

var (
	oidData            = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}
	oidSignedData      = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 2}
	oidContentType     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 3}
	oidMessageDigest   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 4}
	oidSigningTime     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 5}
	oidRSAEncryption   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 1}
	oidSHA256WithRSA   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11}
	oidSHA384WithRSA   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 12}
	oidSHA512WithRSA   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 13}
	oidECDSAWithSHA256 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}
	oidECDSAWithSHA384 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 3}
	oidECDSAWithSHA512 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 4}
	oidEd25519         = asn1.ObjectIdentifier{1, 3, 101, 112}
)

var (
	tagCtx0C = cbasn1.Tag(0).ContextSpecific().Constructed()
	tagCtx1C = cbasn1.Tag(1).ContextSpecific().Constructed()
)

func oidElement(oid asn1.ObjectIdentifier) []byte {
	var b cryptobyte.Builder
	b.AddASN1ObjectIdentifier(oid)
	return b.BytesOrPanic()
}

package authenticode

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/asn1"
	"fmt"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/chronolog/chronolog/domain/rfc3161"
)

// Verified is what Verify established about a response.
type Verified struct {
	// Content is the countersigned signature.
	Content     []byte
	SigningTime time.Time
	// Certificate is the TSA certificate that signed. Its chain is not
	// checked: Certificates holds what the response carries to build one.
	Certificate  *x509.Certificate
	Certificates []*x509.Certificate
	Digest       rfc3161.HashAlgorithm
}

func verifyErr(format string, args ...any) error {
	return fmt.Errorf("authenticode response: "+format, args...)
}

// Verify parses a response DER (a ContentInfo as Sign makes it), checks
// the signature over the signed attributes against the embedded TSA
// certificate, that messageDigest matches the content and that contentType
// is data. Beyond what CMS verifiers check, it insists on what
// interoperability rests on: signed attributes in DER order (OpenSSL
// verifies a re-sorted copy) and the signing time in the form RFC 5652
// prescribes for its year.
func Verify(der []byte) (*Verified, error) {
	in := cryptobyte.String(der)
	var ci, explicit, sd cryptobyte.String
	var oid asn1.ObjectIdentifier
	if !in.ReadASN1(&ci, cbasn1.SEQUENCE) || !in.Empty() || !ci.ReadASN1ObjectIdentifier(&oid) || !oid.Equal(oidSignedData) ||
		!ci.ReadASN1(&explicit, tagCtx0C) || !ci.Empty() || !explicit.ReadASN1(&sd, cbasn1.SEQUENCE) || !explicit.Empty() {
		return nil, verifyErr("not a DER ContentInfo holding SignedData")
	}
	var version int64
	var digestAlgs, encap, eci, content cryptobyte.String
	if !sd.ReadASN1Integer(&version) || version != 1 {
		return nil, verifyErr("SignedData version is not 1")
	}
	if !sd.ReadASN1(&digestAlgs, cbasn1.SET) {
		return nil, verifyErr("SignedData digestAlgorithms is malformed")
	}
	if !sd.ReadASN1(&encap, cbasn1.SEQUENCE) || !encap.ReadASN1ObjectIdentifier(&oid) || !oid.Equal(oidData) {
		return nil, verifyErr("encapsulated content is not data")
	}
	if !encap.ReadASN1(&eci, tagCtx0C) || !encap.Empty() || !eci.ReadASN1(&content, cbasn1.OCTET_STRING) || !eci.Empty() {
		return nil, verifyErr("encapsulated content is not one OCTET STRING")
	}
	v := &Verified{Content: content}
	if sd.PeekASN1Tag(tagCtx0C) {
		var certs cryptobyte.String
		sd.ReadASN1(&certs, tagCtx0C)
		for !certs.Empty() {
			var c cryptobyte.String
			if !certs.ReadASN1Element(&c, cbasn1.SEQUENCE) {
				return nil, verifyErr("certificates are malformed")
			}
			cert, err := x509.ParseCertificate(c)
			if err != nil {
				return nil, verifyErr("certificate: %w", err)
			}
			v.Certificates = append(v.Certificates, cert)
		}
	}
	if sd.PeekASN1Tag(tagCtx1C) {
		var crls cryptobyte.String
		sd.ReadASN1(&crls, tagCtx1C)
	}
	var signerInfos, si cryptobyte.String
	if !sd.ReadASN1(&signerInfos, cbasn1.SET) || !sd.Empty() || !signerInfos.ReadASN1(&si, cbasn1.SEQUENCE) || !signerInfos.Empty() {
		return nil, verifyErr("SignedData must end with exactly one SignerInfo")
	}

	var sid, issuer, serial, digestAlg, attrs, sigAlg, sig cryptobyte.String
	if !si.ReadASN1Integer(&version) || version != 1 || !si.ReadASN1(&sid, cbasn1.SEQUENCE) ||
		!sid.ReadASN1Element(&issuer, cbasn1.SEQUENCE) || !sid.ReadASN1Element(&serial, cbasn1.INTEGER) || !sid.Empty() {
		return nil, verifyErr("SignerInfo must be version 1 and identify its signer by issuer and serial number")
	}
	if !si.ReadASN1Element(&digestAlg, cbasn1.SEQUENCE) {
		return nil, verifyErr("SignerInfo digestAlgorithm is malformed")
	}
	digest, err := digestAlgorithm(digestAlg)
	if err != nil {
		return nil, err
	}
	if !containsElement(digestAlgs, digestAlg) {
		return nil, verifyErr("SignedData digestAlgorithms does not list the signer's %s", digest.Name)
	}
	v.Digest = digest
	if !si.ReadASN1(&attrs, tagCtx0C) {
		return nil, verifyErr("SignerInfo has no signed attributes")
	}
	if !si.ReadASN1(&sigAlg, cbasn1.SEQUENCE) || !sigAlg.ReadASN1ObjectIdentifier(&oid) {
		return nil, verifyErr("SignerInfo signatureAlgorithm is malformed")
	}
	algo, err := signatureAlgorithm(oid, sigAlg, digest)
	if err != nil {
		return nil, err
	}
	if !si.ReadASN1(&sig, cbasn1.OCTET_STRING) {
		return nil, verifyErr("SignerInfo signature is malformed")
	}
	if si.PeekASN1Tag(tagCtx1C) {
		var unsigned cryptobyte.String
		si.ReadASN1(&unsigned, tagCtx1C)
	}
	if !si.Empty() {
		return nil, verifyErr("%d bytes after the SignerInfo signature", len(si))
	}

	for _, c := range v.Certificates {
		if bytes.Equal(c.RawIssuer, issuer) && bytes.Equal(serialElement(c), serial) {
			v.Certificate = c
			break
		}
	}
	if v.Certificate == nil {
		return nil, verifyErr("the signer's certificate is not in the response")
	}

	values, err := signedAttributes(attrs)
	if err != nil {
		return nil, err
	}
	if ct, ok := values[oidContentType.String()]; !ok || !bytes.Equal(ct, oidElement(oidData)) {
		return nil, verifyErr("contentType attribute is not data")
	}
	h := digest.Hash.New()
	h.Write(content)
	var mdb cryptobyte.Builder
	mdb.AddASN1OctetString(h.Sum(nil))
	if md, ok := values[oidMessageDigest.String()]; !ok || !bytes.Equal(md, mdb.BytesOrPanic()) {
		return nil, verifyErr("messageDigest does not match the content")
	}
	st, ok := values[oidSigningTime.String()]
	if !ok {
		return nil, verifyErr("no signingTime attribute")
	}
	if v.SigningTime, err = parseSigningTime(st); err != nil {
		return nil, err
	}

	// The signature covers the attributes re-tagged as the SET OF they are.
	var sb cryptobyte.Builder
	sb.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) { b.AddBytes(attrs) })
	if err := v.Certificate.CheckSignature(algo, sb.BytesOrPanic(), sig); err != nil {
		return nil, verifyErr("signature: %w", err)
	}
	return v, nil
}

// digestAlgorithm accepts SHA-2 with absent or NULL parameters: SHA-1 is
// refused as Go refuses its signatures, SHA-3 because nothing here makes it.
func digestAlgorithm(alg cryptobyte.String) (rfc3161.HashAlgorithm, error) {
	var seq cryptobyte.String
	var oid asn1.ObjectIdentifier
	alg.ReadASN1(&seq, cbasn1.SEQUENCE)
	if !seq.ReadASN1ObjectIdentifier(&oid) || !(seq.Empty() || bytes.Equal(seq, []byte{0x05, 0x00})) {
		return rfc3161.HashAlgorithm{}, verifyErr("SignerInfo digestAlgorithm is malformed")
	}
	h, ok := rfc3161.HashByOID(oid)
	if !ok || (h.Hash != crypto.SHA256 && h.Hash != crypto.SHA384 && h.Hash != crypto.SHA512) {
		return rfc3161.HashAlgorithm{}, verifyErr("digest algorithm %s is not supported", oid)
	}
	return h, nil
}

// signatureAlgorithm maps the SignerInfo signatureAlgorithm to Go's, and
// refuses one whose hash differs from digestAlgorithm: verifiers disagree
// on which of the two to believe.
func signatureAlgorithm(oid asn1.ObjectIdentifier, params cryptobyte.String, digest rfc3161.HashAlgorithm) (x509.SignatureAlgorithm, error) {
	rsaByHash := map[crypto.Hash]x509.SignatureAlgorithm{
		crypto.SHA256: x509.SHA256WithRSA, crypto.SHA384: x509.SHA384WithRSA, crypto.SHA512: x509.SHA512WithRSA,
	}
	for _, a := range []struct {
		oid  asn1.ObjectIdentifier
		x509 x509.SignatureAlgorithm
		hash crypto.Hash
		null bool // RSA: parameters NULL (or, leniently, absent); others: absent
	}{
		{oidRSAEncryption, rsaByHash[digest.Hash], digest.Hash, true},
		{oidSHA256WithRSA, x509.SHA256WithRSA, crypto.SHA256, true},
		{oidSHA384WithRSA, x509.SHA384WithRSA, crypto.SHA384, true},
		{oidSHA512WithRSA, x509.SHA512WithRSA, crypto.SHA512, true},
		{oidECDSAWithSHA256, x509.ECDSAWithSHA256, crypto.SHA256, false},
		{oidECDSAWithSHA384, x509.ECDSAWithSHA384, crypto.SHA384, false},
		{oidECDSAWithSHA512, x509.ECDSAWithSHA512, crypto.SHA512, false},
		{oidEd25519, x509.PureEd25519, crypto.SHA512, false}, // RFC 8419 §3.1
	} {
		if !a.oid.Equal(oid) {
			continue
		}
		if !(params.Empty() || a.null && bytes.Equal(params, []byte{0x05, 0x00})) {
			return 0, verifyErr("signatureAlgorithm %s has unexpected parameters", oid)
		}
		if a.hash != digest.Hash {
			return 0, verifyErr("signatureAlgorithm %s does not match digestAlgorithm %s", oid, digest.Name)
		}
		return a.x509, nil
	}
	return 0, verifyErr("signature algorithm %s is not supported", oid)
}

// signedAttributes returns each attribute's single value by OID, and
// refuses a set out of DER order, since OpenSSL verifies a re-sorted copy.
func signedAttributes(set cryptobyte.String) (map[string][]byte, error) {
	out := map[string][]byte{}
	var prev []byte
	for !set.Empty() {
		var elem, a, vals, val cryptobyte.String
		var oid asn1.ObjectIdentifier
		var tag cbasn1.Tag
		if !set.ReadASN1Element(&elem, cbasn1.SEQUENCE) {
			return nil, verifyErr("a signed attribute is malformed")
		}
		if body := elem; !body.ReadASN1(&a, cbasn1.SEQUENCE) ||
			!a.ReadASN1ObjectIdentifier(&oid) || !a.ReadASN1(&vals, cbasn1.SET) || !a.Empty() {
			return nil, verifyErr("a signed attribute is malformed")
		}
		if !vals.ReadAnyASN1Element(&val, &tag) || !vals.Empty() {
			return nil, verifyErr("signed attribute %s must have one value", oid)
		}
		if _, dup := out[oid.String()]; dup {
			return nil, verifyErr("signed attribute %s appears twice", oid)
		}
		if prev != nil && bytes.Compare(prev, elem) >= 0 {
			return nil, verifyErr("signed attributes are not in DER order")
		}
		prev = elem
		out[oid.String()] = val
	}
	return out, nil
}

// parseSigningTime reads the strict DER form of the time signingTimeElement
// writes, and nothing looser.
func parseSigningTime(elem []byte) (time.Time, error) {
	s := cryptobyte.String(elem)
	var tag cbasn1.Tag
	var body cryptobyte.String
	if !s.ReadAnyASN1(&body, &tag) {
		return time.Time{}, verifyErr("signingTime is malformed")
	}
	var t time.Time
	var err error
	switch tag {
	case cbasn1.UTCTime:
		if len(body) != len(utcTimeLayout) {
			return time.Time{}, verifyErr("signingTime UTCTime %q is not YYMMDDhhmmssZ", body)
		}
		century := "20"
		if body[0] >= '5' {
			century = "19"
		}
		t, err = time.Parse(genTimeLayout, century+string(body))
	case cbasn1.GeneralizedTime:
		if len(body) != len(genTimeLayout) {
			return time.Time{}, verifyErr("signingTime GeneralizedTime %q is not YYYYMMDDhhmmssZ", body)
		}
		t, err = time.Parse(genTimeLayout, string(body))
	default:
		return time.Time{}, verifyErr("signingTime is neither UTCTime nor GeneralizedTime")
	}
	if err != nil {
		return time.Time{}, verifyErr("signingTime %q: %w", body, err)
	}
	if again, _ := signingTimeElement(t); !bytes.Equal(again, elem) {
		return time.Time{}, verifyErr("signingTime %q is not in the form RFC 5652 requires for its year", body)
	}
	return t, nil
}

func containsElement(set cryptobyte.String, want []byte) bool {
	for !set.Empty() {
		var e cryptobyte.String
		var tag cbasn1.Tag
		if !set.ReadAnyASN1Element(&e, &tag) {
			return false
		}
		if bytes.Equal(e, want) {
			return true
		}
	}
	return false
}

func serialElement(c *x509.Certificate) []byte {
	var b cryptobyte.Builder
	b.AddASN1BigInt(c.SerialNumber)
	return b.BytesOrPanic()
}

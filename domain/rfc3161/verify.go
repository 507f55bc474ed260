package rfc3161

import (
	"bytes"
	"crypto/sha1"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// VerifyOptions say what a token is checked against.
type VerifyOptions struct {
	Roots         *x509.CertPool
	Intermediates *x509.CertPool
	// Certificates are candidates for the signer when the token carries none.
	Certificates []*x509.Certificate
	// Request, when set, must match the token's imprint, nonce (byte-exact)
	// and, if it asked for one, policy.
	Request *TimeStampReq
	// Digest, when set, must equal the token's hashed message.
	Digest []byte
}

// VerifiedToken is what a successful verification established.
type VerifiedToken struct {
	TSTInfo *TSTInfo
	Signer  *x509.Certificate
	Chain   []*x509.Certificate
}

// signedToken is the part of a CMS SignedData a verifier needs.
type signedToken struct {
	eContent    []byte
	certs       []*x509.Certificate
	sidIssuer   []byte
	sidSerial   []byte
	digestOID   asn1.ObjectIdentifier
	signedAttrs []byte // the SET OF, re-tagged 0x31 as signed
	sigOID      asn1.ObjectIdentifier
	signature   []byte
}

func parseSignedToken(der []byte) (*signedToken, error) {
	in := cryptobyte.String(der)
	var ci, sd, ctx cryptobyte.String
	var oid asn1.ObjectIdentifier
	if !in.ReadASN1(&ci, cbasn1.SEQUENCE) || !in.Empty() || !ci.ReadASN1ObjectIdentifier(&oid) || !oid.Equal(oidSignedData) ||
		!ci.ReadASN1(&ctx, tagCtx0C) || !ctx.ReadASN1(&sd, cbasn1.SEQUENCE) {
		return nil, errors.New("token is not a CMS ContentInfo with SignedData")
	}
	t := &signedToken{}
	var version int64
	var digestAlgs, encap, eci, signerInfos, si cryptobyte.String
	if !sd.ReadASN1Integer(&version) || !sd.ReadASN1(&digestAlgs, cbasn1.SET) || !sd.ReadASN1(&encap, cbasn1.SEQUENCE) ||
		!encap.ReadASN1ObjectIdentifier(&oid) || !oid.Equal(oidTSTInfo) || !encap.ReadASN1(&eci, tagCtx0C) {
		return nil, errors.New("SignedData does not encapsulate a TSTInfo")
	}
	var content cryptobyte.String
	if !eci.ReadASN1(&content, cbasn1.OCTET_STRING) {
		return nil, errors.New("eContent is not an OCTET STRING")
	}
	t.eContent = content
	if sd.PeekASN1Tag(tagCtx0C) {
		var certs cryptobyte.String
		sd.ReadASN1(&certs, tagCtx0C)
		for !certs.Empty() {
			var c cryptobyte.String
			if !certs.ReadASN1Element(&c, cbasn1.SEQUENCE) {
				return nil, errors.New("certificates are malformed")
			}
			cert, err := x509.ParseCertificate(c)
			if err != nil {
				return nil, fmt.Errorf("token certificate: %w", err)
			}
			t.certs = append(t.certs, cert)
		}
	}
	if sd.PeekASN1Tag(cbasn1.Tag(1).ContextSpecific().Constructed()) {
		var crls cryptobyte.String
		sd.ReadASN1(&crls, cbasn1.Tag(1).ContextSpecific().Constructed())
	}
	if !sd.ReadASN1(&signerInfos, cbasn1.SET) || !signerInfos.ReadASN1(&si, cbasn1.SEQUENCE) || !signerInfos.Empty() {
		return nil, errors.New("token must have exactly one SignerInfo")
	}
	var sid, issuer, serial, alg, attrs, sigAlg cryptobyte.String
	if !si.ReadASN1Integer(&version) || version != 1 || !si.ReadASN1(&sid, cbasn1.SEQUENCE) ||
		!sid.ReadASN1Element(&issuer, cbasn1.SEQUENCE) || !sid.ReadASN1Element(&serial, cbasn1.INTEGER) {
		return nil, errors.New("SignerInfo must identify the signer by issuer and serial number")
	}
	t.sidIssuer, t.sidSerial = issuer, serial
	if !si.ReadASN1(&alg, cbasn1.SEQUENCE) || !alg.ReadASN1ObjectIdentifier(&t.digestOID) {
		return nil, errors.New("SignerInfo digestAlgorithm is malformed")
	}
	if !si.ReadASN1(&attrs, tagCtx0C) {
		return nil, errors.New("SignerInfo has no signed attributes")
	}
	var sb cryptobyte.Builder
	sb.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) { b.AddBytes(attrs) })
	t.signedAttrs = sb.BytesOrPanic()
	var sig cryptobyte.String
	if !si.ReadASN1(&sigAlg, cbasn1.SEQUENCE) || !sigAlg.ReadASN1ObjectIdentifier(&t.sigOID) || !si.ReadASN1(&sig, cbasn1.OCTET_STRING) {
		return nil, errors.New("SignerInfo signature is malformed")
	}
	t.signature = sig
	return t, nil
}

// signedAttributes returns each attribute's single value by OID.
func signedAttributes(set []byte) (map[string][]byte, error) {
	s := cryptobyte.String(set)
	var attrs cryptobyte.String
	s.ReadASN1(&attrs, cbasn1.SET)
	out := map[string][]byte{}
	for !attrs.Empty() {
		var a, vals, v cryptobyte.String
		var oid asn1.ObjectIdentifier
		if !attrs.ReadASN1(&a, cbasn1.SEQUENCE) || !a.ReadASN1ObjectIdentifier(&oid) || !a.ReadASN1(&vals, cbasn1.SET) {
			return nil, errors.New("signed attribute is malformed")
		}
		var tag cbasn1.Tag
		if !vals.ReadAnyASN1Element(&v, &tag) || !vals.Empty() {
			return nil, fmt.Errorf("signed attribute %s must have one value", oid)
		}
		if _, dup := out[oid.String()]; dup {
			return nil, fmt.Errorf("signed attribute %s appears twice", oid)
		}
		out[oid.String()] = v
	}
	return out, nil
}

// VerifyToken checks a token's signature, signed attributes, certificate
// chain (at genTime, for the timeStamping usage) and, as asked, its match
// with a request or digest.
func VerifyToken(token []byte, opts VerifyOptions) (*VerifiedToken, error) {
	t, err := parseSignedToken(token)
	if err != nil {
		return nil, err
	}
	info, err := ParseTSTInfo(t.eContent)
	if err != nil {
		return nil, err
	}
	var signer *x509.Certificate
	for _, c := range append(append([]*x509.Certificate{}, t.certs...), opts.Certificates...) {
		if bytes.Equal(c.RawIssuer, t.sidIssuer) && bytes.Equal(integerElement(c), t.sidSerial) {
			signer = c
			break
		}
	}
	if signer == nil {
		return nil, errors.New("the signer's certificate is neither in the token nor given")
	}
	attrs, err := signedAttributes(t.signedAttrs)
	if err != nil {
		return nil, err
	}
	if ct, ok := attrs[oidContentType.String()]; !ok || !bytes.Equal(ct, mustOID(oidTSTInfo)) {
		return nil, errors.New("contentType attribute is not id-ct-TSTInfo")
	}
	dalg, ok := HashByOID(t.digestOID)
	if !ok {
		return nil, fmt.Errorf("digest algorithm %s is not supported", t.digestOID)
	}
	h := dalg.Hash.New()
	h.Write(t.eContent)
	md, ok := attrs[oidMessageDigest.String()]
	if !ok || !bytes.Equal(md, octetString(h.Sum(nil))) {
		return nil, errors.New("messageDigest does not match the TSTInfo")
	}
	if err := checkSigningCertificate(attrs, signer); err != nil {
		return nil, err
	}
	algo, err := x509Algorithm(t.sigOID, dalg)
	if err != nil {
		return nil, err
	}
	if err := signer.CheckSignature(algo, t.signedAttrs, t.signature); err != nil {
		return nil, fmt.Errorf("signature: %w", err)
	}
	inter := opts.Intermediates
	if inter == nil {
		inter = x509.NewCertPool()
	}
	for _, c := range t.certs {
		inter.AddCert(c)
	}
	chains, err := signer.Verify(x509.VerifyOptions{
		Roots: opts.Roots, Intermediates: inter, CurrentTime: info.GenTime,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageTimeStamping},
	})
	if err != nil {
		return nil, fmt.Errorf("TSA certificate: %w", err)
	}
	mi, err := ParseMessageImprint(info.MessageImprint)
	if err != nil {
		return nil, fmt.Errorf("token imprint: %w", err)
	}
	if q := opts.Request; q != nil {
		if !bytes.Equal(info.MessageImprint, q.MessageImprint.Raw) {
			return nil, errors.New("the token's message imprint differs from the request's")
		}
		if !bytes.Equal(info.Nonce, q.Nonce) {
			return nil, errors.New("the token's nonce differs from the request's")
		}
		if q.ReqPolicy != nil && !q.ReqPolicy.Equal(info.Policy) {
			return nil, errors.New("the token's policy differs from the one requested")
		}
	}
	if opts.Digest != nil && !bytes.Equal(mi.HashedMessage, opts.Digest) {
		return nil, errors.New("the token's hashed message differs from the digest given")
	}
	return &VerifiedToken{TSTInfo: info, Signer: signer, Chain: chains[0]}, nil
}

func checkSigningCertificate(attrs map[string][]byte, signer *x509.Certificate) error {
	if v, ok := attrs[oidSigningCertV2.String()]; ok {
		s := cryptobyte.String(v)
		var scv2, certs, id, hash cryptobyte.String
		if !s.ReadASN1(&scv2, cbasn1.SEQUENCE) || !scv2.ReadASN1(&certs, cbasn1.SEQUENCE) || !certs.ReadASN1(&id, cbasn1.SEQUENCE) {
			return errors.New("signingCertificateV2 is malformed")
		}
		alg := SHA256
		if id.PeekASN1Tag(cbasn1.SEQUENCE) {
			var a cryptobyte.String
			var oid asn1.ObjectIdentifier
			id.ReadASN1(&a, cbasn1.SEQUENCE)
			if !a.ReadASN1ObjectIdentifier(&oid) {
				return errors.New("signingCertificateV2 hash algorithm is malformed")
			}
			if alg, ok = HashByOID(oid); !ok {
				return fmt.Errorf("signingCertificateV2 hash %s is not supported", oid)
			}
		}
		if !id.ReadASN1(&hash, cbasn1.OCTET_STRING) {
			return errors.New("signingCertificateV2 certHash is malformed")
		}
		h := alg.Hash.New()
		h.Write(signer.Raw)
		if !bytes.Equal(hash, h.Sum(nil)) {
			return errors.New("signingCertificateV2 names another certificate")
		}
		return nil
	}
	if v, ok := attrs[oidSigningCert.String()]; ok {
		s := cryptobyte.String(v)
		var sc, certs, id, hash cryptobyte.String
		if !s.ReadASN1(&sc, cbasn1.SEQUENCE) || !sc.ReadASN1(&certs, cbasn1.SEQUENCE) || !certs.ReadASN1(&id, cbasn1.SEQUENCE) || !id.ReadASN1(&hash, cbasn1.OCTET_STRING) {
			return errors.New("signingCertificate is malformed")
		}
		sum := sha1.Sum(signer.Raw)
		if !bytes.Equal(hash, sum[:]) {
			return errors.New("signingCertificate names another certificate")
		}
		return nil
	}
	return errors.New("no signingCertificate(V2) attribute")
}

func x509Algorithm(sig asn1.ObjectIdentifier, digest HashAlgorithm) (x509.SignatureAlgorithm, error) {
	switch {
	case sig.Equal(oidECDSAWithSHA256):
		return x509.ECDSAWithSHA256, nil
	case sig.Equal(oidECDSAWithSHA384):
		return x509.ECDSAWithSHA384, nil
	case sig.Equal(oidECDSAWithSHA512):
		return x509.ECDSAWithSHA512, nil
	case sig.Equal(oidSHA256WithRSA):
		return x509.SHA256WithRSA, nil
	case sig.Equal(oidSHA384WithRSA):
		return x509.SHA384WithRSA, nil
	case sig.Equal(oidSHA512WithRSA):
		return x509.SHA512WithRSA, nil
	case sig.Equal(oidEd25519):
		return x509.PureEd25519, nil
	case sig.Equal(oidRSAEncryption):
		switch digest.Name {
		case "sha256":
			return x509.SHA256WithRSA, nil
		case "sha384":
			return x509.SHA384WithRSA, nil
		case "sha512":
			return x509.SHA512WithRSA, nil
		}
	}
	return 0, fmt.Errorf("signature algorithm %s is not supported", sig)
}

func integerElement(c *x509.Certificate) []byte {
	var b cryptobyte.Builder
	b.AddASN1BigInt(c.SerialNumber)
	return b.BytesOrPanic()
}

func mustOID(oid asn1.ObjectIdentifier) []byte {
	var b cryptobyte.Builder
	b.AddASN1ObjectIdentifier(oid)
	return b.BytesOrPanic()
}

func octetString(v []byte) []byte {
	var b cryptobyte.Builder
	b.AddASN1OctetString(v)
	return b.BytesOrPanic()
}

// TokenTSTInfo returns the TSTInfo a token carries, without checking its
// signature: enough to learn a token's serial before fetching its proof.
func TokenTSTInfo(token []byte) (*TSTInfo, error) {
	t, err := parseSignedToken(token)
	if err != nil {
		return nil, err
	}
	return ParseTSTInfo(t.eContent)
}

// TokenCertificates returns the certificates a token carries (none unless
// its request set certReq), without checking anything.
func TokenCertificates(token []byte) ([]*x509.Certificate, error) {
	t, err := parseSignedToken(token)
	if err != nil {
		return nil, err
	}
	return t.certs, nil
}

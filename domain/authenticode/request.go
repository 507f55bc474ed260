package authenticode

import (
	"bytes"
	"encoding/asn1"
	"encoding/base64"
	"errors"
	"fmt"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// MaxBodySize bounds a request body. The content is one signature, a few
// hundred bytes even for RSA-16384, so this leaves ample room while an
// adapter can refuse anything bigger before reading it all.
const MaxBodySize = 64 << 10

// Request is a parsed legacy time-stamp request.
type Request struct {
	// Content is the signature being timestamped, as sent.
	Content []byte
	// Attributes is the attributes SET as sent, tag included, or nil when
	// absent. Microsoft defines none; they are checked for form only.
	Attributes []byte
	// DER is the decoded request.
	DER []byte
}

// RequestError says what was wrong with a request; the client is at fault.
type RequestError struct{ Reason string }

func (e *RequestError) Error() string { return "authenticode request: " + e.Reason }

func reject(format string, args ...any) *RequestError {
	return &RequestError{Reason: fmt.Sprintf(format, args...)}
}

// ParseRequest decodes the base64 body and the DER. Every error is a
// *RequestError.
func ParseRequest(body []byte) (*Request, error) {
	if len(body) > MaxBodySize {
		return nil, reject("body is %d bytes, more than the %d allowed", len(body), MaxBodySize)
	}
	der, err := decodeBody(body)
	if err != nil {
		return nil, err
	}
	r := &Request{DER: der}
	in := cryptobyte.String(der)
	var req cryptobyte.String
	if err := readElement(&in, &req, cbasn1.SEQUENCE, "TimeStampRequest"); err != nil {
		return nil, err
	}
	if !in.Empty() {
		return nil, reject("%d bytes after the TimeStampRequest", len(in))
	}
	var oid asn1.ObjectIdentifier
	if err := readOID(&req, &oid, "countersignatureType"); err != nil {
		return nil, err
	}
	if !oid.Equal(OIDCounterSignatureType) {
		return nil, reject("countersignatureType is %s, want %s", oid, OIDCounterSignatureType)
	}
	if req.PeekASN1Tag(cbasn1.SET) {
		var attrs cryptobyte.String
		start := req
		if err := readElement(&req, &attrs, cbasn1.SET, "attributes"); err != nil {
			return nil, err
		}
		r.Attributes = start[:len(start)-len(req)]
		for !attrs.Empty() {
			var a, vals cryptobyte.String
			if err := readElement(&attrs, &a, cbasn1.SEQUENCE, "attribute"); err != nil {
				return nil, err
			}
			if err := readOID(&a, &oid, "attribute type"); err != nil {
				return nil, err
			}
			if !a.ReadASN1(&vals, cbasn1.SET) || !a.Empty() {
				return nil, reject("attribute %s does not hold exactly one SET of values", oid)
			}
		}
	}
	var ci, explicit, content cryptobyte.String
	if err := readElement(&req, &ci, cbasn1.SEQUENCE, "content ContentInfo"); err != nil {
		return nil, err
	}
	if !req.Empty() {
		return nil, reject("%d bytes after the content ContentInfo", len(req))
	}
	if err := readOID(&ci, &oid, "contentType"); err != nil {
		return nil, err
	}
	if !oid.Equal(oidData) {
		return nil, reject("contentType is %s, want data (%s)", oid, oidData)
	}
	if err := readElement(&ci, &explicit, tagCtx0C, "content [0] EXPLICIT"); err != nil {
		return nil, err
	}
	if !ci.Empty() {
		return nil, reject("%d bytes after the content [0]", len(ci))
	}
	if err := readElement(&explicit, &content, cbasn1.OCTET_STRING, "content OCTET STRING"); err != nil {
		return nil, err
	}
	if !explicit.Empty() {
		return nil, reject("%d bytes after the content OCTET STRING", len(explicit))
	}
	if len(content) == 0 {
		return nil, reject("content is empty: there is no signature to timestamp")
	}
	r.Content = content
	return r, nil
}

// decodeBody strips what clients add around the base64 — line breaks
// (OpenSSL's base64 BIO puts "\n" every 64 characters, CryptBinaryToString
// "\r\n"), a trailing NUL from a C string, trailing whitespace — and
// decodes it.
func decodeBody(body []byte) ([]byte, error) {
	text := bytes.TrimLeft(bytes.TrimRight(body, "\x00 \t\r\n"), " \t\r\n")
	if len(text) == 0 {
		return nil, reject("body is empty")
	}
	compact := make([]byte, 0, len(text))
	for _, c := range text {
		if c != '\r' && c != '\n' {
			compact = append(compact, c)
		}
	}
	enc := base64.StdEncoding
	if len(compact)%4 != 0 {
		// A client that drops the padding leaves a length that is not a
		// multiple of 4; nothing else can, the alphabet being checked.
		enc = base64.RawStdEncoding
	}
	der := make([]byte, enc.DecodedLen(len(compact)))
	n, err := enc.Decode(der, compact)
	if err != nil {
		if body[0] == 0x30 {
			return nil, reject("body looks like raw DER; the legacy protocol sends it base64-encoded")
		}
		var cie base64.CorruptInputError
		if errors.As(err, &cie) && int(cie) < len(compact) {
			return nil, reject("body is not base64: byte %q at offset %d (line breaks removed)", compact[cie], int64(cie))
		}
		return nil, reject("body is not base64: %v", err)
	}
	if n == 0 {
		return nil, reject("body decodes to nothing")
	}
	return der[:n], nil
}

// readElement reads one element tagged tag, or says why it cannot. The
// explanation needs the bytes as they were: a failed read may have
// consumed them.
func readElement(s, out *cryptobyte.String, tag cbasn1.Tag, what string) error {
	before := *s
	if !s.ReadASN1(out, tag) {
		return reject("%s", whyNotElement(before, tag, what))
	}
	return nil
}

func readOID(s *cryptobyte.String, oid *asn1.ObjectIdentifier, what string) error {
	before := *s
	if s.ReadASN1ObjectIdentifier(oid) {
		return nil
	}
	probe := before
	var v cryptobyte.String
	if probe.ReadASN1(&v, cbasn1.OBJECT_IDENTIFIER) {
		return reject("%s is not a valid OBJECT IDENTIFIER", what)
	}
	return reject("%s", whyNotElement(before, cbasn1.OBJECT_IDENTIFIER, what))
}

// whyNotElement explains why s does not start with a DER element tagged
// want, so that a refused client learns which of its bytes were wrong.
func whyNotElement(s []byte, want cbasn1.Tag, what string) string {
	if len(s) == 0 {
		return what + " is missing"
	}
	if s[0] != byte(want) {
		return fmt.Sprintf("%s has tag 0x%02x, want 0x%02x", what, s[0], byte(want))
	}
	if len(s) < 2 {
		return what + " is cut off before its length"
	}
	claimed, rest := uint64(s[1]), len(s)-2
	if s[1] >= 0x80 {
		n := int(s[1] & 0x7f)
		switch {
		case n == 0:
			return what + " has an indefinite length (BER, not DER)"
		case n > 4:
			return fmt.Sprintf("%s has an absurd %d-byte length field", what, n)
		case len(s) < 2+n:
			return what + " is cut off inside its length"
		}
		claimed = 0
		for _, b := range s[2 : 2+n] {
			claimed = claimed<<8 | uint64(b)
		}
		if s[2] == 0 || claimed < 0x80 {
			return what + " has a length that is not minimally encoded (not DER)"
		}
		rest -= n
	}
	if claimed > uint64(rest) {
		return fmt.Sprintf("%s claims %d bytes but only %d follow", what, claimed, rest)
	}
	return what + " is not valid DER"
}

// NewRequest builds a request body for content, the signature to be
// timestamped: what a client posts, base64 without line breaks.
func NewRequest(content []byte) []byte {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1ObjectIdentifier(OIDCounterSignatureType)
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1ObjectIdentifier(oidData)
			b.AddASN1(tagCtx0C, func(b *cryptobyte.Builder) { b.AddASN1OctetString(content) })
		})
	})
	return EncodeResponse(b.BytesOrPanic())
}

// EncodeResponse returns the HTTP body for a response DER: base64 in the
// standard alphabet without line breaks, which osslsigncode reads as one
// long line (it sets BIO_FLAGS_BASE64_NO_NL when it sees no '\n').
func EncodeResponse(der []byte) []byte {
	out := make([]byte, base64.StdEncoding.EncodedLen(len(der)))
	base64.StdEncoding.Encode(out, der)
	return out
}

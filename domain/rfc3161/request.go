package rfc3161

import (
	"encoding/asn1"
	"math/big"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// MessageImprint is the hash of the data to be stamped.
type MessageImprint struct {
	Algorithm HashAlgorithm
	// ParamsNULL is true when the parameters were an explicit NULL rather
	// than absent; kept so the request re-encodes byte-exact.
	ParamsNULL    bool
	HashedMessage []byte
	// Raw is the DER of the MessageImprint as received: TSTInfo copies it
	// byte-exact, as RFC 3161 §2.4.2 requires.
	Raw []byte
}

// TimeStampReq is a parsed RFC 3161 request.
type TimeStampReq struct {
	Version        int
	MessageImprint MessageImprint
	ReqPolicy      asn1.ObjectIdentifier
	// Nonce is the nonce INTEGER's content octets exactly as received, so
	// that any length and sign is echoed unchanged; nil when absent.
	Nonce   []byte
	CertReq bool
	Raw     []byte
}

var tagExtensions = cbasn1.Tag(0).ContextSpecific().Constructed()

// ParseTimeStampReq parses a DER TimeStampReq strictly. Every error is a
// *Rejection naming the failInfo the client must get.
func ParseTimeStampReq(der []byte) (*TimeStampReq, error) {
	in := cryptobyte.String(der)
	var seq cryptobyte.String
	if !in.ReadASN1(&seq, cbasn1.SEQUENCE) {
		return nil, Reject(BadDataFormat, "not a DER TimeStampReq")
	}
	if !in.Empty() {
		return nil, Reject(BadDataFormat, "%d bytes after the TimeStampReq", len(in))
	}
	r := &TimeStampReq{Raw: der}
	var version int64
	if !seq.ReadASN1Integer(&version) {
		return nil, Reject(BadDataFormat, "version is not a DER INTEGER")
	}
	if version != 1 {
		return nil, Reject(BadRequest, "version %d is not supported: only v1", version)
	}
	r.Version = 1
	mi, err := readMessageImprint(&seq)
	if err != nil {
		return nil, err
	}
	r.MessageImprint = *mi
	if seq.PeekASN1Tag(cbasn1.OBJECT_IDENTIFIER) {
		if !seq.ReadASN1ObjectIdentifier(&r.ReqPolicy) {
			return nil, Reject(BadDataFormat, "reqPolicy is not a DER OBJECT IDENTIFIER")
		}
	}
	if seq.PeekASN1Tag(cbasn1.INTEGER) {
		var n cryptobyte.String
		if !seq.ReadASN1(&n, cbasn1.INTEGER) || !minimalInteger(n) {
			return nil, Reject(BadDataFormat, "nonce is not a DER INTEGER")
		}
		r.Nonce = append([]byte{}, n...)
	}
	if seq.PeekASN1Tag(cbasn1.BOOLEAN) {
		if !seq.ReadASN1Boolean(&r.CertReq) {
			return nil, Reject(BadDataFormat, "certReq is not a DER BOOLEAN")
		}
		if !r.CertReq {
			return nil, Reject(BadDataFormat, "certReq FALSE must be omitted in DER (DEFAULT FALSE)")
		}
	}
	if seq.PeekASN1Tag(tagExtensions) {
		return nil, Reject(UnacceptedExtension, "request extensions are not accepted")
	}
	if !seq.Empty() {
		return nil, Reject(BadDataFormat, "unexpected fields in TimeStampReq")
	}
	return r, nil
}

// ParseMessageImprint parses a DER MessageImprint on its own (as copied in
// a TSTInfo).
func ParseMessageImprint(der []byte) (*MessageImprint, error) {
	s := cryptobyte.String(der)
	mi, err := readMessageImprint(&s)
	if err != nil {
		return nil, err
	}
	if !s.Empty() {
		return nil, Reject(BadDataFormat, "bytes after the MessageImprint")
	}
	return mi, nil
}

func readMessageImprint(s *cryptobyte.String) (*MessageImprint, error) {
	var raw, body, alg cryptobyte.String
	if !s.ReadASN1Element(&raw, cbasn1.SEQUENCE) {
		return nil, Reject(BadDataFormat, "messageImprint is not a DER SEQUENCE")
	}
	body = raw
	var hm cryptobyte.String
	if !body.ReadASN1(&body, cbasn1.SEQUENCE) || !body.ReadASN1(&alg, cbasn1.SEQUENCE) {
		return nil, Reject(BadDataFormat, "hashAlgorithm is not a DER AlgorithmIdentifier")
	}
	mi := &MessageImprint{Raw: append([]byte{}, raw...)}
	var oid asn1.ObjectIdentifier
	if !alg.ReadASN1ObjectIdentifier(&oid) {
		return nil, Reject(BadDataFormat, "hash algorithm OID is not DER")
	}
	if !alg.Empty() {
		var params cryptobyte.String
		var tag cbasn1.Tag
		if !alg.ReadAnyASN1Element(&params, &tag) || tag != cbasn1.NULL || len(params) != 2 || !alg.Empty() {
			return nil, Reject(BadAlg, "hash algorithm parameters must be absent or NULL")
		}
		mi.ParamsNULL = true
	}
	h, ok := HashByOID(oid)
	if !ok {
		return nil, Reject(BadAlg, "hash algorithm %s is not supported", oid)
	}
	mi.Algorithm = h
	if !body.ReadASN1(&hm, cbasn1.OCTET_STRING) || !body.Empty() {
		return nil, Reject(BadDataFormat, "hashedMessage is not a DER OCTET STRING")
	}
	if len(hm) != h.Size {
		return nil, Reject(BadDataFormat, "%s digest is %d bytes, want %d", h.Name, len(hm), h.Size)
	}
	mi.HashedMessage = append([]byte{}, hm...)
	return mi, nil
}

// minimalInteger reports whether content octets are a DER INTEGER.
func minimalInteger(n []byte) bool {
	if len(n) == 0 {
		return false
	}
	if len(n) > 1 && ((n[0] == 0 && n[1]&0x80 == 0) || (n[0] == 0xff && n[1]&0x80 != 0)) {
		return false
	}
	return true
}

// Marshal encodes the request in DER; for a parsed request it reproduces
// Raw exactly.
func (r *TimeStampReq) Marshal() ([]byte, error) {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1Int64(int64(r.Version))
		addMessageImprint(b, &r.MessageImprint)
		if r.ReqPolicy != nil {
			b.AddASN1ObjectIdentifier(r.ReqPolicy)
		}
		if r.Nonce != nil {
			b.AddASN1(cbasn1.INTEGER, func(b *cryptobyte.Builder) { b.AddBytes(r.Nonce) })
		}
		if r.CertReq {
			b.AddASN1Boolean(true)
		}
	})
	return b.Bytes()
}

func addMessageImprint(b *cryptobyte.Builder, mi *MessageImprint) {
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1ObjectIdentifier(mi.Algorithm.OID)
			if mi.ParamsNULL {
				b.AddASN1NULL()
			}
		})
		b.AddASN1OctetString(mi.HashedMessage)
	})
}

// NewTimeStampReq builds a request for a digest (for clients). nonce may
// be nil; a NULL hash parameter is sent, as OpenSSL does.
func NewTimeStampReq(alg HashAlgorithm, digest []byte, nonce *big.Int, policy asn1.ObjectIdentifier, certReq bool) (*TimeStampReq, error) {
	if len(digest) != alg.Size {
		return nil, Reject(BadDataFormat, "%s digest is %d bytes, want %d", alg.Name, len(digest), alg.Size)
	}
	r := &TimeStampReq{
		Version:        1,
		MessageImprint: MessageImprint{Algorithm: alg, ParamsNULL: true, HashedMessage: digest},
		ReqPolicy:      policy,
		CertReq:        certReq,
	}
	if nonce != nil {
		r.Nonce = integerContent(nonce)
	}
	var b cryptobyte.Builder
	addMessageImprint(&b, &r.MessageImprint)
	mi, err := b.Bytes()
	if err != nil {
		return nil, err
	}
	r.MessageImprint.Raw = mi
	raw, err := r.Marshal()
	if err != nil {
		return nil, err
	}
	r.Raw = raw
	return r, nil
}

// integerContent returns the DER content octets of n.
func integerContent(n *big.Int) []byte {
	var b cryptobyte.Builder
	b.AddASN1BigInt(n)
	der := b.BytesOrPanic()
	s := cryptobyte.String(der)
	var c cryptobyte.String
	s.ReadASN1(&c, cbasn1.INTEGER)
	return []byte(c)
}

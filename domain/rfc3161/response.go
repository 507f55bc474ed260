package rfc3161

import (
	"errors"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// PKIStatus of RFC 3161 §2.4.2.
type PKIStatus int

const (
	Granted                PKIStatus = 0
	GrantedWithMods        PKIStatus = 1
	Rejected               PKIStatus = 2
	Waiting                PKIStatus = 3
	RevocationWarning      PKIStatus = 4
	RevocationNotification PKIStatus = 5
)

// GrantedResponse wraps a token in a TimeStampResp with status granted and
// nothing else: never a failInfo on a granted answer.
func GrantedResponse(token []byte) []byte {
	b := cryptobyte.NewBuilder(make([]byte, 0, len(token)+16))
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { b.AddASN1Int64(int64(Granted)) })
		b.AddBytes(token)
	})
	return b.BytesOrPanic()
}

// RejectionResponse answers status rejection with r's client text and failInfo
// as a minimal BIT STRING: only the octets up to the bit, trailing bits
// counted as unused.
func RejectionResponse(r *Rejection) []byte {
	bit := int(r.FailInfo)
	bits := make([]byte, bit/8+1)
	bits[bit/8] = 0x80 >> (bit % 8)
	unused := byte(7 - bit%8)
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1Int64(int64(Rejected))
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1(cbasn1.UTF8String, func(b *cryptobyte.Builder) { b.AddBytes([]byte(r.ClientText())) })
			})
			b.AddASN1(cbasn1.BIT_STRING, func(b *cryptobyte.Builder) {
				b.AddUint8(unused)
				b.AddBytes(bits)
			})
		})
	})
	return b.BytesOrPanic()
}

// TimeStampResp is a parsed answer.
type TimeStampResp struct {
	Status       PKIStatus
	StatusString []string
	// FailInfo is the lowest bit set, nil when absent.
	FailInfo *FailInfo
	// Token is the DER ContentInfo, nil unless one was sent.
	Token []byte
}

// ParseTimeStampResp parses a DER TimeStampResp.
func ParseTimeStampResp(der []byte) (*TimeStampResp, error) {
	in := cryptobyte.String(der)
	var s, si cryptobyte.String
	if !in.ReadASN1(&s, cbasn1.SEQUENCE) || !in.Empty() || !s.ReadASN1(&si, cbasn1.SEQUENCE) {
		return nil, errors.New("not a DER TimeStampResp")
	}
	r := &TimeStampResp{}
	var status int64
	if !si.ReadASN1Integer(&status) {
		return nil, errors.New("PKIStatus is malformed")
	}
	r.Status = PKIStatus(status)
	if si.PeekASN1Tag(cbasn1.SEQUENCE) {
		var texts cryptobyte.String
		si.ReadASN1(&texts, cbasn1.SEQUENCE)
		for !texts.Empty() {
			var t cryptobyte.String
			if !texts.ReadASN1(&t, cbasn1.UTF8String) {
				return nil, errors.New("statusString is malformed")
			}
			r.StatusString = append(r.StatusString, string(t))
		}
	}
	if si.PeekASN1Tag(cbasn1.BIT_STRING) {
		var bs cryptobyte.String
		var unused uint8
		if !si.ReadASN1(&bs, cbasn1.BIT_STRING) || !bs.ReadUint8(&unused) || unused > 7 {
			return nil, errors.New("failInfo is malformed")
		}
		for i, octet := range bs {
			for j := 0; j < 8; j++ {
				if octet&(0x80>>j) != 0 {
					f := FailInfo(i*8 + j)
					r.FailInfo = &f
					break
				}
			}
			if r.FailInfo != nil {
				break
			}
		}
	}
	if !si.Empty() {
		return nil, errors.New("PKIStatusInfo has trailing fields")
	}
	if !s.Empty() {
		var tok cryptobyte.String
		if !s.ReadASN1Element(&tok, cbasn1.SEQUENCE) || !s.Empty() {
			return nil, errors.New("timeStampToken is malformed")
		}
		r.Token = append([]byte{}, tok...)
	}
	return r, nil
}

// The media types of RFC 3161 §3.4: a TimeStampReq and a TimeStampResp as
// HTTP (and the TCP transport's records) name them.
const (
	MediaTypeQuery = "application/timestamp-query"
	MediaTypeReply = "application/timestamp-reply"
)

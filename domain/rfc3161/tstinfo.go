package rfc3161

import (
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// Accuracy is the declared accuracy of genTime (RFC 3161 §2.4.2).
type Accuracy struct{ Seconds, Millis, Micros int }

// Duration is the accuracy as a duration; zero for a nil accuracy.
func (a *Accuracy) Duration() time.Duration {
	if a == nil {
		return 0
	}
	return time.Duration(a.Seconds)*time.Second + time.Duration(a.Millis)*time.Millisecond + time.Duration(a.Micros)*time.Microsecond
}

// TSTInfo is the signed content of a time-stamp token.
type TSTInfo struct {
	Policy asn1.ObjectIdentifier
	// MessageImprint is the DER MessageImprint copied byte-exact from the request.
	MessageImprint []byte
	SerialNumber   *big.Int
	GenTime        time.Time
	Accuracy       *Accuracy
	Ordering       bool
	// Nonce is the request's nonce content octets, echoed byte-exact.
	Nonce []byte
	// TSAName is a DER X.501 Name, encoded as GeneralName directoryName.
	TSAName []byte
}

var (
	tagCtx0  = cbasn1.Tag(0).ContextSpecific()
	tagCtx1  = cbasn1.Tag(1).ContextSpecific()
	tagCtx0C = cbasn1.Tag(0).ContextSpecific().Constructed()
	tagCtx4C = cbasn1.Tag(4).ContextSpecific().Constructed()
)

// Marshal encodes the TSTInfo in DER.
func (t *TSTInfo) Marshal() ([]byte, error) {
	if t.SerialNumber == nil || t.SerialNumber.Sign() <= 0 {
		return nil, errors.New("TSTInfo serial number must be positive")
	}
	if len(integerContent(t.SerialNumber)) > 20 {
		return nil, errors.New("TSTInfo serial number exceeds 20 octets")
	}
	if len(t.Policy) == 0 || len(t.MessageImprint) == 0 {
		return nil, errors.New("TSTInfo needs a policy and a message imprint")
	}
	if a := t.Accuracy; a != nil && (a.Seconds < 0 || a.Millis < 0 || a.Millis > 999 || a.Micros < 0 || a.Micros > 999) {
		return nil, fmt.Errorf("accuracy %+v out of range", *a)
	}
	b := cryptobyte.NewBuilder(make([]byte, 0, len(t.MessageImprint)+len(t.Nonce)+len(t.TSAName)+128))
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1Int64(1)
		b.AddASN1ObjectIdentifier(t.Policy)
		b.AddBytes(t.MessageImprint)
		b.AddASN1BigInt(t.SerialNumber)
		b.AddASN1(cbasn1.GeneralizedTime, func(b *cryptobyte.Builder) {
			b.AddBytes([]byte(FormatGeneralizedTime(t.GenTime)))
		})
		if a := t.Accuracy; a != nil && (a.Seconds|a.Millis|a.Micros) != 0 {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				if a.Seconds != 0 {
					b.AddASN1Int64(int64(a.Seconds))
				}
				if a.Millis != 0 {
					b.AddASN1Int64WithTag(int64(a.Millis), tagCtx0)
				}
				if a.Micros != 0 {
					b.AddASN1Int64WithTag(int64(a.Micros), tagCtx1)
				}
			})
		}
		if t.Ordering {
			b.AddASN1Boolean(true)
		}
		if t.Nonce != nil {
			b.AddASN1(cbasn1.INTEGER, func(b *cryptobyte.Builder) { b.AddBytes(t.Nonce) })
		}
		if t.TSAName != nil {
			b.AddASN1(tagCtx0C, func(b *cryptobyte.Builder) {
				b.AddASN1(tagCtx4C, func(b *cryptobyte.Builder) { b.AddBytes(t.TSAName) })
			})
		}
	})
	return b.Bytes()
}

// ParseTSTInfo parses a DER TSTInfo.
func ParseTSTInfo(der []byte) (*TSTInfo, error) {
	in := cryptobyte.String(der)
	var s cryptobyte.String
	if !in.ReadASN1(&s, cbasn1.SEQUENCE) || !in.Empty() {
		return nil, errors.New("TSTInfo is not a DER SEQUENCE")
	}
	t := &TSTInfo{SerialNumber: new(big.Int)}
	var version int64
	var mi, gt cryptobyte.String
	if !s.ReadASN1Integer(&version) || version != 1 {
		return nil, errors.New("TSTInfo version is not 1")
	}
	if !s.ReadASN1ObjectIdentifier(&t.Policy) || !s.ReadASN1Element(&mi, cbasn1.SEQUENCE) ||
		!s.ReadASN1Integer(t.SerialNumber) || !s.ReadASN1(&gt, cbasn1.GeneralizedTime) {
		return nil, errors.New("TSTInfo fields are malformed")
	}
	t.MessageImprint = append([]byte{}, mi...)
	gen, err := ParseGeneralizedTime(string(gt))
	if err != nil {
		return nil, err
	}
	t.GenTime = gen
	if s.PeekASN1Tag(cbasn1.SEQUENCE) {
		var acc cryptobyte.String
		s.ReadASN1(&acc, cbasn1.SEQUENCE)
		a := &Accuracy{}
		var v int64
		if acc.PeekASN1Tag(cbasn1.INTEGER) && acc.ReadASN1Integer(&v) {
			a.Seconds = int(v)
		}
		if acc.PeekASN1Tag(tagCtx0) && acc.ReadASN1Int64WithTag(&v, tagCtx0) {
			a.Millis = int(v)
		}
		if acc.PeekASN1Tag(tagCtx1) && acc.ReadASN1Int64WithTag(&v, tagCtx1) {
			a.Micros = int(v)
		}
		if !acc.Empty() {
			return nil, errors.New("TSTInfo accuracy is malformed")
		}
		t.Accuracy = a
	}
	if s.PeekASN1Tag(cbasn1.BOOLEAN) && !s.ReadASN1Boolean(&t.Ordering) {
		return nil, errors.New("TSTInfo ordering is malformed")
	}
	if s.PeekASN1Tag(cbasn1.INTEGER) {
		var n cryptobyte.String
		s.ReadASN1(&n, cbasn1.INTEGER)
		t.Nonce = append([]byte{}, n...)
	}
	if s.PeekASN1Tag(tagCtx0C) {
		var gn, name cryptobyte.String
		if !s.ReadASN1(&gn, tagCtx0C) {
			return nil, errors.New("TSTInfo tsa is malformed")
		}
		if gn.ReadASN1(&name, tagCtx4C) {
			t.TSAName = append([]byte{}, name...)
		}
	}
	if s.PeekASN1Tag(cbasn1.Tag(1).ContextSpecific().Constructed()) {
		return nil, errors.New("TSTInfo extensions are not supported")
	}
	if !s.Empty() {
		return nil, errors.New("TSTInfo has trailing fields")
	}
	return t, nil
}

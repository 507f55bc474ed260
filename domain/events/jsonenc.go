package events

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"
)

// The events recorded for every timestamp request are encoded by hand:
// encoding/json's reflection was a tenth of the issuing path's CPU. Each
// encoder writes exactly the bytes json.Marshal writes for the same value
// (HTML-safe escaping included); jsonenc_test.go holds them to it for every
// field, so a field added to a struct but not to its encoder fails there.

// jsonAppender is implemented by event types with a hand-written encoder.
type jsonAppender interface {
	appendJSON(b []byte) ([]byte, error)
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string the way encoding/json does:
// '"', '\\', control characters, '<', '>', '&', U+2028 and U+2029 escaped,
// invalid UTF-8 replaced by U+FFFD.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendTime appends t as time.Time.MarshalJSON does (RFC 3339 with
// nanoseconds, trailing zeros dropped).
func appendTime(b []byte, t time.Time) ([]byte, error) {
	if y := t.Year(); y < 0 || y > 9999 {
		return b, fmt.Errorf("time %v: year outside [0,9999]", t)
	}
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"'), nil
}

// appendBytes appends p as encoding/json does: base64 (standard, padded),
// or null for a nil slice.
func appendBytes(b, p []byte) []byte {
	if p == nil {
		return append(b, "null"...)
	}
	b = append(b, '"')
	b = base64.StdEncoding.AppendEncode(b, p)
	return append(b, '"')
}

// appendField appends `,"name":` (or without the comma for the first field).
func appendField(b []byte, name string, first bool) []byte {
	if !first {
		b = append(b, ',')
	}
	b = append(b, '"')
	b = append(b, name...)
	return append(b, '"', ':')
}

func appendStringField(b []byte, name, v string, first bool) []byte {
	return appendString(appendField(b, name, first), v)
}

func appendBoolField(b []byte, name string, v bool) []byte {
	return strconv.AppendBool(appendField(b, name, false), v)
}

func appendIntField(b []byte, name string, v int64) []byte {
	return strconv.AppendInt(appendField(b, name, false), v, 10)
}

type field struct{ name, v string }

// appendOptional appends the non-empty ones of fields (omitempty strings),
// none of them first in its object.
func appendOptional(b []byte, fields []field) []byte {
	for _, f := range fields {
		if f.v != "" {
			b = appendStringField(b, f.name, f.v, false)
		}
	}
	return b
}

func (m Metadata) appendJSON(b []byte) []byte {
	b = append(b, '{')
	first := true
	for _, f := range [...]struct{ name, v string }{
		{"correlationId", m.CorrelationID}, {"node", m.Node}, {"service", m.Service},
	} {
		if f.v != "" {
			b = appendStringField(b, f.name, f.v, first)
			first = false
		}
	}
	return append(b, '}')
}

func (e TimestampRequested) appendJSON(b []byte) ([]byte, error) {
	b = append(b, '{')
	b = appendStringField(b, "serial", e.Serial, true)
	b = appendStringField(b, "service", e.Service, false)
	b = appendStringField(b, "path", e.Path, false)
	b = appendStringField(b, "method", e.Method, false)
	if e.ContentType != "" {
		b = appendStringField(b, "contentType", e.ContentType, false)
	}
	b = appendStringField(b, "source", e.Source, false)
	b, err := appendTime(appendField(b, "receivedAt", false), e.ReceivedAt)
	if err != nil {
		return nil, err
	}
	b = appendStringField(b, "bodySha256", e.BodySHA256, false)
	b = appendIntField(b, "bodySize", e.BodySize)
	b = appendBoolField(b, "parsed", e.Parsed)
	for _, f := range [...]struct{ name, v string }{
		{"hashAlgorithm", e.HashAlgorithm}, {"hashedMessage", e.HashedMessage},
		{"nonce", e.Nonce}, {"reqPolicy", e.ReqPolicy},
	} {
		if f.v != "" {
			b = appendStringField(b, f.name, f.v, false)
		}
	}
	b = appendBoolField(b, "certReq", e.CertReq)
	b = appendOptional(b, []field{{"transport", e.Transport}, {"protocol", e.Protocol}, {"tlsClient", e.TLSClient}})
	return append(b, '}'), nil
}

func (e FilterDecided) appendJSON(b []byte) ([]byte, error) {
	b = append(b, '{')
	b = appendStringField(b, "serial", e.Serial, true)
	b = appendStringField(b, "filter", e.Filter, false)
	b = appendStringField(b, "verdict", e.Verdict, false)
	if e.Reason != "" {
		b = appendStringField(b, "reason", e.Reason, false)
	}
	if e.FailInfo != "" {
		b = appendStringField(b, "failInfo", e.FailInfo, false)
	}
	return append(b, '}'), nil
}

func (e FilterChainDecided) appendJSON(b []byte) ([]byte, error) {
	b = append(b, '{')
	b = appendStringField(b, "serial", e.Serial, true)
	b = appendOptional(b, []field{{"rule", e.Rule}, {"chain", e.Chain}})
	b = appendField(b, "decisions", false)
	if e.Decisions == nil {
		// As encoding/json has it; the service always records one at least.
		return append(b, "null}"...), nil
	}
	b = append(b, '[')
	for i := range e.Decisions {
		d := &e.Decisions[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '{')
		b = appendStringField(b, "filter", d.Filter, true)
		b = appendStringField(b, "verdict", d.Verdict, false)
		if d.Reason != "" {
			b = appendStringField(b, "reason", d.Reason, false)
		}
		if d.FailInfo != "" {
			b = appendStringField(b, "failInfo", d.FailInfo, false)
		}
		b = append(b, '}')
	}
	return append(b, ']', '}'), nil
}

func (e TimestampIssued) appendJSON(b []byte) ([]byte, error) {
	b = append(b, '{')
	b = appendStringField(b, "serial", e.Serial, true)
	b, err := appendTime(appendField(b, "genTime", false), e.GenTime)
	if err != nil {
		return nil, err
	}
	b = appendStringField(b, "policy", e.Policy, false)
	b = appendStringField(b, "signer", e.Signer, false)
	b = appendBytes(appendField(b, "token", false), e.Token)
	b = appendOptional(b, []field{{"client", e.Client}, {"clientAuth", e.ClientAuth}, {"protocol", e.Protocol}, {"clockSample", e.ClockSample}})
	if e.ClockUncertaintyNs != 0 {
		b = appendIntField(b, "clockUncertaintyNs", e.ClockUncertaintyNs)
	}
	return append(b, '}'), nil
}

func (e TimestampRejected) appendJSON(b []byte) ([]byte, error) {
	b = append(b, '{')
	b = appendStringField(b, "serial", e.Serial, true)
	b = appendStringField(b, "status", e.Status, false)
	b = appendOptional(b, []field{{"failInfo", e.FailInfo}, {"refusal", e.Refusal}})
	b = appendStringField(b, "reason", e.Reason, false)
	b = appendOptional(b, []field{{"client", e.Client}, {"clientAuth", e.ClientAuth}})
	return append(b, '}'), nil
}

package tcpapi

import (
	"bytes"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Flags of RFC 3161 §3.3: the octet after the length.
const (
	// FlagTSAMsg carries a DER TimeStampReq from the client (and, from
	// some TSAs, the DER TimeStampResp: see Config.ReplyWithTSAMsg).
	FlagTSAMsg byte = 0x00
	// FlagPollRep: polling reference (32 bits), time-to-check-back (32 bits).
	FlagPollRep byte = 0x01
	// FlagPollReq: polling reference (32 bits).
	FlagPollReq byte = 0x02
	// FlagNegPollRep: '00'H; no further polling responses.
	FlagNegPollRep byte = 0x03
	// FlagPartialMsgRep: next polling reference, time-to-check-back, DER message.
	FlagPartialMsgRep byte = 0x04
	// FlagFinalMsgRep carries the TSA's final (and here sole) answer, a DER
	// TimeStampResp.
	FlagFinalMsgRep byte = 0x05
	// FlagErrorMsgRep carries a human-readable error message.
	FlagErrorMsgRep byte = 0x06
)

// DefaultPort is the port RFC 3161 §3.3 assigns the socket protocol (IANA
// "pkix-timestamp").
const DefaultPort = 318

// HeaderSize is the length field (4 octets) plus the flag (1 octet).
const HeaderSize = 5

// FlagName names a flag for messages and logs.
func FlagName(flag byte) string {
	switch flag {
	case FlagTSAMsg:
		return "tsaMsg"
	case FlagPollRep:
		return "pollRep"
	case FlagPollReq:
		return "pollReq"
	case FlagNegPollRep:
		return "negPollRep"
	case FlagPartialMsgRep:
		return "partialMsgRep"
	case FlagFinalMsgRep:
		return "finalMsgRep"
	case FlagErrorMsgRep:
		return "errorMsgRep"
	}
	return fmt.Sprintf("flag %#02x", flag)
}

// ErrZeroLength is a frame whose length field is 0: RFC 3161 counts the flag
// octet in the length, so every frame is at least 1 long.
var ErrZeroLength = errors.New("tcpapi: frame length is 0; the length counts the flag octet, so it is at least 1")

// FrameTooLargeError is a frame declaring a value over the reader's limit.
// Nothing after the length field was read.
type FrameTooLargeError struct {
	// Length is the length field as sent (flag octet plus value).
	Length uint32
	// Max is the limit on the value.
	Max int64
}

func (e *FrameTooLargeError) Error() string {
	return fmt.Sprintf("tcpapi: frame declares a %d-octet message, over the %d-octet limit", int64(e.Length)-1, e.Max)
}

// TruncatedError is a frame cut short, by the end of the stream
// (Err is io.ErrUnexpectedEOF) or by a read error such as a deadline (Err
// is that error).
type TruncatedError struct {
	// Declared is the value size the length field announced, or -1 when
	// the length field itself was cut.
	Declared int64
	// Got is how many octets of the frame arrived, header included.
	Got int64
	Err error
}

func (e *TruncatedError) Error() string {
	if e.Declared < 0 {
		return fmt.Sprintf("tcpapi: frame header cut after %d of 4 length octets: %v", e.Got, e.Err)
	}
	return fmt.Sprintf("tcpapi: frame cut after %d of %d octets: %v", e.Got, 4+1+e.Declared, e.Err)
}

func (e *TruncatedError) Unwrap() error { return e.Err }

// initialAlloc bounds what a frame header alone makes ReadFrame allocate:
// a longer value is buffered as it arrives, so a header that lies costs
// no more than the octets actually sent.
const initialAlloc = 64 << 10

// ReadFrame reads one RFC 3161 §3.3 message: a 4-octet big-endian length,
// the flag octet, and length-1 octets of value. max bounds the value.
//
// The stream ending before the first octet is io.EOF, unwrapped: a clean
// close between frames. A length of 0 is ErrZeroLength; a value over max
// is *FrameTooLargeError; neither reads past the length field. A frame cut
// short is *TruncatedError, returned with the flag and the part of the
// value that did arrive. Any other read error before the first octet is
// returned as is.
func ReadFrame(r io.Reader, max int64) (flag byte, value []byte, err error) {
	var hdr [4]byte
	n, err := io.ReadFull(r, hdr[:])
	switch {
	case n == 0 && err != nil:
		return 0, nil, err
	case err != nil:
		return 0, nil, &TruncatedError{Declared: -1, Got: int64(n), Err: err}
	}
	length := uint32(hdr[0])<<24 | uint32(hdr[1])<<16 | uint32(hdr[2])<<8 | uint32(hdr[3])
	if length == 0 {
		return 0, nil, ErrZeroLength
	}
	size := int64(length) - 1
	if max < 0 || size > max {
		return 0, nil, &FrameTooLargeError{Length: length, Max: max}
	}
	var buf bytes.Buffer
	buf.Grow(int(min(int64(length), initialAlloc)))
	got, err := buf.ReadFrom(io.LimitReader(r, int64(length)))
	data := buf.Bytes()
	if len(data) > 0 {
		flag, value = data[0], data[1:]
	}
	if got < int64(length) {
		if err == nil {
			err = io.ErrUnexpectedEOF
		}
		return flag, value, &TruncatedError{Declared: size, Got: 4 + got, Err: err}
	}
	return flag, value, nil
}

// WriteFrame writes one RFC 3161 §3.3 message in a single Write, so that a
// frame never leaves as a lone header segment.
func WriteFrame(w io.Writer, flag byte, value []byte) error {
	if int64(len(value)) >= math.MaxUint32 {
		return fmt.Errorf("tcpapi: a %d-octet value does not fit a frame", len(value))
	}
	_, err := w.Write(AppendFrame(make([]byte, 0, HeaderSize+len(value)), flag, value))
	return err
}

// AppendFrame appends one framed message to dst. The value must be shorter
// than 4 GiB - 1 (WriteFrame checks).
func AppendFrame(dst []byte, flag byte, value []byte) []byte {
	l := uint32(len(value) + 1)
	dst = append(dst, byte(l>>24), byte(l>>16), byte(l>>8), byte(l), flag)
	return append(dst, value...)
}

// ErrorMessage renders the value of an errorMsgRep for a person to read.
// RFC 3161 makes it a "human readable error message" and the TSA here sends
// UTF-8 text; a value that is a DER PKIFreeText (SEQUENCE OF UTF8String,
// as some CMP-derived implementations send) is unwrapped too. Control
// characters are replaced, so that a TSA's text cannot drive a terminal.
func ErrorMessage(value []byte) string {
	var free []string
	if rest, err := asn1.Unmarshal(value, &free); err == nil && len(rest) == 0 && len(free) > 0 {
		return printable(strings.Join(free, "; "))
	}
	return printable(string(value))
}

func printable(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	return strings.TrimSpace(s)
}

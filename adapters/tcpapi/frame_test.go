package tcpapi_test

import (
	"bytes"
	"encoding/asn1"
	"errors"
	"io"
	"os"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/chronolog/chronolog/adapters/tcpapi"
)

func frame(length uint32, rest ...byte) []byte {
	return append([]byte{byte(length >> 24), byte(length >> 16), byte(length >> 8), byte(length)}, rest...)
}

func TestReadFrame(t *testing.T) {
	tests := []struct {
		name  string
		in    []byte
		max   int64
		flag  byte
		value []byte
		// err: nil, io.EOF, ErrZeroLength, or the *TooLarge / *Truncated kinds.
		err       error
		tooLarge  bool
		truncated int64 // Declared of the TruncatedError, when expected
	}{
		{name: "tsaMsg", in: frame(4, 0x00, 'a', 'b', 'c'), max: 16, flag: 0x00, value: []byte("abc")},
		{name: "flag only", in: frame(1, 0x05), max: 16, flag: 0x05, value: []byte{}},
		{name: "value exactly max", in: frame(4, 0x00, 1, 2, 3), max: 3, flag: 0x00, value: []byte{1, 2, 3}},
		{name: "value one over max", in: frame(5, 0x00, 1, 2, 3, 4), max: 3, tooLarge: true},
		{name: "length 0xffffffff", in: frame(0xffffffff), max: 64 << 10, tooLarge: true},
		{name: "HTTP on the port", in: []byte("POST /tsa HTTP/1.1\r\n"), max: 64 << 10, tooLarge: true},
		{name: "length 0", in: frame(0, 0x00, 0x01), max: 16, err: tsapiErrZero},
		{name: "empty stream", in: nil, max: 16, err: io.EOF},
		{name: "header cut after 1", in: []byte{0}, max: 16, truncated: -1},
		{name: "header cut after 3", in: []byte{0, 0, 0}, max: 16, truncated: -1},
		{name: "flag missing", in: frame(3), max: 16, truncated: 2},
		{name: "value cut", in: frame(6, 0x00, 'a', 'b'), max: 16, flag: 0x00, value: []byte("ab"), truncated: 5},
		{name: "second frame left unread", in: append(frame(2, 0x02, 'x'), frame(1, 0x00)...), max: 16, flag: 0x02, value: []byte("x")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// One octet at a time: the reader must not depend on how the
			// stream is cut.
			flag, value, err := tcpapi.ReadFrame(iotest.OneByteReader(bytes.NewReader(tt.in)), tt.max)
			var tl *tcpapi.FrameTooLargeError
			var tr *tcpapi.TruncatedError
			switch {
			case tt.tooLarge:
				if !errors.As(err, &tl) {
					t.Fatalf("err %v, want FrameTooLargeError", err)
				}
				if tl.Max != tt.max {
					t.Fatalf("Max %d", tl.Max)
				}
				return
			case tt.truncated != 0:
				if !errors.As(err, &tr) || tr.Declared != tt.truncated || !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatalf("err %#v, want TruncatedError declaring %d wrapping ErrUnexpectedEOF", err, tt.truncated)
				}
			case tt.err != nil:
				if err != tt.err {
					t.Fatalf("err %v, want %v (unwrapped)", err, tt.err)
				}
				return
			case err != nil:
				t.Fatal(err)
			}
			if flag != tt.flag || !bytes.Equal(value, tt.value) {
				t.Fatalf("flag %#x value %q, want %#x %q", flag, value, tt.flag, tt.value)
			}
		})
	}
}

var tsapiErrZero = tcpapi.ErrZeroLength

// TestReadFrameTimeout: a read error mid-frame is kept, so that a deadline
// can be told from a client that closed.
func TestReadFrameTimeout(t *testing.T) {
	r := io.MultiReader(bytes.NewReader(frame(9, 0x00, 'a')), iotest.ErrReader(os.ErrDeadlineExceeded))
	_, value, err := tcpapi.ReadFrame(r, 64)
	var tr *tcpapi.TruncatedError
	if !errors.As(err, &tr) || !errors.Is(err, os.ErrDeadlineExceeded) || tr.Declared != 8 || tr.Got != 6 || string(value) != "a" {
		t.Fatalf("err %v value %q", err, value)
	}
	// Nothing read at all: the error comes back as is, like io.EOF.
	if _, _, err := tcpapi.ReadFrame(iotest.ErrReader(os.ErrDeadlineExceeded), 64); err != os.ErrDeadlineExceeded {
		t.Fatalf("err %v", err)
	}
}

// TestReadFrameLyingHeader: a header announcing a large value allocates
// as the octets arrive, not what it announces.
func TestReadFrameLyingHeader(t *testing.T) {
	in := frame(1<<30, 0x00, 'x')
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range 10 {
		if _, _, err := tcpapi.ReadFrame(bytes.NewReader(in), 1<<30); err == nil {
			t.Fatal("a cut frame was accepted")
		}
	}
	runtime.ReadMemStats(&after)
	if per := (after.TotalAlloc - before.TotalAlloc) / 10; per > 1<<20 {
		t.Fatalf("%d bytes allocated per lying header", per)
	}
}

func TestWriteFrame(t *testing.T) {
	tests := []struct {
		flag  byte
		value []byte
		want  []byte
	}{
		{0x05, []byte{0x30, 0x03, 0x02, 0x01, 0x00}, frame(6, 0x05, 0x30, 0x03, 0x02, 0x01, 0x00)},
		{0x06, nil, frame(1, 0x06)},
		{0x00, bytes.Repeat([]byte{7}, 300), append(frame(301, 0x00), bytes.Repeat([]byte{7}, 300)...)},
	}
	for _, tt := range tests {
		var w countingWriter
		if err := tcpapi.WriteFrame(&w, tt.flag, tt.value); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(w.Bytes(), tt.want) {
			t.Fatalf("wrote % x, want % x", w.Bytes(), tt.want)
		}
		if w.writes != 1 {
			t.Fatalf("%d writes for one frame", w.writes)
		}
		flag, value, err := tcpapi.ReadFrame(bytes.NewReader(w.Bytes()), int64(len(tt.value)))
		if err != nil || flag != tt.flag || !bytes.Equal(value, tt.value) {
			t.Fatalf("round trip: %#x %q %v", flag, value, err)
		}
	}
}

type countingWriter struct {
	bytes.Buffer
	writes int
}

func (w *countingWriter) Write(p []byte) (int, error) { w.writes++; return w.Buffer.Write(p) }

func TestErrorMessage(t *testing.T) {
	free, _ := asn1.Marshal([]string{"first", "second"})
	tests := []struct {
		in   []byte
		want string
	}{
		{[]byte("unsupported flag 0x07"), "unsupported flag 0x07"},
		{free, "first; second"},
		{[]byte("bell\x07 and\nnewline\x1b[31m"), "bell  and newline [31m"},
		{[]byte{0xff, 'o', 'k'}, "\uFFFDok"},
		{nil, ""},
	}
	for _, tt := range tests {
		if got := tcpapi.ErrorMessage(tt.in); got != tt.want {
			t.Errorf("ErrorMessage(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestFlagName(t *testing.T) {
	if tcpapi.FlagName(tcpapi.FlagFinalMsgRep) != "finalMsgRep" || !strings.Contains(tcpapi.FlagName(0x42), "0x42") {
		t.Fatal(tcpapi.FlagName(0x42))
	}
}

// FuzzReadFrame: whatever arrives, ReadFrame never reads past its frame,
// never returns a value over the limit, and a whole frame it accepts
// writes back to the same octets.
func FuzzReadFrame(f *testing.F) {
	f.Add(frame(4, 0x00, 'a', 'b', 'c'), int64(16))
	f.Add(frame(0), int64(16))
	f.Add(frame(0xffffffff, 0), int64(1<<16))
	f.Add([]byte{0, 0}, int64(16))
	f.Add(append(frame(2, 0x06, 'x'), frame(1, 0x05)...), int64(1))
	f.Add([]byte("POST /tsa HTTP/1.1\r\n\r\n"), int64(64<<10))
	f.Fuzz(func(t *testing.T, in []byte, max int64) {
		if max < 0 {
			max = -max
		}
		max %= 1 << 20
		r := bytes.NewReader(in)
		flag, value, err := tcpapi.ReadFrame(r, max)
		consumed := int64(len(in)) - int64(r.Len())
		if int64(len(value)) > max {
			t.Fatalf("value of %d octets over the %d limit", len(value), max)
		}
		var tl *tcpapi.FrameTooLargeError
		var tr *tcpapi.TruncatedError
		switch {
		case err == nil:
			if consumed != int64(tcpapi.HeaderSize+len(value)) {
				t.Fatalf("consumed %d octets for a %d-octet value", consumed, len(value))
			}
			var out bytes.Buffer
			if err := tcpapi.WriteFrame(&out, flag, value); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out.Bytes(), in[:consumed]) {
				t.Fatalf("round trip % x, read % x", out.Bytes(), in[:consumed])
			}
		case err == io.EOF:
			if len(in) != 0 {
				t.Fatalf("io.EOF with %d octets in", len(in))
			}
		case errors.Is(err, tcpapi.ErrZeroLength), errors.As(err, &tl):
			if consumed != 4 || len(value) != 0 {
				t.Fatalf("read %d octets past a refused header", consumed-4)
			}
		case errors.As(err, &tr):
			if consumed != int64(len(in)) || tr.Got != consumed || !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("truncated after %d of %d octets: %v", consumed, len(in), err)
			}
		default:
			t.Fatalf("unexpected error %v", err)
		}
	})
}

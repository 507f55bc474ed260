package bus

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/chronolog/chronolog/domain/eventstore"
)

func rec(pos uint64, stream string, rev uint64, typ, payload string) eventstore.RecordedEvent {
	return eventstore.RecordedEvent{Position: pos, Stream: stream, Revision: rev,
		ID: fmt.Sprintf("01938d2e-6c4b-7e2a-9f1d-%012x", pos), Type: typ, Payload: []byte(payload)}
}

// request is a TSA request's four events in one stream.
func request(first uint64, serial string) []eventstore.RecordedEvent {
	s := "tsr-" + serial
	return []eventstore.RecordedEvent{
		rec(first, s, 0, "TimestampRequested.v1", `{"type":"TimestampRequested.v1","data":{}}`),
		rec(first+1, s, 1, "FilterDecided.v1", `{"type":"FilterDecided.v1","data":{}}`),
		rec(first+2, s, 2, "FilterDecided.v1", `{"type":"FilterDecided.v1","data":{}}`),
		rec(first+3, s, 3, "TimestampIssued.v1", `{"type":"TimestampIssued.v1","data":{"token":"MIIK"}}`),
	}
}

func sampleBatches() []Batch {
	return []Batch{
		{After: 0, Events: []eventstore.RecordedEvent{rec(1, "s", 0, "A.v1", "{}")}},
		{After: 7, Events: append(request(8, "01"), request(12, "02")...)},
		// Positions need not be consecutive (other stores' are not), only
		// growing; streams may come back; an empty payload or stream is kept.
		{After: 1 << 40, Events: []eventstore.RecordedEvent{
			rec(1<<40+3, "a", 9, "B.v2", ""),
			rec(1<<40+4, "b", 0, "A.v1", "x"),
			rec(1<<41, "a", 10, "B.v2", "y"),
			rec(1<<41+1, "", 0, "C.v10", "z"),
			rec(^uint64(0), "", 1, "C.v10", "z"),
		}},
	}
}

func TestBatchRoundTrip(t *testing.T) {
	for i, b := range sampleBatches() {
		enc, err := AppendBatch(nil, b)
		if err != nil {
			t.Fatalf("batch %d: %v", i, err)
		}
		got, err := DecodeBatch(enc)
		if err != nil {
			t.Fatalf("batch %d: decode: %v", i, err)
		}
		if !reflect.DeepEqual(normalise(got), normalise(b)) {
			t.Fatalf("batch %d: got %+v, want %+v", i, got, b)
		}
		msg, err := NewMessage(b)
		if err != nil {
			t.Fatal(err)
		}
		got, err = DecodeMessage(msg)
		if err != nil || !reflect.DeepEqual(normalise(got), normalise(b)) {
			t.Fatalf("batch %d: message round trip: %v", i, err)
		}
	}
}

// normalise makes empty payloads comparable: nil and empty are one.
func normalise(b Batch) Batch {
	out := Batch{After: b.After}
	for _, e := range b.Events {
		if len(e.Payload) == 0 {
			e.Payload = []byte{}
		}
		out.Events = append(out.Events, e)
	}
	return out
}

func TestBatchIsCompact(t *testing.T) {
	b := Batch{After: 100}
	for i := range 64 {
		b.Events = append(b.Events, request(101+4*uint64(i), fmt.Sprintf("%032x", i))...)
	}
	enc, err := AppendBatch(nil, b)
	if err != nil {
		t.Fatal(err)
	}
	raw := 0
	for _, e := range b.Events {
		raw += len(e.Stream) + len(e.ID) + len(e.Payload)
	}
	// Types are listed once and a stream is written once per request, so
	// the framing costs fewer octets than the strings it saves.
	if len(enc) > raw {
		t.Fatalf("%d events: %d octets encoded, %d of strings and payloads", len(b.Events), len(enc), raw)
	}
}

func TestMessageMetadata(t *testing.T) {
	msg, err := NewMessage(Batch{After: 7, Events: request(8, "01")})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		MetaEncoding:   EncodingBatchV1,
		MetaEventTypes: "TimestampRequested.v1,FilterDecided.v1,TimestampIssued.v1",
		MetaAfter:      "7", MetaFirst: "8", MetaLast: "11", MetaCount: "4",
	}
	for k, v := range want {
		if got := msg.Metadata.Get(k); got != v {
			t.Errorf("metadata %s = %q, want %q", k, got, v)
		}
	}
	if msg.UUID != "events-8-11" {
		t.Errorf("uuid %q", msg.UUID)
	}
	// The metadata must say what the payload holds.
	msg.Metadata.Set(MetaEventTypes, "TimestampIssued.v1")
	if _, err := DecodeMessage(msg); !errors.Is(err, ErrMalformed) {
		t.Fatalf("mismatched metadata: %v", err)
	}
}

func TestEncodeRefuses(t *testing.T) {
	for name, b := range map[string]Batch{
		"empty":            {After: 3},
		"not after":        {After: 3, Events: []eventstore.RecordedEvent{rec(3, "s", 0, "A.v1", "")}},
		"out of order":     {Events: []eventstore.RecordedEvent{rec(2, "s", 0, "A.v1", ""), rec(1, "s", 1, "A.v1", "")}},
		"go type name":     {Events: []eventstore.RecordedEvent{rec(1, "s", 0, "events.TimestampIssued", "")}},
		"unversioned name": {Events: []eventstore.RecordedEvent{rec(1, "s", 0, "TimestampIssued", "")}},
		"comma in name":    {Events: []eventstore.RecordedEvent{rec(1, "s", 0, "A,B.v1", "")}},
	} {
		if _, err := AppendBatch(nil, b); err == nil {
			t.Errorf("%s: encoded", name)
		}
	}
}

func TestDecodeRefusesNonCanonical(t *testing.T) {
	good, err := AppendBatch(nil, Batch{After: 1, Events: []eventstore.RecordedEvent{
		{Position: 2, Stream: "s", Revision: 0, ID: "id", Type: "A.v1", Payload: []byte("{}")},
		{Position: 3, Stream: "s", Revision: 1, ID: "id", Type: "B.v1", Payload: []byte("{}")}}})
	if err != nil {
		t.Fatal(err)
	}
	// hand builds an encoding field by field.
	hand := func(fields ...any) []byte {
		b := []byte(magic)
		for _, f := range fields {
			switch f := f.(type) {
			case int:
				b = binary.AppendUvarint(b, uint64(f))
			case string:
				b = appendBytes(b, f)
			case []byte:
				b = append(b, f...)
			}
		}
		return b
	}
	ev := func(gap, typ, rev int, stream string) []any {
		s := []any{gap, typ, rev}
		if stream == "=" {
			s = append(s, 0)
		} else {
			s = append(s, len(stream)+1, []byte(stream))
		}
		return append(s, "id", "{}")
	}
	cat := func(parts ...[]any) []any {
		var out []any
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	if h := hand(cat([]any{1, 2, "A.v1", "B.v1", 2}, ev(0, 0, 0, "s"), ev(0, 1, 1, "="))...); !bytes.Equal(h, good) {
		t.Fatalf("hand encoding %x, AppendBatch's %x", h, good)
	}
	for name, p := range map[string][]byte{
		"bad magic":            append([]byte("CLB\x02"), good[4:]...),
		"truncated":            good[:len(good)-1],
		"trailing":             append(bytes.Clone(good), 0),
		"non-minimal varint":   append(append([]byte(magic), 0x81, 0x00), good[5:]...),
		"no events":            hand(0, 1, "A.v1", 0),
		"unused type":          hand(cat([]any{1, 2, "A.v1", "B.v1", 1}, ev(0, 0, 0, "s"))...),
		"types out of order":   hand(cat([]any{1, 2, "A.v1", "B.v1", 2}, ev(0, 1, 0, "s"), ev(0, 0, 1, "="))...),
		"duplicate type":       hand(cat([]any{1, 2, "A.v1", "A.v1", 2}, ev(0, 0, 0, "s"), ev(0, 1, 1, "="))...),
		"unversioned type":     hand(cat([]any{1, 1, "A", 1}, ev(0, 0, 0, "s"))...),
		"first stream elided":  hand(cat([]any{1, 1, "A.v1", 1}, ev(0, 0, 0, "="))...),
		"stream repeated":      hand(cat([]any{1, 1, "A.v1", 2}, ev(0, 0, 0, "s"), ev(0, 0, 1, "s"))...),
		"position overflow":    hand(cat([]any{1, 1, "A.v1", 1}, []any{binary.AppendUvarint(nil, ^uint64(0)-1)}, ev(0, 0, 0, "s")[1:])...),
		"huge event count":     hand(1, 1, "A.v1", 1<<40),
		"huge payload":         hand(cat([]any{1, 1, "A.v1", 1}, ev(0, 0, 0, "s")[:5], []any{"id", 1 << 30})...),
		"type index too large": hand(cat([]any{1, 1, "A.v1", 1}, ev(0, 5, 0, "s"))...),
	} {
		if _, err := DecodeBatch(p); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// FuzzDecodeBatch: whatever decodes re-encodes to the very same octets
// (the encoding is canonical), and holds a valid batch.
func FuzzDecodeBatch(f *testing.F) {
	for _, b := range sampleBatches() {
		enc, err := AppendBatch(nil, b)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(enc)
	}
	f.Add([]byte(magic))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, p []byte) {
		b, err := DecodeBatch(p)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error not ErrMalformed: %v", err)
			}
			return
		}
		if len(b.Events) == 0 {
			t.Fatal("decoded an empty batch")
		}
		prev := b.After
		for _, e := range b.Events {
			if e.Position <= prev {
				t.Fatalf("position %d after %d", e.Position, prev)
			}
			prev = e.Position
			if err := CheckWireName(e.Type); err != nil {
				t.Fatal(err)
			}
		}
		again, err := AppendBatch(nil, b)
		if err != nil {
			t.Fatalf("decoded batch does not encode: %v", err)
		}
		if !bytes.Equal(again, p) {
			t.Fatalf("not canonical:\n in  %x\n out %x", p, again)
		}
	})
}

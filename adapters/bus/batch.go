package bus

import (
	"encoding/binary"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/chronolog/chronolog/domain/eventstore"
)

// Batch is what one message carries: committed events in commit order,
// every one with a position in (After, Last], none left out. A handler
// that has applied up to After (or further) can take it; one whose
// checkpoint is below After has missed a batch and must not.
type Batch struct {
	// After is the position of the event before the batch's first.
	After  uint64
	Events []eventstore.RecordedEvent
}

// First is the position of the batch's first event.
func (b Batch) First() uint64 { return b.Events[0].Position }

// Last is the position of the batch's last event.
func (b Batch) Last() uint64 { return b.Events[len(b.Events)-1].Position }

// Types lists the batch's distinct event types in order of first use.
func (b Batch) Types() []string {
	var out []string
	for _, e := range b.Events {
		if !containsString(out, e.Type) {
			out = append(out, e.Type)
		}
	}
	return out
}

func containsString(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// Metadata keys of a batch message. The event types are the explicit,
// versioned wire names the events were recorded under
// ("TimestampIssued.v1"), never Go type names: a consumer in another
// language, or a router filtering on them, reads them without decoding.
const (
	// MetaEncoding names the payload's encoding: EncodingBatchV1.
	MetaEncoding = "chronolog_encoding"
	// MetaEventTypes is the batch's distinct wire names, comma-separated,
	// in order of first use.
	MetaEventTypes = "chronolog_event_types"
	// MetaAfter, MetaFirst and MetaLast are decimal positions; MetaCount
	// the number of events.
	MetaAfter = "chronolog_after"
	MetaFirst = "chronolog_first_position"
	MetaLast  = "chronolog_last_position"
	MetaCount = "chronolog_count"
)

// EncodingBatchV1 is the binary batch encoding AppendBatch writes.
const EncodingBatchV1 = "chronolog-batch.v1"

// wireName is an explicit, versioned event name: "TimestampIssued.v1".
var wireName = regexp.MustCompile(`^[A-Z][A-Za-z0-9]*\.v[1-9][0-9]{0,8}$`)

const maxTypeLen = 128

// CheckWireName reports whether t is an explicit, versioned wire name.
func CheckWireName(t string) error {
	if len(t) > maxTypeLen || !wireName.MatchString(t) {
		return fmt.Errorf("bus: event type %.140q is not a versioned wire name like TimestampIssued.v1", t)
	}
	return nil
}

// ErrMalformed is matched by every error DecodeBatch returns.
var ErrMalformed = errors.New("bus: malformed batch")

// magic starts every encoded batch: the format's name and version.
const magic = "CLB\x01"

// AppendBatch appends b's encoding to dst. The encoding is canonical (one
// batch has exactly one encoding) and compact:
//
//	"CLB\x01"  uvarint after
//	uvarint ntypes, then each type: uvarint len, bytes (in order of first use)
//	uvarint nevents, then each event:
//	  uvarint position-previous-1   (previous is after for the first event)
//	  uvarint type index
//	  uvarint revision
//	  uvarint 0 for the previous event's stream, or len+1, then bytes
//	  uvarint len, id bytes
//	  uvarint len, payload bytes
//
// A batch holds at least one event; positions grow strictly from after;
// types are versioned wire names.
func AppendBatch(dst []byte, b Batch) ([]byte, error) {
	if len(b.Events) == 0 {
		return dst, errors.New("bus: empty batch")
	}
	types := b.Types()
	size := len(magic) + 20
	for _, t := range types {
		if err := CheckWireName(t); err != nil {
			return dst, err
		}
		size += len(t) + 1
	}
	prev := b.After
	for i, e := range b.Events {
		if e.Position <= prev {
			return dst, fmt.Errorf("bus: event %d at position %d does not follow %d", i, e.Position, prev)
		}
		prev = e.Position
		size += 40 + len(e.Stream) + len(e.ID) + len(e.Payload)
	}
	if cap(dst)-len(dst) < size {
		dst = append(make([]byte, 0, len(dst)+size), dst...)
	}
	dst = append(dst, magic...)
	dst = binary.AppendUvarint(dst, b.After)
	dst = binary.AppendUvarint(dst, uint64(len(types)))
	for _, t := range types {
		dst = appendBytes(dst, t)
	}
	dst = binary.AppendUvarint(dst, uint64(len(b.Events)))
	prev = b.After
	for i, e := range b.Events {
		dst = binary.AppendUvarint(dst, e.Position-prev-1)
		prev = e.Position
		ti := 0
		for types[ti] != e.Type {
			ti++
		}
		dst = binary.AppendUvarint(dst, uint64(ti))
		dst = binary.AppendUvarint(dst, e.Revision)
		if i > 0 && e.Stream == b.Events[i-1].Stream {
			dst = append(dst, 0)
		} else {
			dst = binary.AppendUvarint(dst, uint64(len(e.Stream))+1)
			dst = append(dst, e.Stream...)
		}
		dst = appendBytes(dst, e.ID)
		dst = appendBytes(dst, e.Payload)
	}
	return dst, nil
}

func appendBytes[S string | []byte](dst []byte, s S) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// minEventLen is the fewest octets an encoded event takes: six uvarints.
const minEventLen = 6

// DecodeBatch decodes what AppendBatch wrote, and refuses anything else,
// including any other encoding of the same batch. The events' payloads
// alias p: p must not change while they are in use.
func DecodeBatch(p []byte) (Batch, error) {
	d := decoder{p: p}
	if len(p) < len(magic) || string(p[:len(magic)]) != magic {
		return Batch{}, fmt.Errorf("%w: not a %s batch", ErrMalformed, EncodingBatchV1)
	}
	d.off = len(magic)
	var b Batch
	b.After = d.uvarint("after")
	nt := d.count("type count", 2)
	types := make([]string, 0, nt)
	for range nt {
		t := string(d.bytes("type"))
		if d.err != nil {
			break
		}
		if err := CheckWireName(t); err != nil {
			d.fail("%v", err)
			break
		}
		if containsString(types, t) {
			d.fail("type %q listed twice", t)
			break
		}
		types = append(types, t)
	}
	n := d.count("event count", minEventLen)
	if d.err == nil && n == 0 {
		d.fail("no events")
	}
	if d.err != nil {
		return Batch{}, d.err
	}
	b.Events = make([]eventstore.RecordedEvent, 0, n)
	prev, used := b.After, 0
	for i := range n {
		var e eventstore.RecordedEvent
		gap := d.uvarint("position")
		if d.err == nil && gap >= ^prev {
			d.fail("event %d: position overflows", i)
		}
		e.Position = prev + gap + 1
		prev = e.Position
		ti := d.uvarint("type index")
		switch {
		case d.err != nil:
		case ti < uint64(used):
		case ti == uint64(used) && used < len(types):
			used++
		default:
			d.fail("event %d: type index %d out of order or range", i, ti)
		}
		if d.err == nil {
			e.Type = types[ti]
		}
		e.Revision = d.uvarint("revision")
		switch sl := d.uvarint("stream"); {
		case d.err != nil:
		case sl == 0:
			if i == 0 {
				d.fail("event 0 refers to a previous stream")
			} else {
				e.Stream = b.Events[i-1].Stream
			}
		default:
			e.Stream = string(d.take(sl-1, "stream"))
			if d.err == nil && i > 0 && e.Stream == b.Events[i-1].Stream {
				d.fail("event %d repeats the previous stream in full", i)
			}
		}
		e.ID = string(d.bytes("id"))
		e.Payload = d.bytes("payload")
		if d.err != nil {
			return Batch{}, d.err
		}
		b.Events = append(b.Events, e)
	}
	if used != len(types) {
		d.fail("%d types listed, %d used", len(types), used)
	}
	if d.err == nil && d.off != len(p) {
		d.fail("%d trailing octets", len(p)-d.off)
	}
	if d.err != nil {
		return Batch{}, d.err
	}
	return b, nil
}

type decoder struct {
	p   []byte
	off int
	err error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s (at octet %d)", ErrMalformed, fmt.Sprintf(format, args...), d.off)
	}
}

// uvarint reads a minimally encoded uvarint.
func (d *decoder) uvarint(what string) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.p[d.off:])
	switch {
	case n == 0:
		d.fail("%s: truncated", what)
		return 0
	case n < 0:
		d.fail("%s: overflows 64 bits", what)
		return 0
	case n > 1 && d.p[d.off+n-1] == 0:
		d.fail("%s: not minimally encoded", what)
		return 0
	}
	d.off += n
	return v
}

// count reads a number of items of at least min octets each, bounded by
// what is left, so that a forged count cannot make the decoder allocate.
func (d *decoder) count(what string, min int) int {
	v := d.uvarint(what)
	if d.err == nil && v > uint64((len(d.p)-d.off)/min) {
		d.fail("%s %d exceeds what is left", what, v)
		return 0
	}
	return int(v)
}

func (d *decoder) take(n uint64, what string) []byte {
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.p)-d.off) {
		d.fail("%s: %d octets, %d left", what, n, len(d.p)-d.off)
		return nil
	}
	out := d.p[d.off : d.off+int(n) : d.off+int(n)]
	d.off += int(n)
	return out
}

func (d *decoder) bytes(what string) []byte { return d.take(d.uvarint(what+" length"), what) }

// NewMessage encodes b as a watermill message: the encoded batch as
// payload, its wire names and positions in the metadata. Its UUID names
// its positions, so that a batch delivered twice is recognisable.
func NewMessage(b Batch) (*message.Message, error) {
	p, err := AppendBatch(nil, b)
	if err != nil {
		return nil, err
	}
	msg := message.NewMessage(fmt.Sprintf("events-%d-%d", b.First(), b.Last()), p)
	msg.Metadata.Set(MetaEncoding, EncodingBatchV1)
	msg.Metadata.Set(MetaEventTypes, strings.Join(b.Types(), ","))
	msg.Metadata.Set(MetaAfter, strconv.FormatUint(b.After, 10))
	msg.Metadata.Set(MetaFirst, strconv.FormatUint(b.First(), 10))
	msg.Metadata.Set(MetaLast, strconv.FormatUint(b.Last(), 10))
	msg.Metadata.Set(MetaCount, strconv.Itoa(len(b.Events)))
	return msg, nil
}

// DecodeMessage decodes a message NewMessage made and checks that its
// metadata says what its payload holds.
func DecodeMessage(msg *message.Message) (Batch, error) {
	if enc := msg.Metadata.Get(MetaEncoding); enc != EncodingBatchV1 {
		return Batch{}, fmt.Errorf("%w: message %s: encoding %q, want %q", ErrMalformed, msg.UUID, enc, EncodingBatchV1)
	}
	b, err := DecodeBatch(msg.Payload)
	if err != nil {
		return Batch{}, fmt.Errorf("message %s: %w", msg.UUID, err)
	}
	for _, c := range []struct {
		key, want string
	}{
		{MetaEventTypes, strings.Join(b.Types(), ",")},
		{MetaAfter, strconv.FormatUint(b.After, 10)},
		{MetaFirst, strconv.FormatUint(b.First(), 10)},
		{MetaLast, strconv.FormatUint(b.Last(), 10)},
		{MetaCount, strconv.Itoa(len(b.Events))},
	} {
		if got := msg.Metadata.Get(c.key); got != c.want {
			return Batch{}, fmt.Errorf("%w: message %s: metadata %s is %q, the payload says %q", ErrMalformed, msg.UUID, c.key, got, c.want)
		}
	}
	return b, nil
}

package sqlite

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/google/uuid"
	"github.com/klauspost/compress/s2"

	"github.com/chronolog/chronolog/domain/eventstore"
)

// An append is stored as one row, its record: the events' ids, types and
// payloads framed one after the other, after a format octet,
//
//	record = format body / 0x02 uvarint(dictionary) body
//	body   = *( id[16] uvarint(len(type)) type uvarint(len(payload)) payload )
//	format = 0x00 (body as is) / 0x01 (body S2-compressed, klauspost/compress)
//	0x02     body S2-compressed against the dictionary of that id (dict.go)
//
// One row per append instead of one per event is what makes the embedded
// store fast: a TSA request appends four events, and one B-tree insert
// with one stream-index entry writes far fewer pages per commit than four
// rows with eight index entries. Compression matters for the same reason:
// the writer's commits are bound by the bytes they write and sync, a TSA
// request's events shrink from about 2.9 KB to 1.9 KB, and two such records
// fit a 4 KiB page where one did before. Payloads are kept byte-exact: what
// is read back is exactly what was appended, and every hash is taken over
// that, never over the stored form.

const (
	formatRaw    byte = 0x00
	formatS2     byte = 0x01
	formatS2Dict byte = 0x02
)

// encodedAppend is an append made ready for the writer by its caller's
// goroutine, so that the single writer only binds and steps.
type encodedAppend struct {
	record []byte
	ids    [][16]byte
	// payloads are copies of the events' payloads in one block the store
	// owns, for the live tail once the append commits.
	payloads [][]byte
}

// canonicalUUID parses id, which must be a UUID in its canonical form
// (36 characters, lower-case hex): stored as 16 bytes, it must read back as
// the very string that was appended.
func canonicalUUID(id string) ([16]byte, error) {
	u, err := uuid.Parse(id)
	if err != nil || len(id) != 36 || u.String() != id {
		return [16]byte{}, fmt.Errorf("event id %q is not a canonical lower-case UUID", id)
	}
	return u, nil
}

// bodyPool holds scratch buffers for uncompressed bodies.
var bodyPool = sync.Pool{New: func() any { return new([]byte) }}

// encodeAppend frames and compresses events, against the dictionary in
// use when there is one, and offers the body to the dictionaries' sampling
// (dicts may be nil).
func encodeAppend(events []eventstore.EventData, dicts *dictionaries) (encodedAppend, error) {
	size := 0
	for _, e := range events {
		size += 16 + 2*binary.MaxVarintLen64 + len(e.Type) + len(e.Payload)
	}
	bp := bodyPool.Get().(*[]byte)
	defer bodyPool.Put(bp)
	body := (*bp)[:0]
	out := encodedAppend{ids: make([][16]byte, len(events)), payloads: make([][]byte, len(events))}
	total := 0
	for _, e := range events {
		total += len(e.Payload)
	}
	block := make([]byte, 0, total)
	for i, e := range events {
		id, err := canonicalUUID(e.ID)
		if err != nil {
			return encodedAppend{}, err
		}
		out.ids[i] = id
		body = append(body, id[:]...)
		body = binary.AppendUvarint(body, uint64(len(e.Type)))
		body = append(body, e.Type...)
		body = binary.AppendUvarint(body, uint64(len(e.Payload)))
		body = append(body, e.Payload...)
		start := len(block)
		block = append(block, e.Payload...)
		out.payloads[i] = block[start:len(block):len(block)]
	}
	*bp = body
	dicts.sample(body)
	zp := bodyPool.Get().(*[]byte)
	defer bodyPool.Put(zp)
	if n := s2.MaxEncodedLen(len(body)); cap(*zp) < n {
		*zp = make([]byte, n)
	}
	// The record is allocated at its final size: it stays in memory until
	// the writer has bound it.
	if d := dicts.current(); d != nil {
		if z := d.dict.Encode((*zp)[:cap(*zp)], body); len(z) < len(body) {
			rec := append(make([]byte, 0, 1+binary.MaxVarintLen64+len(z)), formatS2Dict)
			rec = binary.AppendUvarint(rec, d.id)
			out.record = append(rec, z...)
			return out, nil
		}
	}
	if z := s2.Encode((*zp)[:cap(*zp)], body); len(z) < len(body) {
		out.record = append(append(make([]byte, 0, 1+len(z)), formatS2), z...)
		return out, nil
	}
	out.record = append(append(make([]byte, 0, 1+len(body)), formatRaw), body...)
	return out, nil
}

// dictFunc returns a stored dictionary by its id.
type dictFunc func(id uint64) (*s2.Dict, error)

// recordBody returns the framed events of a stored record; dict finds the
// dictionaries records name (nil: none is known).
func recordBody(rec []byte, dict dictFunc) ([]byte, error) {
	if len(rec) == 0 {
		return nil, fmt.Errorf("%w: empty", errBadRecord)
	}
	switch rec[0] {
	case formatRaw:
		return rec[1:], nil
	case formatS2:
		body, err := s2.Decode(nil, rec[1:])
		if err != nil {
			return nil, fmt.Errorf("%w: %v", errBadRecord, err)
		}
		return body, nil
	case formatS2Dict:
		id, k := binary.Uvarint(rec[1:])
		if k <= 0 {
			return nil, fmt.Errorf("%w: no dictionary id", errBadRecord)
		}
		if dict == nil {
			return nil, fmt.Errorf("%w: dictionary %d, and no dictionaries", errBadRecord, id)
		}
		d, err := dict(id)
		if err != nil {
			return nil, err
		}
		body, err := d.Decode(nil, rec[1+k:])
		if err != nil {
			return nil, fmt.Errorf("%w: %v", errBadRecord, err)
		}
		return body, nil
	}
	return nil, fmt.Errorf("%w: unknown format 0x%02x", errBadRecord, rec[0])
}

var errBadRecord = errors.New("malformed append record")

// decodeRecord appends the count events of one record to out. The record
// was appended as stream's revisions from firstRevision on, ending at
// global position lastPosition. Payloads alias rec when it is not
// compressed.
func decodeRecord(out []eventstore.RecordedEvent, stream string, lastPosition, firstRevision uint64, count int, rec []byte, dict dictFunc) ([]eventstore.RecordedEvent, error) {
	if count <= 0 || uint64(count) > lastPosition {
		return out, fmt.Errorf("%w at position %d: count %d", errBadRecord, lastPosition, count)
	}
	first := lastPosition - uint64(count) + 1
	rec, err := recordBody(rec, dict)
	if err != nil {
		return out, fmt.Errorf("at position %d: %w", lastPosition, err)
	}
	for i := range count {
		if len(rec) < 16 {
			return out, fmt.Errorf("%w at position %d: event %d has no id", errBadRecord, lastPosition, i)
		}
		id := uuid.UUID(rec[:16])
		rec = rec[16:]
		typ, rest, ok := readFramed(rec)
		if !ok {
			return out, fmt.Errorf("%w at position %d: event %d type", errBadRecord, lastPosition, i)
		}
		payload, rest, ok := readFramed(rest)
		if !ok {
			return out, fmt.Errorf("%w at position %d: event %d payload", errBadRecord, lastPosition, i)
		}
		rec = rest
		out = append(out, eventstore.RecordedEvent{
			Position: first + uint64(i),
			Stream:   stream,
			Revision: firstRevision + uint64(i),
			ID:       id.String(),
			Type:     string(typ),
			Payload:  payload,
		})
	}
	if len(rec) != 0 {
		return out, fmt.Errorf("%w at position %d: %d trailing bytes", errBadRecord, lastPosition, len(rec))
	}
	return out, nil
}

// readFramed reads uvarint(len) and that many bytes; the result's capacity
// ends with it, so that appending to one payload never overwrites the next.
func readFramed(b []byte) (field, rest []byte, ok bool) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)-k) {
		return nil, nil, false
	}
	end := k + int(n)
	return b[k:end:end], b[end:], true
}

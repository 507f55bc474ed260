// Package translog commits the event stream to a Merkle transparency log.
//
// A log integrates a few thousand leaves a second at best and the event
// stream runs far faster, so the log holds one leaf per segment of the
// stream: a run of consecutive events, bound by the positions of its first
// and last event, their count, and the RFC 9162 root over their leaf hashes
// (each the RFC 9162 leaf hash of the event's stored bytes, in position
// order). An event's proof is its path inside its segment plus the
// segment's inclusion proof in the log, up to a checkpoint signed with the
// log's key in the C2SP tlog-checkpoint format.
//
// This package is pure: the leaf and checkpoint encodings, the sealing of
// segments, and the verification an auditor runs. Where the events come
// from and which log receives the leaves are ports (writer.go).
package translog

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/chronolog/chronolog/domain/merkle"
)

// leafMagic opens every segment leaf. It names the format and its version,
// so that a leaf can never be read as anything else; a new layout gets a new
// magic. schemas/translog/segment-leaf.md documents it.
const leafMagic = "chronolog-segment-v1\x00"

// LeafSize is the length of an encoded v1 segment leaf.
const LeafSize = len(leafMagic) + 3*8 + 32

// SegmentLeaf is what the log holds for one segment.
type SegmentLeaf struct {
	// First and Last are the event-store positions of the segment's first
	// and last event.
	First, Last uint64
	// Count is how many events the segment holds: positions need not be
	// consecutive in every event store.
	Count uint64
	// Root is the RFC 9162 root over the events' leaf hashes.
	Root merkle.Hash
}

// Marshal encodes the leaf:
//
//	"chronolog-segment-v1" 0x00 | first u64 | last u64 | count u64 | root [32]
//
// integers big-endian.
func (l SegmentLeaf) Marshal() []byte {
	b := make([]byte, 0, LeafSize)
	b = append(b, leafMagic...)
	b = binary.BigEndian.AppendUint64(b, l.First)
	b = binary.BigEndian.AppendUint64(b, l.Last)
	b = binary.BigEndian.AppendUint64(b, l.Count)
	return append(b, l.Root[:]...)
}

// ErrNotASegmentLeaf is returned for bytes that are not a v1 segment leaf.
var ErrNotASegmentLeaf = errors.New("translog: not a chronolog segment leaf")

// ParseSegmentLeaf decodes and checks a leaf.
func ParseSegmentLeaf(b []byte) (SegmentLeaf, error) {
	if len(b) != LeafSize || !bytes.HasPrefix(b, []byte(leafMagic)) {
		return SegmentLeaf{}, ErrNotASegmentLeaf
	}
	b = b[len(leafMagic):]
	l := SegmentLeaf{
		First: binary.BigEndian.Uint64(b[0:]),
		Last:  binary.BigEndian.Uint64(b[8:]),
		Count: binary.BigEndian.Uint64(b[16:]),
	}
	copy(l.Root[:], b[24:])
	if err := l.check(); err != nil {
		return SegmentLeaf{}, err
	}
	return l, nil
}

func (l SegmentLeaf) check() error {
	if l.Count == 0 || l.First == 0 || l.Last < l.First || l.Count > l.Last-l.First+1 {
		return fmt.Errorf("%w: positions %d–%d cannot hold %d events", ErrNotASegmentLeaf, l.First, l.Last, l.Count)
	}
	return nil
}

// Hash is the leaf's RFC 9162 leaf hash, as the log stores it.
func (l SegmentLeaf) Hash() merkle.Hash { return merkle.LeafHash(l.Marshal()) }

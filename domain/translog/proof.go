package translog

import (
	"errors"
	"fmt"

	"golang.org/x/mod/sumdb/note"

	"github.com/chronolog/chronolog/domain/merkle"
)

// EventProof proves that an event, byte for byte, is in the log: its path
// inside its segment, the segment's leaf, the leaf's inclusion proof in the
// log, and the signed checkpoint that proof leads to.
type EventProof struct {
	// Position and Payload are the event as stored.
	Position uint64
	Payload  []byte
	// Segment is the leaf of the segment holding the event, at
	// SegmentIndex in the log.
	Segment      SegmentLeaf
	SegmentIndex uint64
	// EventIndex is the event's place in its segment; EventPath leads from
	// its leaf hash to Segment.Root.
	EventIndex uint64
	EventPath  []merkle.Hash
	// LogPath leads from the segment leaf's hash to the checkpoint's root.
	LogPath []merkle.Hash
	// Checkpoint is the signed note the proof is made against.
	Checkpoint []byte
}

// ErrNotIncluded is wrapped by every failed verification; the message says
// which step failed and where.
var ErrNotIncluded = errors.New("translog: not proven in the log")

// Verify checks the proof against the log's key and returns the checkpoint
// it was verified against.
func (p EventProof) Verify(log note.Verifier) (Checkpoint, error) {
	cp, err := OpenCheckpoint(p.Checkpoint, log)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("%w: %v", ErrNotIncluded, err)
	}
	if err := p.Segment.check(); err != nil {
		return cp, fmt.Errorf("%w: segment %d: %v", ErrNotIncluded, p.SegmentIndex, err)
	}
	// In a dense segment (no gaps between positions, as in the embedded
	// store) the index fixes the position; otherwise only the ends do.
	dense := p.Segment.Last-p.Segment.First+1 == p.Segment.Count
	if p.Position < p.Segment.First || p.Position > p.Segment.Last || p.EventIndex >= p.Segment.Count ||
		(p.EventIndex == 0) != (p.Position == p.Segment.First) ||
		(p.EventIndex == p.Segment.Count-1) != (p.Position == p.Segment.Last) ||
		dense && p.Position != p.Segment.First+p.EventIndex {
		return cp, fmt.Errorf("%w: event at position %d cannot be event %d of segment %d (positions %d–%d, %d events)",
			ErrNotIncluded, p.Position, p.EventIndex, p.SegmentIndex, p.Segment.First, p.Segment.Last, p.Segment.Count)
	}
	if err := merkle.VerifyInclusion(p.EventIndex, p.Segment.Count, merkle.LeafHash(p.Payload), p.EventPath, p.Segment.Root); err != nil {
		return cp, fmt.Errorf("%w: event at position %d: its bytes do not lead to the root of segment %d: %v",
			ErrNotIncluded, p.Position, p.SegmentIndex, err)
	}
	if p.SegmentIndex >= cp.Size {
		return cp, fmt.Errorf("%w: segment %d is beyond the checkpoint's %d leaves", ErrNotIncluded, p.SegmentIndex, cp.Size)
	}
	if err := merkle.VerifyInclusion(p.SegmentIndex, cp.Size, p.Segment.Hash(), p.LogPath, cp.Root); err != nil {
		return cp, fmt.Errorf("%w: segment %d does not lead to the root of the checkpoint at size %d: %v",
			ErrNotIncluded, p.SegmentIndex, cp.Size, err)
	}
	return cp, nil
}

// VerifyConsistency checks that the signed checkpoint newer extends older,
// both signed by log: the check a monitor makes of every checkpoint it
// sees. A smaller size, or a proof that does not lead to both roots, is a
// rollback or a fork.
func VerifyConsistency(log note.Verifier, older, newer []byte, proof []merkle.Hash) (Checkpoint, Checkpoint, error) {
	a, err := OpenCheckpoint(older, log)
	if err != nil {
		return Checkpoint{}, Checkpoint{}, fmt.Errorf("older checkpoint: %w", err)
	}
	b, err := OpenCheckpoint(newer, log)
	if err != nil {
		return a, Checkpoint{}, fmt.Errorf("newer checkpoint: %w", err)
	}
	if b.Size < a.Size {
		return a, b, fmt.Errorf("translog: ROLLBACK: the log went from %d to %d leaves", a.Size, b.Size)
	}
	if err := merkle.VerifyConsistency(a.Size, b.Size, proof, a.Root, b.Root); err != nil {
		return a, b, fmt.Errorf("translog: FORK: the checkpoint at size %d does not extend the one at size %d: %v", b.Size, a.Size, err)
	}
	return a, b, nil
}

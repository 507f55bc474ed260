package bundle

import (
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/chronolog/chronolog/domain/events"
	"github.com/chronolog/chronolog/domain/translog"
)

// A range ends, as a rule, in the log writer's own bookkeeping: the seal
// of the segment holding the range's last request, the checkpoints
// published after it. The writer never cuts a segment of bookkeeping
// alone (each seal would record another one, forever), so while the TSA
// is idle no checkpoint covers those events, and any design that sealed
// them still leaves the last seal's own record uncovered.
//
// Such trailing bookkeeping, after the range's last other event, needs no
// segment: each event is evidence about the log, checked against the log
// itself. A LogSegmentSealed names a leaf (index, first, last, count,
// root, leaf hash); the bundle carries that leaf with its inclusion proof
// under log/checkpoint (log/segments/INDEX.json). A LogCheckpointSigned
// carries its signed note, which verifies with the log key and which
// log/checkpoint equals or provably extends (log/consistency/A-B.json).
// The log must then cover the range only up to its last other event.

// Bookkeeping tells the log writer's own events, which it seals only with
// the next event that is not one of them.
func Bookkeeping(eventType string) bool {
	return eventType == events.TypeLogSegmentSealed || eventType == events.TypeLogCheckpointSigned
}

// TailEvent is one event of a range's trailing bookkeeping, decoded: a
// segment's seal or a checkpoint.
type TailEvent struct {
	Position   uint64
	Segment    *events.LogSegmentSealed
	Checkpoint *events.LogCheckpointSigned
}

// Tail follows a range's events in order and keeps the bookkeeping after
// the last other one.
type Tail []TailEvent

// Add takes the next event of the range.
func (t *Tail) Add(position uint64, eventType string, payload []byte) error {
	if !Bookkeeping(eventType) {
		*t = (*t)[:0]
		return nil
	}
	_, e, err := events.Decode(payload)
	if err != nil {
		return err
	}
	b := TailEvent{Position: position}
	switch e := e.(type) {
	case *events.LogSegmentSealed:
		b.Segment = e
	case *events.LogCheckpointSigned:
		b.Checkpoint = e
	default:
		return fmt.Errorf("a %s that decodes as %T", eventType, e)
	}
	*t = append(*t, b)
	return nil
}

// Needs is the smallest log size under which the tail's evidence can be
// given: every sealed segment in it, and every checkpoint no larger; and
// the seal that needs it, if a seal does.
func (t Tail) Needs() (size uint64, seal TailEvent) {
	for _, b := range t {
		switch {
		case b.Segment != nil && b.Segment.Index+1 > size:
			size, seal = b.Segment.Index+1, b
		case b.Checkpoint != nil && b.Checkpoint.Size > size:
			size, seal = b.Checkpoint.Size, TailEvent{}
		}
	}
	return size, seal
}

// Segments is how many of the tail's events are seals; the others are
// checkpoints.
func (t Tail) Segments() int {
	n := 0
	for _, b := range t {
		if b.Segment != nil {
			n++
		}
	}
	return n
}

// Positions describes the tail's span.
func (t Tail) Positions() string {
	first, last := t[0].Position, t[len(t)-1].Position
	if first == last {
		return fmt.Sprintf("position %d", first)
	}
	return fmt.Sprintf("positions %d–%d", first, last)
}

// SegmentDiffers names the fields in which a recorded seal and the log's
// leaf differ, "" when none do.
func SegmentDiffers(s *events.LogSegmentSealed, leaf translog.SegmentLeaf) string {
	lh := leaf.Hash()
	var d []string
	for _, f := range []struct {
		name string
		same bool
	}{
		{"first", s.First == leaf.First},
		{"last", s.Last == leaf.Last},
		{"count", s.Count == leaf.Count},
		{"root", s.Root == hex.EncodeToString(leaf.Root[:])},
		{"leafHash", s.LeafHash == hex.EncodeToString(lh[:])},
	} {
		if !f.same {
			d = append(d, f.name)
		}
	}
	return strings.Join(d, ", ")
}

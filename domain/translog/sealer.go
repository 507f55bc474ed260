package translog

import (
	"fmt"

	"github.com/chronolog/chronolog/domain/merkle"
)

// Event is what sealing needs of a committed event.
type Event struct {
	Position uint64
	Type     string
	// Payload is the event's stored bytes; its leaf hash is taken over them.
	Payload []byte
}

// Segment is a sealed run of events.
type Segment struct {
	Leaf SegmentLeaf
	// EventHashes are the events' leaf hashes in position order.
	EventHashes []merkle.Hash
}

// Sealer gathers committed events, in commit order, into segments.
//
// The log writer records its own bookkeeping (a sealed segment, a signed
// checkpoint) as events, which land in the stream it reads. A segment made
// only of those would beget another bookkeeping event, and so on forever
// while the TSA is idle; so a cut that is not forced by size waits until
// the pending events include one that is not bookkeeping. The bookkeeping
// tail is logged with the next real event.
type Sealer struct {
	maxEvents   int
	bookkeeping map[string]bool
	last        uint64 // position of the last event added
	pending     []merkle.Hash
	first       uint64
	substantive bool
}

// NewSealer cuts a segment at maxEvents events at most; bookkeeping lists
// the event types that alone never make a segment worth cutting. after is
// the position of the last event already in the log (0 for none).
func NewSealer(maxEvents int, after uint64, bookkeeping ...string) *Sealer {
	s := &Sealer{maxEvents: max(1, maxEvents), bookkeeping: map[string]bool{}, last: after}
	for _, t := range bookkeeping {
		s.bookkeeping[t] = true
	}
	return s
}

// Add takes the next committed event. It returns a segment when the event
// filled one.
func (s *Sealer) Add(e Event) (Segment, bool, error) {
	if e.Position <= s.last {
		return Segment{}, false, fmt.Errorf("translog: event at position %d after %d: not in commit order", e.Position, s.last)
	}
	s.last = e.Position
	if len(s.pending) == 0 {
		s.first = e.Position
	}
	s.pending = append(s.pending, merkle.LeafHash(e.Payload))
	if !s.bookkeeping[e.Type] {
		s.substantive = true
	}
	if len(s.pending) >= s.maxEvents {
		return s.seal(), true, nil
	}
	return Segment{}, false, nil
}

// Cut seals what is pending, if that includes more than bookkeeping.
func (s *Sealer) Cut() (Segment, bool) {
	if len(s.pending) == 0 || !s.substantive {
		return Segment{}, false
	}
	return s.seal(), true
}

// Pending is how many events wait for the next segment.
func (s *Sealer) Pending() int { return len(s.pending) }

// Last is the position of the last event added.
func (s *Sealer) Last() uint64 { return s.last }

func (s *Sealer) seal() Segment {
	seg := Segment{
		Leaf: SegmentLeaf{
			First: s.first,
			Last:  s.last,
			Count: uint64(len(s.pending)),
			Root:  merkle.Root(s.pending),
		},
		EventHashes: s.pending,
	}
	s.pending = nil
	s.substantive = false
	return seg
}

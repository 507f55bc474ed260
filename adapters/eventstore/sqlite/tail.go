package sqlite

import (
	"sync"

	"github.com/chronolog/chronolog/domain/eventstore"
)

// liveTail keeps the most recently committed events in memory, so that a
// subscription that keeps up (the transparency log writer, the
// projections) is served without reading back and decompressing what was
// just written. A subscription that falls behind the tail reads the table
// as before; the tail is only a cache of it.
type liveTail struct {
	mu sync.RWMutex
	// ring holds up to cap(ring) events with consecutive positions;
	// oldest is the index of the one with the lowest position.
	ring   []eventstore.RecordedEvent
	oldest int
	n      int
}

func newLiveTail(capacity int) *liveTail {
	return &liveTail{ring: make([]eventstore.RecordedEvent, capacity)}
}

// push adds events committed after every event already in the tail.
func (t *liveTail) push(evs []eventstore.RecordedEvent) {
	if len(t.ring) == 0 || len(evs) == 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, e := range evs {
		// Positions are consecutive as this store assigns them; anything
		// else (another process wrote the file) drops the cache.
		if t.n > 0 && e.Position != t.at(t.n-1).Position+1 {
			t.n, t.oldest = 0, 0
		}
		if t.n < len(t.ring) {
			t.ring[(t.oldest+t.n)%len(t.ring)] = e
			t.n++
			continue
		}
		t.ring[t.oldest] = e
		t.oldest = (t.oldest + 1) % len(t.ring)
	}
}

func (t *liveTail) at(i int) *eventstore.RecordedEvent {
	return &t.ring[(t.oldest+i)%len(t.ring)]
}

// after returns up to max events with positions after pos, and false when
// the tail does not reach back to pos+1 (the caller reads the table).
func (t *liveTail) after(pos uint64, max int) ([]eventstore.RecordedEvent, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.n == 0 {
		return nil, false
	}
	first := t.at(0).Position
	if pos+1 < first {
		return nil, false
	}
	skip := pos + 1 - first
	if skip >= uint64(t.n) {
		return nil, true
	}
	k := min(t.n-int(skip), max)
	out := make([]eventstore.RecordedEvent, k)
	for i := range k {
		out[i] = *t.at(int(skip) + i)
	}
	return out, true
}

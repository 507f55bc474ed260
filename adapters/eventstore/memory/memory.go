// Package memory is an event store in memory, for tests and tools that
// need a store without a file: it keeps the eventstore contract (the
// eventstoretest suite holds it to it) and nothing across restarts.
package memory

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/chronolog/chronolog/domain/eventstore"
)

var _ eventstore.Store = (*Store)(nil)

// Store is the event store in memory. It keeps nothing across restarts.
type Store struct {
	mu      sync.Mutex
	events  []eventstore.RecordedEvent
	streams map[string]uint64 // last revision
	ids     map[string]bool
	closed  bool
	notify  chan struct{} // closed and replaced on every append and on Close
}

// New returns an empty store.
func New() *Store {
	return &Store{streams: map[string]uint64{}, ids: map[string]bool{}, notify: make(chan struct{})}
}

// Append appends evs to stream if expected admits its state.
func (m *Store) Append(ctx context.Context, stream string, exp eventstore.ExpectedState, evs ...eventstore.EventData) (eventstore.AppendResult, error) {
	if stream == "" || len(evs) == 0 {
		return eventstore.AppendResult{}, errors.New("eventstore/memory: invalid append")
	}
	seen := map[string]bool{}
	for _, e := range evs {
		if e.ID == "" || e.Type == "" || seen[e.ID] {
			return eventstore.AppendResult{}, errors.New("eventstore/memory: invalid event")
		}
		seen[e.ID] = true
	}
	if err := ctx.Err(); err != nil {
		return eventstore.AppendResult{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return eventstore.AppendResult{}, eventstore.ErrClosed
	}
	last, exists := m.streams[stream]
	if !exp.Admits(exists, last) {
		return eventstore.AppendResult{}, &eventstore.WrongExpectedStateError{Stream: stream, Expected: exp, Exists: exists, Actual: last}
	}
	for _, e := range evs {
		if m.ids[e.ID] {
			return eventstore.AppendResult{}, fmt.Errorf("eventstore/memory: duplicate id %s", e.ID)
		}
	}
	rev := uint64(0)
	if exists {
		rev = last + 1
	}
	for i, e := range evs {
		m.ids[e.ID] = true
		m.events = append(m.events, eventstore.RecordedEvent{
			Position: uint64(len(m.events) + 1), Stream: stream, Revision: rev + uint64(i),
			ID: e.ID, Type: e.Type, Payload: bytes.Clone(e.Payload),
		})
	}
	m.streams[stream] = rev + uint64(len(evs)) - 1
	close(m.notify)
	m.notify = make(chan struct{})
	return eventstore.AppendResult{NextExpected: m.streams[stream], Position: uint64(len(m.events))}, nil
}

// ReadStream returns a stream's events in revision order.
func (m *Store) ReadStream(_ context.Context, stream string) ([]eventstore.RecordedEvent, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, eventstore.ErrClosed
	}
	var out []eventstore.RecordedEvent
	for _, e := range m.events {
		if e.Stream == stream {
			out = append(out, e)
		}
	}
	if len(out) == 0 {
		return nil, eventstore.ErrStreamNotFound
	}
	return out, nil
}

// ReadAll returns up to max events after a position, in commit order.
func (m *Store) ReadAll(_ context.Context, after uint64, max int) ([]eventstore.RecordedEvent, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, eventstore.ErrClosed
	}
	if after >= uint64(len(m.events)) {
		return nil, nil
	}
	rest := m.events[after:]
	return append([]eventstore.RecordedEvent(nil), rest[:min(max, len(rest))]...), nil
}

// SubscribeAll delivers every event after a position, then each new one.
func (m *Store) SubscribeAll(_ context.Context, after uint64) (eventstore.Subscription, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, eventstore.ErrClosed
	}
	return &subscription{m: m, last: after, done: make(chan struct{})}, nil
}

// Close ends every subscription; later calls return eventstore.ErrClosed.
func (m *Store) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.closed {
		m.closed = true
		close(m.notify)
	}
	return nil
}

type subscription struct {
	m    *Store
	last uint64
	once sync.Once
	done chan struct{}
}

func (s *subscription) Recv(ctx context.Context) (eventstore.RecordedEvent, error) {
	for {
		s.m.mu.Lock()
		closed, wait := s.m.closed, s.m.notify
		var e *eventstore.RecordedEvent
		if s.last < uint64(len(s.m.events)) {
			e = &s.m.events[s.last]
		}
		s.m.mu.Unlock()
		select {
		case <-s.done:
			return eventstore.RecordedEvent{}, eventstore.ErrClosed
		default:
		}
		if closed {
			return eventstore.RecordedEvent{}, eventstore.ErrClosed
		}
		if err := ctx.Err(); err != nil {
			return eventstore.RecordedEvent{}, err
		}
		if e != nil {
			s.last = e.Position
			return *e, nil
		}
		select {
		case <-wait:
		case <-s.done:
		case <-ctx.Done():
		}
	}
}

func (s *subscription) Close() error {
	s.once.Do(func() { close(s.done) })
	return nil
}

// Head is the position of the last event appended.
func (m *Store) Head() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return uint64(len(m.events))
}

package eventstoretest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/chronolog/chronolog/domain/eventstore"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// memStore is a minimal in-memory reference adapter. It keeps the suite
// honest: the contract must not lean on anything SQLite-specific.
type memStore struct {
	mu      sync.Mutex
	events  []eventstore.RecordedEvent
	streams map[string]uint64 // last revision
	ids     map[string]bool
	closed  bool
	notify  chan struct{} // closed and replaced on every append and on Close
}

func newMemStore() *memStore {
	return &memStore{streams: map[string]uint64{}, ids: map[string]bool{}, notify: make(chan struct{})}
}

func (m *memStore) Append(ctx context.Context, stream string, exp eventstore.ExpectedState, evs ...eventstore.EventData) (eventstore.AppendResult, error) {
	if stream == "" || len(evs) == 0 {
		return eventstore.AppendResult{}, errors.New("mem: invalid append")
	}
	seen := map[string]bool{}
	for _, e := range evs {
		if e.ID == "" || e.Type == "" || seen[e.ID] {
			return eventstore.AppendResult{}, errors.New("mem: invalid event")
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
			return eventstore.AppendResult{}, fmt.Errorf("mem: duplicate id %s", e.ID)
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

func (m *memStore) ReadStream(_ context.Context, stream string) ([]eventstore.RecordedEvent, error) {
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

func (m *memStore) ReadAll(_ context.Context, after uint64, max int) ([]eventstore.RecordedEvent, error) {
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

func (m *memStore) SubscribeAll(_ context.Context, after uint64) (eventstore.Subscription, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, eventstore.ErrClosed
	}
	return &memSub{m: m, last: after, done: make(chan struct{})}, nil
}

func (m *memStore) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.closed {
		m.closed = true
		close(m.notify)
	}
	return nil
}

type memSub struct {
	m    *memStore
	last uint64
	once sync.Once
	done chan struct{}
}

func (s *memSub) Recv(ctx context.Context) (eventstore.RecordedEvent, error) {
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

func (s *memSub) Close() error {
	s.once.Do(func() { close(s.done) })
	return nil
}

func TestSuiteAgainstMemStore(t *testing.T) {
	Run(t, func(*testing.T) eventstore.Store { return newMemStore() })
}

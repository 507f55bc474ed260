package sqlite

import (
	"context"
	"fmt"
	"sync"

	"github.com/klauspost/compress/s2"

	"github.com/chronolog/chronolog/domain/eventstore"
)

// readErr maps an error met while reading: ErrClosed once the store is closed.
func (s *Store) readErr(op string, err error) error {
	if s.isClosed() {
		return eventstore.ErrClosed
	}
	return fmt.Errorf("eventstore/sqlite: %s: %w", op, err)
}

// dictFunc finds the stored dictionaries, reading them under ctx.
func (s *Store) dictFunc(ctx context.Context) dictFunc {
	return func(id uint64) (*s2.Dict, error) { return s.dicts.get(ctx, id) }
}

// ReadStream returns stream's events in revision order, or an error
// matching eventstore.ErrStreamNotFound when it has none.
func (s *Store) ReadStream(ctx context.Context, stream string) ([]eventstore.RecordedEvent, error) {
	if s.isClosed() {
		return nil, eventstore.ErrClosed
	}
	rows, err := s.streamStmt.QueryContext(ctx, stream)
	if err != nil {
		return nil, s.readErr("read stream", err)
	}
	defer rows.Close()
	var out []eventstore.RecordedEvent
	for rows.Next() {
		var last, first, count int64
		var rec []byte
		if err := rows.Scan(&last, &first, &count, &rec); err != nil {
			return nil, s.readErr("read stream", err)
		}
		if out, err = decodeRecord(out, stream, uint64(last), uint64(first), int(count), rec, s.dictFunc(ctx)); err != nil {
			return nil, s.readErr("read stream", err)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, s.readErr("read stream", err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("eventstore/sqlite: read %q: %w", stream, eventstore.ErrStreamNotFound)
	}
	return out, nil
}

// ReadAll returns up to max events with Position > after, in commit order.
// max must be positive.
func (s *Store) ReadAll(ctx context.Context, after uint64, max int) ([]eventstore.RecordedEvent, error) {
	if s.isClosed() {
		return nil, eventstore.ErrClosed
	}
	if max <= 0 {
		return nil, fmt.Errorf("eventstore/sqlite: read all: max must be positive, got %d", max)
	}
	return s.readAll(ctx, after, max)
}

func (s *Store) readAll(ctx context.Context, after uint64, max int) ([]eventstore.RecordedEvent, error) {
	// Every record holds at least one event, so max records are enough;
	// the first may start at or before after.
	rows, err := s.allStmt.QueryContext(ctx, int64(after), max)
	if err != nil {
		return nil, s.readErr("read all", err)
	}
	defer rows.Close()
	out := make([]eventstore.RecordedEvent, 0, min(max, subscriptionPage))
	for rows.Next() && len(out) < max {
		var last, first, count int64
		var stream string
		var rec []byte
		if err := rows.Scan(&last, &stream, &first, &count, &rec); err != nil {
			return nil, s.readErr("read all", err)
		}
		from := len(out)
		if out, err = decodeRecord(out, stream, uint64(last), uint64(first), int(count), rec, s.dictFunc(ctx)); err != nil {
			return nil, s.readErr("read all", err)
		}
		// Drop the record's events at or before after, and any beyond max.
		keep := out[from:]
		for len(keep) > 0 && keep[0].Position <= after {
			keep = keep[1:]
		}
		n := copy(out[from:], keep)
		out = out[:min(from+n, max)]
	}
	if err := rows.Err(); err != nil {
		return nil, s.readErr("read all", err)
	}
	return out, nil
}

// SubscribeAll returns a subscription to every event with Position >
// after. ctx bounds the call only; the subscription lives until it or the
// store is closed.
func (s *Store) SubscribeAll(ctx context.Context, after uint64) (eventstore.Subscription, error) {
	if s.isClosed() {
		return nil, eventstore.ErrClosed
	}
	if s.readOnly {
		return nil, fmt.Errorf("%w: no subscription (it would hear of no commit)", ErrReadOnly)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return &subscription{store: s, last: after, closed: make(chan struct{})}, nil
}

// waitChan returns the channel the writer closes at its next commit.
func (s *Store) waitChan() <-chan struct{} {
	s.notifyMu.Lock()
	defer s.notifyMu.Unlock()
	return s.notify
}

// subscription reads pages from the store and sleeps on the writer's
// broadcast when caught up. Recv must not be called concurrently; Close may
// be called at any time.
type subscription struct {
	store     *Store
	last      uint64 // position of the last event delivered
	buf       []eventstore.RecordedEvent
	closed    chan struct{}
	closeOnce sync.Once
}

func (sub *subscription) Recv(ctx context.Context) (eventstore.RecordedEvent, error) {
	evs, err := sub.RecvBatch(ctx, 1)
	if err != nil {
		return eventstore.RecordedEvent{}, err
	}
	return evs[0], nil
}

// RecvBatch blocks until at least one event is there and returns up to max
// of those already read: a consumer that keeps up takes a page at a time
// instead of waking once per event.
func (sub *subscription) RecvBatch(ctx context.Context, max int) ([]eventstore.RecordedEvent, error) {
	if max < 1 {
		max = 1
	}
	for {
		select {
		case <-sub.closed:
			return nil, eventstore.ErrClosed
		case <-sub.store.closed:
			return nil, eventstore.ErrClosed
		default:
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if len(sub.buf) > 0 {
			n := min(max, len(sub.buf))
			out := sub.buf[:n:n]
			sub.buf = sub.buf[n:]
			sub.last = out[n-1].Position
			return out, nil
		}
		wait := sub.store.waitChan()
		if sub.store.head.Load() > sub.last {
			if evs, ok := sub.store.tail.after(sub.last, subscriptionPage); ok && len(evs) > 0 {
				sub.buf = evs
				continue
			}
			evs, err := sub.store.readAll(ctx, sub.last, subscriptionPage)
			if err != nil {
				if ctxErr := ctx.Err(); ctxErr != nil {
					return nil, ctxErr
				}
				return nil, err
			}
			if len(evs) > 0 {
				sub.buf = evs
				continue
			}
		}
		select {
		case <-wait:
		case <-ctx.Done():
		case <-sub.closed:
		case <-sub.store.closed:
		}
	}
}

func (sub *subscription) Close() error {
	sub.closeOnce.Do(func() { close(sub.closed) })
	return nil
}

// Head is the position of the last durable event, 0 for an empty store;
// for a store opened read-only, as it was when it was opened.
func (s *Store) Head() uint64 { return s.head.Load() }

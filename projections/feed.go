package projections

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/chronolog/chronolog/domain/eventstore"
)

// Feed delivers committed events to a Runner, in commit order and without
// holes. In process it hands the event store's events over as they are:
// no codec. A feed from another process implements the same port.
type Feed interface {
	// Read returns the next events after position after, at most max and
	// at least one: it blocks until there is one, and returns io.EOF when
	// a bounded feed has none left. The events are the caller's until
	// its next Read.
	Read(ctx context.Context, after uint64, max int) ([]eventstore.RecordedEvent, error)
	// Head is the position of the last event committed.
	Head() uint64
	// Close releases the feed.
	Close() error
}

// Reader reads committed events in commit order: the event store, for a
// bounded replay.
type Reader interface {
	ReadAll(ctx context.Context, after uint64, max int) ([]eventstore.RecordedEvent, error)
	Head() uint64
}

// ReplayFeed reads the event store's committed events page by page: the
// feed of a replay, which ends (io.EOF) at the store's last event.
func ReplayFeed(r Reader) Feed { return replayFeed{r} }

type replayFeed struct{ r Reader }

func (f replayFeed) Read(ctx context.Context, after uint64, max int) ([]eventstore.RecordedEvent, error) {
	recs, err := f.r.ReadAll(ctx, after, max)
	if err != nil {
		return nil, fmt.Errorf("read events after %d: %w", after, err)
	}
	if len(recs) == 0 {
		return nil, io.EOF
	}
	return recs, nil
}

func (f replayFeed) Head() uint64 { return f.r.Head() }
func (replayFeed) Close() error   { return nil }

// EventSource is the event store as a live feed reads it.
type EventSource interface {
	// SubscribeAll delivers every event after a position, in commit order.
	SubscribeAll(ctx context.Context, after uint64) (eventstore.Subscription, error)
	// Head is the position of the last committed event.
	Head() uint64
}

// LiveConfig configures a live feed.
type LiveConfig struct {
	// Linger is how long a read keeps collecting after its first event,
	// while it has less than it may return. Each batch costs every read
	// store a commit: under load a few tens of milliseconds of lag buy
	// far fewer commits. Default 50 ms; negative disables.
	Linger time.Duration
	// ResubscribeDelay is the wait before reading again after the event
	// store failed a read. Default 1 s.
	ResubscribeDelay time.Duration
	// Logger logs the failed reads. Default slog.Default().
	Logger *slog.Logger
}

// LiveFeed follows the event store's subscription: it never ends, reads
// again (after ResubscribeDelay) when the store fails a read, and fails
// only when the store is closed (eventstore.ErrClosed) or ctx ends.
func LiveFeed(src EventSource, cfg LiveConfig) Feed {
	if cfg.Linger == 0 {
		cfg.Linger = 50 * time.Millisecond
	}
	if cfg.ResubscribeDelay <= 0 {
		cfg.ResubscribeDelay = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &liveFeed{src: src, cfg: cfg}
}

type liveFeed struct {
	src  EventSource
	cfg  LiveConfig
	sub  eventstore.Subscription
	last uint64 // the position the subscription stands at
	buf  []eventstore.RecordedEvent
}

// batchReceiver is a subscription that hands out what it has read in one
// go (the embedded store's does).
type batchReceiver interface {
	RecvBatch(ctx context.Context, max int) ([]eventstore.RecordedEvent, error)
}

func (f *liveFeed) recv(ctx context.Context, max int) ([]eventstore.RecordedEvent, error) {
	if b, ok := f.sub.(batchReceiver); ok {
		return b.RecvBatch(ctx, max)
	}
	e, err := f.sub.Recv(ctx)
	if err != nil {
		return nil, err
	}
	return []eventstore.RecordedEvent{e}, nil
}

func (f *liveFeed) Read(ctx context.Context, after uint64, max int) ([]eventstore.RecordedEvent, error) {
	max = maxOne(max)
	for {
		if f.sub == nil || f.last != after {
			if err := f.subscribe(ctx, after); err != nil {
				return nil, err
			}
		}
		batch, err := f.collect(ctx, max)
		if len(batch) > 0 {
			// What was read is delivered; a failure shows again at the
			// next read.
			f.last = batch[len(batch)-1].Position
			return batch, nil
		}
		switch {
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case errors.Is(err, eventstore.ErrClosed):
			return nil, err
		}
		f.cfg.Logger.Error("projections: reading the event store failed; reading again", "after", after, "err", err)
		f.drop()
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(f.cfg.ResubscribeDelay):
		}
	}
}

func maxOne(n int) int { return max(n, 1) }

// subscribe subscribes after a position, again and again until it
// succeeds or ctx ends.
func (f *liveFeed) subscribe(ctx context.Context, after uint64) error {
	f.drop()
	for {
		sub, err := f.src.SubscribeAll(ctx, after)
		if err == nil {
			f.sub, f.last = sub, after
			return nil
		}
		if ctx.Err() != nil || errors.Is(err, eventstore.ErrClosed) {
			return err
		}
		f.cfg.Logger.Error("projections: subscribing to the event store failed", "after", after, "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(f.cfg.ResubscribeDelay):
		}
	}
}

func (f *liveFeed) drop() {
	if f.sub != nil {
		f.sub.Close()
		f.sub = nil
	}
}

// collect blocks for the first events, then takes whatever else is
// already committed, then lingers: under load batches grow, idle they
// carry a request at a time. A failure after the first events ends the
// batch without an error: the subscription is dropped, and the next read
// meets the failure again.
func (f *liveFeed) collect(ctx context.Context, max int) ([]eventstore.RecordedEvent, error) {
	first, err := f.recv(ctx, max)
	if err != nil {
		return nil, err
	}
	batch := append(f.buf[:0], first...)
	defer func() { f.buf = batch[:0] }()
	for len(batch) < max && f.src.Head() > batch[len(batch)-1].Position {
		more, err := f.recv(ctx, max-len(batch))
		batch = append(batch, more...)
		if err != nil {
			f.drop()
			return batch, nil
		}
	}
	if len(batch) < max && f.cfg.Linger > 0 {
		lctx, cancel := context.WithTimeout(ctx, f.cfg.Linger)
		for len(batch) < max {
			more, err := f.recv(lctx, max-len(batch))
			batch = append(batch, more...)
			if err != nil {
				if lctx.Err() == nil || ctx.Err() != nil {
					f.drop()
				}
				break
			}
		}
		cancel()
	}
	return batch, nil
}

func (f *liveFeed) Head() uint64 { return f.src.Head() }

func (f *liveFeed) Close() error {
	f.drop()
	return nil
}

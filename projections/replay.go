package projections

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/chronolog/chronolog/domain/eventstore"
)

// Reader reads committed events in commit order.
type Reader interface {
	ReadAll(ctx context.Context, after uint64, max int) ([]eventstore.RecordedEvent, error)
}

// ReplayOptions bound and report a replay.
type ReplayOptions struct {
	// Until is the last position applied; zero means up to Target.
	Until uint64
	// UntilTime stops before the first event recorded after it: the read
	// models as they were then. Zero means no limit.
	UntilTime time.Time
	// Target is the head position at the start (for progress); the replay
	// stops there when Until is zero.
	Target uint64
	// Batch is the number of events per read-store transaction; zero
	// means 8192.
	Batch int
	// Progress, when set, is called after each batch.
	Progress func(Progress)
}

// Progress is where a replay stands.
type Progress struct {
	Position, Target uint64
	Events           uint64
	Elapsed          time.Duration
}

// Rate is events per second so far.
func (p Progress) Rate() float64 {
	if p.Elapsed <= 0 {
		return 0
	}
	return float64(p.Events) / p.Elapsed.Seconds()
}

// Replay applies the events after the lowest checkpoint of stores to each
// of them, in batches, up to the options' limit. Reading and decoding run
// ahead of the writers, and each read store is written by its own
// goroutine: the stores are separate files, so they commit in parallel.
func Replay(ctx context.Context, r Reader, stores []*Store, opt ReplayOptions) (Progress, error) {
	if opt.Batch <= 0 {
		opt.Batch = 8192
	}
	limit := opt.Until
	if limit == 0 {
		limit = opt.Target
	}
	from := limit
	for _, s := range stores {
		from = min(from, s.Checkpoint())
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := time.Now()

	// One channel per store, so a slow store does not stall the reader
	// beyond its buffer, and all stores see the same batches.
	chans := make([]chan []Event, len(stores))
	errs := make([]error, len(stores))
	var wg sync.WaitGroup
	for i, s := range stores {
		chans[i] = make(chan []Event, 4)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for batch := range chans[i] {
				if errs[i] != nil {
					continue
				}
				if err := s.Apply(ctx, batch); err != nil {
					errs[i] = err
					cancel()
				}
			}
		}()
	}
	p := Progress{Position: from, Target: limit}
	readErr := func() error {
		after := from
		for after < limit {
			recs, err := r.ReadAll(ctx, after, opt.Batch)
			if err != nil {
				return fmt.Errorf("read events after %d: %w", after, err)
			}
			if len(recs) == 0 {
				return nil
			}
			batch := make([]Event, 0, len(recs))
			stop := false
			for _, rec := range recs {
				if rec.Position > limit {
					stop = true
					break
				}
				e, err := FromRecorded(rec)
				if err != nil {
					return err
				}
				if !opt.UntilTime.IsZero() && e.RecordedAt.After(opt.UntilTime) {
					stop = true
					break
				}
				batch = append(batch, e)
			}
			if len(batch) > 0 {
				for _, c := range chans {
					select {
					case c <- batch:
					case <-ctx.Done():
						return ctx.Err()
					}
				}
				after = batch[len(batch)-1].Position
				p.Position, p.Events, p.Elapsed = after, p.Events+uint64(len(batch)), time.Since(start)
				if opt.Progress != nil {
					opt.Progress(p)
				}
			}
			if stop {
				return nil
			}
		}
		return nil
	}()
	for _, c := range chans {
		close(c)
	}
	wg.Wait()
	p.Elapsed = time.Since(start)
	if err := errors.Join(errs...); err != nil {
		return p, err
	}
	if readErr != nil {
		return p, readErr
	}
	return p, nil
}

package projections

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/chronolog/chronolog/adapters/bus"
	"github.com/chronolog/chronolog/domain/eventstore"
)

// EventSource is what the Runner reads the event store through.
type EventSource interface {
	// SubscribeAll delivers every event after a position, in commit order.
	SubscribeAll(ctx context.Context, after uint64) (eventstore.Subscription, error)
	// Head is the position of the last committed event.
	Head() uint64
}

// RunnerConfig configures a Runner.
type RunnerConfig struct {
	// MaxBatch caps the events of one batch. Default 2048.
	MaxBatch int
	// Logger logs failed projections (at error) and the runner's life.
	// Default slog.Default().
	Logger *slog.Logger
	// Bus configures the bus the batches travel on (retries, backoff);
	// its Logger defaults to Logger.
	Bus bus.Config
	// LagWindow is how many of the most recent batches the time-lag
	// figures are over, per projection. Default 1024.
	LagWindow int
	// ResubscribeDelay is the wait before reading again after the event
	// store failed a read. Default 1 s.
	ResubscribeDelay time.Duration
	// Linger is how long the feeder keeps collecting after a batch's
	// first event, while the batch is under MaxBatch. Each batch costs
	// every read store a commit: under load a few tens of milliseconds
	// of lag buy far fewer commits. Default 50 ms; negative disables.
	Linger time.Duration
}

func (c *RunnerConfig) setDefaults() {
	if c.MaxBatch <= 0 {
		c.MaxBatch = 2048
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Bus.Logger == nil {
		c.Bus.Logger = c.Logger
	}
	if c.LagWindow <= 0 {
		c.LagWindow = 1024
	}
	if c.Linger == 0 {
		c.Linger = 50 * time.Millisecond
	}
	if c.ResubscribeDelay <= 0 {
		c.ResubscribeDelay = time.Second
	}
}

// Runner keeps projections live. A feeder subscribes to the event store
// from the lowest checkpoint of the read stores, cuts the committed events
// into batches (what the subscription has at hand, up to MaxBatch) and
// publishes them on the bus (adapters/bus); each projection is a router
// handler that applies every batch to its read store (Store.Apply skips
// what a store already has). The bus hands a batch to every projection at
// once and the feeder waits until all have it, so each sees the batches
// in commit order and none runs ahead of the others by more than a batch.
//
// A projection whose batch is poisoned (its Apply still fails after the
// bus's retries, or fails with ErrUnknownEventType, or the batch does not
// follow its checkpoint) stops: it is marked failed with the error, logged
// at error level, and takes no further batch until the runner is started
// anew, which replays it from its checkpoint. It never skips an event.
// The other projections go on.
//
// The Runner owns its stores' Apply while it runs; it does not close them.
type Runner struct {
	src   EventSource
	cfg   RunnerConfig
	log   *slog.Logger
	projs []*live
	now   func() time.Time

	mu      sync.Mutex
	state   int // runnerNew, runnerStarted, runnerStopped
	bus     *bus.Bus
	router  *message.Router
	routed  chan error // router.Run's result
	cancel  context.CancelFunc
	feeding chan struct{} // closed when the feeder returns
}

const (
	runnerNew = iota
	runnerStarted
	runnerStopped
)

// live is one projection as the runner runs it.
type live struct {
	store *Store
	name  string
	// checkpoint mirrors the store's, so that Status never waits for a
	// batch being applied.
	checkpoint atomic.Uint64
	// evs is the handler's buffer; the bus hands it one batch at a time.
	evs []Event

	mu     sync.Mutex
	failed string
	lags   lagWindow
}

// NewRunner makes a runner of stores, fed from src.
func NewRunner(src EventSource, stores []*Store, cfg RunnerConfig) (*Runner, error) {
	if src == nil {
		return nil, errors.New("projections: runner needs an event source")
	}
	if len(stores) == 0 {
		return nil, errors.New("projections: runner needs at least one read store")
	}
	cfg.setDefaults()
	r := &Runner{src: src, cfg: cfg, log: cfg.Logger, now: time.Now}
	for _, s := range stores {
		if slices.ContainsFunc(r.projs, func(l *live) bool { return l.name == s.Name() }) {
			return nil, fmt.Errorf("projections: %s given twice", s.Name())
		}
		l := &live{store: s, name: s.Name(), lags: lagWindow{size: cfg.LagWindow}}
		l.checkpoint.Store(s.Checkpoint())
		r.projs = append(r.projs, l)
	}
	return r, nil
}

// Start starts the router and the feeder. The runner runs until ctx is
// done or Stop is called; Stop must be called in either case, before the
// event store and the read stores are closed. A Runner starts once.
func (r *Runner) Start(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.state != runnerNew {
		return errors.New("projections: a runner starts once")
	}
	b, err := bus.New(r.cfg.Bus)
	if err != nil {
		return err
	}
	router, err := b.NewRouter(bus.RouterConfig{OnPoison: r.poisoned})
	if err != nil {
		b.Close()
		return err
	}
	for _, l := range r.projs {
		b.AddHandler(router, l.name, func(ctx context.Context, batch bus.Batch) error { return r.apply(ctx, l, batch) })
	}
	routed := make(chan error, 1)
	go func() { routed <- router.Run(context.Background()) }()
	select {
	case <-router.Running():
	case err := <-routed:
		b.Close()
		return fmt.Errorf("projections: router: %w", err)
	}
	from := r.projs[0].checkpoint.Load()
	for _, l := range r.projs[1:] {
		from = min(from, l.checkpoint.Load())
	}
	sub, err := r.src.SubscribeAll(ctx, from)
	if err != nil {
		router.Close()
		<-routed
		b.Close()
		return fmt.Errorf("projections: subscribe to the events after %d: %w", from, err)
	}
	fctx, cancel := context.WithCancel(ctx)
	r.bus, r.router, r.routed, r.cancel, r.feeding = b, router, routed, cancel, make(chan struct{})
	r.state = runnerStarted
	head := r.src.Head()
	if from > head {
		r.log.Warn("projections: a read store is ahead of the event store: it waits for events it has already applied",
			"from", from, "head", head)
	}
	r.log.Info("projections: live", "projections", strings.Join(r.names(), ","), "from", from, "head", head)
	go r.feed(fctx, sub, from)
	return nil
}

// Stop stops the feeder, lets the projections finish the batch they are
// applying, and closes the router and the bus. It returns once every
// goroutine the runner started has returned.
func (r *Runner) Stop() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.state != runnerStarted {
		r.state = runnerStopped
		return nil
	}
	r.state = runnerStopped
	r.cancel()
	<-r.feeding
	errs := []error{r.router.Close(), <-r.routed, r.bus.Close()}
	return errors.Join(errs...)
}

func (r *Runner) names() []string {
	out := make([]string, len(r.projs))
	for i, l := range r.projs {
		out[i] = l.name
	}
	return out
}

// batchReceiver is a subscription that hands out what it has read in one
// go (the embedded store's does).
type batchReceiver interface {
	RecvBatch(ctx context.Context, max int) ([]eventstore.RecordedEvent, error)
}

func receiver(sub eventstore.Subscription) func(context.Context, int) ([]eventstore.RecordedEvent, error) {
	if b, ok := sub.(batchReceiver); ok {
		return b.RecvBatch
	}
	return func(ctx context.Context, _ int) ([]eventstore.RecordedEvent, error) {
		e, err := sub.Recv(ctx)
		if err != nil {
			return nil, err
		}
		return []eventstore.RecordedEvent{e}, nil
	}
}

// linger adds to batch what commits within Linger, up to MaxBatch. The
// wait ending is not an error.
func (r *Runner) linger(ctx context.Context, recv func(context.Context, int) ([]eventstore.RecordedEvent, error), batch []eventstore.RecordedEvent) ([]eventstore.RecordedEvent, error) {
	lctx, cancel := context.WithTimeout(ctx, r.cfg.Linger)
	defer cancel()
	for len(batch) < r.cfg.MaxBatch {
		more, err := recv(lctx, r.cfg.MaxBatch-len(batch))
		batch = append(batch, more...)
		if err != nil {
			if lctx.Err() != nil && ctx.Err() == nil {
				return batch, nil
			}
			return batch, err
		}
	}
	return batch, nil
}

// feed publishes the events after after until ctx ends.
func (r *Runner) feed(ctx context.Context, sub eventstore.Subscription, after uint64) {
	defer close(r.feeding)
	defer func() { sub.Close() }()
	recv := receiver(sub)
	buf := make([]eventstore.RecordedEvent, 0, r.cfg.MaxBatch)
	for {
		// Block for the first events, then take whatever else is already
		// committed, up to MaxBatch: under load batches grow, idle they
		// carry a request at a time.
		batch, err := recv(ctx, r.cfg.MaxBatch)
		batch = append(buf[:0], batch...)
		for err == nil && len(batch) > 0 && len(batch) < r.cfg.MaxBatch && r.src.Head() > batch[len(batch)-1].Position {
			var more []eventstore.RecordedEvent
			more, err = recv(ctx, r.cfg.MaxBatch-len(batch))
			batch = append(batch, more...)
		}
		if err == nil && len(batch) > 0 && len(batch) < r.cfg.MaxBatch && r.cfg.Linger > 0 {
			batch, err = r.linger(ctx, recv, batch)
		}
		if len(batch) > 0 {
			if perr := r.bus.Publish(bus.Batch{After: after, Events: batch}); perr != nil {
				r.failAll(fmt.Errorf("feeder: %w", perr))
				return
			}
			after = batch[len(batch)-1].Position
			if r.router.IsClosed() && ctx.Err() == nil {
				r.failAll(errors.New("feeder: the router stopped"))
				return
			}
		}
		if err == nil {
			continue
		}
		switch {
		case ctx.Err() != nil:
			return
		case errors.Is(err, eventstore.ErrClosed):
			r.failAll(fmt.Errorf("feeder: %w", err))
			return
		}
		r.log.Error("projections: reading the event store failed; reading again", "after", after, "err", err)
		sub.Close()
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(r.cfg.ResubscribeDelay):
			}
			if sub, err = r.src.SubscribeAll(ctx, after); err == nil {
				break
			}
			r.log.Error("projections: subscribing to the event store failed", "after", after, "err", err)
		}
		recv = receiver(sub)
	}
}

// apply is a projection's handler: it applies one batch.
func (r *Runner) apply(ctx context.Context, l *live, batch bus.Batch) error {
	if l.failure() != "" {
		return nil // stopped until restart: acknowledged, not applied
	}
	cp := l.store.Checkpoint()
	if batch.After > cp {
		return bus.Permanent(fmt.Errorf("%s: batch of events %d..%d follows %d, but the read store stands at %d: the events in between were not applied",
			l.name, batch.First(), batch.Last(), batch.After, cp))
	}
	recs := batch.Events
	for len(recs) > 0 && recs[0].Position <= cp {
		recs = recs[1:]
	}
	if len(recs) == 0 {
		return nil
	}
	evs := l.evs[:0]
	for _, rec := range recs {
		e, err := FromRecorded(rec)
		if err != nil {
			return bus.Permanent(fmt.Errorf("%s: %w", l.name, err))
		}
		evs = append(evs, e)
	}
	l.evs = evs
	last := evs[len(evs)-1]
	err := l.store.Apply(ctx, evs)
	clear(evs) // the payloads belong to the message
	if err != nil {
		if errors.Is(err, ErrUnknownEventType) {
			return bus.Permanent(err)
		}
		return err
	}
	committed := r.now()
	l.checkpoint.Store(last.Position)
	if !last.RecordedAt.IsZero() {
		l.mu.Lock()
		l.lags.add(committed.Sub(last.RecordedAt))
		l.mu.Unlock()
	}
	return nil
}

// poisoned stops the projection whose batch was poisoned.
func (r *Runner) poisoned(p bus.Poisoned) {
	for _, l := range r.projs {
		if l.name == p.Handler {
			r.fail(l, p.Reason, "batch", p.Message.UUID, "types", p.Message.Metadata.Get(bus.MetaEventTypes))
			return
		}
	}
	r.log.Error("projections: a batch was poisoned by an unknown handler", "handler", p.Handler, "batch", p.Message.UUID, "reason", p.Reason)
}

func (r *Runner) failAll(err error) {
	for _, l := range r.projs {
		r.fail(l, err.Error())
	}
}

// fail marks l failed, once, and says so loudly.
func (r *Runner) fail(l *live, reason string, attrs ...any) {
	l.mu.Lock()
	first := l.failed == ""
	if first {
		l.failed = reason
	}
	l.mu.Unlock()
	if !first {
		return
	}
	r.log.Error("PROJECTION STOPPED: it takes no further events until tsad restarts, and then replays from its checkpoint",
		append([]any{"projection", l.name, "checkpoint", l.checkpoint.Load(), "head", r.src.Head(), "reason", reason}, attrs...)...)
}

func (l *live) failure() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.failed
}

// ProjectionStatus is where one live projection stands.
type ProjectionStatus struct {
	Name string
	// Checkpoint is the position of the last event applied; Head the
	// event store's last; LagEvents the difference.
	Checkpoint, Head, LagEvents uint64
	// LagP50, LagP99 and LagMax are over the recent batches (RunnerConfig.
	// LagWindow): from the recordedAt of a batch's last event to the
	// commit of the batch in the read store.
	LagP50, LagP99, LagMax time.Duration
	// Failed is why the projection stopped; empty while it runs.
	Failed string
}

// Status reports every projection, in the order the stores were given.
func (r *Runner) Status() []ProjectionStatus {
	head := r.src.Head()
	out := make([]ProjectionStatus, len(r.projs))
	for i, l := range r.projs {
		s := ProjectionStatus{Name: l.name, Checkpoint: l.checkpoint.Load(), Head: head}
		if head > s.Checkpoint {
			s.LagEvents = head - s.Checkpoint
		}
		l.mu.Lock()
		s.LagP50, s.LagP99, s.LagMax = l.lags.stats()
		s.Failed = l.failed
		l.mu.Unlock()
		out[i] = s
	}
	return out
}

// lagWindow keeps the most recent lag samples.
type lagWindow struct {
	size    int
	samples []time.Duration
	next    int
}

func (w *lagWindow) add(d time.Duration) {
	if len(w.samples) < w.size {
		w.samples = append(w.samples, d)
		return
	}
	w.samples[w.next] = d
	w.next = (w.next + 1) % w.size
}

func (w *lagWindow) stats() (p50, p99, maxLag time.Duration) {
	if len(w.samples) == 0 {
		return 0, 0, 0
	}
	s := slices.Clone(w.samples)
	slices.Sort(s)
	at := func(p float64) time.Duration { return s[int(float64(len(s)-1)*p)] }
	return at(0.5), at(0.99), s[len(s)-1]
}

package projections

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chronolog/chronolog/domain/events"
	"github.com/chronolog/chronolog/domain/eventstore"
	"github.com/chronolog/chronolog/domain/latency"
)

// RunnerConfig configures a Runner.
type RunnerConfig struct {
	// MaxBatch caps the events of one batch, so one read-store
	// transaction. Default 2048.
	MaxBatch int
	// Logger logs failed projections (at error) and the runner's life.
	// Default slog.Default().
	Logger *slog.Logger
	// LagWindow is how many of the most recent batches the time-lag
	// figures are over, per projection. Default 1024.
	LagWindow int
	// Retries is how many times a batch whose transaction failed is tried
	// again, after RetryDelay doubling each time, before its projection
	// stops. Default 3; negative for none.
	Retries    int
	RetryDelay time.Duration // default 50 ms
	// CheckpointEvery is how long a read store may let its checkpoint
	// stand, in memory only, while the batches hold no event it reads:
	// a batch of requests costs the clock's store no commit. Default 1 s;
	// negative commits every batch.
	CheckpointEvery time.Duration

	// Until, UntilTime and Progress bound and report Run.
	//
	// Until is the last position applied; zero means up to the feed's
	// head when Run starts. UntilTime stops before the first event
	// recorded after it: the read models as they were then.
	Until     uint64
	UntilTime time.Time
	// Progress, when set, is called after each batch Run hands out.
	Progress func(Progress)
}

func (c *RunnerConfig) setDefaults() {
	if c.MaxBatch <= 0 {
		c.MaxBatch = 2048
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.LagWindow <= 0 {
		c.LagWindow = 1024
	}
	switch {
	case c.Retries == 0:
		c.Retries = 3
	case c.Retries < 0:
		c.Retries = 0
	}
	if c.RetryDelay <= 0 {
		c.RetryDelay = 50 * time.Millisecond
	}
	if c.CheckpointEvery == 0 {
		c.CheckpointEvery = time.Second
	}
}

// Runner applies the events of a Feed to read models. A feeder reads the
// feed from the lowest checkpoint of the read stores, decodes each event
// once (the envelope of every event a projection reads, the data of the
// types some projection handles) and hands each batch to every read
// model's worker, which applies it in one transaction of its read store
// (skipping what the store has already applied). A worker lags its
// feeder by two batches at most: the slowest read model holds the feed
// back instead of letting batches pile up in memory.
//
// Run applies the feed up to a limit and returns: a replay. Start keeps
// the read models live until Stop. There, a read model whose batch still
// fails after the retries (or cannot be decoded, or does not follow its
// checkpoint) stops: it is marked failed with the error, logged at error
// level, and takes no further batch until the runner is started anew,
// which replays it from its checkpoint. It never skips an event. The
// other read models go on.
type Runner struct {
	feed    Feed
	cfg     RunnerConfig
	log     *slog.Logger
	workers []*worker
	// handled is every type some projection handles: the others are not
	// decoded.
	handled map[string]bool
	now     func() time.Time

	mu      sync.Mutex
	state   int // runnerNew, runnerStarted, runnerStopped
	cancel  context.CancelFunc
	stopped chan struct{} // closed when the feeder and workers are done
}

const (
	runnerNew = iota
	runnerStarted
	runnerStopped
)

var projectionName = regexp.MustCompile(`^[a-z][a-z0-9-]{0,40}$`)

// NewRunner makes a runner of models, fed from feed.
func NewRunner(feed Feed, models []Model, cfg RunnerConfig) (*Runner, error) {
	if feed == nil {
		return nil, errors.New("projections: a runner needs a feed")
	}
	if len(models) == 0 {
		return nil, errors.New("projections: a runner needs at least one read model")
	}
	cfg.setDefaults()
	r := &Runner{feed: feed, cfg: cfg, log: cfg.Logger, handled: map[string]bool{}, now: time.Now}
	for _, m := range models {
		name := m.Projection.Name()
		if !projectionName.MatchString(name) {
			return nil, fmt.Errorf("projections: name %q: lower case, digits and '-'", name)
		}
		if slices.ContainsFunc(r.workers, func(w *worker) bool { return w.name == name }) {
			return nil, fmt.Errorf("projections: %s given twice", name)
		}
		w := &worker{model: m, name: name, handlers: map[string]Handler{}, lags: latency.Window{Size: cfg.LagWindow}}
		w.flusher, _ = m.Projection.(Flusher)
		for _, h := range m.Projection.Handlers() {
			if events.New(h.eventType) == nil {
				return nil, fmt.Errorf("projections: %s handles %s, which is no registered event type", name, h.eventType)
			}
			if _, dup := w.handlers[h.eventType]; dup {
				return nil, fmt.Errorf("projections: %s handles %s twice", name, h.eventType)
			}
			w.handlers[h.eventType] = h
			r.handled[h.eventType] = true
		}
		w.stored = m.Store.Checkpoint()
		w.checkpoint.Store(w.stored)
		r.workers = append(r.workers, w)
	}
	return r, nil
}

// Replay applies the events of feed to models up to cfg's limit (Until,
// UntilTime, or the feed's head at the start): the runner with a limit.
func Replay(ctx context.Context, feed Feed, models []Model, cfg RunnerConfig) (Progress, error) {
	r, err := NewRunner(feed, models, cfg)
	if err != nil {
		return Progress{}, err
	}
	return r.Run(ctx)
}

// Progress is where a run stands.
type Progress struct {
	// Position is the last position handed out; Target the run's limit.
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

// Run applies the feed up to the configured limit and returns where it
// stopped. The first read model that fails stops the run with its error.
func (r *Runner) Run(ctx context.Context) (Progress, error) {
	r.mu.Lock()
	if r.state != runnerNew {
		r.mu.Unlock()
		return Progress{}, errors.New("projections: a runner runs once")
	}
	r.state = runnerStopped
	r.mu.Unlock()
	limit := r.cfg.Until
	if limit == 0 {
		limit = r.feed.Head()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu    sync.Mutex
		first error
	)
	stop := func(err error) {
		mu.Lock()
		if first == nil {
			first = err
		}
		mu.Unlock()
		cancel()
	}
	if limit == 0 {
		return Progress{}, nil // an empty record
	}
	p, err := r.run(ctx, ctx, limit, stop)
	if first != nil {
		return p, first
	}
	return p, err
}

// Start starts feeding the read models from their lowest checkpoint. The
// runner runs until Stop, which must be called before the feed's event
// store and the read stores are closed; when ctx ends, it stops reading.
// A Runner starts once.
func (r *Runner) Start(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.state != runnerNew {
		return errors.New("projections: a runner starts once")
	}
	r.state = runnerStarted
	fctx, cancel := context.WithCancel(ctx)
	r.cancel, r.stopped = cancel, make(chan struct{})
	from, head := r.lowest(), r.feed.Head()
	if from > head {
		r.log.Warn("projections: a read store is ahead of the event store: it waits for events it has already applied",
			"from", from, "head", head)
	}
	r.log.Info("projections: live", "projections", strings.Join(r.names(), ","), "from", from, "head", head)
	go func() {
		defer close(r.stopped)
		// The workers finish the batches they were handed: those events
		// are committed, and applying them is never wrong.
		_, err := r.run(fctx, context.WithoutCancel(ctx), 0, nil)
		if err != nil && fctx.Err() == nil {
			for _, w := range r.workers {
				r.fail(w, fmt.Sprintf("feeder: %v", err))
			}
		}
	}()
	return nil
}

// Stop stops the feeder, lets each read model apply the batches it was
// handed, and returns once every goroutine the runner started has.
func (r *Runner) Stop() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.state != runnerStarted {
		r.state = runnerStopped
		return nil
	}
	r.state = runnerStopped
	r.cancel()
	<-r.stopped
	return r.feed.Close()
}

func (r *Runner) names() []string {
	out := make([]string, len(r.workers))
	for i, w := range r.workers {
		out[i] = w.name
	}
	return out
}

func (r *Runner) lowest() uint64 {
	from := r.workers[0].checkpoint.Load()
	for _, w := range r.workers[1:] {
		from = min(from, w.checkpoint.Load())
	}
	return from
}

// run feeds the workers from the lowest checkpoint up to limit (none when
// zero: live) until the feed ends or fctx does, and waits for the
// workers, which apply under wctx. A worker's failure goes to stop when
// it is set (Run), or stops that worker alone (Start).
func (r *Runner) run(fctx, wctx context.Context, limit uint64, stop func(error)) (Progress, error) {
	start := time.Now()
	var wg sync.WaitGroup
	for _, w := range r.workers {
		w.in = make(chan batch, 2)
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.work(wctx, w, stop)
		}()
	}
	after := r.lowest()
	p := Progress{Position: after, Target: limit}
	err := r.feedWorkers(fctx, after, limit, &p, start)
	for _, w := range r.workers {
		close(w.in)
	}
	wg.Wait()
	p.Elapsed = time.Since(start)
	return p, err
}

// batch is a run of decoded events handed to every worker, after the
// position after. Its events are shared: nobody changes them.
type batch struct {
	after  uint64
	events []Event
}

// Event is a committed event as the runner hands it to the read models:
// its Meta, and its data decoded when some projection handles its type.
type Event struct {
	Meta
	Data events.Event
	// err is why it could not be decoded; it fails the read models that
	// handle its type.
	err error
}

func (r *Runner) feedWorkers(ctx context.Context, after, limit uint64, p *Progress, start time.Time) error {
	bounded := limit != 0
	for !bounded || after < limit {
		max := r.cfg.MaxBatch
		if limit != 0 {
			max = int(min(uint64(max), limit-after))
		}
		recs, err := r.feed.Read(ctx, after, max)
		if errors.Is(err, io.EOF) && bounded {
			return nil
		}
		if err != nil {
			if ctx.Err() != nil && !bounded {
				return nil
			}
			return err
		}
		evs, stop := r.decode(recs, limit)
		if len(evs) > 0 {
			b := batch{after: after, events: evs}
			for _, w := range r.workers {
				select {
				case w.in <- b:
				case <-ctx.Done():
					if bounded {
						return ctx.Err()
					}
					return nil
				}
			}
			after = evs[len(evs)-1].Position
			p.Position, p.Events, p.Elapsed = after, p.Events+uint64(len(evs)), time.Since(start)
			if r.cfg.Progress != nil {
				r.cfg.Progress(*p)
			}
		}
		if stop {
			return nil
		}
	}
	return nil
}

// decode makes the batch's events, up to limit (none when zero) and
// before the first recorded after UntilTime; stop tells that the run
// ends with them.
func (r *Runner) decode(recs []eventstore.RecordedEvent, limit uint64) (evs []Event, stop bool) {
	evs = make([]Event, 0, len(recs))
	byTime := !r.cfg.UntilTime.IsZero()
	for i, rec := range recs {
		if limit != 0 && rec.Position > limit {
			return evs, true
		}
		// A type no longer written reaches the read models as the one it
		// reads as (events.Upcaster).
		current := events.CurrentType(rec.Type)
		e := Event{Meta: Meta{Position: rec.Position, Stream: rec.Stream, ID: rec.ID, Type: current}}
		handled := r.handled[current]
		// The envelope is read for the events a projection reads, for
		// the time limit, and for the lag (the batch's last).
		var (
			env events.Envelope
			err error
		)
		switch {
		case handled:
			env, e.Data, err = events.DecodeEvent(rec.Type, rec.Payload)
			if up, ok := e.Data.(events.Upcaster); ok && err == nil {
				e.Data = up.Upcast()
			}
		case byTime || i == len(recs)-1:
			env, err = events.DecodeEnvelope(rec.Payload)
		}
		if err != nil {
			e.err = fmt.Errorf("event %d (%s): %w", rec.Position, rec.Type, err)
		}
		e.RecordedAt, e.Service, e.Node = env.RecordedAt, env.Metadata.Service, env.Metadata.Node
		if byTime && e.err == nil && e.RecordedAt.After(r.cfg.UntilTime) {
			return evs, true
		}
		evs = append(evs, e)
	}
	return evs, false
}

// worker is one read model as the runner runs it.
type worker struct {
	model    Model
	name     string
	handlers map[string]Handler
	flusher  Flusher
	in       chan batch
	// checkpoint is the position applied, which may stand above the
	// store's (stored) by batches that held nothing for it; it is read
	// by Status without waiting for a batch.
	checkpoint atomic.Uint64
	stored     uint64
	committed  time.Time

	mu     sync.Mutex
	failed string
	lags   latency.Window
}

// permanent is a failure that retrying does not mend.
type permanent struct{ error }

func (p permanent) Unwrap() error { return p.error }

func (r *Runner) work(ctx context.Context, w *worker, stop func(error)) {
	for b := range w.in {
		if w.failure() != "" {
			continue // stopped until restart: its batches pass it by
		}
		if err := r.applyWithRetries(ctx, w, b); err != nil {
			if stop != nil {
				w.setFailed(err.Error())
				stop(err)
				continue
			}
			r.fail(w, err.Error())
		}
	}
	if w.failure() == "" && w.checkpoint.Load() > w.stored {
		// Keep the position applied across a restart.
		if err := r.commit(ctx, w, nil, w.checkpoint.Load()); err != nil {
			if stop != nil {
				stop(err)
			} else {
				r.log.Error("projections: keeping the checkpoint", "projection", w.name, "err", err)
			}
		}
	}
}

func (r *Runner) applyWithRetries(ctx context.Context, w *worker, b batch) error {
	delay := r.cfg.RetryDelay
	for try := 0; ; try++ {
		err := r.apply(ctx, w, b)
		var perm permanent
		if err == nil || errors.As(err, &perm) || try >= r.cfg.Retries || ctx.Err() != nil {
			return err
		}
		r.log.Warn("projections: a batch failed; trying again", "projection", w.name, "try", try+1, "err", err)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(delay):
		}
		delay *= 2
	}
}

// apply applies one batch to w's read store.
func (r *Runner) apply(ctx context.Context, w *worker, b batch) error {
	cp := w.checkpoint.Load()
	if b.after > cp {
		return permanent{fmt.Errorf("%s: a batch of events after %d, but the read store stands at %d: the events in between were not applied",
			w.name, b.after, cp)}
	}
	evs := b.events
	for len(evs) > 0 && evs[0].Position <= cp {
		evs = evs[1:]
	}
	if len(evs) == 0 {
		return nil
	}
	last := evs[len(evs)-1]
	apply := slices.ContainsFunc(evs, func(e Event) bool { _, ok := w.handlers[e.Type]; return ok })
	switch {
	case apply:
		if err := r.commit(ctx, w, evs, last.Position); err != nil {
			return err
		}
	case r.cfg.CheckpointEvery < 0 || r.now().Sub(w.committed) >= r.cfg.CheckpointEvery:
		if err := r.commit(ctx, w, nil, last.Position); err != nil {
			return err
		}
	default:
		// Nothing to apply: the checkpoint moves in memory, and in the
		// store once CheckpointEvery has passed since its last commit.
		w.checkpoint.Store(last.Position)
	}
	r.lagged(w, last)
	return nil
}

// commit applies evs in one transaction moving the store's checkpoint to
// `to`.
func (r *Runner) commit(ctx context.Context, w *worker, evs []Event, to uint64) error {
	err := w.model.Store.Update(ctx, to, func(tx Tx) error {
		for _, e := range evs {
			h, ok := w.handlers[e.Type]
			if !ok {
				continue
			}
			if e.err != nil {
				return permanent{e.err}
			}
			if err := h.apply(ctx, tx, e.Meta, e.Data); err != nil {
				return fmt.Errorf("event %d (%s): %w", e.Position, e.Type, err)
			}
		}
		if w.flusher != nil && len(evs) > 0 {
			if err := w.flusher.Flush(ctx, tx); err != nil {
				return fmt.Errorf("flush: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		if w.flusher != nil {
			w.flusher.Discard()
		}
		return fmt.Errorf("%s: %w", w.name, err)
	}
	w.stored, w.committed = to, r.now()
	w.checkpoint.Store(to)
	return nil
}

// lagged records the lag of w's read model behind the event e it has
// just applied.
func (r *Runner) lagged(w *worker, e Event) {
	if e.RecordedAt.IsZero() {
		return
	}
	d := r.now().Sub(e.RecordedAt)
	w.mu.Lock()
	w.lags.Add(d)
	w.mu.Unlock()
}

// fail marks w failed, once, and says so loudly.
func (r *Runner) fail(w *worker, reason string) {
	if !w.setFailed(reason) {
		return
	}
	r.log.Error("PROJECTION STOPPED: it takes no further events until tsad restarts, and then replays from its checkpoint",
		"projection", w.name, "checkpoint", w.checkpoint.Load(), "head", r.feed.Head(), "reason", reason)
}

func (w *worker) setFailed(reason string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.failed != "" {
		return false
	}
	w.failed = reason
	return true
}

func (w *worker) failure() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.failed
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

// Status reports every read model, in the order they were given.
func (r *Runner) Status() []ProjectionStatus {
	head := r.feed.Head()
	out := make([]ProjectionStatus, len(r.workers))
	for i, w := range r.workers {
		s := ProjectionStatus{Name: w.name, Checkpoint: w.checkpoint.Load(), Head: head}
		if head > s.Checkpoint {
			s.LagEvents = head - s.Checkpoint
		}
		w.mu.Lock()
		s.LagP50, s.LagP99, s.LagMax, _ = w.lags.Stats()
		s.Failed = w.failed
		w.mu.Unlock()
		out[i] = s
	}
	return out
}

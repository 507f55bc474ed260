package projections_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.uber.org/goleak"

	"github.com/chronolog/chronolog/adapters/bus"
	"github.com/chronolog/chronolog/adapters/eventstore/sqlite"
	"github.com/chronolog/chronolog/domain/events"
	"github.com/chronolog/chronolog/domain/eventstore"
	"github.com/chronolog/chronolog/projections"
)

// typeCounter counts events by type into its table, once per batch (it
// is a Flusher), and fails on the types in fail.
type typeCounter struct {
	name string
	// fail maps a type to the error applying it returns; calls counts
	// those calls.
	fail  map[string]error
	mu    sync.Mutex
	calls int
	batch map[string]int
}

func newCounter(name string) *typeCounter { return &typeCounter{name: name, batch: map[string]int{}} }

func (c *typeCounter) Name() string { return c.name }
func (c *typeCounter) Schema() []string {
	return []string{`CREATE TABLE IF NOT EXISTS counts (type TEXT PRIMARY KEY, n INTEGER NOT NULL)`}
}
func (c *typeCounter) Apply(ctx context.Context, tx *projections.Tx, e projections.Event) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err, ok := c.fail[e.Type]; ok {
		c.calls++
		return err
	}
	c.batch[e.Type]++
	return nil
}
func (c *typeCounter) Flush(ctx context.Context, tx *projections.Tx) error {
	for typ, n := range c.batch {
		if _, err := tx.Exec(ctx, `INSERT INTO counts (type, n) VALUES (?, ?) ON CONFLICT (type) DO UPDATE SET n = n + excluded.n`, typ, n); err != nil {
			return err
		}
	}
	clear(c.batch)
	return nil
}
func (c *typeCounter) Discard() { clear(c.batch) }

func (c *typeCounter) failCalls() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls
}

// counted reads a counter's table.
func counted(t testing.TB, s *projections.Store) map[string]int {
	t.Helper()
	rows, err := s.DB().Query(`SELECT type, n FROM counts`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var typ string
		var n int
		if err := rows.Scan(&typ, &n); err != nil {
			t.Fatal(err)
		}
		out[typ] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// oddEvent is a type no real projection knows.
type oddEvent struct {
	N int `json:"n"`
}

func (oddEvent) EventType() string { return "OddThing.v1" }

// history appends events and keeps the count of each type appended.
type history struct {
	t     testing.TB
	store *sqlite.Store
	mu    sync.Mutex
	want  map[string]int
	n     int
}

func newHistory(t testing.TB) *history {
	t.Helper()
	st, err := sqlite.New(context.Background(), sqlite.Config{Path: filepath.Join(t.TempDir(), "events.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return &history{t: t, store: st, want: map[string]int{}}
}

// requests appends n requests of four events each (requested, two filter
// decisions, issued).
func (h *history) requests(n int) {
	h.t.Helper()
	for range n {
		h.mu.Lock()
		h.n++
		serial := fmt.Sprintf("%x", h.n)
		h.mu.Unlock()
		at := time.Now()
		h.append("tsr-"+serial, at,
			events.TimestampRequested{Serial: serial, Service: "s", Path: "/tsa", Method: "POST", Source: "x", ReceivedAt: at, BodySHA256: "00"},
			events.FilterDecided{Serial: serial, Filter: "hash", Verdict: events.VerdictAccepted},
			events.FilterDecided{Serial: serial, Filter: "policy", Verdict: events.VerdictAccepted},
			events.TimestampIssued{Serial: serial, GenTime: at, Policy: "1.2.3", Signer: "00", Token: []byte("token")},
		)
	}
}

func (h *history) odd() uint64 {
	h.t.Helper()
	return h.append("odd", time.Now(), oddEvent{N: 1})
}

func (h *history) append(stream string, at time.Time, evs ...events.Event) uint64 {
	h.t.Helper()
	var data []eventstore.EventData
	for _, e := range evs {
		ed, err := events.Encode(uuid.Must(uuid.NewV7()).String(), stream, at, events.Metadata{Service: "s", Node: "n"}, e)
		if err != nil {
			h.t.Fatal(err)
		}
		data = append(data, ed)
	}
	res, err := h.store.Append(context.Background(), stream, eventstore.Any, data...)
	if err != nil {
		h.t.Error(err)
		return 0
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, e := range evs {
		h.want[e.EventType()]++
	}
	return res.Position
}

func (h *history) wanted() map[string]int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return maps.Clone(h.want)
}

func openRead(t testing.TB, dir string, p projections.Projection) *projections.Store {
	t.Helper()
	s, err := projections.Open(context.Background(), filepath.Join(dir, p.Name()+".db"), p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// logTo is a logger that keeps what it logged.
type logTo struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (l *logTo) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logTo) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func startRunner(t testing.TB, src projections.EventSource, stores []*projections.Store, cfg projections.RunnerConfig) *projections.Runner {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = quietLog()
	}
	if cfg.Bus.RetryInterval == 0 {
		cfg.Bus.RetryInterval, cfg.Bus.RetryMaxInterval = time.Millisecond, 5*time.Millisecond
	}
	r, err := projections.NewRunner(src, stores, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return r
}

func stop(t testing.TB, r *projections.Runner) {
	t.Helper()
	if err := r.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
}

// noLeaks checks, once the test and its cleanups are done, that every
// goroutine started since is gone. Call it first.
func noLeaks(t *testing.T) {
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opt) })
}

// waitStatus waits until every named projection satisfies ok.
func waitStatus(t *testing.T, r *projections.Runner, ok func(projections.ProjectionStatus) bool) []projections.ProjectionStatus {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		st := r.Status()
		all := true
		for _, s := range st {
			all = all && ok(s)
		}
		if all {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out: %+v", st)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func caughtUp(s projections.ProjectionStatus) bool { return s.LagEvents == 0 && s.Checkpoint == s.Head }

func TestRunnerAppliesLiveEvents(t *testing.T) {
	noLeaks(t)
	h := newHistory(t)
	h.requests(10) // before the start: caught up from the store
	dir := t.TempDir()
	a, b := openRead(t, dir, newCounter("count-a")), openRead(t, dir, newCounter("count-b"))
	r := startRunner(t, h.store, []*projections.Store{a, b}, projections.RunnerConfig{MaxBatch: 16})
	defer stop(t, r)

	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() { defer wg.Done(); h.requests(25) }()
	}
	wg.Wait()
	st := waitStatus(t, r, caughtUp)
	want := h.wanted()
	if want[events.TypeFilterDecided] != 220 {
		t.Fatalf("history: %v", want)
	}
	for _, s := range []*projections.Store{a, b} {
		if got := counted(t, s); !maps.Equal(got, want) {
			t.Errorf("%s counted %v, want %v", s.Name(), got, want)
		}
	}
	for _, s := range st {
		if s.Failed != "" || s.Head != h.store.Head() || s.LagMax <= 0 || s.LagP50 > s.LagP99 || s.LagP99 > s.LagMax {
			t.Errorf("status %+v", s)
		}
	}
}

func TestRunnerRestartResumesFromCheckpoint(t *testing.T) {
	noLeaks(t)
	h := newHistory(t)
	dir := t.TempDir()
	for round := range 3 {
		// Each round opens the read store anew, as a restart does.
		s, err := projections.Open(context.Background(), filepath.Join(dir, "count.db"), newCounter("count"))
		if err != nil {
			t.Fatal(err)
		}
		if round > 0 && s.Checkpoint() != h.store.Head()-4*5 {
			t.Fatalf("round %d: reopened at %d, head %d", round, s.Checkpoint(), h.store.Head())
		}
		r := startRunner(t, h.store, []*projections.Store{s}, projections.RunnerConfig{})
		h.requests(7)
		waitStatus(t, r, caughtUp)
		stop(t, r)
		h.requests(5) // while stopped
		if got, want := counted(t, s), h.wanted(); got[events.TypeTimestampIssued] != want[events.TypeTimestampIssued]-5 {
			t.Fatalf("round %d: counted %v, %v appended", round, got, want)
		}
		s.Close()
	}
	s := openRead(t, dir, newCounter("count"))
	r := startRunner(t, h.store, []*projections.Store{s}, projections.RunnerConfig{})
	defer stop(t, r)
	waitStatus(t, r, caughtUp)
	if got, want := counted(t, s), h.wanted(); !maps.Equal(got, want) {
		t.Fatalf("counted %v, want %v: an event applied twice or missed", got, want)
	}
}

func TestRunnerFailedProjectionStopsAlone(t *testing.T) {
	for _, tc := range []struct {
		name  string
		err   error
		calls int // how often the failing Apply is called
	}{
		{"unknown event type", fmt.Errorf("%w: OddThing.v1", projections.ErrUnknownEventType), 1},
		{"error that retrying does not mend", errors.New("constraint failed"), 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			noLeaks(t)
			h := newHistory(t)
			dir := t.TempDir()
			bad := newCounter("bad")
			bad.fail = map[string]error{"OddThing.v1": tc.err}
			good, badStore := openRead(t, dir, newCounter("good")), openRead(t, dir, bad)
			logs := &logTo{}
			r := startRunner(t, h.store, []*projections.Store{good, badStore}, projections.RunnerConfig{
				Logger: slog.New(slog.NewTextHandler(logs, nil)),
				Bus:    bus.Config{MaxRetries: 3, RetryInterval: time.Millisecond, RetryMaxInterval: 2 * time.Millisecond},
			})
			defer stop(t, r)

			h.requests(3)
			waitStatus(t, r, caughtUp)
			before := h.store.Head()
			oddAt := h.odd()
			h.requests(3)
			st := waitStatus(t, r, func(s projections.ProjectionStatus) bool {
				return s.Name == "bad" && s.Failed != "" || s.Name == "good" && caughtUp(s)
			})
			h.requests(2) // the failed projection takes no more
			st = waitStatus(t, r, func(s projections.ProjectionStatus) bool { return s.Name == "bad" || caughtUp(s) })

			if got, want := counted(t, good), h.wanted(); !maps.Equal(got, want) {
				t.Errorf("good counted %v, want %v", got, want)
			}
			b := st[1]
			if b.Checkpoint != before || b.LagEvents != h.store.Head()-before || !strings.Contains(b.Failed, "OddThing.v1") {
				t.Errorf("bad: %+v (odd event at %d)", b, oddAt)
			}
			if got := counted(t, badStore); got[events.TypeTimestampIssued] != 3 || got["OddThing.v1"] != 0 {
				t.Errorf("bad counted %v", got)
			}
			if bad.failCalls() != tc.calls {
				t.Errorf("the failing Apply was called %d times, want %d", bad.failCalls(), tc.calls)
			}
			if !strings.Contains(logs.String(), "PROJECTION STOPPED") || !strings.Contains(logs.String(), "projection=bad") {
				t.Errorf("not logged loudly:\n%s", logs)
			}
		})
	}
}

// A failed projection restarted with the fault mended replays from its
// checkpoint: nothing was skipped.
func TestRunnerRestartAfterFailureReplays(t *testing.T) {
	noLeaks(t)
	h := newHistory(t)
	dir := t.TempDir()
	bad := newCounter("mended")
	bad.fail = map[string]error{"OddThing.v1": projections.ErrUnknownEventType}
	s, err := projections.Open(context.Background(), filepath.Join(dir, "mended.db"), bad)
	if err != nil {
		t.Fatal(err)
	}
	r := startRunner(t, h.store, []*projections.Store{s}, projections.RunnerConfig{})
	h.requests(2)
	h.odd()
	h.requests(2)
	waitStatus(t, r, func(s projections.ProjectionStatus) bool { return s.Failed != "" })
	stop(t, r)
	s.Close()

	s = openRead(t, dir, newCounter("mended")) // the fault mended
	r = startRunner(t, h.store, []*projections.Store{s}, projections.RunnerConfig{})
	defer stop(t, r)
	waitStatus(t, r, caughtUp)
	if got, want := counted(t, s), h.wanted(); !maps.Equal(got, want) {
		t.Fatalf("counted %v, want %v", got, want)
	}
}

// Projections at different checkpoints are fed from the lowest; each
// takes only what it lacks.
func TestRunnerDifferentCheckpointsCatchUp(t *testing.T) {
	noLeaks(t)
	h := newHistory(t)
	h.requests(30)
	dir := t.TempDir()
	behind, ahead := openRead(t, dir, newCounter("behind")), openRead(t, dir, newCounter("ahead"))
	// ahead has applied the first 80 events already.
	if _, err := projections.Replay(context.Background(), h.store, []*projections.Store{ahead}, projections.ReplayOptions{Target: 80}); err != nil {
		t.Fatal(err)
	}
	if ahead.Checkpoint() != 80 || behind.Checkpoint() != 0 {
		t.Fatalf("checkpoints %d, %d", ahead.Checkpoint(), behind.Checkpoint())
	}
	r := startRunner(t, h.store, []*projections.Store{ahead, behind}, projections.RunnerConfig{MaxBatch: 7})
	defer stop(t, r)
	h.requests(10)
	waitStatus(t, r, caughtUp)
	want := h.wanted()
	for _, s := range []*projections.Store{ahead, behind} {
		if got := counted(t, s); !maps.Equal(got, want) {
			t.Errorf("%s counted %v, want %v", s.Name(), got, want)
		}
	}
}

func TestRunnerConfigAndLifecycle(t *testing.T) {
	noLeaks(t)
	h := newHistory(t)
	dir := t.TempDir()
	s := openRead(t, dir, newCounter("one"))
	if _, err := projections.NewRunner(h.store, nil, projections.RunnerConfig{}); err == nil {
		t.Error("a runner of no store")
	}
	if _, err := projections.NewRunner(h.store, []*projections.Store{s, s}, projections.RunnerConfig{}); err == nil {
		t.Error("a store given twice")
	}
	r, err := projections.NewRunner(h.store, []*projections.Store{s}, projections.RunnerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Stop(); err != nil { // before Start: nothing to stop
		t.Fatal(err)
	}
	if err := r.Start(context.Background()); err == nil {
		t.Error("started after Stop")
	}
	// A runner whose context ends stops feeding; Stop still releases it.
	ctx, cancel := context.WithCancel(context.Background())
	r, err = projections.NewRunner(h.store, []*projections.Store{s}, projections.RunnerConfig{Logger: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.Start(ctx); err == nil {
		t.Error("started twice")
	}
	cancel()
	stop(t, r)
	stop(t, r) // twice is harmless
}

// flakySource fails the first read of each of its first subscriptions,
// and offers only Recv (no RecvBatch), as another adapter might.
type flakySource struct {
	*sqlite.Store
	mu       sync.Mutex
	failures int
	subs     int
}

func (f *flakySource) SubscribeAll(ctx context.Context, after uint64) (eventstore.Subscription, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.subs++
	sub, err := f.Store.SubscribeAll(ctx, after)
	if err != nil {
		return nil, err
	}
	fail := f.failures > 0
	f.failures--
	return &flakySub{Subscription: sub, fail: fail}, nil
}

type flakySub struct {
	eventstore.Subscription
	fail bool
}

func (s *flakySub) Recv(ctx context.Context) (eventstore.RecordedEvent, error) {
	if s.fail {
		s.fail = false
		return eventstore.RecordedEvent{}, errors.New("disk I/O error")
	}
	return s.Subscription.Recv(ctx)
}

func TestRunnerResubscribesAfterReadError(t *testing.T) {
	noLeaks(t)
	h := newHistory(t)
	h.requests(5)
	src := &flakySource{Store: h.store, failures: 2}
	s := openRead(t, t.TempDir(), newCounter("count"))
	logs := &logTo{}
	r := startRunner(t, src, []*projections.Store{s}, projections.RunnerConfig{
		Logger: slog.New(slog.NewTextHandler(logs, nil)), ResubscribeDelay: time.Millisecond})
	defer stop(t, r)
	h.requests(5)
	waitStatus(t, r, caughtUp)
	if got, want := counted(t, s), h.wanted(); !maps.Equal(got, want) {
		t.Fatalf("counted %v, want %v", got, want)
	}
	src.mu.Lock()
	defer src.mu.Unlock()
	if src.subs != 3 || strings.Count(logs.String(), "disk I/O error") != 2 {
		t.Fatalf("%d subscriptions; logs:\n%s", src.subs, logs)
	}
}

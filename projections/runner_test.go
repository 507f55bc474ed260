package projections_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.uber.org/goleak"

	"github.com/chronolog/chronolog/adapters/eventstore/sqlite"
	readstore "github.com/chronolog/chronolog/adapters/readstore/sqlite"
	"github.com/chronolog/chronolog/domain/events"
	"github.com/chronolog/chronolog/domain/eventstore"
	"github.com/chronolog/chronolog/projections"
)

// typeCounter counts the events of the types it handles into its table,
// once per batch (it is a Flusher), and fails on the types in fail.
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

// tally is the handler of E's events.
func tally[E events.Event](c *typeCounter) projections.Handler {
	return projections.On(func(_ context.Context, _ projections.Tx, m projections.Meta, _ E) error {
		c.mu.Lock()
		defer c.mu.Unlock()
		if err, ok := c.fail[m.Type]; ok {
			c.calls++
			return err
		}
		c.batch[m.Type]++
		return nil
	})
}

func (c *typeCounter) Handlers() []projections.Handler {
	return []projections.Handler{
		tally[events.TimestampRequested](c), tally[events.FilterDecided](c), tally[events.FilterChainDecided](c),
		tally[events.TimestampIssued](c), tally[events.TimestampRejected](c),
	}
}

func (c *typeCounter) Flush(ctx context.Context, tx projections.Tx) error {
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
func counted(t testing.TB, s *readstore.Store) map[string]int {
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

// oddEvent is a type no projection knows, nor the events package.
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

func (h *history) serial() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.n++
	return fmt.Sprintf("%x", h.n)
}

// requests appends n requests of three events each (requested, the
// filter chain, issued), as the TSA records them.
func (h *history) requests(n int) {
	h.t.Helper()
	for range n {
		serial := h.serial()
		at := time.Now()
		h.append("tsr-"+serial, at,
			events.TimestampRequested{Serial: serial, Service: "s", Path: "/tsa", Method: "POST", Source: "x", ReceivedAt: at, BodySHA256: "00"},
			events.FilterChainDecided{Serial: serial, Rule: "r", Chain: "c", Decisions: []events.FilterDecision{{Filter: "hash", Verdict: events.VerdictAccepted}}},
			events.TimestampIssued{Serial: serial, GenTime: at, Policy: "1.2.3", Signer: "00", Token: []byte("token")},
		)
	}
}

// oldRequests appends n requests as they were recorded before the filter
// chain was one event: requested, a decision per filter, issued.
func (h *history) oldRequests(n int) {
	h.t.Helper()
	for range n {
		serial := h.serial()
		at := time.Now()
		h.append("tsr-"+serial, at,
			events.TimestampRequested{Serial: serial, Service: "s", Path: "/tsa", Method: "POST", Source: "x", ReceivedAt: at, BodySHA256: "00"},
			events.FilterDecided{Serial: serial, Filter: "hash", Verdict: events.VerdictAccepted},
			events.FilterDecided{Serial: serial, Filter: "policy", Verdict: events.VerdictAccepted},
			events.TimestampIssued{Serial: serial, GenTime: at, Policy: "1.2.3", Signer: "00", Token: []byte("token")},
		)
	}
}

// rejected appends a request refused.
func (h *history) rejected() uint64 {
	h.t.Helper()
	serial := h.serial()
	at := time.Now()
	return h.append("tsr-"+serial, at,
		events.TimestampRequested{Serial: serial, Service: "s", Path: "/tsa", Method: "POST", Source: "x", ReceivedAt: at, BodySHA256: "00"},
		events.TimestampRejected{Serial: serial, Status: "rejection", FailInfo: "badAlg", Reason: "no"},
	)
}

func (h *history) odd() uint64 {
	h.t.Helper()
	return h.append("odd", time.Now(), oddEvent{N: 1})
}

// corrupt appends an issued event whose data cannot be decoded.
func (h *history) corrupt() uint64 {
	h.t.Helper()
	res, err := h.store.Append(context.Background(), "corrupt", eventstore.Any, eventstore.EventData{
		ID: uuid.Must(uuid.NewV7()).String(), Type: events.TypeTimestampIssued,
		Payload: []byte(`{"type":"TimestampIssued.v1","data":{"serial":1}}`),
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return res.Position
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

// wanted is the count a typeCounter keeps of what was appended: the
// types it handles.
func (h *history) wanted() map[string]int {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := maps.Clone(h.want)
	maps.DeleteFunc(out, func(typ string, _ int) bool {
		return !slices.Contains([]string{events.TypeTimestampRequested, events.TypeFilterDecided, events.TypeFilterChainDecided,
			events.TypeTimestampIssued, events.TypeTimestampRejected}, typ)
	})
	return out
}

// readModel is a typeCounter in its read store.
type readModel struct {
	c projections.Projection
	s *readstore.Store
}

func (r readModel) model() projections.Model { return projections.Model{Projection: r.c, Store: r.s} }

func openRead(t testing.TB, dir string, c projections.Projection) readModel {
	t.Helper()
	s, err := readstore.Open(context.Background(), filepath.Join(dir, c.Name()+".db"), c, readstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return readModel{c, s}
}

func modelsOf(rms ...readModel) []projections.Model {
	var out []projections.Model
	for _, r := range rms {
		out = append(out, r.model())
	}
	return out
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

func startRunner(t testing.TB, src projections.EventSource, rms []readModel, cfg projections.RunnerConfig) *projections.Runner {
	t.Helper()
	return startLive(t, projections.LiveFeed(src, projections.LiveConfig{Logger: quietLog()}), rms, cfg)
}

func startLive(t testing.TB, feed projections.Feed, rms []readModel, cfg projections.RunnerConfig) *projections.Runner {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = quietLog()
	}
	if cfg.RetryDelay == 0 {
		cfg.RetryDelay = time.Millisecond
	}
	r, err := projections.NewRunner(feed, modelsOf(rms...), cfg)
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

// waitStatus waits until every projection satisfies ok.
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
	h.oldRequests(5)
	dir := t.TempDir()
	a, b := openRead(t, dir, newCounter("count-a")), openRead(t, dir, newCounter("count-b"))
	r := startRunner(t, h.store, []readModel{a, b}, projections.RunnerConfig{MaxBatch: 16})
	defer stop(t, r)

	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() { defer wg.Done(); h.requests(25) }()
	}
	wg.Wait()
	st := waitStatus(t, r, caughtUp)
	want := h.wanted()
	if want[events.TypeFilterChainDecided] != 110 || want[events.TypeFilterDecided] != 10 {
		t.Fatalf("history: %v", want)
	}
	for _, m := range []readModel{a, b} {
		if got := counted(t, m.s); !maps.Equal(got, want) {
			t.Errorf("%s counted %v, want %v", m.c.Name(), got, want)
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
		m := openRead(t, dir, newCounter("count"))
		if round > 0 && m.s.Checkpoint() != h.store.Head()-3*5 {
			t.Fatalf("round %d: reopened at %d, head %d", round, m.s.Checkpoint(), h.store.Head())
		}
		r := startRunner(t, h.store, []readModel{m}, projections.RunnerConfig{})
		h.requests(7)
		waitStatus(t, r, caughtUp)
		stop(t, r)
		h.requests(5) // while stopped
		if got, want := counted(t, m.s), h.wanted(); got[events.TypeTimestampIssued] != want[events.TypeTimestampIssued]-5 {
			t.Fatalf("round %d: counted %v, %v appended", round, got, want)
		}
		m.s.Close()
	}
	m := openRead(t, dir, newCounter("count"))
	r := startRunner(t, h.store, []readModel{m}, projections.RunnerConfig{})
	defer stop(t, r)
	waitStatus(t, r, caughtUp)
	if got, want := counted(t, m.s), h.wanted(); !maps.Equal(got, want) {
		t.Fatalf("counted %v, want %v: an event applied twice or missed", got, want)
	}
}

// TestRunnerPassesUnknownTypes: an event of a type no projection handles,
// registered or not, moves every checkpoint and stops none; the store
// keeps the position applied across a stop, though no commit was needed
// for it.
func TestRunnerPassesUnknownTypes(t *testing.T) {
	noLeaks(t)
	h := newHistory(t)
	dir := t.TempDir()
	m := openRead(t, dir, newCounter("count"))
	r := startRunner(t, h.store, []readModel{m}, projections.RunnerConfig{CheckpointEvery: time.Hour})
	h.requests(3)
	waitStatus(t, r, caughtUp)
	committed := m.s.Checkpoint()
	h.odd()
	h.append("log", time.Now(), events.LogCheckpointSigned{Origin: "o", Size: 1, Root: "00", Note: "n"})
	st := waitStatus(t, r, caughtUp)
	if st[0].Failed != "" || m.s.Checkpoint() != committed {
		t.Fatalf("status %+v, stored checkpoint %d (was %d): nothing to apply needs no commit", st, m.s.Checkpoint(), committed)
	}
	stop(t, r)
	if m.s.Checkpoint() != h.store.Head() {
		t.Fatalf("stored checkpoint %d after stop, head %d", m.s.Checkpoint(), h.store.Head())
	}
	if got, want := counted(t, m.s), h.wanted(); !maps.Equal(got, want) {
		t.Fatalf("counted %v, want %v", got, want)
	}
}

func TestRunnerFailedProjectionStopsAlone(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fail  error // the handler's error
		calls int   // how often the failing handler is called
	}{
		{"error that retrying does not mend", errors.New("constraint failed"), 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			noLeaks(t)
			h := newHistory(t)
			dir := t.TempDir()
			bad := newCounter("bad")
			bad.fail = map[string]error{events.TypeTimestampRejected: tc.fail}
			good, badStore := openRead(t, dir, newCounter("good")), openRead(t, dir, bad)
			logs := &logTo{}
			r := startRunner(t, h.store, []readModel{good, badStore}, projections.RunnerConfig{
				Logger: slog.New(slog.NewTextHandler(logs, nil)), Retries: 3, RetryDelay: time.Millisecond,
			})
			defer stop(t, r)

			h.requests(3)
			waitStatus(t, r, caughtUp)
			before := h.store.Head()
			failAt := h.rejected()
			h.requests(3)
			waitStatus(t, r, func(s projections.ProjectionStatus) bool {
				return s.Name == "bad" && s.Failed != "" || s.Name == "good" && caughtUp(s)
			})
			h.requests(2) // the failed projection takes no more
			st := waitStatus(t, r, func(s projections.ProjectionStatus) bool { return s.Name == "bad" || caughtUp(s) })

			want := h.wanted()
			if got := counted(t, good.s); !maps.Equal(got, want) {
				t.Errorf("good counted %v, want %v", got, want)
			}
			b := st[1]
			if b.Checkpoint != before || b.LagEvents != h.store.Head()-before || !strings.Contains(b.Failed, "constraint failed") {
				t.Errorf("bad: %+v (failing event at %d)", b, failAt)
			}
			if got := counted(t, badStore.s); got[events.TypeTimestampIssued] != 3 || got[events.TypeTimestampRejected] != 0 {
				t.Errorf("bad counted %v", got)
			}
			if bad.failCalls() != tc.calls {
				t.Errorf("the failing handler was called %d times, want %d", bad.failCalls(), tc.calls)
			}
			if !strings.Contains(logs.String(), "PROJECTION STOPPED") || !strings.Contains(logs.String(), "projection=bad") {
				t.Errorf("not logged loudly:\n%s", logs)
			}
		})
	}
}

// TestRunnerCorruptEventStopsItsReaders: an event that cannot be decoded
// stops the projections that read its type, and only them.
func TestRunnerCorruptEventStopsItsReaders(t *testing.T) {
	noLeaks(t)
	h := newHistory(t)
	dir := t.TempDir()
	counter := openRead(t, dir, newCounter("counter"))
	other := openRead(t, dir, &clockOnly{newCounter("clock-only")})
	r := startRunner(t, h.store, []readModel{counter, other}, projections.RunnerConfig{})
	defer stop(t, r)
	h.requests(2)
	at := h.corrupt()
	h.requests(2)
	st := waitStatus(t, r, func(s projections.ProjectionStatus) bool {
		return s.Name == "counter" && s.Failed != "" || s.Name == "clock-only" && caughtUp(s)
	})
	if !strings.Contains(st[0].Failed, fmt.Sprintf("event %d", at)) || st[0].Checkpoint >= at || st[1].Failed != "" {
		t.Fatalf("status %+v", st)
	}
}

// clockOnly reads nothing but the clock.
type clockOnly struct{ *typeCounter }

func (c *clockOnly) Handlers() []projections.Handler {
	return []projections.Handler{tally[events.ClockSampled](c.typeCounter)}
}

// A failed projection restarted with the fault mended replays from its
// checkpoint: nothing was skipped.
func TestRunnerRestartAfterFailureReplays(t *testing.T) {
	noLeaks(t)
	h := newHistory(t)
	dir := t.TempDir()
	bad := newCounter("mended")
	bad.fail = map[string]error{events.TypeTimestampRejected: errors.New("not yet")}
	m := openRead(t, dir, bad)
	r := startRunner(t, h.store, []readModel{m}, projections.RunnerConfig{Retries: -1})
	h.requests(2)
	h.rejected()
	h.requests(2)
	waitStatus(t, r, func(s projections.ProjectionStatus) bool { return s.Failed != "" })
	stop(t, r)
	m.s.Close()

	m = openRead(t, dir, newCounter("mended")) // the fault mended
	r = startRunner(t, h.store, []readModel{m}, projections.RunnerConfig{})
	defer stop(t, r)
	waitStatus(t, r, caughtUp)
	if got, want := counted(t, m.s), h.wanted(); !maps.Equal(got, want) {
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
	// ahead has applied the first 60 events already.
	if _, err := projections.Replay(context.Background(), projections.ReplayFeed(h.store), modelsOf(ahead),
		projections.RunnerConfig{Until: 60, Logger: quietLog()}); err != nil {
		t.Fatal(err)
	}
	if ahead.s.Checkpoint() != 60 || behind.s.Checkpoint() != 0 {
		t.Fatalf("checkpoints %d, %d", ahead.s.Checkpoint(), behind.s.Checkpoint())
	}
	r := startRunner(t, h.store, []readModel{ahead, behind}, projections.RunnerConfig{MaxBatch: 7})
	defer stop(t, r)
	h.requests(10)
	waitStatus(t, r, caughtUp)
	want := h.wanted()
	for _, m := range []readModel{ahead, behind} {
		if got := counted(t, m.s); !maps.Equal(got, want) {
			t.Errorf("%s counted %v, want %v", m.c.Name(), got, want)
		}
	}
}

// unregisteredHandler handles a type the events package does not know.
type unregisteredHandler struct{ *typeCounter }

func (u unregisteredHandler) Handlers() []projections.Handler {
	return []projections.Handler{projections.On(func(context.Context, projections.Tx, projections.Meta, oddEvent) error { return nil })}
}

func TestRunnerConfigAndLifecycle(t *testing.T) {
	noLeaks(t)
	h := newHistory(t)
	dir := t.TempDir()
	m := openRead(t, dir, newCounter("one"))
	feed := func() projections.Feed {
		return projections.LiveFeed(h.store, projections.LiveConfig{Logger: quietLog()})
	}
	if _, err := projections.NewRunner(feed(), nil, projections.RunnerConfig{}); err == nil {
		t.Error("a runner of no store")
	}
	if _, err := projections.NewRunner(feed(), modelsOf(m, m), projections.RunnerConfig{}); err == nil {
		t.Error("a store given twice")
	}
	if _, err := projections.NewRunner(feed(), []projections.Model{{Projection: unregisteredHandler{newCounter("odd")}, Store: m.s}}, projections.RunnerConfig{}); err == nil || !strings.Contains(err.Error(), "OddThing.v1") {
		t.Errorf("a handler of an unregistered type: %v", err)
	}
	r, err := projections.NewRunner(feed(), modelsOf(m), projections.RunnerConfig{})
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
	r, err = projections.NewRunner(feed(), modelsOf(m), projections.RunnerConfig{Logger: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.Start(ctx); err == nil {
		t.Error("started twice")
	}
	if _, err := r.Run(ctx); err == nil {
		t.Error("ran after its start")
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
	m := openRead(t, t.TempDir(), newCounter("count"))
	logs := &logTo{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	r := startLive(t, projections.LiveFeed(src, projections.LiveConfig{Logger: log, ResubscribeDelay: time.Millisecond}),
		[]readModel{m}, projections.RunnerConfig{Logger: log})
	defer stop(t, r)
	h.requests(5)
	waitStatus(t, r, caughtUp)
	if got, want := counted(t, m.s), h.wanted(); !maps.Equal(got, want) {
		t.Fatalf("counted %v, want %v", got, want)
	}
	src.mu.Lock()
	defer src.mu.Unlock()
	if src.subs != 3 || strings.Count(logs.String(), "disk I/O error") != 2 {
		t.Fatalf("%d subscriptions; logs:\n%s", src.subs, logs)
	}
}

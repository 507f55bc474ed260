package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.uber.org/goleak"

	"github.com/chronolog/chronolog/adapters/eventstore/eventstoretest"
	"github.com/chronolog/chronolog/domain/eventstore"
)

func openAt(path string) (eventstore.Store, error) {
	return New(context.Background(), Config{Path: path})
}

func TestMain(m *testing.M) {
	eventstoretest.MaybeCrashChild(openAt)
	maybeWriterChild()
	// After m.Run: no goroutine (writer, subscription, database/sql opener)
	// may outlive the tests.
	goleak.VerifyTestMain(m)
}

func newStore(t testing.TB, cfg Config) *Store {
	t.Helper()
	if cfg.Path == "" {
		cfg.Path = filepath.Join(t.TempDir(), "events.db")
	}
	s, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestContract(t *testing.T) {
	eventstoretest.Run(t, func(t *testing.T) eventstore.Store { return newStore(t, Config{}) })
}

func TestCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("kill -9 test skipped in -short mode")
	}
	eventstoretest.RunCrash(t, openAt)
}

// TestPragmas opens a fresh connection with the writer's DSN and checks
// SQLite really applied WAL and synchronous=FULL on it.
func TestPragmas(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.db")
	db, err := sql.Open("sqlite3", writerDSN(path, defaultBusyTimeout))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var mode string
	var syncMode, busy int
	ctx := context.Background()
	c, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for q, dst := range map[string]any{
		"PRAGMA journal_mode": &mode, "PRAGMA synchronous": &syncMode, "PRAGMA busy_timeout": &busy,
	} {
		if err := c.QueryRowContext(ctx, q).Scan(dst); err != nil {
			t.Fatal(q, err)
		}
	}
	if mode != "wal" || syncMode != 2 || busy != 5000 {
		t.Errorf("fresh connection: journal_mode=%q synchronous=%d busy_timeout=%d, want wal, 2, 5000", mode, syncMode, busy)
	}
}

func TestPragmasInEffect(t *testing.T) {
	s := newStore(t, Config{})
	// What the writer connection itself reported when New checked it.
	if s.journalMode != "wal" || s.synchronous != 2 {
		t.Errorf("writer connection: journal_mode=%q synchronous=%d, want wal and 2", s.journalMode, s.synchronous)
	}
	// Asked again on the writer connection, through the writer's own handle.
	var mode string
	var sync, busy int
	ctx := context.Background()
	if err := s.wconn.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if err := s.wconn.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&sync); err != nil {
		t.Fatal(err)
	}
	if err := s.wconn.QueryRowContext(ctx, "PRAGMA busy_timeout").Scan(&busy); err != nil {
		t.Fatal(err)
	}
	if mode != "wal" || sync != 2 || busy != 5000 {
		t.Errorf("writer connection now: journal_mode=%q synchronous=%d busy_timeout=%d", mode, sync, busy)
	}
	// The read pool really is read-only.
	if _, err := s.rdb.ExecContext(ctx, "DELETE FROM appends"); err == nil {
		t.Error("read pool can write")
	}
	var v int
	if err := s.rdb.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil || v != schemaVersion {
		t.Errorf("user_version = %d, %v; want %d", v, err, schemaVersion)
	}
}

func TestConfig(t *testing.T) {
	if _, err := New(context.Background(), Config{}); err == nil {
		t.Error("New without a path succeeded")
	}
	if _, err := New(context.Background(), Config{Path: filepath.Join(t.TempDir(), "no", "such", "dir", "x.db")}); err == nil {
		t.Error("New in a missing directory succeeded")
	}
	// A path SQLite would read as URI syntax.
	s := newStore(t, Config{Path: filepath.Join(t.TempDir(), "we?ird#na%20me.db")})
	if _, err := s.Append(context.Background(), "s", eventstore.NoStream, ev("T.v1", "{}")); err != nil {
		t.Fatal(err)
	}
	if s.Close() != nil {
		t.Fatal("close")
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.db")
	s := newStore(t, Config{Path: path})
	if _, err := s.wconn.ExecContext(context.Background(), "PRAGMA user_version = 99"); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s2, err := New(context.Background(), Config{Path: path}); err == nil {
		s2.Close()
		t.Fatal("opened a database with a newer schema")
	}
}

func ev(typ, payload string) eventstore.EventData {
	return eventstore.EventData{ID: uuid.Must(uuid.NewV7()).String(), Type: typ, Payload: []byte(payload)}
}

func TestReopenContinuesPositions(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.db")
	ctx := context.Background()
	s := newStore(t, Config{Path: path})
	first, err := s.Append(ctx, "a", eventstore.NoStream, ev("T.v1", `{"a":1}`), ev("T.v1", `{"a":2}`))
	if err != nil {
		t.Fatal(err)
	}
	if first.Position != 2 {
		t.Errorf("first append's position = %d, want 2 (positions start at 1)", first.Position)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = newStore(t, Config{Path: path})
	evs, err := s.ReadStream(ctx, "a")
	if err != nil || len(evs) != 2 || string(evs[1].Payload) != `{"a":2}` {
		t.Fatalf("after reopen: %v, %v", evs, err)
	}
	if _, err := s.Append(ctx, "a", eventstore.NoStream, ev("T.v1", "{}")); !errors.Is(err, eventstore.ErrWrongExpectedState) {
		t.Errorf("NoStream on a reopened stream: %v", err)
	}
	res, err := s.Append(ctx, "a", eventstore.AtRevision(1), ev("T.v1", "{}"))
	if err != nil || res.Position != 3 || res.NextExpected != 2 {
		t.Errorf("append after reopen = %+v, %v; want position 3 revision 2", res, err)
	}
	// A subscription from the old head sees only the new event.
	sub, err := s.SubscribeAll(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if e, err := sub.Recv(rctx); err != nil || e.Position != 3 {
		t.Errorf("Recv = %+v, %v", e, err)
	}
}

func TestNilPayloadStoredEmpty(t *testing.T) {
	s := newStore(t, Config{})
	ctx := context.Background()
	if _, err := s.Append(ctx, "n", eventstore.NoStream, eventstore.EventData{ID: uuid.NewString(), Type: "T.v1"}); err != nil {
		t.Fatal(err)
	}
	evs, err := s.ReadStream(ctx, "n")
	if err != nil || len(evs) != 1 || len(evs[0].Payload) != 0 {
		t.Fatalf("ReadStream = %v, %v", evs, err)
	}
}

func req(ctx context.Context, stream string, exp eventstore.ExpectedState, evs ...eventstore.EventData) *appendReq {
	enc, err := encodeAppend(evs, nil)
	if err != nil {
		panic(err)
	}
	return &appendReq{ctx: ctx, stream: stream, expected: exp, events: evs, enc: enc, done: make(chan appendResp, 1)}
}

// TestBatchIsolation hands the writer's commit one batch directly (the
// writer goroutine is idle meanwhile), so the appends share a transaction
// for sure.
func TestBatchIsolation(t *testing.T) {
	s := newStore(t, Config{})
	ctx := context.Background()
	dup := ev("T.v1", `{"dup":1}`)
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	batch := []*appendReq{
		req(ctx, "s1", eventstore.NoStream, dup, ev("T.v1", "{}")),                                    // ok: s1@0,1
		req(ctx, "s1", eventstore.AtRevision(1), ev("T.v1", "{}")),                                    // ok, sees the first: s1@2
		req(ctx, "s1", eventstore.NoStream, ev("T.v1", "{}")),                                         // wrong state
		req(ctx, "s2", eventstore.NoStream, ev("T.v1", "{}"), dup),                                    // duplicate id: fails alone
		req(ctx, "s2", eventstore.NoStream, ev("T.v1", "{}")),                                         // ok: the failed s2 left nothing
		req(canceled, "s3", eventstore.NoStream, ev("T.v1", "{}")),                                    // caller gone: not written
		req(ctx, "s1", eventstore.StreamExists, ev("T.v1", "{}")),                                     // ok: s1@3
		req(ctx, "s4", eventstore.Any, ev("T.v1", "{}"), ev("T.v1", "{}")),                            // ok
		req(ctx, "s4", eventstore.AtRevision(0), ev("T.v1", "{}")),                                    // wrong: s4 is at 1
		req(ctx, "s5", eventstore.NoStream, eventstore.EventData{ID: uuid.NewString(), Type: "T.v1"}), // ok, nil payload
	}
	state := map[string]streamState{}
	s.commit(batch, state)
	resps := make([]appendResp, len(batch))
	for i, r := range batch {
		resps[i] = <-r.done
	}
	wantErr := []func(error) bool{
		nil, nil,
		func(err error) bool { return errors.Is(err, eventstore.ErrWrongExpectedState) },
		func(err error) bool { return err != nil && strings.Contains(err.Error(), "duplicate event id") },
		nil,
		func(err error) bool { return errors.Is(err, context.Canceled) },
		nil, nil,
		func(err error) bool { return errors.Is(err, eventstore.ErrWrongExpectedState) },
		nil,
	}
	for i, r := range resps {
		if wantErr[i] == nil && r.err != nil || wantErr[i] != nil && !wantErr[i](r.err) {
			t.Errorf("append %d (%s): err = %v", i, batch[i].stream, r.err)
		}
	}
	wantNext := map[int]uint64{0: 1, 1: 2, 4: 0, 6: 3, 7: 1, 9: 0}
	var lastPos uint64
	for i := range batch {
		next, ok := wantNext[i]
		if !ok {
			continue
		}
		if resps[i].res.NextExpected != next {
			t.Errorf("append %d: NextExpected = %d, want %d", i, resps[i].res.NextExpected, next)
		}
		if resps[i].res.Position <= lastPos {
			t.Errorf("append %d: position %d after %d", i, resps[i].res.Position, lastPos)
		}
		lastPos = resps[i].res.Position
	}
	all, err := s.ReadAll(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	// 2 + 1 + 1 + 1 + 2 + 1 events, positions 1..8 without holes.
	if len(all) != 8 {
		t.Fatalf("store holds %d events, want 8", len(all))
	}
	for i, e := range all {
		if e.Position != uint64(i+1) {
			t.Errorf("event %d at position %d", i, e.Position)
		}
	}
	if s.head.Load() != 8 {
		t.Errorf("head = %d, want 8", s.head.Load())
	}
	if _, err := s.ReadStream(ctx, "s3"); !errors.Is(err, eventstore.ErrStreamNotFound) {
		t.Errorf("canceled append was written: %v", err)
	}
}

// TestCommitFailureFailsBatch makes COMMIT fail (a deferred foreign-key-like
// failure is hard to provoke, so the transaction is ended under the writer's
// feet) and checks no append of the batch is acknowledged.
func TestCommitFailureFailsBatch(t *testing.T) {
	s := newStore(t, Config{})
	ctx := context.Background()
	// A trigger that aborts the commit of any transaction touching stream
	// "poison" cannot exist in SQLite; a deferred constraint can. Emulate
	// it with a deferred foreign key.
	for _, q := range []string{
		"PRAGMA foreign_keys = ON",
		"CREATE TABLE IF NOT EXISTS parent (id TEXT PRIMARY KEY)",
		"CREATE TABLE IF NOT EXISTS child (pid TEXT REFERENCES parent(id) DEFERRABLE INITIALLY DEFERRED)",
		`CREATE TRIGGER poison AFTER INSERT ON appends WHEN NEW.stream = 'poison'
			BEGIN INSERT INTO child VALUES ('missing'); END`,
	} {
		if _, err := s.wconn.ExecContext(ctx, q); err != nil {
			t.Fatal(q, err)
		}
	}
	batch := []*appendReq{
		req(ctx, "ok-1", eventstore.NoStream, ev("T.v1", "{}")),
		req(ctx, "poison", eventstore.NoStream, ev("T.v1", "{}")),
		req(ctx, "ok-2", eventstore.NoStream, ev("T.v1", "{}")),
	}
	s.commit(batch, map[string]streamState{})
	for i, r := range batch {
		if resp := <-r.done; resp.err == nil {
			t.Errorf("append %d acknowledged though COMMIT failed", i)
		}
	}
	if all, err := s.ReadAll(ctx, 0, 10); err != nil || len(all) != 0 {
		t.Errorf("store holds %d events after a failed commit, %v", len(all), err)
	}
	if _, err := s.wconn.ExecContext(ctx, "DROP TRIGGER poison"); err != nil {
		t.Fatal(err)
	}
	// The writer carries on.
	if _, err := s.Append(ctx, "ok-1", eventstore.NoStream, ev("T.v1", "{}")); err != nil {
		t.Fatal(err)
	}
}

func TestAppendAfterCloseAndValidation(t *testing.T) {
	s := newStore(t, Config{})
	ctx := context.Background()
	if _, err := s.Append(ctx, "", eventstore.Any, ev("T.v1", "{}")); err == nil || !strings.Contains(err.Error(), "empty stream") {
		t.Errorf("empty stream: %v", err)
	}
	if _, err := s.Append(ctx, "s", eventstore.Any); err == nil || !strings.Contains(err.Error(), "no events") {
		t.Errorf("no events: %v", err)
	}
	if _, err := s.ReadAll(ctx, 0, 0); err == nil {
		t.Error("ReadAll with max 0 succeeded")
	}
	s.Close()
	if _, err := s.Append(ctx, "s", eventstore.Any, ev("T.v1", "{}")); !errors.Is(err, eventstore.ErrClosed) {
		t.Errorf("after Close: %v", err)
	}
}

// tsaRequestEvents returns four events shaped like a TSA request's
// (requested, two filter decisions, issued with a base64 token): ~2.7 KB
// of JSON whose token part does not compress, as in production.
func tsaRequestEvents(r *mrand.Rand) []eventstore.EventData { return tsaRequestEventsN(r, 0) }

// tsaRequestEventsN adds extra FilterDecided events, as a longer filter
// chain records.
func tsaRequestEventsN(r *mrand.Rand, extraFilters int) []eventstore.EventData {
	hexOf := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return hex.EncodeToString(b)
	}
	token := make([]byte, 670)
	for i := range token {
		token[i] = byte(r.Uint32())
	}
	serial := hexOf(16)
	env := func(typ, data string) eventstore.EventData {
		id := uuid.Must(uuid.NewV7()).String()
		return eventstore.EventData{ID: id, Type: typ, Payload: fmt.Appendf(nil,
			`{"type":%q,"id":%q,"stream":"tsr-%s","recordedAt":"2026-11-24T21:10:01.572064073Z","data":%s,"metadata":{"node":"tsa-1","service":"default"}}`,
			typ, id, serial, data)}
	}
	evs := []eventstore.EventData{
		env("TimestampRequested.v1", fmt.Sprintf(`{"serial":%q,"service":"default","path":"/tsa","method":"POST","contentType":"application/timestamp-query","source":"127.0.0.1:51504","receivedAt":"2026-11-24T21:10:01.572064073Z","bodySha256":%q,"bodySize":67,"parsed":true,"hashAlgorithm":"sha256","hashedMessage":%q,"nonce":%q,"certReq":false}`,
			serial, hexOf(32), hexOf(32), hexOf(9))),
		env("FilterDecided.v1", fmt.Sprintf(`{"serial":%q,"filter":"hash-allow-list","verdict":"accepted","reason":"sha256 is allowed"}`, serial)),
		env("FilterDecided.v1", fmt.Sprintf(`{"serial":%q,"filter":"policy","verdict":"accepted","reason":"no policy requested: the service default applies"}`, serial)),
	}
	for i := range extraFilters {
		evs = append(evs, env("FilterDecided.v1", fmt.Sprintf(`{"serial":%q,"filter":"filter-%d","verdict":"accepted","reason":"the request passes check number %d"}`, serial, i, i)))
	}
	return append(evs, env("TimestampIssued.v1", fmt.Sprintf(`{"serial":%q,"genTime":"2026-11-24T21:10:01.572192Z","policy":"1.3.6.1.4.1.32473.3161.1","signer":%q,"token":%q}`,
		serial, hexOf(32), base64.StdEncoding.EncodeToString(token))))
}

// BenchmarkAppend measures group-committed appends as the TSA makes them:
// 64 concurrent appenders, each appending a TSA request's four events to a
// fresh stream with NoStream, fsync on every commit. The events are made
// before the clock starts.
func BenchmarkAppend(b *testing.B) {
	b.Run("4-events", func(b *testing.B) { benchmarkAppend(b, 0) })
	// A five-filter chain records five more decisions per request.
	b.Run("9-events", func(b *testing.B) { benchmarkAppend(b, 5) })
}

func benchmarkAppend(b *testing.B, extraFilters int) {
	s := newStore(b, Config{})
	r := mrand.New(mrand.NewPCG(1, 2))
	const distinct = 4096
	reqs := make([][]eventstore.EventData, distinct)
	size := 0
	for i := range reqs {
		reqs[i] = tsaRequestEventsN(r, extraFilters)
		for _, e := range reqs[i] {
			size += len(e.Payload)
		}
	}
	var n atomic.Int64
	b.SetParallelism(max(1, 64/runtime.GOMAXPROCS(0)))
	b.SetBytes(int64(size / distinct))
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			i := n.Add(1)
			evs := slices.Clone(reqs[i%distinct])
			for j := range evs {
				evs[j].ID = uuid.Must(uuid.NewV7()).String() // ids are unique across the store
			}
			if _, err := s.Append(ctx, fmt.Sprintf("tsr-%d", i), eventstore.NoStream, evs...); err != nil {
				b.Error(err)
				return
			}
		}
	})
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "appends/s")
	b.ReportMetric(float64((4+extraFilters)*b.N)/elapsed.Seconds(), "events/s")
}

// TestDictionaryLearned: the store learns a dictionary from its appends,
// stores it before any record uses it, and compresses the later records
// against it; every event reads back as appended, from the writer, after a
// reopen and read-only. A later dictionary that is no better is not kept.
func TestDictionaryLearned(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "events.db")
	s := newStore(t, Config{Path: path})
	s.dicts.every, s.dicts.next, s.dicts.relearn = 4, 0, 200
	r := mrand.New(mrand.NewPCG(8, 9))
	var want []eventstore.EventData
	for i := range 300 {
		evs := tsaRequestEvents(r)
		if _, err := s.Append(ctx, fmt.Sprintf("tsr-%d", i), eventstore.NoStream, evs...); err != nil {
			t.Fatal(err)
		}
		want = append(want, evs...)
	}
	var dicts, withDict, plain int
	if err := s.rdb.QueryRowContext(ctx, `SELECT count(*) FROM dictionaries`).Scan(&dicts); err != nil {
		t.Fatal(err)
	}
	if err := s.rdb.QueryRowContext(ctx, `SELECT count(*) FILTER (WHERE substr(record, 1, 1) = x'02'), count(*) FILTER (WHERE substr(record, 1, 1) = x'01') FROM appends`).Scan(&withDict, &plain); err != nil {
		t.Fatal(err)
	}
	if dicts != 1 || withDict < 250 || plain == 0 {
		t.Errorf("%d dictionaries; %d records against one, %d without", dicts, withDict, plain)
	}
	check := func(s *Store) {
		t.Helper()
		got, err := s.ReadAll(ctx, 0, 10000)
		if err != nil || len(got) != len(want) {
			t.Fatalf("ReadAll: %d events, %v", len(got), err)
		}
		for i, e := range got {
			if e.ID != want[i].ID || !bytes.Equal(e.Payload, want[i].Payload) {
				t.Fatalf("event %d differs", i)
			}
		}
		if evs, err := s.ReadStream(ctx, "tsr-299"); err != nil || !bytes.Equal(evs[3].Payload, want[len(want)-1].Payload) {
			t.Fatalf("ReadStream: %v", err)
		}
	}
	check(s)
	ro := newStore(t, Config{Path: path, ReadOnly: true})
	check(ro)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = newStore(t, Config{Path: path})
	if d := s.dicts.current(); d == nil || d.id != 1 {
		t.Fatalf("reopened with dictionary %+v", d)
	}
	check(s)
}

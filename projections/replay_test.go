package projections_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/chronolog/chronolog/adapters/eventstore/sqlite"
	readstore "github.com/chronolog/chronolog/adapters/readstore/sqlite"
	"github.com/chronolog/chronolog/domain/events"
	"github.com/chronolog/chronolog/domain/eventstore"
	"github.com/chronolog/chronolog/projections"
)

// replayCounter counts requests and rejections, one row per event.
type replayCounter struct{}

func (replayCounter) Name() string { return "replay-counter" }
func (replayCounter) Schema() []string {
	return []string{`CREATE TABLE IF NOT EXISTS counts (type TEXT PRIMARY KEY, n INTEGER NOT NULL)`}
}
func (replayCounter) Handlers() []projections.Handler {
	return []projections.Handler{
		projections.On(func(ctx context.Context, tx projections.Tx, m projections.Meta, _ events.TimestampRequested) error {
			return countRow(ctx, tx, m)
		}),
		projections.On(func(ctx context.Context, tx projections.Tx, m projections.Meta, _ events.TimestampRejected) error {
			return countRow(ctx, tx, m)
		}),
	}
}

func countRow(ctx context.Context, tx projections.Tx, m projections.Meta) error {
	_, err := tx.Exec(ctx, `INSERT INTO counts (type, n) VALUES (?, 1) ON CONFLICT (type) DO UPDATE SET n = n + 1`, m.Type)
	return err
}

func countOf(t *testing.T, s *readstore.Store, typ string) int {
	t.Helper()
	var n int
	if err := s.DB().QueryRow(`SELECT COALESCE((SELECT n FROM counts WHERE type = ?), 0)`, typ).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// fillStore records n requests of two events each, one second apart from t0.
func fillStore(t *testing.T, n int, t0 time.Time) *sqlite.Store {
	t.Helper()
	st, err := sqlite.New(context.Background(), sqlite.Config{Path: filepath.Join(t.TempDir(), "events.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	for i := range n {
		serial := fmt.Sprintf("%x", i+1)
		at := t0.Add(time.Duration(i) * time.Second)
		var data []eventstore.EventData
		for j, e := range []events.Event{
			events.TimestampRequested{Serial: serial, Service: "s", Path: "/tsa", Method: "POST", Source: "x", ReceivedAt: at, BodySHA256: "00"},
			events.TimestampRejected{Serial: serial, Status: "rejection", FailInfo: "badAlg", Reason: "r"},
		} {
			ed, err := events.Encode(fmt.Sprintf("01938d2e-6c4b-7e2a-9f1d-%012x", 2*i+j), "tsr-"+serial, at, events.Metadata{Service: "s"}, e)
			if err != nil {
				t.Fatal(err)
			}
			data = append(data, ed)
		}
		if _, err := st.Append(context.Background(), "tsr-"+serial, eventstore.NoStream, data...); err != nil {
			t.Fatal(err)
		}
	}
	return st
}

func TestReplay(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	st := fillStore(t, 50, t0)
	ctx := context.Background()
	open := func() *readstore.Store {
		s, err := readstore.Open(ctx, filepath.Join(t.TempDir(), "c.db"), replayCounter{}, readstore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	replay := func(s *readstore.Store, cfg projections.RunnerConfig) (projections.Progress, error) {
		cfg.Logger = quietLog()
		return projections.Replay(ctx, projections.ReplayFeed(st), []projections.Model{{Projection: replayCounter{}, Store: s}}, cfg)
	}
	for _, tc := range []struct {
		name      string
		cfg       projections.RunnerConfig
		requested int
		last      uint64
	}{
		{"everything", projections.RunnerConfig{MaxBatch: 7}, 50, 100},
		{"until a position", projections.RunnerConfig{Until: 41, MaxBatch: 8}, 21, 41},
		{"until a time", projections.RunnerConfig{UntilTime: t0.Add(9 * time.Second)}, 10, 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := open()
			var calls int
			tc.cfg.Progress = func(projections.Progress) { calls++ }
			p, err := replay(s, tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if got := countOf(t, s, events.TypeTimestampRequested); got != tc.requested || s.Checkpoint() != tc.last || p.Position != tc.last || calls == 0 {
				t.Fatalf("requested %d, checkpoint %d, progress %+v after %d calls", got, s.Checkpoint(), p, calls)
			}
		})
	}
	t.Run("resumes from its checkpoint, and twice is once", func(t *testing.T) {
		s := open()
		if _, err := replay(s, projections.RunnerConfig{Until: 30}); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if _, err := replay(s, projections.RunnerConfig{}); err != nil {
				t.Fatal(err)
			}
		}
		if got := countOf(t, s, events.TypeTimestampRejected); got != 50 {
			t.Fatalf("%d rejections counted", got)
		}
	})
	t.Run("an empty record", func(t *testing.T) {
		empty := fillStore(t, 0, t0)
		s := open()
		p, err := projections.Replay(ctx, projections.ReplayFeed(empty), []projections.Model{{Projection: replayCounter{}, Store: s}}, projections.RunnerConfig{})
		if err != nil || p.Events != 0 || s.Checkpoint() != 0 {
			t.Fatalf("%+v %v", p, err)
		}
	})
}

package projections_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chronolog/chronolog/domain/events"
	"github.com/chronolog/chronolog/projections"
)

// TestOpenReadOnly: a read store opened read-only beside its writer reads
// its rows and checkpoint, refuses Apply, and changes nothing; a missing
// one is not created.
func TestOpenReadOnly(t *testing.T) {
	ctx := context.Background()
	st := fillStore(t, 20, time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC))
	path := filepath.Join(t.TempDir(), "c.db")
	w, err := projections.Open(ctx, path, replayCounter{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := projections.Replay(ctx, st, []*projections.Store{w}, projections.ReplayOptions{Target: 40, Until: 30}); err != nil {
		t.Fatal(err)
	}

	r, err := projections.OpenReadOnly(ctx, path, replayCounter{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.Checkpoint() != 30 || count(t, r, events.TypeTimestampRequested) != 15 {
		t.Fatalf("read-only: checkpoint %d, %d requests; want 30 and 15", r.Checkpoint(), count(t, r, events.TypeTimestampRequested))
	}
	// The writer goes on beside it.
	if _, err := projections.Replay(ctx, st, []*projections.Store{w}, projections.ReplayOptions{Target: 40}); err != nil {
		t.Fatal(err)
	}
	if got := count(t, r, events.TypeTimestampRequested); got != 20 {
		t.Errorf("the read-only store sees %d requests after the writer applied 20", got)
	}
	if _, err := r.DB().Exec(`DELETE FROM counts`); err == nil {
		t.Error("the read-only store's connection can write")
	}
	before := r.Checkpoint()
	err = r.Apply(ctx, []projections.Event{{Position: 41, Type: events.TypeTimestampRequested}})
	if err == nil || !strings.Contains(err.Error(), "read-only") || r.Checkpoint() != before {
		t.Errorf("Apply on a read-only store: %v, checkpoint %d", err, r.Checkpoint())
	}

	missing := filepath.Join(t.TempDir(), "missing.db")
	if s, err := projections.OpenReadOnly(ctx, missing, replayCounter{}); err == nil {
		s.Close()
		t.Error("opened a missing read store")
	}
	if _, err := os.Stat(missing); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("OpenReadOnly created %s", missing)
	}
}

package archive

import (
	"context"
	"path/filepath"
	"testing"

	readstore "github.com/chronolog/chronolog/adapters/readstore/sqlite"
	"github.com/chronolog/chronolog/projections"
	"github.com/chronolog/chronolog/projections/projectionstest"
)

// BenchmarkApply replays 75,000 events (25,000 requests) into an empty
// read store through the runner, in batches of 5,000 (and of 2,048, the
// live runner's default MaxBatch), and reports events/s. Opening the
// store is not timed.
func BenchmarkApply(b *testing.B) { projectionstest.BenchApply(b, openBench, New) }

func openBench(b *testing.B, p projections.Projection) projections.Store {
	s, err := readstore.Open(context.Background(), filepath.Join(b.TempDir(), "x.db"), p, readstore.Options{CacheKiB: 64 << 10})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

package billing

import (
	"testing"

	"github.com/chronolog/chronolog/projections/projectionstest"
)

// BenchmarkApply replays 100,000 events into an empty read store through
// projections.Store, in batches of 5,000 (and of 2,048, the Runner's
// default MaxBatch), and reports events/s. Opening the store is not timed.
func BenchmarkApply(b *testing.B) { projectionstest.BenchApply(b, New) }

package billing

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/chronolog/chronolog/projections"
)

const (
	benchEvents = 100_000
	benchBatch  = 5_000
	tokenSize   = 2400
)

var (
	benchOnce sync.Once
	benchEvs  []projections.Event
)

// realistic returns n events of requests as the TSA records them:
// Requested, two FilterDecided, Issued with a 2.4 KB token; a few
// services, some anonymous clients, a request every 3.5 ms from midnight.
func realistic(tb testing.TB, n int) []projections.Event {
	l := &log{t: tb}
	start := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	out := make([]projections.Event, 0, n)
	services := []string{"default", "eu-qualified", "codesign", "internal"}
	for i := 0; len(out) < n; i++ {
		at := start.Add(time.Duration(i) * 3500 * time.Microsecond)
		r := req{serial: serialAt(at), service: services[i%len(services)], digest: randomHex(32), at: at, token: tokenSize}
		if i%5 != 0 {
			r.client = fmt.Sprintf("CN=client-%d,O=Example Corp,C=DE", i%40)
		}
		out = append(out, l.request(r)...)
	}
	return out[:n]
}

// BenchmarkApply replays 100,000 events into an empty read store through
// projections.Store, in batches of 5,000 (and of 2,048, the Runner's
// default MaxBatch), and reports events/s. Opening the store is not timed.
func BenchmarkApply(b *testing.B) {
	benchOnce.Do(func() { benchEvs = realistic(b, benchEvents) })
	for _, batch := range []int{benchBatch, 2048} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) { benchmarkApply(b, benchEvs, batch) })
	}
}

func benchmarkApply(b *testing.B, evs []projections.Event, batch int) {
	ctx := context.Background()
	dir := b.TempDir()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		s, err := projections.Open(ctx, fmt.Sprintf("%s/%d.db", dir, i), New())
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		for j := 0; j < len(evs); j += batch {
			if err := s.Apply(ctx, evs[j:min(j+batch, len(evs))]); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		if s.Checkpoint() != evs[len(evs)-1].Position {
			b.Fatalf("checkpoint %d", s.Checkpoint())
		}
		s.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(b.N*len(evs))/b.Elapsed().Seconds(), "events/s")
}

package projectionstest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/chronolog/chronolog/domain/eventstore"
	"github.com/chronolog/chronolog/projections"
)

const (
	benchRequests = 25_000 // 75,000 events
	benchBatch    = 5_000
	tokenSize     = 2400
)

var (
	benchOnce sync.Once
	benchEvs  []eventstore.RecordedEvent
)

// Workload returns the events of n requests as the TSA records them:
// Requested, FilterChainDecided, Issued with a 2.4 KB token (3n events); a
// few services, some anonymous clients, a request every 3.5 ms from
// midnight.
func Workload(tb testing.TB, requests int) []eventstore.RecordedEvent {
	l := NewLog(tb)
	start := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	out := make([]eventstore.RecordedEvent, 0, 3*requests)
	services := []string{"default", "eu-qualified", "codesign", "internal"}
	for i := range requests {
		at := start.Add(time.Duration(i) * 3500 * time.Microsecond)
		r := Req{Serial: SerialAt(at), Service: services[i%len(services)], Digest: RandomHex(32), At: at, Token: tokenSize}
		if i%5 != 0 {
			r.Client = fmt.Sprintf("CN=client-%d,O=Example Corp,C=DE", i%40)
		}
		out = append(out, l.Request(r)...)
	}
	return out
}

// Opener opens an empty read store for a projection, in a directory of
// the benchmark's.
type Opener func(b *testing.B, p projections.Projection) projections.Store

// BenchApply replays the Workload of 25,000 requests (75,000 events, made
// once per test binary) into an empty read store of newP() through the
// runner, in batches of 5,000 (and of 2,048, the live runner's default
// MaxBatch), as sub-benchmarks batch=N, and reports events/s.
func BenchApply[P projections.Projection](b *testing.B, open Opener, newP func() P) {
	benchOnce.Do(func() { benchEvs = Workload(b, benchRequests) })
	for _, batch := range []int{benchBatch, 2048} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) { ApplyBatches(b, open, newP, benchEvs, batch) })
	}
}

// ApplyBatches applies evs, in batches of batch, to a new read store of
// newP() per iteration, and reports events/s. Opening the store is not
// timed.
func ApplyBatches[P projections.Projection](b *testing.B, open Opener, newP func() P, evs []eventstore.RecordedEvent, batch int) {
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		p := newP()
		s := open(b, p)
		b.StartTimer()
		_, err := projections.Replay(ctx, Feed(evs), []projections.Model{{Projection: p, Store: s}},
			projections.RunnerConfig{MaxBatch: batch, Logger: Quiet(), Retries: -1})
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if s.Checkpoint() != evs[len(evs)-1].Position {
			b.Fatalf("checkpoint %d", s.Checkpoint())
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(b.N*len(evs))/b.Elapsed().Seconds(), "events/s")
}

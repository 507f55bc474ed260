package projections_test

import (
	"context"
	"encoding/hex"
	"fmt"
	mrand "math/rand/v2"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/chronolog/chronolog/adapters/eventstore/sqlite"
	readstore "github.com/chronolog/chronolog/adapters/readstore/sqlite"
	"github.com/chronolog/chronolog/domain/events"
	"github.com/chronolog/chronolog/domain/eventstore"
	"github.com/chronolog/chronolog/projections"
	"github.com/chronolog/chronolog/projections/archive"
	"github.com/chronolog/chronolog/projections/billing"
	"github.com/chronolog/chronolog/projections/clockview"
	"github.com/chronolog/chronolog/projections/renewaldue"
)

// BenchmarkRunnerLive measures the live path under full issuance load: 64
// goroutines append TSA requests to a real SQLite event store as fast as
// it commits them (three events each, as the TSA records them: requested,
// the filter chain, issued with a 2.4 KB token; recordedAt taken just
// before the append), while the runner feeds counting projections (one,
// and three) or the four read models tsad keeps live (the figures are the
// slowest one's). b.N is the number of requests; run it with a fixed count:
//
//	go test -run '^$' -bench RunnerLive -benchtime 200000x ./projections/
//
// It reports the time lag the runner measures, from an event's recordedAt
// to the commit of its batch in the read store, p99 and max over every
// batch of the run (an upper bound of commit → applied: it includes the
// event store's own group commit, whose p99 is append-p99-ms), the events
// per second through the whole path, and how long the projection took to
// drain once the appends stopped.
func BenchmarkRunnerLive(b *testing.B) {
	for _, n := range []int{1, 3} {
		b.Run(fmt.Sprintf("projections=%d", n), func(b *testing.B) {
			var ps []projections.Projection
			for i := range n {
				ps = append(ps, newCounter(fmt.Sprintf("bench-%d", i)))
			}
			benchmarkRunnerLive(b, ps)
		})
	}
	b.Run("read-models=4", func(b *testing.B) {
		benchmarkRunnerLive(b, []projections.Projection{archive.New(), billing.New(), clockview.New(), renewaldue.New(nil)})
	})
}

func benchmarkRunnerLive(b *testing.B, ps []projections.Projection) {
	ctx := context.Background()
	es, err := sqlite.New(ctx, sqlite.Config{Path: filepath.Join(b.TempDir(), "events.db")})
	if err != nil {
		b.Fatal(err)
	}
	defer es.Close()
	dir := b.TempDir()
	var models []projections.Model
	for _, p := range ps {
		s, err := readstore.Open(ctx, filepath.Join(dir, p.Name()+".db"), p, readstore.Options{})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		models = append(models, projections.Model{Projection: p, Store: s})
	}
	r, err := projections.NewRunner(projections.LiveFeed(es, projections.LiveConfig{Logger: quietLog()}), models, projections.RunnerConfig{
		Logger: quietLog(), LagWindow: 1 << 22,
	})
	if err != nil {
		b.Fatal(err)
	}

	rnd := mrand.New(mrand.NewPCG(1, 2))
	const distinct = 1024
	tokens := make([][]byte, distinct)
	for i := range tokens {
		tokens[i] = make([]byte, 2400)
		for j := range tokens[i] {
			tokens[i][j] = byte(rnd.Uint32())
		}
	}
	hexOf := func(n int) string {
		p := make([]byte, n)
		for i := range p {
			p[i] = byte(rnd.Uint32())
		}
		return hex.EncodeToString(p)
	}
	signer, imprint := hexOf(32), hexOf(32)

	const workers = 64
	var next atomic.Int64
	appendLags := make([][]time.Duration, workers)
	b.ResetTimer()
	if err := r.Start(ctx); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			meta := events.Metadata{Service: "default", Node: "tsa-1"}
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				serial := fmt.Sprintf("%032x", i)
				stream := events.RequestStream(serial)
				at := time.Now()
				var evs []eventstore.EventData
				for _, e := range []events.Event{
					events.TimestampRequested{Serial: serial, Service: "default", Path: "/tsa", Method: "POST",
						ContentType: "application/timestamp-query", Source: "127.0.0.1:51504", ReceivedAt: at,
						BodySHA256: imprint, BodySize: 67, Parsed: true, HashAlgorithm: "sha256", HashedMessage: imprint, Transport: "http"},
					events.FilterChainDecided{Serial: serial, Rule: "default", Chain: "default", Decisions: []events.FilterDecision{
						{Filter: "hash-allow-list", Verdict: events.VerdictAccepted, Reason: "sha256 is allowed"},
						{Filter: "policy", Verdict: events.VerdictAccepted, Reason: "no policy requested: the service default applies"}}},
					events.TimestampIssued{Serial: serial, GenTime: at, Policy: "1.3.6.1.4.1.32473.3161.1", Signer: signer, Token: tokens[i%distinct]},
				} {
					ed, err := events.Encode(uuid.Must(uuid.NewV7()).String(), stream, at, meta, e)
					if err != nil {
						b.Error(err)
						return
					}
					evs = append(evs, ed)
				}
				if _, err := es.Append(ctx, stream, eventstore.NoStream, evs...); err != nil {
					b.Error(err)
					return
				}
				appendLags[w] = append(appendLags[w], time.Since(at))
			}
		}()
	}
	wg.Wait()
	appended := time.Since(start)
	head := es.Head()
	behind := func() bool {
		return slices.ContainsFunc(r.Status(), func(s projections.ProjectionStatus) bool { return s.Checkpoint < head })
	}
	for behind() {
		time.Sleep(100 * time.Microsecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	// The figures are those of the slowest projection.
	var st projections.ProjectionStatus
	for _, s := range r.Status() {
		if s.Failed != "" {
			b.Fatalf("projection %s failed: %s", s.Name, s.Failed)
		}
		if s.LagP99 > st.LagP99 {
			st.LagP50, st.LagP99 = s.LagP50, s.LagP99
		}
		st.LagMax = max(st.LagMax, s.LagMax)
	}
	if err := r.Stop(); err != nil {
		b.Fatal(err)
	}
	if _, ok := ps[0].(*typeCounter); ok {
		if got := counted(b, models[0].Store.(*readstore.Store))[events.TypeTimestampIssued]; got != b.N {
			b.Fatalf("%d issued counted, %d appended", got, b.N)
		}
	}
	all := slices.Concat(appendLags...)
	slices.Sort(all)
	b.ReportMetric(ms(st.LagP99), "lag-p99-ms")
	b.ReportMetric(ms(st.LagMax), "lag-max-ms")
	b.ReportMetric(ms(all[(len(all)-1)*99/100]), "append-p99-ms")
	b.ReportMetric(float64(head)/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(head)/appended.Seconds(), "appended-events/s")
	b.ReportMetric(ms(elapsed-appended), "drain-ms")
	b.Logf("%d projections, %d requests, %d events in %v on %d CPUs: lag p50 %v p99 %v max %v; append p99 %v",
		len(ps), b.N, head, elapsed.Round(time.Millisecond), runtime.GOMAXPROCS(0), st.LagP50, st.LagP99, st.LagMax, all[(len(all)-1)*99/100])
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

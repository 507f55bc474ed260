package projections_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/chronolog/chronolog/adapters/eventstore/sqlite"
	"github.com/chronolog/chronolog/adapters/ids"
	readstore "github.com/chronolog/chronolog/adapters/readstore/sqlite"
	"github.com/chronolog/chronolog/domain/events"
	"github.com/chronolog/chronolog/domain/eventstore"
	"github.com/chronolog/chronolog/projections"
	"github.com/chronolog/chronolog/projections/archive"
	"github.com/chronolog/chronolog/projections/billing"
	"github.com/chronolog/chronolog/projections/clockview"
	"github.com/chronolog/chronolog/projections/renewaldue"
)

// recordRequests appends n requests as the TSA records them: requested,
// the filter chain, issued with a 2.4 KB token.
func recordRequests(b *testing.B, st *sqlite.Store, n int) {
	token := make([]byte, 2400)
	rand.Read(token)
	var wg sync.WaitGroup
	const workers = 32
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			src := ids.Source{}
			for i := w; i < n; i += workers {
				serial := fmt.Sprintf("%x", i+1)
				at := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Millisecond)
				meta := events.Metadata{Service: "svc" + strconv.Itoa(i%3), Node: "n1"}
				var data []eventstore.EventData
				for _, e := range []events.Event{
					events.TimestampRequested{Serial: serial, Service: meta.Service, Path: "/tsa", Method: "POST", Source: "127.0.0.1:1",
						ReceivedAt: at, BodySHA256: "ab", BodySize: 59, Parsed: true, HashAlgorithm: "sha256",
						HashedMessage: fmt.Sprintf("%064x", i), Nonce: "01"},
					events.FilterChainDecided{Serial: serial, Rule: "default", Chain: "default", Decisions: []events.FilterDecision{
						{Filter: "hash-allow-list", Verdict: events.VerdictAccepted, Reason: "sha256 is allowed"},
						{Filter: "policy", Verdict: events.VerdictAccepted, Reason: "no policy requested: the service default applies"}}},
					events.TimestampIssued{Serial: serial, GenTime: at, Policy: "1.2.3", Signer: "cd", Token: token, Client: "client" + strconv.Itoa(i%7)},
				} {
					ed, err := events.Encode(src.NewID(), "tsr-"+serial, at, meta, e)
					if err != nil {
						b.Error(err)
						return
					}
					data = append(data, ed)
				}
				if _, err := st.Append(context.Background(), "tsr-"+serial, eventstore.NoStream, data...); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// BenchmarkReplay rebuilds the four read models tsad keeps from 900,000
// recorded events (300,000 requests) into fresh read stores, as tsactl
// replay does (in bulk, the indexes built at the end, timed with it); the
// goal is 300,000 events/s. The event store is made once per run, outside
// the timing:
//
//	go test -run '^$' -bench BenchmarkReplay -benchtime 3x ./projections/
func BenchmarkReplay(b *testing.B) {
	requests := 300_000
	if v := os.Getenv("CHRONOLOG_REPLAY_REQUESTS"); v != "" {
		requests, _ = strconv.Atoi(v)
	}
	ctx := context.Background()
	st, err := sqlite.New(ctx, sqlite.Config{Path: filepath.Join(b.TempDir(), "events.db")})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	recordRequests(b, st, requests)
	head := st.Head()
	b.ResetTimer()
	var total projections.Progress
	for b.Loop() {
		dir := b.TempDir()
		var models []projections.Model
		for _, p := range []projections.Projection{archive.New(), billing.New(), clockview.New(), renewaldue.New(nil)} {
			s, err := readstore.Open(ctx, filepath.Join(dir, p.Name()+".db"), p, readstore.Options{CacheKiB: 64 << 10, Bulk: true})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			models = append(models, projections.Model{Projection: p, Store: s})
		}
		p, err := projections.Replay(ctx, projections.ReplayFeed(st), models, projections.RunnerConfig{MaxBatch: 8192, Logger: quietLog()})
		if err != nil {
			b.Fatal(err)
		}
		// As tsactl replay does, and timed with it: the indexes last.
		indexing := time.Now()
		for _, m := range models {
			if err := m.Store.(*readstore.Store).Finish(ctx); err != nil {
				b.Fatal(err)
			}
		}
		p.Elapsed += time.Since(indexing)
		for _, m := range models {
			if m.Store.Checkpoint() != head {
				b.Fatalf("%s at %d of %d", m.Projection.Name(), m.Store.Checkpoint(), head)
			}
		}
		total.Events += p.Events
		total.Elapsed += p.Elapsed
	}
	b.ReportMetric(total.Rate(), "events/s")
	b.ReportMetric(float64(head), "events")
}

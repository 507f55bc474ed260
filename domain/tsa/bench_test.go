package tsa_test

import (
	"context"
	"crypto/rand"
	"math/big"
	"net/netip"
	"testing"

	"github.com/chronolog/chronolog/domain/eventstore"
	"github.com/chronolog/chronolog/domain/filter"
	"github.com/chronolog/chronolog/domain/rfc3161"
	"github.com/chronolog/chronolog/domain/tsa"
)

// BenchmarkHandle measures one request through the domain, signing and
// event encoding included, with an in-memory recorder: the skeleton (the
// service's hash and policy checks) against a five-filter chain.
func BenchmarkHandle(b *testing.B) {
	five := func() filter.Chain {
		ip, _ := filter.NewClientIP([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, nil)
		rl, _ := filter.NewRateLimit(1e9, 1e9, 1000)
		return filter.Chain{filter.NewRequestSize(4096), filter.NewNonceRequired(8), ip, rl, filter.NewCertReqForced()}
	}
	for _, tc := range []struct {
		name  string
		chain filter.Chain
	}{{"skeleton", nil}, {"five-filters", five()}} {
		b.Run(tc.name, func(b *testing.B) {
			rec := &discard{}
			svc := newServiceWith(b, nil, func(c *tsa.Config, p *tsa.Ports) {
				p.Recorder = rec
				p.Rand = rand.Reader
				if tc.chain != nil {
					c.Rules = []tsa.Rule{{Name: "default", Chain: "default", Filters: tc.chain}}
				}
			})
			q, _ := rfc3161.NewTimeStampReq(rfc3161.SHA256, make([]byte, 32), big.NewInt(1<<62), nil, false)
			der, _ := q.Marshal()
			req := tsa.Request{Body: der, Method: "POST", Path: "/tsa", Source: "127.0.0.1:5555", BodySize: int64(len(der))}
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if r := svc.Handle(ctx, req); r.Kind != tsa.Granted {
					b.Fatalf("%+v", r)
				}
			}
			b.ReportMetric(float64(rec.events)/float64(b.N), "events/op")
		})
	}
}

// discard is a recorder that keeps nothing: the benchmark measures the
// domain, not a store.
type discard struct{ events int }

func (d *discard) Append(_ context.Context, _ string, _ eventstore.ExpectedState, evs ...eventstore.EventData) (eventstore.AppendResult, error) {
	d.events += len(evs)
	return eventstore.AppendResult{}, nil
}

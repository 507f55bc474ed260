package app

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/chronolog/chronolog/domain/tsa"
)

// Live is the generation of services in force: one pointer that a reload
// swaps whole, so that a request finds its route and its service in the
// same generation, whichever transport it came by.
type Live struct{ gen atomic.Pointer[Generation] }

// NewLive puts g in force.
func NewLive(g *Generation) *Live {
	l := &Live{}
	l.gen.Store(g)
	return l
}

// Current is the generation in force.
func (l *Live) Current() *Generation { return l.gen.Load() }

// Route is the service answering on an HTTP path (httpapi.Router).
func (l *Live) Route(path string) (tsa.Handler, bool) {
	s, ok := l.gen.Load().routes[path]
	return s, ok
}

// Service stands for the service of a name in whatever generation is in
// force: a socket listener outlives reloads, the services behind it do
// not.
func (l *Live) Service(name string) tsa.Handler { return named{name: name, live: l} }

// Accuracies are the declared accuracies of the services in force, which
// the clock monitor judges each round by.
func (l *Live) Accuracies() map[string]time.Duration {
	g := l.gen.Load()
	out := make(map[string]time.Duration, len(g.byName))
	for n, b := range g.byName {
		out[n] = b.svc.ClockAccuracy()
	}
	return out
}

// Close closes the generation in force.
func (l *Live) Close() { l.gen.Load().close() }

// named is the service of one name in the generation in force.
type named struct {
	name string
	live *Live
}

func (n named) current() *tsa.Service {
	if b := n.live.gen.Load().byName[n.name]; b != nil {
		return b.svc
	}
	return nil
}

func (n named) Name() string { return n.name }

func (n named) Handle(ctx context.Context, r tsa.Request) tsa.Outcome {
	svc := n.current()
	if svc == nil {
		// A reload that removes a socket's service needs a restart, so
		// this is never seen; if it were, the request is refused.
		return tsa.Outcome{Kind: tsa.Refused, Refusal: tsa.RefusedMediaType, Protocol: r.Protocol}
	}
	return svc.Handle(ctx, r)
}

func (n named) Refuse(ctx context.Context, r tsa.Request, refusal tsa.Refusal, reason string) tsa.Outcome {
	svc := n.current()
	if svc == nil {
		return tsa.Outcome{Kind: tsa.Refused, Refusal: refusal, Protocol: r.Protocol}
	}
	return svc.Refuse(ctx, r, refusal, reason)
}

func (n named) Undelivered(ctx context.Context, serial, reason string) error {
	svc := n.current()
	if svc == nil {
		return fmt.Errorf("service %s is no longer configured", n.name)
	}
	return svc.Undelivered(ctx, serial, reason)
}

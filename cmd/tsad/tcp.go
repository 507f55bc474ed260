package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	"github.com/chronolog/chronolog/adapters/config"
	"github.com/chronolog/chronolog/adapters/tcpapi"
	"github.com/chronolog/chronolog/domain/tsa"
)

// liveServices holds the current generation of services; a reload swaps it.
type liveServices struct{ gen atomic.Pointer[generation] }

// accuracies are the declared accuracies of the running services, which
// the clock monitor judges each round by.
func (l *liveServices) accuracies() map[string]time.Duration {
	g := l.gen.Load()
	out := make(map[string]time.Duration, len(g.byName))
	for n, b := range g.byName {
		out[n] = b.svc.ClockAccuracy()
	}
	return out
}

// liveService is the service of one name in whatever generation is
// current: a socket listener outlives reloads, the services behind it do not.
type liveService struct {
	name string
	live *liveServices
}

func (l liveService) current() *tsa.Service {
	if b := l.live.gen.Load().byName[l.name]; b != nil {
		return b.svc
	}
	return nil
}

func (l liveService) Name() string { return l.name }

func (l liveService) Handle(ctx context.Context, r tsa.Request) tsa.Outcome {
	return l.current().Handle(ctx, r)
}

func (l liveService) Refuse(ctx context.Context, r tsa.Request, refusal tsa.Refusal, reason string) tsa.Outcome {
	return l.current().Refuse(ctx, r, refusal, reason)
}

func (l liveService) Undelivered(ctx context.Context, serial, reason string) error {
	svc := l.current()
	if svc == nil {
		return fmt.Errorf("service %s is no longer configured", l.name)
	}
	return svc.Undelivered(ctx, serial, reason)
}

// tcpServers are the RFC 3161 §3.3 listeners, one per service that asks.
type tcpServers struct {
	servers []tcpServer
}

type tcpServer struct {
	// addr is the configured address, bound the one the system gave.
	service, addr, bound string
	srv                  *tcpapi.Server
	done                 chan error
}

func startTCP(gen *generation, live *liveServices, s config.Server, tally tcpapi.Tally, log *slog.Logger) (*tcpServers, error) {
	ts := &tcpServers{}
	for _, name := range gen.order {
		b := gen.byName[name]
		if b.cfg.TCP == "" {
			continue
		}
		srv, err := tcpapi.New(tcpapi.Config{
			Service:        liveService{name: name, live: live},
			Path:           "tcp:" + b.cfg.TCP,
			MaxMessage:     s.MaxBody,
			RequestTimeout: s.RequestTimeout.D(),
			// Known clients (systemd-timestampd among them) send one
			// request and read until the TSA closes.
			CloseAfterReply: true,
			Tally:           tally,
			Log:             log,
		})
		if err != nil {
			ts.shutdown(time.Second)
			return nil, err
		}
		ln, err := net.Listen("tcp", b.cfg.TCP)
		if err != nil {
			ts.shutdown(time.Second)
			return nil, fmt.Errorf("service %s: tcp listener: %w", name, err)
		}
		t := tcpServer{service: name, addr: b.cfg.TCP, bound: ln.Addr().String(), srv: srv, done: make(chan error, 1)}
		go func() { t.done <- srv.Serve(ln) }()
		ts.servers = append(ts.servers, t)
	}
	return ts, nil
}

func (ts *tcpServers) shutdown(grace time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	for _, t := range ts.servers {
		// Past the grace, Shutdown closes what is left: its error says
		// only that it had to.
		_ = t.srv.Shutdown(ctx)
	}
}

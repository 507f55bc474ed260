package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/chronolog/chronolog/adapters/config"
	"github.com/chronolog/chronolog/adapters/tcpapi"
	"github.com/chronolog/chronolog/app"
)

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

func startTCP(live *app.Live, s config.Server, tally tcpapi.Tally, log *slog.Logger) (*tcpServers, error) {
	ts := &tcpServers{}
	for _, sock := range live.Current().Sockets() {
		name := sock.Service
		srv, err := tcpapi.New(tcpapi.Config{
			Service:        live.Service(name),
			Path:           "tcp:" + sock.Addr,
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
		ln, err := net.Listen("tcp", sock.Addr)
		if err != nil {
			ts.shutdown(time.Second)
			return nil, fmt.Errorf("service %s: tcp listener: %w", name, err)
		}
		t := tcpServer{service: name, addr: sock.Addr, bound: ln.Addr().String(), srv: srv, done: make(chan error, 1)}
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

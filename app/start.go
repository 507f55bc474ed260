package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/chronolog/chronolog/adapters/config"
	"github.com/chronolog/chronolog/adapters/eventstore/sqlite"
	"github.com/chronolog/chronolog/domain/clock"
	"github.com/chronolog/chronolog/projections"
)

// StartOptions are what a start takes besides the configuration.
type StartOptions struct {
	// Data is the data directory, which the caller holds
	// (datadir.Acquire): the event store, the log, the read stores.
	Data string
	// Node names this server in the record; Crypto says who computes
	// signatures with a key file's key: auto, openssl or go.
	Node, Crypto string
	// Dev: a development server creates the log's key on first start.
	Dev bool
	// TransparencyLog configures the log (Backend "off": none).
	TransparencyLog *LogConfig
	// Projections are the read models kept live.
	Projections []projections.Projection
	Log         *slog.Logger
}

// TSA is the application running: the record, the services in force, the
// clock that gates them, the transparency log and the read side. The
// transports are the caller's, and stop before Close.
type TSA struct {
	Store *sqlite.Store
	Live  *Live
	// Gate is the clock gate, nil when the clock runs unverified; Clock
	// describes the first sampling round ("" when unverified).
	Gate  *clock.Gate
	Clock string
	// TransparencyLog is nil when the log is off.
	TransparencyLog *TransparencyLog
	Projections     *Projections
	wiring          Wiring
	// stops undo the start, in reverse.
	stops []func()
}

// Start opens the event store in DATA/events.db and starts, in this
// order: the clock monitor, the first generation of services, the first
// clock round (the gate is closed until a sample is on the record), the
// start's record (the configuration and every key activated, before the
// first request), the transparency log's writer and the read side. cfg
// is checked, its clock section settled. ctx is the server's: when it
// ends, sampling stops; the log and the read side run until Close. On an
// error, what was started is stopped again.
func Start(ctx context.Context, cfg *config.File, o StartOptions) (*TSA, error) {
	if cfg.Server.Clock == nil {
		return nil, errors.New("configuration: the clock section is not settled")
	}
	log := o.Log
	t := &TSA{}
	started := false
	defer func() {
		if !started {
			t.Close()
		}
	}()
	store, err := sqlite.New(ctx, sqlite.Config{Path: filepath.Join(o.Data, "events.db")})
	if err != nil {
		return nil, fmt.Errorf("open event store: %w", err)
	}
	t.Store = store
	t.stops = append(t.stops, func() {
		if err := store.Close(); err != nil {
			log.Error("close event store", "err", err)
		}
	})

	w := Wiring{Node: o.Node, Crypto: o.Crypto, Recorder: store, Log: log, Now: time.Now(), WarnDays: cfg.Server.CertificateWarningDays}
	if w.Retired, err = RetiredKeys(ctx, store); err != nil {
		return nil, err
	}
	var mon *clock.Monitor
	if !cfg.Server.Clock.Unverified {
		var ticker *time.Ticker
		accuracies := func() map[string]time.Duration { return t.Live.Accuracies() }
		if mon, ticker, err = newClockMonitor(cfg.Server.Clock, store, o.Node, accuracies, log); err != nil {
			return nil, err
		}
		t.stops = append(t.stops, ticker.Stop)
		w.Gate = mon.Gate()
		t.Gate = w.Gate
	}
	t.wiring = w
	gen, err := Build(cfg, w)
	if err != nil {
		return nil, fmt.Errorf("configuration %s: %w", SourceOf(cfg), err)
	}
	t.Live = NewLive(gen)
	t.stops = append(t.stops, t.Live.Close)
	if mon != nil {
		// The first round is taken before the first request: the gate is
		// closed until a sample is on the record.
		a, err := mon.Round(ctx)
		if err != nil {
			return nil, err
		}
		t.Clock = mon.Describe(a)
		mctx, stopClock := context.WithCancel(ctx)
		sampling := make(chan struct{})
		go func() { defer close(sampling); mon.Run(mctx) }()
		// Stops before the store closes: the monitor records events.
		t.stops = append(t.stops, func() { stopClock(); <-sampling })
	}
	// Every start activates the keys anew: the record says which key
	// signed from when on, before the first request is taken.
	if err := gen.RecordStart(ctx, store, o.Node); err != nil {
		return nil, err
	}

	tlog, err := StartLog(ctx, o.TransparencyLog, o.Data, o.Node, o.Dev, store, log)
	if err != nil {
		return nil, fmt.Errorf("transparency log: %w", err)
	}
	// The writer stops before the store closes: it records events.
	if tlog != nil {
		t.TransparencyLog = tlog
		t.stops = append(t.stops, tlog.Stop)
	}
	proj, err := StartProjections(ctx, store, o.Data, o.Projections, log)
	if err != nil {
		return nil, fmt.Errorf("projections: %w", err)
	}
	// The runner stops before the store closes: it reads it.
	t.Projections = proj
	t.stops = append(t.stops, proj.Stop)
	started = true
	return t, nil
}

// Reloader puts changed configurations in force over the services
// started, with the same store, node and clock gate.
func (t *TSA) Reloader() *Reloader {
	return &Reloader{Live: t.Live, Wiring: t.wiring, Keys: t.Store}
}

// Close stops what Start started, in reverse: the read side, the log's
// writer, the clock's sampling, the services, and last the event store
// they all record to. The transports must have stopped.
func (t *TSA) Close() {
	for i := len(t.stops) - 1; i >= 0; i-- {
		t.stops[i]()
	}
	t.stops = nil
}

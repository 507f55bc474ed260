package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/chronolog/chronolog/adapters/config"
	"github.com/chronolog/chronolog/adapters/httpapi"
	"github.com/chronolog/chronolog/adapters/queryapi"
	"github.com/chronolog/chronolog/app"
	"github.com/chronolog/chronolog/cmd/internal/readmodels"
)

// keyFiles name the TSA key material of a server configured by flags, or
// the development key a configuration file's services default to in dev.
type keyFiles struct {
	key, cert, chain string
	// caFile is printed for clients to verify against.
	caFile string
	dev    bool
}

// serve wires the adapters and runs until SIGTERM or SIGINT; SIGHUP
// reloads the configuration file. The caller holds the data directory
// (datadir.Acquire, which also made it): one process writes it at a time.
func serve(f *serverFlags, kf keyFiles) error {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(f.gcPercent)
	}
	if _, set := os.LookupEnv("GOMEMLIMIT"); !set && f.memoryLimit > 0 {
		debug.SetMemoryLimit(int64(f.memoryLimit) << 20)
	}
	cfg, err := loadConfig(f, kf)
	if err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	// SIGHUP is caught from the start: arriving during start-up it must
	// not kill the server.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	tsa, err := app.Start(ctx, cfg, app.StartOptions{Data: f.data, Node: f.node, Crypto: f.crypto, Dev: kf.dev,
		TransparencyLog: f.log.config(), Projections: readmodels.All(), Log: log})
	if err != nil {
		return err
	}
	// The application stops after the transports.
	defer tsa.Close()
	store, tlog := tsa.Store, tsa.TransparencyLog
	// Both transports count their answers in one tally for /metrics.
	tally := &httpapi.Tally{}
	hcfg := httpapi.Config{
		Tally:          tally,
		Routes:         tsa.Live,
		MaxBody:        cfg.Server.MaxBody,
		RequestTimeout: cfg.Server.RequestTimeout.D(),
		Log:            log,
		StoreHead:      store.Head,
	}
	if tsa.Gate != nil {
		hcfg.Clock = tsa.Gate.Current
	}
	if hcfg.API, err = queryAPI(cfg.Server.API, tsa.Projections, store); err != nil {
		return err
	}
	hcfg.Projections = func() []httpapi.ProjectionStatus {
		var out []httpapi.ProjectionStatus
		for _, p := range tsa.Projections.Status() {
			out = append(out, httpapi.ProjectionStatus{Name: p.Name, Checkpoint: p.Checkpoint, LagEvents: p.LagEvents,
				LagP99: p.LagP99, LagMax: p.LagMax, Failed: p.Failed})
		}
		return out
	}
	if tlog != nil {
		hcfg.TransparencyLog = &httpapi.LogAPI{Log: tlog.Log, Store: store, Key: tlog.Key, Files: tlog.Files}
		hcfg.LogStatus = tlog.Writer.Status
	}
	handler, err := httpapi.New(hcfg)
	if err != nil {
		return err
	}

	if f.debugAddr != "" {
		stopDebug, err := serveDebug(f.debugAddr, log)
		if err != nil {
			return err
		}
		defer stopDebug()
	}

	ln, scheme, err := listen(cfg.Server)
	if err != nil {
		return err
	}
	tcp, err := startTCP(tsa.Live, cfg.Server, tally, log)
	if err != nil {
		ln.Close()
		return err
	}
	defer tcp.shutdown(f.shutdown)
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		// Requests keep running on SIGTERM until they finish: their
		// context must not be the signal's.
		BaseContext: func(net.Listener) context.Context { return context.Background() },
	}
	base := fmt.Sprintf("%s://%s", scheme, ln.Addr())
	if kf.dev {
		fmt.Println("Chronolog tsad — DEVELOPMENT mode: the CA below is a development CA, not for production.")
	}
	gen := tsa.Live.Current()
	firstPath, signing := gen.First()
	fmt.Printf("endpoint: %s%s\n", base, firstPath)
	fmt.Printf("configuration: %s\n", app.SourceOf(cfg))
	for _, line := range gen.Report(base) {
		fmt.Println(line)
	}
	for _, t := range tcp.servers {
		fmt.Printf("tcp: %s (service %s, RFC 3161 §3.3)\n", t.bound, t.service)
	}
	if kf.caFile != "" {
		fmt.Printf("verify against CA: %s\n", kf.caFile)
	}
	if kf.cert != "" {
		fmt.Printf("TSA certificate: %s\n", kf.cert)
	}
	fmt.Printf("data: %s\n", f.data)
	fmt.Printf("signing: %s\n", signing)
	if tsa.Clock == "" {
		fmt.Println("clock: UNVERIFIED — not sampled, tokens declare no accuracy (set server.clock.sources, or --clock)")
	} else {
		fmt.Println(tsa.Clock)
	}
	if tlog != nil {
		where := "verifier key " + tlog.KeyFile
		if tlog.HSM != nil {
			where = "key in an HSM (" + tlog.HSM.Label() + ")"
		}
		fmt.Printf("transparency log: %s, origin %s, %s\n", tlog.Backend, tlog.Origin, where)
		fmt.Printf("log key: %s\n", tlog.Key)
	} else {
		fmt.Println("transparency log: OFF — events are recorded but not committed to a log")
	}

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	r := tsa.Reloader()
	for {
		select {
		case err := <-served:
			return fmt.Errorf("serve: %w", err)
		case <-hup:
			cfg, err := f.reread(kf)
			r.Reload(ctx, f.config, cfg, err)
			continue
		case <-ctx.Done():
		}
		break
	}
	log.Info("shutting down: finishing in-flight requests")
	sctx, cancel := context.WithTimeout(context.Background(), f.shutdown)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	log.Info("stopped cleanly")
	return nil
}

// reread reads the configuration file again, for a reload: with the
// flags' overrides, checked.
func (f *serverFlags) reread(kf keyFiles) (*config.File, error) {
	cfg, err := config.Read(f.config)
	if err != nil {
		return nil, err
	}
	f.applyOverrides(cfg, kf)
	f.applyClock(cfg, kf)
	return cfg, cfg.Check()
}

// loadConfig reads --config, or makes a one-service configuration of the
// flags. Flags given explicitly override the file's server section.
func loadConfig(f *serverFlags, kf keyFiles) (*config.File, error) {
	if f.config == "" {
		cfg, err := flagsConfig(f, kf)
		if err != nil {
			return nil, err
		}
		f.applyClock(cfg, kf)
		return cfg, cfg.Check()
	}
	cfg, err := config.Read(f.config)
	if err != nil {
		return nil, err
	}
	f.applyOverrides(cfg, kf)
	f.applyClock(cfg, kf)
	if err := cfg.Check(); err != nil {
		return nil, fmt.Errorf("configuration %s: %w", f.config, err)
	}
	return cfg, nil
}

// queryAPI is the read side's HTTP API over the live read stores, for the
// bearer tokens the configuration admits (none: every call is 401).
func queryAPI(c *config.API, proj *app.Projections, events queryapi.StreamReader) (http.Handler, error) {
	var tokens []queryapi.Token
	if c != nil {
		for _, t := range c.Tokens {
			tokens = append(tokens, queryapi.Token{Name: t.Name, SHA256: t.SHA256, Roles: t.Roles})
		}
	}
	src := queryapi.Sources{
		Archive: proj.DB("archive"), Billing: proj.DB("billing"), Clock: proj.DB("clock"), Renewal: proj.DB("renewal-due"),
		Events: events, Status: proj.Status,
	}
	return queryapi.New(tokens, queryapi.Routes(src))
}

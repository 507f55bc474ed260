package app_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chronolog/chronolog/adapters/clock/ntp/ntptest"
	"github.com/chronolog/chronolog/adapters/config"
	"github.com/chronolog/chronolog/app"
	"github.com/chronolog/chronolog/domain/tsa"
	"github.com/chronolog/chronolog/projections"
	"github.com/chronolog/chronolog/projections/archive"
	"github.com/chronolog/chronolog/projections/billing"
)

// serverFile writes a configuration with a server section and the
// services given (each with the development key), and reads it back
// checked.
func (r *rig) serverFile(server, services string) *config.File {
	r.t.Helper()
	path := filepath.Join(r.dir, "tsad.yaml")
	key := fmt.Sprintf("{key: %s, cert: %s, chain: %s}", r.pki.TSAKey, r.pki.TSACert, r.pki.Chain)
	text := "server:\n" + server + "services:\n" + strings.ReplaceAll(services, "KEY", key)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		r.t.Fatal(err)
	}
	cfg, err := config.Read(path)
	if err == nil {
		err = cfg.Check()
	}
	if err != nil {
		r.t.Fatal(err)
	}
	return cfg
}

func (r *rig) options(data, backend string, ps ...projections.Projection) app.StartOptions {
	return app.StartOptions{Data: data, Node: "n1", Crypto: "go", Dev: true, Projections: ps, Log: r.w.Log,
		TransparencyLog: &app.LogConfig{Backend: backend, SegmentEvents: 16384, Tick: 50 * time.Millisecond, CheckpointInterval: 100 * time.Millisecond}}
}

// A start puts on the record, before the first request, the first clock
// round, then the configuration, then the key; the services answer, the
// read side projects their tokens, and Close stops everything it started.
func TestStartRecordsInOrderAndCloseStopsAll(t *testing.T) {
	r := newRig(t)
	clk := ntptest.Start(t)
	noLeaks(t)
	cfg := r.serverFile("  clock: {sources: [\"ntp:"+clk.Addr()+"\"], period: 1s}\n", one)
	ctx := context.Background()
	var logged syncBuffer
	o := r.options(t.TempDir(), "tessera", archive.New(), billing.New())
	o.Log = slog.New(slog.NewTextHandler(&logged, nil))
	a, err := app.Start(ctx, cfg, o)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if a.Gate == nil || a.Clock == "" {
		t.Fatalf("a sampled clock without its gate (%v) or its report %q", a.Gate, a.Clock)
	}
	if a.TransparencyLog == nil || a.Projections == nil {
		t.Fatal("the log or the read side did not start")
	}
	recs, err := a.Store.ReadAll(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var streams []string
	for _, e := range recs {
		if len(streams) == 0 || streams[len(streams)-1] != e.Stream {
			streams = append(streams, e.Stream)
		}
	}
	if got := strings.Join(streams, " "); !strings.HasPrefix(got, "tsa-clock tsa-config tsa-keys") {
		t.Errorf("the start's record, stream by stream: %s", got)
	}

	svc, ok := a.Live.Route("/tsa")
	if !ok {
		t.Fatal("no service on /tsa")
	}
	if o := svc.Handle(ctx, tsa.Request{Body: query(t), Path: "/tsa"}); o.Kind != tsa.Granted {
		t.Fatalf("outcome %+v", o)
	}
	waitArchive(t, a.Projections, 1)
	if a.Projections.DB("clock") != nil {
		t.Error("a read store for a projection not kept live")
	}

	// A reload goes through the same store and clock gate.
	if a.Reloader().Reload(ctx, "", nil, nil) {
		t.Error("a reload of nothing was put in force")
	}
	before := len(logged.String())
	a.Close()
	a.Close() // a second Close does nothing
	// Each part stopped before what it records to or reads from closed,
	// and a step cut short by its own stop is no error.
	for _, line := range strings.Split(logged.String()[before:], "\n") {
		if strings.Contains(line, "level=ERROR") {
			t.Errorf("logged while stopping: %s", line)
		}
	}
}

// syncBuffer is a log's output, written from several goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// A start that fails part way (here the read side, last) stops what it
// had started: the clock's sampling, the log's writer, the services and
// the store, and leaves the record of what it did.
func TestStartFailingUndoesItself(t *testing.T) {
	r := newRig(t)
	clk := ntptest.Start(t)
	noLeaks(t)
	cfg := r.serverFile("  clock: {sources: [\"ntp:"+clk.Addr()+"\"], period: 1s}\n", one)
	data := t.TempDir()
	// DATA/read cannot be made: a file is in its way.
	if err := os.WriteFile(filepath.Join(data, "read"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := app.Start(context.Background(), cfg, r.options(data, "tessera", archive.New()))
	if err == nil || !strings.HasPrefix(err.Error(), "projections: create the read store directory") {
		t.Fatalf("Start: %v", err)
	}

	// The store was closed: a new start opens it and finds the first.
	if err := os.Remove(filepath.Join(data, "read")); err != nil {
		t.Fatal(err)
	}
	a, err := app.Start(context.Background(), cfg, r.options(data, "off"))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	recs, err := a.Store.ReadStream(context.Background(), "tsa-config")
	if err != nil || len(recs) != 2 {
		t.Errorf("%d configuration records after two starts (%v), want 2", len(recs), err)
	}
	if a.TransparencyLog != nil {
		t.Error("a log with --log off")
	}
}

// A configuration whose clock section was not settled is refused before
// anything opens; an unverified clock has no gate and no report.
func TestStartClockSection(t *testing.T) {
	r := newRig(t)
	noLeaks(t)
	data := t.TempDir()
	cfg := r.mustFile(one)
	cfg.Server.Clock = nil
	if _, err := app.Start(context.Background(), cfg, r.options(data, "off")); err == nil {
		t.Fatal("a start without a clock section")
	}
	if _, err := os.Stat(filepath.Join(data, "events.db")); err == nil {
		t.Error("the store was opened for a configuration refused")
	}
	cfg.Server.Clock = &config.Clock{Unverified: true}
	a, err := app.Start(context.Background(), cfg, r.options(data, "off"))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if a.Gate != nil || a.Clock != "" {
		t.Errorf("an unverified clock with a gate (%v) or a report %q", a.Gate, a.Clock)
	}
}

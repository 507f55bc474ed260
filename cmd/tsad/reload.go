package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"time"

	"github.com/chronolog/chronolog/adapters/clock/system"
	"github.com/chronolog/chronolog/adapters/config"
	"github.com/chronolog/chronolog/adapters/httpapi"
	"github.com/chronolog/chronolog/adapters/ids"
	"github.com/chronolog/chronolog/domain/events"
	"github.com/chronolog/chronolog/domain/eventstore"
	"github.com/chronolog/chronolog/domain/tsa"
)

// recordConfigured records every service of the first generation before
// the server takes a request: no token is issued under a configuration
// that is not on the record.
func recordConfigured(ctx context.Context, rec tsa.Recorder, node string, g *generation) error {
	var evs []events.Event
	for _, name := range g.order {
		b := g.byName[name]
		evs = append(evs, events.ServiceConfigured{
			Service: name, Source: sourceOf(g.file), FileSHA256: g.file.SHA256,
			ConfigSHA256: b.configSHA, Certificate: b.cert, Config: b.configJSON,
		})
		evs = append(evs, g.endedAlgorithms[name]...)
	}
	return recordConfig(ctx, rec, node, evs...)
}

func recordConfig(ctx context.Context, rec tsa.Recorder, node string, evs ...events.Event) error {
	return recordEvents(ctx, rec, node, events.ConfigStream, evs...)
}

// recordEvents appends evs to stream, durably, before it returns.
func recordEvents(ctx context.Context, rec tsa.Recorder, node, stream string, evs ...events.Event) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	r := events.Recorder{Store: rec, Clock: system.Clock{}, IDs: ids.Source{}, Meta: events.Metadata{Node: node}}
	_, err := r.Record(ctx, stream, eventstore.Any, evs...)
	return err
}

// withEndedAlgorithms adds, after each service added or modified by a
// reload, the ended algorithms it runs with.
func withEndedAlgorithms(g *generation, changes []events.Event) []events.Event {
	out := make([]events.Event, 0, len(changes))
	for _, c := range changes {
		out = append(out, c)
		if ch, ok := c.(events.ServiceConfigChanged); ok && ch.Change != events.ConfigRemoved {
			out = append(out, g.endedAlgorithms[ch.Service]...)
		}
	}
	return out
}

// reloader applies a changed configuration file on SIGHUP.
type reloader struct {
	flags   *serverFlags
	kf      keyFiles
	w       wiring
	live    *liveServices
	handler *httpapi.Handler
	store   tsa.Recorder
	keys    streamReader
	tcp     *tcpServers
	log     *slog.Logger
}

// reload builds the new services beside the running ones and swaps them in
// only when the file is valid, every key loads, the change is recorded,
// and nothing it changes needs a restart. Otherwise the running
// configuration stays and the refusal is recorded with every reason.
func (r *reloader) reload(ctx context.Context) {
	source := r.flags.config
	if source == "" {
		r.refuse(ctx, "flags", "", []string{"the server was configured by flags: there is no file to reload"})
		return
	}
	old := r.live.gen.Load()
	cfg, err := config.Read(source)
	if err != nil {
		r.refuse(ctx, source, "", []string{err.Error()})
		return
	}
	r.flags.applyOverrides(cfg, r.kf)
	r.flags.applyClock(cfg, r.kf)
	if err := cfg.Check(); err != nil {
		r.refuse(ctx, source, cfg.SHA256, problemsOf(err))
		return
	}
	if problems := needsRestart(old.file, cfg); len(problems) > 0 {
		r.refuse(ctx, source, cfg.SHA256, problems)
		return
	}
	w := r.w
	w.now = time.Now()
	w.warnDays = cfg.Server.CertificateWarningDays
	if w.retired, err = retiredKeys(ctx, r.keys); err != nil {
		r.refuse(ctx, source, cfg.SHA256, []string{err.Error()})
		return
	}
	gen, err := build(cfg, w)
	if err != nil {
		r.refuse(ctx, source, cfg.SHA256, problemsOf(err))
		return
	}
	changes := diff(old, gen)
	if len(changes) == 0 {
		r.log.Info("configuration reloaded: no service changed", "file", source)
		gen.close()
		return
	}
	err = recordConfig(ctx, r.store, r.w.node, withEndedAlgorithms(gen, changes)...)
	if err == nil && len(gen.keyEvents) > 0 {
		err = recordEvents(ctx, r.store, r.w.node, events.KeyStream, gen.keyEvents...)
	}
	if err != nil {
		// Audit-first: a change that is not on the record does not apply.
		r.log.Error("configuration reload not applied: its record failed", "file", source, "err", err)
		gen.close()
		return
	}
	if err := r.handler.SetRoutes(gen.routes); err != nil {
		r.log.Error("configuration reload not applied", "err", err)
		gen.close()
		return
	}
	r.live.gen.Store(gen)
	// Requests already inside the old services finish with them.
	time.AfterFunc(time.Minute, old.close)
	r.log.Info("configuration reloaded", "file", source, "changes", len(changes))
}

func (r *reloader) refuse(ctx context.Context, source, sum string, problems []string) {
	r.log.Error("configuration reload refused: the running configuration stays", "file", source, "problems", problems)
	if err := recordConfig(ctx, r.store, r.w.node, events.ServiceConfigRefused{Source: source, FileSHA256: sum, Problems: problems}); err != nil {
		r.log.Error("configuration refusal not recorded", "err", err)
	}
}

func problemsOf(err error) []string {
	var ve *config.ValidationError
	if errors.As(err, &ve) {
		return ve.Problems
	}
	return []string{err.Error()}
}

// needsRestart lists what a reload would change that only a restart can:
// the listeners, TLS, and the services' sockets.
func needsRestart(old, cur *config.File) []string {
	var problems []string
	a, _ := json.Marshal(old.Server)
	b, _ := json.Marshal(cur.Server)
	if !bytes.Equal(a, b) {
		problems = append(problems, "server: the listen address, TLS, limits and clock change only on a restart")
	}
	if !maps.Equal(tcpAddrs(old), tcpAddrs(cur)) {
		problems = append(problems, "services: tcp sockets are opened at start; adding, moving or removing one needs a restart")
	}
	return problems
}

func tcpAddrs(f *config.File) map[string]string {
	m := map[string]string{}
	for _, s := range f.Services {
		if s.TCP != "" {
			m[s.Name] = s.TCP
		}
	}
	return m
}

// diff is the record of what a reload changes, service by service.
func diff(old, cur *generation) []events.Event {
	var out []events.Event
	src, sum := sourceOf(cur.file), cur.file.SHA256
	for _, name := range cur.order {
		b := cur.byName[name]
		prev, ok := old.byName[name]
		switch {
		case !ok:
			out = append(out, events.ServiceConfigChanged{Service: name, Change: events.ConfigAdded, Source: src, FileSHA256: sum,
				ConfigSHA256: b.configSHA, Certificate: b.cert, Config: b.configJSON})
		case prev.configSHA != b.configSHA || prev.cert != b.cert:
			out = append(out, events.ServiceConfigChanged{Service: name, Change: events.ConfigModified, Source: src, FileSHA256: sum,
				PreviousSHA256: prev.configSHA, ConfigSHA256: b.configSHA, Certificate: b.cert, Config: b.configJSON})
		}
	}
	for _, name := range old.order {
		if _, ok := cur.byName[name]; !ok {
			out = append(out, events.ServiceConfigChanged{Service: name, Change: events.ConfigRemoved, Source: src, FileSHA256: sum,
				PreviousSHA256: old.byName[name].configSHA})
		}
	}
	return out
}

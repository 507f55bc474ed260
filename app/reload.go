package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/chronolog/chronolog/adapters/clock/system"
	"github.com/chronolog/chronolog/adapters/config"
	"github.com/chronolog/chronolog/adapters/ids"
	"github.com/chronolog/chronolog/domain/events"
	"github.com/chronolog/chronolog/domain/eventstore"
	"github.com/chronolog/chronolog/domain/tsa"
)

// RecordStart records the first generation before the server takes a
// request: every service's configuration (with the ended algorithms it
// runs with), then every key it activated. No token is issued under a
// configuration or a key that is not on the record.
func (g *Generation) RecordStart(ctx context.Context, rec tsa.Recorder, node string) error {
	var evs []events.Event
	for _, name := range g.order {
		b := g.byName[name]
		evs = append(evs, events.ServiceConfigured{
			Service: name, Source: SourceOf(g.file), FileSHA256: g.file.SHA256,
			ConfigSHA256: b.configSHA, Certificate: b.cert, Config: b.configJSON,
		})
		evs = append(evs, g.endedAlgorithms[name]...)
	}
	if err := recordEvents(ctx, rec, node, events.ConfigStream, evs...); err != nil {
		return fmt.Errorf("record the configuration: %w", err)
	}
	if err := recordEvents(ctx, rec, node, events.KeyStream, g.keyEvents...); err != nil {
		return fmt.Errorf("record the keys' activation: %w", err)
	}
	return nil
}

// SourceOf names where a configuration came from: its file, or "flags".
func SourceOf(cfg *config.File) string {
	if cfg.Path == "" {
		return "flags"
	}
	return cfg.Path
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
func withEndedAlgorithms(g *Generation, changes []events.Event) []events.Event {
	out := make([]events.Event, 0, len(changes))
	for _, c := range changes {
		out = append(out, c)
		if ch, ok := c.(events.ServiceConfigChanged); ok && ch.Change != events.ConfigRemoved {
			out = append(out, g.endedAlgorithms[ch.Service]...)
		}
	}
	return out
}

// Reloader puts a changed configuration in force (on SIGHUP).
type Reloader struct {
	Live   *Live
	Wiring Wiring
	// Keys reads the key record, for the keys retired since the start.
	Keys StreamReader
}

// Reload builds the services of cfg (read from source, checked; readErr
// when it could not be read or checked) beside the running ones and puts
// them in force only when every key loads, the change is recorded, and
// nothing it changes needs a restart. Otherwise the running configuration
// stays and the refusal is recorded with every reason. It reports whether
// the new configuration is in force.
func (r *Reloader) Reload(ctx context.Context, source string, cfg *config.File, readErr error) bool {
	w := r.Wiring
	if source == "" {
		r.refuse(ctx, "flags", "", []string{"the server was configured by flags: there is no file to reload"})
		return false
	}
	if readErr != nil {
		sum := ""
		if cfg != nil {
			sum = cfg.SHA256
		}
		r.refuse(ctx, source, sum, problemsOf(readErr))
		return false
	}
	old := r.Live.Current()
	if problems := needsRestart(old.file, cfg); len(problems) > 0 {
		r.refuse(ctx, source, cfg.SHA256, problems)
		return false
	}
	w.Now = time.Now()
	w.WarnDays = cfg.Server.CertificateWarningDays
	var err error
	if w.Retired, err = RetiredKeys(ctx, r.Keys); err != nil {
		r.refuse(ctx, source, cfg.SHA256, []string{err.Error()})
		return false
	}
	gen, err := Build(cfg, w)
	if err != nil {
		r.refuse(ctx, source, cfg.SHA256, problemsOf(err))
		return false
	}
	changes := diff(old, gen)
	if len(changes) == 0 {
		w.Log.Info("configuration reloaded: no service changed", "file", source)
		gen.close()
		return false
	}
	err = recordEvents(ctx, w.Recorder, w.Node, events.ConfigStream, withEndedAlgorithms(gen, changes)...)
	if err == nil && len(gen.keyEvents) > 0 {
		err = recordEvents(ctx, w.Recorder, w.Node, events.KeyStream, gen.keyEvents...)
	}
	if err != nil {
		// Audit-first: a change that is not on the record does not apply.
		w.Log.Error("configuration reload not applied: its record failed", "file", source, "err", err)
		gen.close()
		return false
	}
	r.Live.gen.Store(gen)
	// Requests already inside the old services finish with them.
	time.AfterFunc(time.Minute, old.close)
	w.Log.Info("configuration reloaded", "file", source, "changes", len(changes))
	return true
}

func (r *Reloader) refuse(ctx context.Context, source, sum string, problems []string) {
	w := r.Wiring
	w.Log.Error("configuration reload refused: the running configuration stays", "file", source, "problems", problems)
	if err := recordEvents(ctx, w.Recorder, w.Node, events.ConfigStream, events.ServiceConfigRefused{Source: source, FileSHA256: sum, Problems: problems}); err != nil {
		w.Log.Error("configuration refusal not recorded", "err", err)
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
func diff(old, cur *Generation) []events.Event {
	var out []events.Event
	src, sum := SourceOf(cur.file), cur.file.SHA256
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

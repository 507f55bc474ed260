package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/chronolog/chronolog/adapters/config"
	"github.com/chronolog/chronolog/adapters/ids"
	"github.com/chronolog/chronolog/domain/clock"
	"github.com/chronolog/chronolog/domain/events"
	"github.com/chronolog/chronolog/domain/eventstore"
	"github.com/chronolog/chronolog/domain/tsa"
)

// clockSource is one adapter the monitor reads: NTP, chrony or the kernel.
type clockSource interface {
	Read(ctx context.Context) (clock.Reading, error)
}

// namedSource keeps what a failed reading must still say: which source.
type namedSource struct {
	kind, name string
	src        clockSource
}

// clockMonitor samples the sources every period, records each round (and
// every change of a service's sync state) durably, and only then lets the
// gate judge requests by it: a token can only name a sample on the record.
type clockMonitor struct {
	sources []namedSource
	period  time.Duration
	timeout time.Duration
	watch   *clock.Watch
	gate    *clock.Gate
	store   tsa.Recorder
	node    string
	// accuracies reads the running services' declared accuracies; a reload
	// may change them between rounds.
	accuracies func() map[string]time.Duration
	log        *slog.Logger
	now        func() time.Time
}

func newClockMonitor(c *config.Clock, store tsa.Recorder, node string, log *slog.Logger) (*clockMonitor, error) {
	p := clock.Policy{
		DriftPPM:   c.DriftPPM,
		MaxAge:     c.MaxAge.D(),
		Quorum:     c.Quorum,
		RefuseLeap: *c.Leap.Refuse,
		LeapWindow: c.Leap.Window.D(),
	}
	m := &clockMonitor{period: c.Period.D(), timeout: c.Timeout.D(), watch: clock.NewWatch(p), gate: clock.NewGate(p),
		store: store, node: node, log: log, now: func() time.Time { return time.Now().UTC() }}
	for _, s := range c.Sources {
		cs, err := config.ParseClockSource(s)
		if err != nil {
			return nil, err
		}
		src, name, err := openClockSource(cs, m.timeout)
		if err != nil {
			return nil, fmt.Errorf("clock source %s: %w", s, err)
		}
		m.sources = append(m.sources, namedSource{kind: cs.Kind, name: name, src: src})
	}
	return m, nil
}

// round reads every source at once, records the round and updates the gate.
// A round that cannot be recorded closes the gate: nothing may rest on a
// sample that is not on the record.
func (m *clockMonitor) round(ctx context.Context) (clock.Assessment, error) {
	rs := make([]clock.Reading, len(m.sources))
	var wg sync.WaitGroup
	for i, s := range m.sources {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rctx, cancel := context.WithTimeout(ctx, m.timeout)
			defer cancel()
			r, err := s.src.Read(rctx)
			if err != nil {
				// The judgement names the source itself.
				msg := strings.TrimPrefix(err.Error(), s.kind+" "+s.name+": ")
				r = clock.Reading{Source: s.kind, Name: s.name, At: m.now(), Err: msg}
			}
			rs[i] = r
		}()
	}
	wg.Wait()
	id := ids.Source{}.NewID()
	a, evs := m.watch.Round(id, rs, m.accuracies())
	if err := m.record(ctx, id, evs); err != nil {
		m.gate.Set(clock.Assessment{At: m.now(), Reason: "the clock sample could not be recorded: " + err.Error()})
		return a, fmt.Errorf("record clock sample: %w", err)
	}
	m.gate.Set(a)
	return a, nil
}

// record records a round; its first event, the sample, has the id every
// token admitted on it names.
func (m *clockMonitor) record(ctx context.Context, sampleID string, evs []events.Event) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	r := events.Recorder{Store: m.store, Clock: clockFunc(m.now), IDs: ids.Source{}, Meta: events.Metadata{Node: m.node}}
	_, err := r.RecordIDs(ctx, events.ClockStream, eventstore.Any, []string{sampleID}, evs...)
	return err
}

// clockFunc is a func as a clock.
type clockFunc func() time.Time

func (f clockFunc) Now() time.Time { return f() }

// run samples every period until ctx ends. Each state change is logged for
// the operator as well as recorded.
func (m *clockMonitor) run(ctx context.Context) {
	t := time.NewTicker(m.period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		was, _ := m.gate.Current()
		a, err := m.round(ctx)
		if err != nil {
			m.log.Error("clock: round not recorded, issuance stopped", "err", err)
			continue
		}
		switch {
		case was.Synchronised && !a.Synchronised:
			m.log.Error("clock: not synchronised, issuance stopped", "reason", a.Reason)
		case !was.Synchronised && a.Synchronised:
			m.log.Info("clock: synchronised", "bound", a.Bound, "sources", a.Agreeing)
		}
	}
}

// describe is the start-up report's line on the clock.
func (m *clockMonitor) describe(a clock.Assessment) string {
	var names []string
	for _, s := range m.sources {
		names = append(names, s.kind+" "+s.name)
	}
	state := fmt.Sprintf("synchronised, within ±%v (%d of %d sources agree)", a.Bound.Round(time.Microsecond), a.Agreeing, a.Sources)
	if !a.Synchronised {
		state = "NOT synchronised, every request is answered timeNotAvailable: " + a.Reason
	}
	return fmt.Sprintf("clock: %s; sources %s, sampled every %v", state, strings.Join(names, ", "), m.period)
}

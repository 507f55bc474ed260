package clock

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/chronolog/chronolog/domain/events"
	"github.com/chronolog/chronolog/domain/eventstore"
)

// Source is one clock source the monitor reads: an NTP server, chronyd,
// the kernel.
type Source interface {
	Read(ctx context.Context) (Reading, error)
}

// NamedSource is a source with what a failed reading must still say:
// which source it was.
type NamedSource struct {
	Kind, Name string
	Source     Source
}

// MonitorConfig says how the monitor judges and what it records.
type MonitorConfig struct {
	Policy Policy
	// Period is how often Run samples; Timeout bounds each source's read.
	Period, Timeout time.Duration
	// Node is recorded in the events' metadata.
	Node string
}

// MonitorPorts connect the monitor to the world.
type MonitorPorts struct {
	Sources []NamedSource
	// Store records the rounds (the event store).
	Store events.Appender
	IDs   interface{ NewID() string }
	Clock interface{ Now() time.Time }
	// Tick paces Run: a round at each tick.
	Tick <-chan time.Time
	// Accuracies reads the running services' declared accuracies, which a
	// configuration reload may change between rounds.
	Accuracies func() map[string]time.Duration
	Logger     interface {
		Info(msg string, args ...any)
		Error(msg string, args ...any)
	}
}

// Monitor samples the clock sources each round, records the round (and
// every change of a service's sync state) durably, and only then lets its
// gate judge requests by it: a token can only name a sample that is on the
// record. A round that cannot be recorded closes the gate.
type Monitor struct {
	cfg   MonitorConfig
	p     MonitorPorts
	watch *Watch
	gate  *Gate
}

// NewMonitor checks its configuration; the gate stays closed until the
// first round is recorded.
func NewMonitor(cfg MonitorConfig, p MonitorPorts) (*Monitor, error) {
	if len(p.Sources) == 0 {
		return nil, errors.New("clock: the monitor needs a source")
	}
	if p.Store == nil || p.IDs == nil || p.Clock == nil || p.Tick == nil || p.Accuracies == nil || p.Logger == nil {
		return nil, errors.New("clock: every monitor port must be set")
	}
	if cfg.Timeout <= 0 {
		return nil, errors.New("clock: the monitor needs a read timeout")
	}
	return &Monitor{cfg: cfg, p: p, watch: NewWatch(cfg.Policy), gate: NewGate(cfg.Policy)}, nil
}

// Gate is what the services ask before they sign.
func (m *Monitor) Gate() *Gate { return m.gate }

// Round reads every source at once, records the round and updates the
// gate.
func (m *Monitor) Round(ctx context.Context) (Assessment, error) {
	rs := make([]Reading, len(m.p.Sources))
	var wg sync.WaitGroup
	for i, s := range m.p.Sources {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rctx, cancel := context.WithTimeout(ctx, m.cfg.Timeout)
			defer cancel()
			r, err := s.Source.Read(rctx)
			if err != nil {
				// The judgement names the source itself.
				msg := strings.TrimPrefix(err.Error(), s.Kind+" "+s.Name+": ")
				r = Reading{Source: s.Kind, Name: s.Name, At: m.now(), Err: msg}
			}
			rs[i] = r
		}()
	}
	wg.Wait()
	id := m.p.IDs.NewID()
	a, evs := m.watch.Round(id, rs, m.p.Accuracies())
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	rec := events.Recorder{Store: m.p.Store, Clock: m.p.Clock, IDs: m.p.IDs, Meta: events.Metadata{Node: m.cfg.Node}}
	if _, err := rec.RecordIDs(rctx, events.ClockStream, eventstore.Any, []string{id}, evs...); err != nil {
		m.gate.Set(Assessment{At: m.now(), Reason: "the clock sample could not be recorded: " + err.Error()})
		return a, fmt.Errorf("record clock sample: %w", err)
	}
	m.gate.Set(a)
	return a, nil
}

// Run takes a round at each tick until ctx ends. Each change of state is
// logged for the operator as well as recorded.
func (m *Monitor) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.p.Tick:
		}
		was, _ := m.gate.Current()
		a, err := m.Round(ctx)
		if err != nil {
			m.p.Logger.Error("clock: round not recorded, issuance stopped", "err", err)
			continue
		}
		switch {
		case was.Synchronised && !a.Synchronised:
			m.p.Logger.Error("clock: not synchronised, issuance stopped", "reason", a.Reason)
		case !was.Synchronised && a.Synchronised:
			m.p.Logger.Info("clock: synchronised", "bound", a.Bound, "sources", a.Agreeing)
		}
	}
}

// Describe is the start-up report's line on the clock.
func (m *Monitor) Describe(a Assessment) string {
	var names []string
	for _, s := range m.p.Sources {
		names = append(names, s.Kind+" "+s.Name)
	}
	state := fmt.Sprintf("synchronised, within ±%v (%d of %d sources agree)", a.Bound.Round(time.Microsecond), a.Agreeing, a.Sources)
	if !a.Synchronised {
		state = "NOT synchronised, every request is answered timeNotAvailable: " + a.Reason
	}
	return fmt.Sprintf("clock: %s; sources %s, sampled every %v", state, strings.Join(names, ", "), m.cfg.Period)
}

func (m *Monitor) now() time.Time { return m.p.Clock.Now().UTC() }

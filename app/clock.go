package app

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/chronolog/chronolog/adapters/clock/chrony"
	"github.com/chronolog/chronolog/adapters/clock/kernel"
	"github.com/chronolog/chronolog/adapters/clock/ntp"
	"github.com/chronolog/chronolog/adapters/clock/system"
	"github.com/chronolog/chronolog/adapters/config"
	"github.com/chronolog/chronolog/adapters/ids"
	"github.com/chronolog/chronolog/domain/clock"
	"github.com/chronolog/chronolog/domain/events"
)

// newClockMonitor opens the configured clock sources and makes the monitor
// that samples them at each tick of the returned ticker, which the caller
// stops.
func newClockMonitor(c *config.Clock, store events.Appender, node string, accuracies func() map[string]time.Duration, log *slog.Logger) (*clock.Monitor, *time.Ticker, error) {
	p := clock.Policy{
		DriftPPM:   c.DriftPPM,
		MaxAge:     c.MaxAge.D(),
		Quorum:     c.Quorum,
		RefuseLeap: *c.Leap.Refuse,
		LeapWindow: c.Leap.Window.D(),
	}
	var sources []clock.NamedSource
	for _, s := range c.Sources {
		cs, err := config.ParseClockSource(s)
		if err != nil {
			return nil, nil, err
		}
		src, name, err := openClockSource(cs, c.Timeout.D())
		if err != nil {
			return nil, nil, fmt.Errorf("clock source %s: %w", s, err)
		}
		sources = append(sources, clock.NamedSource{Kind: cs.Kind, Name: name, Source: src})
	}
	ticker := time.NewTicker(c.Period.D())
	m, err := clock.NewMonitor(clock.MonitorConfig{Policy: p, Period: c.Period.D(), Timeout: c.Timeout.D(), Node: node},
		clock.MonitorPorts{Sources: sources, Store: store, IDs: ids.Source{}, Clock: system.Clock{}, Tick: ticker.C,
			Accuracies: accuracies, Logger: log})
	if err != nil {
		ticker.Stop()
		return nil, nil, err
	}
	return m, ticker, nil
}

// openClockSource makes the adapter for one configured source, and the
// name its readings carry.
func openClockSource(cs config.ClockSource, timeout time.Duration) (clock.Source, string, error) {
	switch cs.Kind {
	case "ntp":
		s, err := ntp.New(cs.Address, timeout)
		if err != nil {
			return nil, "", err
		}
		return s, s.Name(), nil
	case "chrony":
		s, err := chrony.New(cs.Address, timeout)
		if err != nil {
			return nil, "", err
		}
		return s, s.Name(), nil
	case "kernel":
		s := kernel.New()
		return s, s.Name(), nil
	}
	return nil, "", fmt.Errorf("unknown clock source kind %q", cs.Kind)
}

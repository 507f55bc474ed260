package main

import (
	"fmt"
	"time"

	"github.com/chronolog/chronolog/adapters/clock/chrony"
	"github.com/chronolog/chronolog/adapters/clock/kernel"
	"github.com/chronolog/chronolog/adapters/clock/ntp"
	"github.com/chronolog/chronolog/adapters/config"
	"github.com/chronolog/chronolog/domain/clock"
)

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

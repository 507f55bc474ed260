package config

import (
	"fmt"
	"net"
	"strings"
	"time"
)

// Clock configures how the clock's quality is sampled and the issuance gate
// that holds every service to its declared accuracy. Without a clock
// section, tsad serve reads the kernel's view (adjtimex) and tsad dev runs
// unverified.
type Clock struct {
	// Sources are read every Period, each one of:
	//   ntp:HOST[:PORT]        an NTP server (port 123 by default)
	//   chrony:HOST:PORT       chronyd's command port (its tracking data)
	//   chrony:/PATH.sock      chronyd's command socket
	//   kernel                 the kernel's own view (adjtimex)
	Sources []string `yaml:"sources,omitempty" json:"sources,omitempty"`
	// Unverified issues on the system clock without sampling it; tokens
	// then declare no accuracy. For development only.
	Unverified bool `yaml:"unverified,omitempty" json:"unverified,omitempty"`
	// Period between sampling rounds (default 16s); Timeout for one
	// source's answer (default 2s, at most half the period).
	Period  Duration `yaml:"period,omitempty" json:"period,omitempty"`
	Timeout Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
	// MaxAge closes the gate when the last sample is older (default two
	// periods and a timeout): the backstop if sampling stalls.
	MaxAge Duration `yaml:"maxAge,omitempty" json:"maxAge,omitempty"`
	// DriftPPM is the drift allowed between samples (default 100).
	DriftPPM float64 `yaml:"driftPpm,omitempty" json:"driftPpm,omitempty"`
	// Quorum is how many sources must agree (default: a majority).
	Quorum int `yaml:"quorum,omitempty" json:"quorum,omitempty"`
	// Leap: refuse requests within Window of an announced leap second
	// (default: refuse, 1s).
	Leap *Leap `yaml:"leap,omitempty" json:"leap,omitempty"`
}

// Leap configures the refusal around a leap second.
type Leap struct {
	Refuse *bool    `yaml:"refuse,omitempty" json:"refuse,omitempty"`
	Window Duration `yaml:"window,omitempty" json:"window,omitempty"`
}

// ClockSource is one parsed entry of Clock.Sources.
type ClockSource struct {
	// Kind is ntp, chrony or kernel; Address the server, command address
	// or socket path.
	Kind, Address string
}

// ParseClockSource reads one source entry.
func ParseClockSource(s string) (ClockSource, error) {
	s = strings.TrimSpace(s)
	if s == "kernel" {
		return ClockSource{Kind: "kernel"}, nil
	}
	kind, addr, ok := strings.Cut(s, ":")
	if !ok || addr == "" {
		return ClockSource{}, fmt.Errorf("clock source %q: write ntp:HOST[:PORT], chrony:HOST:PORT, chrony:/PATH.sock or kernel", s)
	}
	switch kind {
	case "ntp":
		host := addr
		if strings.Contains(addr, ":") {
			// An IPv6 address needs brackets: [::1]:123.
			h, _, err := net.SplitHostPort(addr)
			if err != nil {
				return ClockSource{}, fmt.Errorf("clock source %q: %v", s, err)
			}
			host = h
		}
		if host == "" {
			return ClockSource{}, fmt.Errorf("clock source %q: no host", s)
		}
	case "chrony":
		if !strings.HasPrefix(addr, "/") {
			if _, _, err := net.SplitHostPort(addr); err != nil {
				return ClockSource{}, fmt.Errorf("clock source %q: chrony needs HOST:PORT of its command port or a socket path: %v", s, err)
			}
		}
	default:
		return ClockSource{}, fmt.Errorf("clock source %q: unknown kind %q (ntp, chrony, kernel)", s, kind)
	}
	return ClockSource{Kind: kind, Address: addr}, nil
}

func (c *Clock) applyDefaults() {
	if c.Unverified {
		return
	}
	if c.Period == 0 {
		c.Period = Duration(16 * time.Second)
	}
	if c.Timeout == 0 {
		c.Timeout = min(Duration(2*time.Second), c.Period/2)
	}
	if c.MaxAge == 0 {
		c.MaxAge = 2*c.Period + c.Timeout
	}
	if c.DriftPPM == 0 {
		c.DriftPPM = 100
	}
	if c.Leap == nil {
		c.Leap = &Leap{}
	}
	if c.Leap.Refuse == nil {
		t := true
		c.Leap.Refuse = &t
	}
	if c.Leap.Window == 0 {
		c.Leap.Window = Duration(time.Second)
	}
}

func (c *Clock) validate(p *problems) {
	if c.Unverified {
		if len(c.Sources) > 0 {
			p.add("server: clock: unverified and sources exclude each other")
		}
		return
	}
	if len(c.Sources) == 0 {
		p.add("server: clock: at least one source is needed (or unverified: true, for development)")
	}
	for _, s := range c.Sources {
		if _, err := ParseClockSource(s); err != nil {
			p.add("server: %v", err)
		}
	}
	if c.Period < Duration(time.Second) {
		p.add("server: clock: period %v is under 1s", c.Period.D())
	}
	if c.Timeout <= 0 || c.Timeout >= c.Period {
		p.add("server: clock: timeout %v must be positive and shorter than the period %v", c.Timeout.D(), c.Period.D())
	}
	if c.MaxAge < c.Period {
		p.add("server: clock: maxAge %v is shorter than the period %v: the gate would close between samples", c.MaxAge.D(), c.Period.D())
	}
	if c.DriftPPM < 0 || c.DriftPPM > 1000 {
		p.add("server: clock: driftPpm %v is not within 0–1000", c.DriftPPM)
	}
	if c.Quorum < 0 || c.Quorum > len(c.Sources) {
		p.add("server: clock: quorum %d is not within 0–%d (the number of sources)", c.Quorum, len(c.Sources))
	}
	if c.Leap != nil && c.Leap.Window < 0 {
		p.add("server: clock: leap window must not be negative")
	}
}

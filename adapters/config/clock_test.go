package config

import (
	"strings"
	"testing"
	"time"
)

func TestParseClockSource(t *testing.T) {
	for in, want := range map[string]ClockSource{
		"kernel":                          {Kind: "kernel"},
		"ntp:ntp1.example":                {Kind: "ntp", Address: "ntp1.example"},
		"ntp:127.0.0.1:11123":             {Kind: "ntp", Address: "127.0.0.1:11123"},
		"ntp:[::1]:123":                   {Kind: "ntp", Address: "[::1]:123"},
		"chrony:127.0.0.1:323":            {Kind: "chrony", Address: "127.0.0.1:323"},
		"chrony:/run/chrony/chronyd.sock": {Kind: "chrony", Address: "/run/chrony/chronyd.sock"},
	} {
		got, err := ParseClockSource(in)
		if err != nil || got != want {
			t.Errorf("%s: %+v, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "ntp", "ntp:", "ntp::123", "ntp:::1", "gps:/dev/ttyS0", "chrony:localhost", "kernel:x"} {
		if _, err := ParseClockSource(in); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}

func TestClockDefaults(t *testing.T) {
	f, err := Parse([]byte("server:\n  clock: {sources: [kernel, 'ntp:a.example']}\n" + strings.TrimPrefix(good, "\n")))
	if err != nil {
		t.Fatal(err)
	}
	c := f.Server.Clock
	if c.Period.D() != 16*time.Second || c.Timeout.D() != 2*time.Second || c.MaxAge.D() != 34*time.Second ||
		c.DriftPPM != 100 || !*c.Leap.Refuse || c.Leap.Window.D() != time.Second || c.Quorum != 0 {
		t.Fatalf("defaults: %+v %+v", c, c.Leap)
	}
}

func TestClockProblems(t *testing.T) {
	for name, tc := range map[string]struct{ clock, want string }{
		"no source":           {"{period: 10s}", "at least one source is needed"},
		"both":                {"{unverified: true, sources: [kernel]}", "unverified and sources exclude each other"},
		"bad source":          {"{sources: ['gps:/dev/x']}", `unknown kind "gps"`},
		"short period":        {"{sources: [kernel], period: 500ms}", "period 500ms is under 1s"},
		"timeout over period": {"{sources: [kernel], period: 2s, timeout: 3s}", "timeout 3s must be positive and shorter than the period 2s"},
		"max age":             {"{sources: [kernel], period: 10s, maxAge: 5s}", "maxAge 5s is shorter than the period 10s"},
		"quorum":              {"{sources: [kernel], quorum: 2}", "quorum 2 is not within 0–1"},
		"drift":               {"{sources: [kernel], driftPpm: 5000}", "driftPpm 5000 is not within"},
		"unknown key":         {"{sources: [kernel], stratum: 1}", "field stratum not found"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Parse([]byte("server:\n  clock: " + tc.clock + "\n" + strings.TrimPrefix(good, "\n")))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
}

// FuzzParseClockSource: whatever is accepted names a known kind and reads
// back the same from its canonical form.
func FuzzParseClockSource(f *testing.F) {
	for _, s := range []string{"kernel", "ntp:a.example", "ntp:127.0.0.1:123", "chrony:/run/c.sock", "chrony:h:323", "ntp:[::1]:1", "x:y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cs, err := ParseClockSource(s)
		if err != nil {
			return
		}
		canon := cs.Kind
		switch cs.Kind {
		case "kernel":
		case "ntp", "chrony":
			if cs.Address == "" {
				t.Fatalf("%q: %s without an address", s, cs.Kind)
			}
			canon += ":" + cs.Address
		default:
			t.Fatalf("%q: kind %q", s, cs.Kind)
		}
		again, err := ParseClockSource(canon)
		if err != nil || again != cs {
			t.Fatalf("%q → %+v → %q → %+v, %v", s, cs, canon, again, err)
		}
	})
}

func TestAPITokens(t *testing.T) {
	digest := "sha256:" + strings.Repeat("ab", 32)
	ok := "server:\n  api:\n    tokens:\n      - {name: alice, sha256: '" + digest + "', roles: [auditor, billing]}\n" + strings.TrimPrefix(good, "\n")
	if _, err := Parse([]byte(ok)); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct{ tokens, want string }{
		"a clear token":  {"[{name: a, sha256: 'chl_secret', roles: [auditor]}]", "store the token's digest"},
		"no role":        {"[{name: a, sha256: '" + digest + "', roles: []}]", "roles: at least one"},
		"unknown role":   {"[{name: a, sha256: '" + digest + "', roles: [root]}]", `role "root" is not one of`},
		"twice the name": {"[{name: a, sha256: '" + digest + "', roles: [auditor]}, {name: a, sha256: '" + digest + "', roles: [billing]}]", `name "a" is listed twice`},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Parse([]byte("server:\n  api:\n    tokens: " + tc.tokens + "\n" + strings.TrimPrefix(good, "\n")))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
}

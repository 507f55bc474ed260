package chronytest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chronolog/chronolog/adapters/clock/ntp"
	"github.com/chronolog/chronolog/adapters/clock/ntp/ntptest"
)

func TestConfig(t *testing.T) {
	d := &Daemon{dir: "/t", pidfile: "/t/chronyd.pid", socket: "/t/chronyd.sock"}
	tests := []struct {
		name      string
		stratum   int
		upstreams []upstream
		extra     string
	}{
		{"local only", 10, nil, ""},
		{"with upstreams", 4, []upstream{{"127.0.0.1", 1123}, {"::1", 2123}},
			"server 127.0.0.1 port 1123 iburst minpoll -4 maxpoll -4\nserver ::1 port 2123 iburst minpoll -4 maxpoll -4\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := fmt.Sprintf(`port 1123
bindaddress 127.0.0.1
allow 127.0.0.1
local stratum %d
cmdport 1323
bindcmdaddress 127.0.0.1
bindcmdaddress /t/chronyd.sock
cmdallow 127.0.0.1
pidfile /t/chronyd.pid
driftfile /t/chronyd.drift
`, tt.stratum) + tt.extra
			if got := d.config(1123, 1323, tt.stratum, tt.upstreams); got != want {
				t.Errorf("config =\n%s\nwant\n%s", got, want)
			}
		})
	}
}

func TestParseUpstream(t *testing.T) {
	tests := []struct {
		in      string
		want    upstream
		wantErr bool
	}{
		{"127.0.0.1:123", upstream{"127.0.0.1", 123}, false},
		{"[::1]:4123", upstream{"::1", 4123}, false},
		{"ntp.example.org:123", upstream{"ntp.example.org", 123}, false},
		{"127.0.0.1", upstream{}, true},
		{"127.0.0.1:0", upstream{}, true},
		{":123", upstream{}, true},
		{"a b:123", upstream{}, true},
		{"127.0.0.1:ntp", upstream{}, true},
	}
	for _, tt := range tests {
		got, err := parseUpstream(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("parseUpstream(%q) = %+v, %v; want %+v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

// recorder is a testing.TB whose Skip and Fatalf are recorded rather than
// ending the test.
type recorder struct {
	testing.TB
	skipped, failed string
}

func (r *recorder) Helper()                           {}
func (r *recorder) Skip(args ...any)                  { r.skipped = fmt.Sprint(args...) }
func (r *recorder) Fatalf(format string, args ...any) { r.failed = fmt.Sprintf(format, args...) }

func TestUnavailable(t *testing.T) {
	tests := []struct {
		ci       string
		skipped  bool
		failedCI bool
	}{
		{"", true, false},
		{"false", true, false},
		{"true", false, true},
	}
	for _, tt := range tests {
		t.Run("CI="+tt.ci, func(t *testing.T) {
			t.Setenv("CI", tt.ci)
			r := &recorder{TB: t}
			unavailable(r, "chronyd is not installed: apt-get install %s", "chrony")
			if (r.skipped != "") != tt.skipped || (r.failed != "") != tt.failedCI {
				t.Fatalf("skipped %q, failed %q", r.skipped, r.failed)
			}
			msg := r.skipped + r.failed
			if !strings.Contains(msg, "apt-get install chrony") {
				t.Errorf("message %q does not say how to install chrony", msg)
			}
		})
	}
}

func TestStartServesAndStops(t *testing.T) {
	tests := []struct {
		name    string
		opts    Options
		stratum int
	}{
		{"default stratum", Options{}, DefaultStratum},
		{"stratum 1", Options{Stratum: 1}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := Start(t, tt.opts)
			// NTP, served from chronyd's own clock.
			src, err := ntp.New(d.NTPAddr(), 2*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			r, err := src.Read(context.Background())
			if err != nil {
				t.Fatalf("NTP from chronyd: %v", err)
			}
			// "local stratum N" is served as stratum N.
			if r.Stratum != tt.stratum || !r.Synchronised {
				t.Errorf("NTP answer: stratum %d, synchronised %v; want %d, true", r.Stratum, r.Synchronised, tt.stratum)
			}
			out, err := d.Chronyc("-c", "tracking")
			if err != nil {
				t.Fatal(err)
			}
			if f := strings.Split(out, ","); len(f) < 3 || f[2] != fmt.Sprint(tt.stratum) {
				t.Errorf("chronyc -c tracking = %q, want stratum %d", out, tt.stratum)
			}

			pid := d.cmd.Process.Pid
			if b, err := os.ReadFile(d.pidfile); err != nil || strings.TrimSpace(string(b)) != fmt.Sprint(pid) {
				t.Errorf("pidfile = %q, %v; want %d", b, err, pid)
			}
			d.Stop()
			select {
			case <-d.exited:
			default:
				t.Fatal("Stop returned before chronyd exited")
			}
			if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
				t.Errorf("chronyd pid %d after Stop: kill -0 = %v, want ESRCH", pid, err)
			}
			if _, err := os.Stat(d.pidfile); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("pidfile after Stop: %v, want it removed by chronyd's clean exit", err)
			}
			d.Stop() // again: nothing to do, no error
			if _, err := d.Chronyc("tracking"); err == nil {
				t.Error("chronyc still answered after Stop")
			}
		})
	}
}

func TestStartWithUpstream(t *testing.T) {
	up := ntptest.Start(t)
	d := Start(t, Options{Stratum: 9, Upstreams: []string{up.Addr()}})
	// Synchronised to the stratum 1 upstream, chronyd is at stratum 2.
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, err := d.Chronyc("-c", "tracking")
		if err != nil {
			t.Fatal(err)
		}
		if f := strings.Split(out, ","); len(f) > 2 && f[2] == "2" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not synchronised to %s after 10s: %s", up.Addr(), out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if up.Requests() == 0 {
		t.Error("the upstream got no requests")
	}
}

package chrony_test

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chronolog/chronolog/adapters/clock/chrony"
	"github.com/chronolog/chronolog/adapters/clock/chrony/chronytest"
	"github.com/chronolog/chronolog/adapters/clock/ntp/ntptest"
	"github.com/chronolog/chronolog/domain/clock"
)

// chronycTracking is `chronyc -c tracking` split into its fields:
// reference id, name, stratum, reference time, system time (the
// correction), last offset, RMS offset, frequency, residual frequency,
// skew, root delay, root dispersion, update interval, leap status.
func chronycTracking(t *testing.T, d *chronytest.Daemon) []string {
	t.Helper()
	out, err := d.Chronyc("-c", "tracking")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Split(strings.TrimSpace(out), ",")
	if len(f) != 14 {
		t.Fatalf("chronyc -c tracking: %d fields, want 14: %q", len(f), out)
	}
	return f
}

func TestReadLocalStratum(t *testing.T) {
	tests := []struct {
		name    string
		stratum int
		addr    func(*chronytest.Daemon) string
	}{
		{"udp stratum 3", 3, (*chronytest.Daemon).CmdAddr},
		{"udp default stratum", 0, (*chronytest.Daemon).CmdAddr},
		{"unix socket stratum 7", 7, (*chronytest.Daemon).SocketPath},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := chronytest.Start(t, chronytest.Options{Stratum: tt.stratum})
			src, err := chrony.New(tt.addr(d), 2*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			before := time.Now()
			r, err := src.Read(context.Background())
			after := time.Now()
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			want := tt.stratum
			if want == 0 {
				want = chronytest.DefaultStratum
			}
			if r.Source != clock.SourceChrony || r.Name != tt.addr(d) || r.Err != "" {
				t.Errorf("Source, Name, Err = %q, %q, %q", r.Source, r.Name, r.Err)
			}
			if r.Stratum != want || r.Leap != clock.LeapNone || !r.Synchronised {
				t.Errorf("Stratum, Leap, Synchronised = %d, %v, %v; want %d, none, true", r.Stratum, r.Leap, r.Synchronised, want)
			}
			// Serving its own clock, chronyd's reference is the local
			// reference 127.127.1.1, at no distance and no offset.
			if r.ReferenceID != "7F7F0101" {
				t.Errorf("ReferenceID = %q, want 7F7F0101", r.ReferenceID)
			}
			if r.Offset != 0 || r.RootDistance != 0 || r.RoundTrip != 0 || r.EstimatedError != 0 {
				t.Errorf("Offset, RootDistance, RoundTrip, EstimatedError = %v, %v, %v, %v; want zeros", r.Offset, r.RootDistance, r.RoundTrip, r.EstimatedError)
			}
			if r.At.Before(before) || r.At.After(after) {
				t.Errorf("At = %v, outside [%v, %v]", r.At, before, after)
			}
			// chronyc, asked the same, agrees.
			f := chronycTracking(t, d)
			if f[0] != r.ReferenceID || f[2] != strconv.Itoa(r.Stratum) || f[13] != "Normal" {
				t.Errorf("chronyc says refid %s, stratum %s, leap %s; the adapter %s, %d, %v", f[0], f[2], f[13], r.ReferenceID, r.Stratum, r.Leap)
			}
		})
	}
}

// TestReadFollowsUpstream has chronyd synchronise to an NTP server whose
// clock is shifted, so that the local clock is known to be behind or
// ahead: the sign of Offset is the point.
func TestReadFollowsUpstream(t *testing.T) {
	tests := []struct {
		name  string
		shift time.Duration // the server's clock minus the local one
	}{
		{"local clock behind", 300 * time.Millisecond},
		{"local clock ahead", -300 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			up := ntptest.Start(t)
			up.SetOffset(tt.shift)
			up.SetRootDelay(time.Second / 64)
			up.SetRootDispersion(time.Second / 128)
			d := chronytest.Start(t, chronytest.Options{Stratum: 10, Upstreams: []string{up.Addr()}})
			src, err := chrony.New(d.CmdAddr(), 2*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			var r clock.Reading
			deadline := time.Now().Add(10 * time.Second)
			for {
				r, err = src.Read(context.Background())
				if err != nil {
					t.Fatalf("Read: %v", err)
				}
				if r.Stratum == 2 || time.Now().After(deadline) {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			if r.Stratum != 2 || !r.Synchronised || r.Leap != clock.LeapNone {
				t.Fatalf("after 10s: Stratum, Synchronised, Leap = %d, %v, %v; want 2 (synchronised to the stratum 1 upstream), true, none", r.Stratum, r.Synchronised, r.Leap)
			}
			if r.ReferenceID != "7F000001" {
				t.Errorf("ReferenceID = %q, want 7F000001 (127.0.0.1)", r.ReferenceID)
			}
			if d := r.Offset - tt.shift; d < -20*time.Millisecond || d > 20*time.Millisecond {
				t.Errorf("Offset = %v, want %v ± 20ms", r.Offset, tt.shift)
			}
			// At least the upstream's own root delay/2 + dispersion.
			if min := time.Second/128 + time.Second/128; r.RootDistance < min || r.RootDistance > time.Second {
				t.Errorf("RootDistance = %v, want at least %v and not absurd", r.RootDistance, min)
			}
			// chronyc's own words for the sign.
			f := chronycTracking(t, d)
			out, err := d.Chronyc("tracking")
			if err != nil {
				t.Fatal(err)
			}
			word := "slow"
			if tt.shift < 0 {
				word = "fast"
			}
			if !strings.Contains(out, "seconds "+word+" of NTP time") {
				t.Errorf("chronyc tracking does not say %q:\n%s", word, out)
			}
			if corr, err := strconv.ParseFloat(f[4], 64); err != nil || (corr > 0) != (r.Offset > 0) {
				t.Errorf("chronyc's system time %s and Offset %v differ in sign", f[4], r.Offset)
			}
		})
	}
}

func TestReadStoppedChronyd(t *testing.T) {
	tests := []struct {
		name string
		addr func(*chronytest.Daemon) string
		want []error // any of
	}{
		// On loopback a closed UDP port is refused at once; elsewhere the
		// request goes unanswered until the timeout.
		{"udp", (*chronytest.Daemon).CmdAddr, []error{syscall.ECONNREFUSED, os.ErrDeadlineExceeded}},
		// chronyd removes its socket on exit.
		{"unix socket", (*chronytest.Daemon).SocketPath, []error{syscall.ENOENT, syscall.ECONNREFUSED}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := chronytest.Start(t, chronytest.Options{})
			src, err := chrony.New(tt.addr(d), 300*time.Millisecond)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := src.Read(context.Background()); err != nil {
				t.Fatalf("Read while running: %v", err)
			}
			d.Stop()
			start := time.Now()
			r, err := src.Read(context.Background())
			t.Logf("stopped chronyd: %v", err)
			if took := time.Since(start); took > time.Second {
				t.Errorf("Read took %v with a 300ms timeout", took)
			}
			matched := false
			for _, w := range tt.want {
				matched = matched || errors.Is(err, w)
			}
			if !matched {
				t.Fatalf("Read error = %v, want one of %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), "chrony "+tt.addr(d)) {
				t.Errorf("error %q does not name chronyd's address", err)
			}
			want := clock.Reading{Source: clock.SourceChrony, Name: tt.addr(d), At: r.At, Err: err.Error()}
			if r != want || r.At.IsZero() {
				t.Errorf("Reading = %+v, want only Source, Name, At and Err", r)
			}
		})
	}
}

// TestReadUnanswered: a port that takes the request and never answers
// (chronyd not admitting this host, or a lost packet) is a timeout, and a
// cancelled context ends the wait early.
func TestReadUnanswered(t *testing.T) {
	silent := ntptest.Start(t) // any UDP port that reads and keeps quiet
	silent.SetSilent(true)
	tests := []struct {
		name    string
		timeout time.Duration
		ctx     func() (context.Context, context.CancelFunc)
		want    error
		maxTime time.Duration
	}{
		{"timeout", 150 * time.Millisecond, func() (context.Context, context.CancelFunc) {
			return context.WithCancel(context.Background())
		}, os.ErrDeadlineExceeded, time.Second},
		{"context deadline", 10 * time.Second, func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 100*time.Millisecond)
		}, nil, time.Second},
		{"cancelled", 10 * time.Second, func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(100*time.Millisecond, cancel)
			return ctx, cancel
		}, context.Canceled, time.Second},
		{"cancelled before", 10 * time.Second, func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx, cancel
		}, context.Canceled, 50 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, err := chrony.New(silent.Addr(), tt.timeout)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := tt.ctx()
			defer cancel()
			start := time.Now()
			_, err = src.Read(ctx)
			if took := time.Since(start); took > tt.maxTime {
				t.Errorf("Read took %v, want at most %v", took, tt.maxTime)
			}
			switch {
			case err == nil:
				t.Fatal("Read succeeded against a silent port")
			case tt.want == nil: // the socket's deadline or the context's
				if !errors.Is(err, os.ErrDeadlineExceeded) && !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("Read error = %v, want a deadline", err)
				}
			case !errors.Is(err, tt.want):
				t.Errorf("Read error = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		addr    string
		timeout time.Duration
		want    string // Name; "" for an error
	}{
		{"127.0.0.1:323", time.Second, "127.0.0.1:323"},
		{"127.0.0.1", time.Second, "127.0.0.1:323"},
		{"localhost:1323", time.Second, "localhost:1323"},
		{"::1", time.Second, "[::1]:323"},
		{"[::1]:323", time.Second, "[::1]:323"},
		{"/run/chrony/chronyd.sock", time.Second, "/run/chrony/chronyd.sock"},
		{"/run/chrony//chronyd.sock", time.Second, "/run/chrony/chronyd.sock"},
		{"", time.Second, ""},
		{"host:0", time.Second, ""},
		{"host:x", time.Second, ""},
		{"[::1", time.Second, ""},
		{"run/chrony/chronyd.sock", time.Second, ""},
		{"127.0.0.1:323", 0, ""},
	}
	for _, tt := range tests {
		s, err := chrony.New(tt.addr, tt.timeout)
		switch {
		case tt.want == "" && err == nil:
			t.Errorf("New(%q, %v) = %q, want an error", tt.addr, tt.timeout, s.Name())
		case tt.want != "" && err != nil:
			t.Errorf("New(%q, %v): %v", tt.addr, tt.timeout, err)
		case tt.want != "" && s.Name() != tt.want:
			t.Errorf("New(%q, %v).Name() = %q, want %q", tt.addr, tt.timeout, s.Name(), tt.want)
		}
	}
}

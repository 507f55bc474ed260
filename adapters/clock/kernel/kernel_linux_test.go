package kernel

import (
	"context"
	"errors"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/chronolog/chronolog/domain/clock"
)

// fake answers adjtimex with a fixed state and status, and fails the test
// if Read ever asks to set anything.
func fake(t *testing.T, state int, tx unix.Timex, err error) func(*unix.Timex) (int, error) {
	return func(buf *unix.Timex) (int, error) {
		if buf.Modes != 0 {
			t.Errorf("adjtimex called with Modes %#x: Read must only read", buf.Modes)
		}
		if err != nil {
			return -1, err
		}
		*buf = tx
		return state, nil
	}
}

// TestReadStates feeds Read the kernel states that matter. The real kernel
// cannot be put in them for a test: synchronising it, or announcing a
// leap, takes CAP_SYS_TIME and would disturb the machine's clock for
// everything else on it (and this container's kernel is unsynchronised).
func TestReadStates(t *testing.T) {
	tests := []struct {
		name   string
		state  int
		tx     unix.Timex
		synced bool
		leap   clock.Leap
		maxErr time.Duration
		estErr time.Duration
	}{
		{"synchronised", unix.TIME_OK, unix.Timex{Status: unix.STA_PLL, Maxerror: 1500, Esterror: 20},
			true, clock.LeapNone, 1500 * time.Microsecond, 20 * time.Microsecond},
		{"synchronised, nanosecond mode", unix.TIME_OK, unix.Timex{Status: unix.STA_PLL | unix.STA_NANO, Maxerror: 800, Esterror: 3},
			true, clock.LeapNone, 800 * time.Microsecond, 3 * time.Microsecond},
		// What an unsynchronised kernel (this container's) reports: the
		// maximum error at its cap, 16 s.
		{"unsynchronised", unix.TIME_ERROR, unix.Timex{Status: unix.STA_UNSYNC, Maxerror: 16_000_000, Esterror: 16_000_000},
			false, clock.LeapAlarm, 16 * time.Second, 16 * time.Second},
		{"unsync bit, state not yet error", unix.TIME_OK, unix.Timex{Status: unix.STA_UNSYNC, Maxerror: 1000},
			false, clock.LeapAlarm, time.Millisecond, 0},
		{"error state from a PPS fault", unix.TIME_ERROR, unix.Timex{Status: unix.STA_PPSSIGNAL | unix.STA_PPSJITTER, Maxerror: 1000},
			false, clock.LeapAlarm, time.Millisecond, 0},
		{"insert announced", unix.TIME_OK, unix.Timex{Status: unix.STA_PLL | unix.STA_INS, Maxerror: 1000},
			true, clock.LeapInsert, time.Millisecond, 0},
		{"insert armed", unix.TIME_INS, unix.Timex{Status: unix.STA_PLL | unix.STA_INS, Maxerror: 1000},
			true, clock.LeapInsert, time.Millisecond, 0},
		{"inserted second in progress", unix.TIME_OOP, unix.Timex{Status: unix.STA_PLL | unix.STA_INS, Maxerror: 1000},
			true, clock.LeapInsert, time.Millisecond, 0},
		{"delete announced", unix.TIME_OK, unix.Timex{Status: unix.STA_PLL | unix.STA_DEL, Maxerror: 1000},
			true, clock.LeapDelete, time.Millisecond, 0},
		{"delete armed", unix.TIME_DEL, unix.Timex{Status: unix.STA_PLL | unix.STA_DEL, Maxerror: 1000},
			true, clock.LeapDelete, time.Millisecond, 0},
		{"leap done, bit not yet cleared", unix.TIME_WAIT, unix.Timex{Status: unix.STA_PLL | unix.STA_INS, Maxerror: 1000},
			true, clock.LeapNone, time.Millisecond, 0},
		{"leap done, unsynchronised", unix.TIME_WAIT, unix.Timex{Status: unix.STA_UNSYNC, Maxerror: 1000},
			false, clock.LeapAlarm, time.Millisecond, 0},
		// TIME_ERROR hides the state; the bit still tells of the leap.
		{"insert announced while unsynchronised", unix.TIME_ERROR, unix.Timex{Status: unix.STA_UNSYNC | unix.STA_INS, Maxerror: 1000},
			false, clock.LeapInsert, time.Millisecond, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Unrelated fields the kernel fills must not leak into the
			// reading: the offset is the daemon's business.
			tx := tt.tx
			tx.Offset, tx.Freq = 123456, -7890
			s := &Source{adjtimex: fake(t, tt.state, tx, nil)}
			before := time.Now()
			r, err := s.Read(context.Background())
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			want := clock.Reading{
				Source:         clock.SourceKernel,
				Name:           "adjtimex",
				At:             r.At,
				RootDistance:   tt.maxErr,
				EstimatedError: tt.estErr,
				Leap:           tt.leap,
				Synchronised:   tt.synced,
			}
			if r != want {
				t.Errorf("Read =\n%+v\nwant\n%+v", r, want)
			}
			if r.At.Before(before) || r.At.After(time.Now()) {
				t.Errorf("At = %v, not the time of the read", r.At)
			}
		})
	}
}

func TestReadErrors(t *testing.T) {
	tests := []struct {
		name    string
		ctx     func() context.Context
		sysErr  error
		want    error
		calls   int
		message string
	}{
		{"syscall fails", context.Background, syscall.EPERM, syscall.EPERM, 1, "kernel adjtimex: operation not permitted"},
		{"context done", func() context.Context {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx
		}, nil, context.Canceled, 0, "kernel adjtimex: not read: context canceled"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			f := fake(t, 0, unix.Timex{}, tt.sysErr)
			s := &Source{adjtimex: func(tx *unix.Timex) (int, error) { calls++; return f(tx) }}
			r, err := s.Read(tt.ctx())
			if !errors.Is(err, tt.want) || err.Error() != tt.message {
				t.Fatalf("Read error = %v, want %q wrapping %v", err, tt.message, tt.want)
			}
			want := clock.Reading{Source: clock.SourceKernel, Name: "adjtimex", At: r.At, Err: err.Error()}
			if r != want || r.At.IsZero() {
				t.Errorf("Reading = %+v, want only Source, Name, At and Err", r)
			}
			if calls != tt.calls {
				t.Errorf("adjtimex called %d times, want %d", calls, tt.calls)
			}
		})
	}
}

// TestReadRealKernel reads this machine's kernel. Whatever state it is in
// (here, in a container, unsynchronised), the reading must say what
// adjtimex says, read independently around it.
func TestReadRealKernel(t *testing.T) {
	s := New()
	for attempt := 0; ; attempt++ {
		var before, after unix.Timex
		stateBefore, err := unix.Adjtimex(&before)
		if err != nil {
			t.Fatalf("adjtimex: %v", err)
		}
		r, err := s.Read(context.Background())
		if err != nil {
			t.Fatalf("Read: %v", err)
		}
		stateAfter, err := unix.Adjtimex(&after)
		if err != nil {
			t.Fatalf("adjtimex: %v", err)
		}
		// maxerror grows every second, and a daemon may update the kernel
		// in between: compare only a reading taken while nothing moved.
		if stateBefore != stateAfter || before.Status != after.Status ||
			before.Maxerror != after.Maxerror || before.Esterror != after.Esterror {
			if attempt == 5 {
				t.Fatal("the kernel's state kept changing around the reading")
			}
			continue
		}
		synced := before.Status&unix.STA_UNSYNC == 0 && stateBefore != unix.TIME_ERROR
		t.Logf("kernel: state %d, status %#x, maxerror %d µs, esterror %d µs; reading %+v",
			stateBefore, before.Status, before.Maxerror, before.Esterror, r)
		if r.Synchronised != synced {
			t.Errorf("Synchronised = %v, adjtimex says %v (state %d, status %#x)", r.Synchronised, synced, stateBefore, before.Status)
		}
		if want := time.Duration(before.Maxerror) * time.Microsecond; r.RootDistance != want {
			t.Errorf("RootDistance = %v, adjtimex's maxerror is %v", r.RootDistance, want)
		}
		if want := time.Duration(before.Esterror) * time.Microsecond; r.EstimatedError != want {
			t.Errorf("EstimatedError = %v, adjtimex's esterror is %v", r.EstimatedError, want)
		}
		if want := leap(stateBefore, before.Status, synced); r.Leap != want {
			t.Errorf("Leap = %v, want %v", r.Leap, want)
		}
		if !synced && r.Leap != clock.LeapAlarm && before.Status&(unix.STA_INS|unix.STA_DEL) == 0 {
			t.Errorf("unsynchronised kernel, no leap pending: Leap = %v, want alarm", r.Leap)
		}
		if r.Source != clock.SourceKernel || r.Name != "adjtimex" || r.Offset != 0 || r.Stratum != 0 || r.Err != "" {
			t.Errorf("Reading = %+v", r)
		}
		return
	}
}

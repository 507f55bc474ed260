package kernel

import (
	"context"
	"fmt"
	"time"

	"golang.org/x/sys/unix"

	"github.com/chronolog/chronolog/domain/clock"
)

// Source reads the kernel clock's state. It has no state of its own, so it
// is safe for concurrent use.
type Source struct {
	// adjtimex is unix.Adjtimex. A field so that a test can feed it the
	// states a test machine's kernel is not in (synchronised, a leap
	// pending), which only a privileged clock change could produce.
	adjtimex func(*unix.Timex) (int, error)
}

// New returns a Source for the running kernel.
func New() *Source { return &Source{adjtimex: unix.Adjtimex} }

// Name is what readings are named.
func (s *Source) Name() string { return "adjtimex" }

// Read asks the kernel for its clock's state. It never changes it: the
// request's Modes are zero, which makes adjtimex a read, allowed to any
// user.
func (s *Source) Read(ctx context.Context) (clock.Reading, error) {
	r := clock.Reading{Source: clock.SourceKernel, Name: s.Name()}
	if err := ctx.Err(); err != nil {
		err = fmt.Errorf("kernel adjtimex: not read: %w", err)
		r.At, r.Err = time.Now(), err.Error()
		return r, err
	}
	tx := unix.Timex{Modes: 0} // read only: set nothing
	state, err := s.adjtimex(&tx)
	r.At = time.Now()
	if err != nil {
		err = fmt.Errorf("kernel adjtimex: %w", err)
		r.Err = err.Error()
		return r, err
	}
	// The return value is TIME_ERROR whenever STA_UNSYNC (or a PPS fault)
	// is set, hiding the leap state; either makes the clock unsynchronised.
	r.Synchronised = tx.Status&unix.STA_UNSYNC == 0 && state != unix.TIME_ERROR
	// maxerror and esterror are in microseconds, whatever STA_NANO says
	// of the offset's unit.
	r.RootDistance = time.Duration(tx.Maxerror) * time.Microsecond
	r.EstimatedError = time.Duration(tx.Esterror) * time.Microsecond
	r.Leap = leap(state, tx.Status, r.Synchronised)
	return r, nil
}

// leap reads a leap second from the kernel's state machine (the return
// value) and, where that is hidden or not yet moved, from the status bits
// the daemon set. An announced leap wins over LeapAlarm: the kernel
// inserts or deletes the second at midnight even when unsynchronised, and
// Synchronised already says that it is.
func leap(state int, status int32, synchronised bool) clock.Leap {
	switch state {
	case unix.TIME_INS, unix.TIME_OOP: // OOP: the inserted second is now
		return clock.LeapInsert
	case unix.TIME_DEL:
		return clock.LeapDelete
	case unix.TIME_WAIT:
		// The leap has happened; the bits stay set until the daemon clears
		// them, and announce nothing for the new day.
		if !synchronised {
			return clock.LeapAlarm
		}
		return clock.LeapNone
	}
	// TIME_OK (the kernel moves to TIME_INS/DEL on its next second) or
	// TIME_ERROR (which hides the state).
	switch {
	case status&unix.STA_INS != 0:
		return clock.LeapInsert
	case status&unix.STA_DEL != 0:
		return clock.LeapDelete
	case !synchronised:
		return clock.LeapAlarm
	}
	return clock.LeapNone
}

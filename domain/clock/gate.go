package clock

import (
	"fmt"
	"sync/atomic"
	"time"
)

// Gate admits timestamp requests while the clock is known to be within a
// service's declared accuracy. It is read on every request and written once
// per sampling round, so it holds the current assessment behind an atomic
// pointer: no lock on the hot path.
type Gate struct {
	p   Policy
	cur atomic.Pointer[Assessment]
}

// NewGate returns a closed gate: nothing is admitted before the first
// recorded sample.
func NewGate(p Policy) *Gate { return &Gate{p: p} }

// Policy is the policy the gate judges with.
func (g *Gate) Policy() Policy { return g.p }

// Set makes a recorded round's assessment the one requests are judged by.
func (g *Gate) Set(a Assessment) {
	g.cur.Store(&a)
}

// Current is the assessment requests are judged by, if any.
func (g *Gate) Current() (Assessment, bool) {
	a := g.cur.Load()
	if a == nil {
		return Assessment{}, false
	}
	return *a, true
}

// Admission is what the gate guaranteed for one request.
type Admission struct {
	// SampleID is the ClockSampled event the guarantee rests on.
	SampleID string
	// Uncertainty is the bound at the request's time: the sample's bound
	// plus the drift allowed since.
	Uncertainty time.Duration
}

// Admit judges a request stamped now against a declared accuracy. It
// returns the admission, or a non-empty reason to answer timeNotAvailable.
func (g *Gate) Admit(now time.Time, accuracy time.Duration) (Admission, string) {
	a := g.cur.Load()
	if a == nil {
		return Admission{}, "the clock has not been sampled yet"
	}
	if !a.Synchronised {
		return Admission{}, "the clock is not synchronised: " + a.Reason
	}
	age := now.Sub(a.At)
	if age < 0 {
		// The clock stepped back past the sample: until the next round
		// measures the step, the sample says nothing about now.
		if -age > g.p.MaxAge/2 {
			return Admission{}, fmt.Sprintf("the clock reads %v before its last sample", (-age).Round(time.Millisecond))
		}
		age = -age
	}
	if age > g.p.MaxAge {
		return Admission{}, fmt.Sprintf("the last clock sample is %v old, more than %v", age.Round(time.Millisecond), g.p.MaxAge)
	}
	u := a.Bound + time.Duration(float64(age)*g.p.DriftPPM/1e6)
	if u > accuracy {
		return Admission{}, fmt.Sprintf("the clock's uncertainty %v exceeds the declared accuracy %v", u.Round(time.Microsecond), accuracy)
	}
	if a.Leap != LeapNone && g.p.RefuseLeap {
		if d := now.Sub(a.LeapAt); d >= -g.p.LeapWindow && d <= g.p.LeapWindow {
			return Admission{}, fmt.Sprintf("a leap second (%s) is announced at %s", a.Leap, a.LeapAt.Format(time.RFC3339))
		}
	}
	return Admission{SampleID: a.SampleID, Uncertainty: u}, ""
}

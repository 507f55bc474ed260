package clock

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Policy is how readings are judged. The zero value is not usable: take
// DefaultPolicy and change what the operator configured.
type Policy struct {
	// DriftPPM is how fast the local clock may run away from UTC between
	// samples, in parts per million: the bound grows by this much per
	// second of age.
	DriftPPM float64
	// MaxAge is how old the last sample may be before the gate closes on
	// its own: the backstop when sampling itself stalls.
	MaxAge time.Duration
	// Quorum is how many sources must be synchronised and agree; zero
	// means a majority of the sources read.
	Quorum int
	// RefuseLeap closes the gate for LeapWindow either side of an
	// announced leap second, whose genTime cannot be written unambiguously.
	RefuseLeap bool
	LeapWindow time.Duration
}

// DefaultPolicy is a clock crystal's worst drift left to itself (100 ppm),
// two missed sampling rounds of 16 s, a majority, and no tokens within 1 s
// of a leap second.
func DefaultPolicy() Policy {
	return Policy{DriftPPM: 100, MaxAge: 35 * time.Second, RefuseLeap: true, LeapWindow: time.Second}
}

// Assessment is the judgement of one sampling round.
type Assessment struct {
	// SampleID is the id of the ClockSampled event that recorded the
	// round; the gate admits on an assessment only once it is recorded.
	SampleID string
	// At is when the round's last answer arrived.
	At time.Time
	// Synchronised is true when a quorum of sources agreed.
	Synchronised bool
	// Reason says why not, when not synchronised.
	Reason string
	// Bound is how far the local clock may be from UTC at At:
	// max(|offset| + root distance) over the agreeing sources.
	Bound time.Duration
	// Offset is the median offset of the agreeing sources.
	Offset time.Duration
	// Agreeing counts the sources behind the judgement, Sources those read.
	Agreeing, Sources int
	// Leap is the leap second the agreeing sources announce, and LeapAt
	// its instant: the end of the UTC day.
	Leap   Leap
	LeapAt time.Time
}

// Assess judges a round's readings. A source counts only if it answered
// and calls itself synchronised; of those, the largest group whose error
// intervals (offset ± root distance) share a point must reach the quorum
// (Marzullo's selection), so one false source can neither open nor hold
// the gate against the others.
func Assess(rs []Reading, p Policy) Assessment {
	a := Assessment{Sources: len(rs)}
	for _, r := range rs {
		if r.At.After(a.At) {
			a.At = r.At
		}
	}
	quorum := p.Quorum
	if quorum <= 0 {
		quorum = len(rs)/2 + 1
	}
	var good []Reading
	var bad []string
	for _, r := range rs {
		switch {
		case r.Err != "":
			bad = append(bad, fmt.Sprintf("%s %s: %s", r.Source, r.Name, r.Err))
		case !r.Synchronised:
			bad = append(bad, fmt.Sprintf("%s %s: not synchronised", r.Source, r.Name))
		default:
			good = append(good, r)
		}
	}
	agree := largestAgreement(good)
	a.Agreeing = len(agree)
	if len(rs) == 0 {
		a.Reason = "no clock source was read"
		return a
	}
	if len(agree) < quorum {
		why := fmt.Sprintf("%d of %d sources agree, %d needed", len(agree), len(rs), quorum)
		if len(good) > len(agree) {
			why += fmt.Sprintf("; %d synchronised sources disagree", len(good)-len(agree))
		}
		if len(bad) > 0 {
			why += "; " + strings.Join(bad, "; ")
		}
		a.Reason = why
		return a
	}
	a.Synchronised = true
	offsets := make([]time.Duration, 0, len(agree))
	leaps := map[Leap]int{}
	for _, r := range agree {
		a.Bound = max(a.Bound, abs(r.Offset)+r.RootDistance)
		offsets = append(offsets, r.Offset)
		leaps[r.Leap]++
	}
	slices.Sort(offsets)
	a.Offset = offsets[len(offsets)/2]
	// A leap announced by any agreeing source is taken seriously: refusing
	// a second too many is cheap, a genTime off by one is not.
	for _, l := range []Leap{LeapInsert, LeapDelete} {
		if leaps[l] > 0 {
			a.Leap = l
			a.LeapAt = endOfUTCDay(a.At)
			break
		}
	}
	return a
}

// largestAgreement returns the largest set of readings whose intervals
// [offset − distance, offset + distance] have a point in common.
func largestAgreement(rs []Reading) []Reading {
	type edge struct {
		at    time.Duration
		start bool
	}
	edges := make([]edge, 0, 2*len(rs))
	for _, r := range rs {
		edges = append(edges, edge{r.Offset - r.RootDistance, true}, edge{r.Offset + r.RootDistance, false})
	}
	// Starts before ends at the same point: touching intervals agree.
	slices.SortFunc(edges, func(x, y edge) int {
		if x.at != y.at {
			return compare(x.at, y.at)
		}
		if x.start == y.start {
			return 0
		}
		if x.start {
			return -1
		}
		return 1
	})
	best, n := 0, 0
	var point time.Duration
	for _, e := range edges {
		if e.start {
			n++
			if n > best {
				best, point = n, e.at
			}
		} else {
			n--
		}
	}
	var out []Reading
	for _, r := range rs {
		if r.Offset-r.RootDistance <= point && point <= r.Offset+r.RootDistance {
			out = append(out, r)
		}
	}
	return out
}

func endOfUTCDay(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d+1, 0, 0, 0, 0, time.UTC)
}

func abs(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

func compare(a, b time.Duration) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

package clock

import (
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 6, 30, 12, 0, 0, 0, time.UTC)

func ntp(name string, offset, dist time.Duration) Reading {
	return Reading{Source: SourceNTP, Name: name, At: t0, Offset: offset, RootDistance: dist, Stratum: 2, Synchronised: true}
}

func TestAssess(t *testing.T) {
	ms := time.Millisecond
	down := Reading{Source: SourceNTP, Name: "c", At: t0, Err: "i/o timeout"}
	unsync := Reading{Source: SourceKernel, Name: "adjtimex", At: t0, RootDistance: 16 * time.Second}
	leap := ntp("b", 2*ms, 3*ms)
	leap.Leap = LeapInsert
	for _, tc := range []struct {
		name      string
		rs        []Reading
		quorum    int
		synced    bool
		bound     time.Duration
		agreeing  int
		reason    string
		leap      Leap
		leapAtDay int
	}{
		{name: "one good source", rs: []Reading{ntp("a", -3*ms, 5*ms)}, synced: true, bound: 8 * ms, agreeing: 1},
		{name: "bound is the worst agreeing source", rs: []Reading{ntp("a", 1*ms, 2*ms), ntp("b", -2*ms, 4*ms), ntp("c", 0, 1*ms)}, synced: true, bound: 6 * ms, agreeing: 3},
		{name: "a false source is outvoted", rs: []Reading{ntp("a", 1*ms, 2*ms), ntp("b", 5*time.Second, 4*ms), ntp("c", 0, 2*ms)}, synced: true, bound: 3 * ms, agreeing: 2},
		{name: "two false sources of three win, and their bound closes the gate", rs: []Reading{ntp("a", 0, 2*ms), ntp("b", 5*time.Second, 4*ms), ntp("c", 5*time.Second+ms, 2*ms)}, synced: true, bound: 5*time.Second + 4*ms, agreeing: 2},
		{name: "two disagreeing sources are no majority", rs: []Reading{ntp("a", 0, 2*ms), ntp("b", 5*time.Second, 4*ms)}, agreeing: 1, reason: "1 of 2 sources agree, 2 needed; 1 synchronised sources disagree"},
		{name: "quorum one takes either", rs: []Reading{ntp("a", 0, 2*ms), ntp("b", 5*time.Second, 4*ms)}, quorum: 1, synced: true, bound: 2 * ms, agreeing: 1},
		{name: "a silent source", rs: []Reading{down}, reason: "0 of 1 sources agree, 1 needed; ntp c: i/o timeout"},
		{name: "unsynchronised kernel", rs: []Reading{unsync}, reason: "0 of 1 sources agree, 1 needed; kernel adjtimex: not synchronised"},
		{name: "silent and unsynchronised against one good", rs: []Reading{ntp("a", 0, ms), down, unsync}, agreeing: 1, reason: "1 of 3 sources agree, 2 needed"},
		{name: "nothing read", reason: "no clock source was read"},
		{name: "touching intervals agree", rs: []Reading{ntp("a", 0, 2*ms), ntp("b", 4*ms, 2*ms)}, synced: true, bound: 6 * ms, agreeing: 2},
		{name: "a leap announced by one agreeing source", rs: []Reading{ntp("a", 0, ms), leap}, synced: true, bound: 5 * ms, agreeing: 2, leap: LeapInsert, leapAtDay: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := DefaultPolicy()
			p.Quorum = tc.quorum
			a := Assess(tc.rs, p)
			if a.Synchronised != tc.synced || a.Bound != tc.bound || a.Agreeing != tc.agreeing || a.Leap != tc.leap {
				t.Fatalf("got %+v", a)
			}
			if !strings.HasPrefix(a.Reason, tc.reason) || (tc.reason == "") != (a.Reason == "") {
				t.Fatalf("reason %q, want prefix %q", a.Reason, tc.reason)
			}
			if tc.leap != LeapNone && !a.LeapAt.Equal(time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)) {
				t.Fatalf("leap at %v", a.LeapAt)
			}
			if len(tc.rs) > 0 && !a.At.Equal(t0) {
				t.Fatalf("at %v", a.At)
			}
		})
	}
}

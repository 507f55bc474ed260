package clock

import (
	"strings"
	"testing"
	"time"
)

func TestGate(t *testing.T) {
	synced := Assessment{SampleID: "s1", At: t0, Synchronised: true, Bound: 10 * time.Millisecond}
	leap := synced
	leap.Leap, leap.LeapAt = LeapInsert, t0.Add(10*time.Second)
	for _, tc := range []struct {
		name     string
		set      *Assessment
		at       time.Time
		accuracy time.Duration
		refused  string
		u        time.Duration
	}{
		{name: "never sampled", at: t0, accuracy: time.Second, refused: "not been sampled"},
		{name: "within accuracy", set: &synced, at: t0, accuracy: time.Second, u: 10 * time.Millisecond},
		{name: "drift since the sample counts", set: &synced, at: t0.Add(10 * time.Second), accuracy: time.Second, u: 11 * time.Millisecond},
		{name: "drift pushes past the accuracy", set: &synced, at: t0.Add(20 * time.Second), accuracy: 11 * time.Millisecond, refused: "uncertainty 12ms exceeds the declared accuracy 11ms"},
		{name: "bound over the accuracy", set: &synced, at: t0, accuracy: 5 * time.Millisecond, refused: "exceeds the declared accuracy 5ms"},
		{name: "sample too old", set: &synced, at: t0.Add(36 * time.Second), accuracy: time.Second, refused: "last clock sample is 36s old"},
		{name: "clock stepped far back", set: &synced, at: t0.Add(-20 * time.Second), accuracy: time.Second, refused: "before its last sample"},
		{name: "small step back counts as age", set: &synced, at: t0.Add(-10 * time.Second), accuracy: time.Second, u: 11 * time.Millisecond},
		{name: "not synchronised", set: &Assessment{SampleID: "s2", At: t0, Reason: "0 of 1 sources agree"}, at: t0, accuracy: time.Second, refused: "not synchronised: 0 of 1"},
		{name: "inside the leap window", set: &leap, at: t0.Add(9500 * time.Millisecond), accuracy: time.Second, refused: "leap second (insert)"},
		{name: "just after the leap window", set: &leap, at: t0.Add(11001 * time.Millisecond), accuracy: time.Second, u: 10*time.Millisecond + 1100100*time.Nanosecond},
		{name: "leap announced, far away", set: &leap, at: t0.Add(2 * time.Second), accuracy: time.Second, u: 10*time.Millisecond + 200*time.Microsecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewGate(DefaultPolicy())
			if tc.set != nil {
				g.Set(*tc.set)
			}
			adm, why := g.Admit(tc.at, tc.accuracy)
			if tc.refused != "" {
				if !strings.Contains(why, tc.refused) {
					t.Fatalf("reason %q, want %q", why, tc.refused)
				}
				return
			}
			if why != "" {
				t.Fatalf("refused: %s", why)
			}
			if adm.SampleID != tc.set.SampleID || adm.Uncertainty != tc.u {
				t.Fatalf("admission %+v, want uncertainty %v", adm, tc.u)
			}
		})
	}
}

func TestGateLeapNotRefusedWhenAllowed(t *testing.T) {
	p := DefaultPolicy()
	p.RefuseLeap = false
	g := NewGate(p)
	g.Set(Assessment{SampleID: "s", At: t0, Synchronised: true, Bound: time.Millisecond, Leap: LeapDelete, LeapAt: t0.Add(time.Second)})
	if _, why := g.Admit(t0.Add(time.Second), time.Second); why != "" {
		t.Fatal(why)
	}
}

// BenchmarkGateAdmit is the gate's cost per request (the goal: under 1 µs):
//
//	go test -run '^$' -bench BenchmarkGateAdmit -benchmem ./domain/clock/
func BenchmarkGateAdmit(b *testing.B) {
	g := NewGate(DefaultPolicy())
	g.Set(Assessment{SampleID: "0193a1b2-0000-7000-8000-000000000000", At: t0, Synchronised: true, Bound: 3 * time.Millisecond})
	now := t0.Add(5 * time.Second)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, why := g.Admit(now, time.Second); why != "" {
				b.Fatal(why)
			}
		}
	})
}

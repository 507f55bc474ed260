package clock

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chronolog/chronolog/domain/events"
)

// kinds names the events of a round, with the service for state changes.
func kinds(evs []events.Event) string {
	var out []string
	for _, e := range evs {
		switch e := e.(type) {
		case events.ClockSampled:
			out = append(out, "sampled")
		case events.ClockSyncLost:
			out = append(out, "lost:"+e.Service)
		case events.ClockSyncRegained:
			out = append(out, "regained:"+e.Service)
		case events.LeapSecondAnnounced:
			out = append(out, "leap:"+e.Leap)
		default:
			out = append(out, fmt.Sprintf("%T", e))
		}
	}
	return strings.Join(out, " ")
}

func TestWatchRecordsChangesOnly(t *testing.T) {
	ms := time.Millisecond
	good := []Reading{ntp("a", ms, 2*ms)}
	far := []Reading{ntp("a", 300*ms, 2*ms)}
	silent := []Reading{{Source: SourceNTP, Name: "a", At: t0, Err: "timeout"}}
	leap := []Reading{ntp("a", ms, 2*ms)}
	leap[0].Leap = LeapInsert
	acc := map[string]time.Duration{"fine": 100 * ms, "coarse": time.Second}
	w := NewWatch(DefaultPolicy())
	for i, step := range []struct {
		rs   []Reading
		acc  map[string]time.Duration
		want string
	}{
		{good, acc, "sampled regained:coarse regained:fine"},
		{good, acc, "sampled"},
		{far, acc, "sampled lost:fine"},
		{far, acc, "sampled"},
		{silent, acc, "sampled lost:coarse"},
		{good, acc, "sampled regained:coarse regained:fine"},
		{leap, acc, "sampled leap:insert"},
		{leap, acc, "sampled"},
		{good, acc, "sampled"},
		{good, map[string]time.Duration{"fine": 100 * ms, "new": time.Second}, "sampled regained:new"},
	} {
		a, evs := w.Round(fmt.Sprintf("s%d", i), step.rs, step.acc)
		if got := kinds(evs); got != step.want {
			t.Fatalf("round %d: %s, want %s", i, got, step.want)
		}
		if a.SampleID != fmt.Sprintf("s%d", i) {
			t.Fatalf("round %d: sample id %q", i, a.SampleID)
		}
	}
}

func TestWatchEventsCarryTheNumbers(t *testing.T) {
	w := NewWatch(DefaultPolicy())
	acc := map[string]time.Duration{"tsa": time.Second}
	_, _ = w.Round("s0", []Reading{ntp("a", 0, time.Millisecond)}, acc)
	later := ntp("a", 2*time.Second, 3*time.Millisecond)
	later.At = t0.Add(16 * time.Second)
	_, evs := w.Round("s1", []Reading{later}, acc)
	lost := evs[1].(events.ClockSyncLost)
	if lost.Sample != "s1" || lost.BoundNs != int64(2003*time.Millisecond) || lost.AccuracyNs != int64(time.Second) ||
		!strings.Contains(lost.Reason, "2.003s exceeds the declared accuracy 1s") || !lost.At.Equal(later.At) {
		t.Fatalf("%+v", lost)
	}
	back := ntp("a", 0, time.Millisecond)
	back.At = t0.Add(48 * time.Second)
	_, evs = w.Round("s2", []Reading{back}, acc)
	re := evs[1].(events.ClockSyncRegained)
	if re.LostAt == nil || !re.LostAt.Equal(later.At) || re.OutageNs != int64(32*time.Second) || re.Sample != "s2" {
		t.Fatalf("%+v", re)
	}
	s := evs[0].(events.ClockSampled)
	if len(s.Readings) != 1 || s.Readings[0].RootDistanceNs != int64(time.Millisecond) || s.Quorum != 1 || !s.Synchronised {
		t.Fatalf("%+v", s)
	}
}

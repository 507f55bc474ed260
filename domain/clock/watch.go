package clock

import (
	"fmt"
	"slices"
	"time"

	"github.com/chronolog/chronolog/domain/events"
)

// Watch turns sampling rounds into the events that record them: every
// round a ClockSampled, and for each service a ClockSyncLost or
// ClockSyncRegained when its declared accuracy stops or starts being met,
// plus a LeapSecondAnnounced when sources announce a leap. It remembers
// only what it needs to see changes.
type Watch struct {
	p Policy
	// lost maps a service to when its accuracy stopped being met; a
	// service absent from both maps has not been judged yet.
	lost, met map[string]time.Time
	leapAt    time.Time
}

// NewWatch returns a watch judging with p.
func NewWatch(p Policy) *Watch {
	return &Watch{p: p, lost: map[string]time.Time{}, met: map[string]time.Time{}}
}

// Round judges rs, with accuracies the declared accuracy of each service,
// and returns the assessment (SampleID set to sampleID) and the events
// recording it, ClockSampled first. The gate may admit on the assessment
// once these events are durable.
func (w *Watch) Round(sampleID string, rs []Reading, accuracies map[string]time.Duration) (Assessment, []events.Event) {
	a := Assess(rs, w.p)
	a.SampleID = sampleID
	quorum := w.p.Quorum
	if quorum <= 0 {
		quorum = len(rs)/2 + 1
	}
	sampled := events.ClockSampled{
		At: a.At, Synchronised: a.Synchronised, Reason: a.Reason,
		BoundNs: int64(a.Bound), OffsetNs: int64(a.Offset),
		Agreeing: a.Agreeing, Sources: a.Sources, Quorum: quorum, DriftPPM: w.p.DriftPPM,
		Leap: a.Leap.String(), Readings: make([]events.ClockReading, 0, len(rs)),
	}
	if a.Leap != LeapNone {
		at := a.LeapAt
		sampled.LeapAt = &at
	}
	for _, r := range rs {
		sampled.Readings = append(sampled.Readings, events.ClockReading{
			Source: r.Source, Name: r.Name, At: r.At,
			OffsetNs: int64(r.Offset), RoundTripNs: int64(r.RoundTrip), RootDistanceNs: int64(r.RootDistance),
			EstimatedErrorNs: int64(r.EstimatedError), Stratum: r.Stratum, Leap: r.Leap.String(),
			Synchronised: r.Synchronised, ReferenceID: r.ReferenceID, Error: r.Err,
		})
	}
	evs := []events.Event{sampled}

	if a.Leap != LeapNone && !a.LeapAt.Equal(w.leapAt) {
		var names []string
		for _, r := range rs {
			if r.Err == "" && r.Leap == a.Leap {
				names = append(names, r.Source+" "+r.Name)
			}
		}
		evs = append(evs, events.LeapSecondAnnounced{Leap: a.Leap.String(), At: a.LeapAt, Sample: sampleID,
			Sources: names, Refused: w.p.RefuseLeap, WindowNs: int64(w.p.LeapWindow)})
	}
	if a.Leap == LeapNone {
		w.leapAt = time.Time{}
	} else {
		w.leapAt = a.LeapAt
	}

	names := make([]string, 0, len(accuracies))
	for n := range accuracies {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		acc := accuracies[n]
		if a.Synchronised && a.Bound <= acc {
			if _, ok := w.met[n]; ok {
				continue
			}
			e := events.ClockSyncRegained{Service: n, AccuracyNs: int64(acc), Sample: sampleID, BoundNs: int64(a.Bound), At: a.At}
			if since, ok := w.lost[n]; ok {
				e.LostAt = &since
				e.OutageNs = int64(a.At.Sub(since))
			}
			delete(w.lost, n)
			w.met[n] = a.At
			evs = append(evs, e)
			continue
		}
		if _, ok := w.lost[n]; ok {
			continue
		}
		reason := a.Reason
		if a.Synchronised {
			reason = fmt.Sprintf("the clock's uncertainty %v exceeds the declared accuracy %v", a.Bound.Round(time.Microsecond), acc)
		}
		bound := int64(a.Bound)
		if !a.Synchronised {
			bound = 0
		}
		evs = append(evs, events.ClockSyncLost{Service: n, AccuracyNs: int64(acc), Sample: sampleID, BoundNs: bound, Reason: reason, At: a.At})
		delete(w.met, n)
		w.lost[n] = a.At
	}
	for n := range w.met {
		if _, ok := accuracies[n]; !ok {
			delete(w.met, n)
		}
	}
	for n := range w.lost {
		if _, ok := accuracies[n]; !ok {
			delete(w.lost, n)
		}
	}
	return a, evs
}

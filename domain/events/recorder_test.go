package events

import (
	"context"
	"testing"
	"time"

	"github.com/chronolog/chronolog/domain/eventstore"
)

type appended struct {
	stream   string
	expected eventstore.ExpectedState
	evs      []eventstore.EventData
}

func (a *appended) Append(_ context.Context, stream string, expected eventstore.ExpectedState, evs ...eventstore.EventData) (eventstore.AppendResult, error) {
	a.stream, a.expected, a.evs = stream, expected, evs
	return eventstore.AppendResult{}, nil
}

type fixedClock time.Time

func (c fixedClock) Now() time.Time { return time.Time(c) }

type seqIDs struct{ n int }

func (s *seqIDs) NewID() string { s.n++; return []string{"", "id-1", "id-2", "id-3"}[s.n] }

// A Recorder stamps every event of one append with its clock and
// metadata, draws the ids it is not given, and appends them together.
func TestRecorder(t *testing.T) {
	store := &appended{}
	at := time.Date(2026, 12, 5, 4, 0, 0, 0, time.FixedZone("CET", 3600))
	r := Recorder{Store: store, Clock: fixedClock(at), IDs: &seqIDs{}, Meta: Metadata{Node: "n1", Service: "translog"}}
	_, err := r.RecordIDs(context.Background(), ClockStream, eventstore.Any, []string{"sample-7"},
		ClockSampled{Sources: 1}, ClockSyncLost{Service: "default", Reason: "r"}, ClockSyncRegained{Service: "default"})
	if err != nil {
		t.Fatal(err)
	}
	if store.stream != ClockStream || store.expected != eventstore.Any || len(store.evs) != 3 {
		t.Fatalf("appended %+v", store)
	}
	for i, want := range []string{"sample-7", "id-1", "id-2"} {
		env, _, err := Decode(store.evs[i].Payload)
		if err != nil {
			t.Fatal(err)
		}
		if store.evs[i].ID != want || env.ID != want || !env.RecordedAt.Equal(at) || env.RecordedAt.Location() != time.UTC ||
			env.Metadata.Node != "n1" || env.Metadata.Service != "translog" || env.Stream != ClockStream {
			t.Errorf("event %d: %+v (id %s)", i, env, store.evs[i].ID)
		}
	}
}

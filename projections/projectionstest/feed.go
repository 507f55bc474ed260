package projectionstest

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/chronolog/chronolog/domain/events"
	"github.com/chronolog/chronolog/domain/eventstore"
	"github.com/chronolog/chronolog/projections"
)

// Feed is a projections.Feed of the events given, in their order: it
// ends (io.EOF) after the last.
type Feed []eventstore.RecordedEvent

// Read implements projections.Feed.
func (f Feed) Read(_ context.Context, after uint64, max int) ([]eventstore.RecordedEvent, error) {
	i := 0
	for i < len(f) && f[i].Position <= after {
		i++
	}
	if i == len(f) {
		return nil, io.EOF
	}
	return f[i:min(len(f), i+max)], nil
}

// Head implements projections.Feed.
func (f Feed) Head() uint64 {
	if len(f) == 0 {
		return 0
	}
	return f[len(f)-1].Position
}

// Close implements projections.Feed.
func (Feed) Close() error { return nil }

// Quiet is a logger that logs nothing.
func Quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// Apply applies batch to m as one batch, in one transaction of its store,
// as the runner does: an error leaves the store and the projection as
// they were.
func Apply(m projections.Model, batch ...eventstore.RecordedEvent) error {
	if len(batch) == 0 {
		return nil
	}
	_, err := projections.Replay(context.Background(), Feed(batch), []projections.Model{m},
		projections.RunnerConfig{MaxBatch: len(batch), Logger: Quiet(), Retries: -1, CheckpointEvery: -1})
	return err
}

// AppliesEveryEventType applies a sample of every registered event type
// to m, one at a time, and fails for each it cannot apply; then an event
// of a type nobody registered yet, which m must pass by. A new event
// type asks nothing of a projection that does not read it.
func AppliesEveryEventType(t *testing.T, m projections.Model) {
	t.Helper()
	samples := Samples(t)
	l := NewLog(t)
	for _, typ := range events.Types() {
		sample, ok := samples[typ]
		if !ok {
			t.Errorf("%s: no sample event: add one to projectionstest.Samples", typ)
			continue
		}
		e := l.Add(StreamOf(sample), time.Now(), events.Metadata{Node: "n1", Service: "default"}, sample)
		if err := Apply(m, e); err != nil {
			t.Errorf("%s: %v", typ, err)
		}
	}
	e := l.Add("somewhere", time.Now(), events.Metadata{Node: "n1"}, Unregistered{Anything: "new"})
	if err := Apply(m, e); err != nil {
		t.Errorf("%s: %v", e.Type, err)
	}
	if got := m.Store.Checkpoint(); got != e.Position {
		t.Errorf("checkpoint %d after an event of a new type at %d", got, e.Position)
	}
}

// Unregistered is an event of a type events does not register: one added
// after the projections were written.
type Unregistered struct {
	Anything string `json:"anything"`
}

// EventType implements events.Event.
func (Unregistered) EventType() string { return "SomethingNew.v1" }

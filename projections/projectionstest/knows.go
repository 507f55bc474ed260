package projectionstest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/chronolog/chronolog/domain/events"
	"github.com/chronolog/chronolog/projections"
)

// KnowsEveryEventType applies a sample of every registered event type to
// s, one at a time, and fails for each the projection does not know (or
// cannot apply): a new event type must be decided on by every projection.
func KnowsEveryEventType(t *testing.T, s *projections.Store) {
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
		if err := s.Apply(context.Background(), []projections.Event{e}); err != nil {
			if errors.Is(err, projections.ErrUnknownEventType) {
				t.Errorf("%s: unknown to %s: %v", typ, s.Name(), err)
			} else {
				t.Errorf("%s: %v", typ, err)
			}
		}
	}
}

package events

import (
	"context"
	"time"

	"github.com/chronolog/chronolog/domain/eventstore"
)

// Appender is what a Recorder appends to: the event store.
type Appender interface {
	Append(ctx context.Context, stream string, expected eventstore.ExpectedState, evs ...eventstore.EventData) (eventstore.AppendResult, error)
}

// Recorder records facts outside a request's own exchange: clock samples,
// configuration and key changes, the log's bookkeeping, delivery failures.
// It stamps them with its clock, draws their ids and appends them to one
// stream in one append, durably, before it returns.
type Recorder struct {
	Store Appender
	Clock interface{ Now() time.Time }
	IDs   interface{ NewID() string }
	// Meta is the metadata every event it records carries.
	Meta Metadata
}

// Record appends evs to stream in one append, if expected admits the
// stream's state.
func (r Recorder) Record(ctx context.Context, stream string, expected eventstore.ExpectedState, evs ...Event) (eventstore.AppendResult, error) {
	return r.RecordIDs(ctx, stream, expected, nil, evs...)
}

// RecordIDs is Record with the first len(ids) events' ids given: events
// that other events name (a clock sample, which every token of its period
// names) get an id before they are recorded.
func (r Recorder) RecordIDs(ctx context.Context, stream string, expected eventstore.ExpectedState, ids []string, evs ...Event) (eventstore.AppendResult, error) {
	at := r.Clock.Now().UTC()
	data := make([]eventstore.EventData, 0, len(evs))
	for i, e := range evs {
		var id string
		if i < len(ids) {
			id = ids[i]
		} else {
			id = r.IDs.NewID()
		}
		ed, err := Encode(id, stream, at, r.Meta, e)
		if err != nil {
			return eventstore.AppendResult{}, err
		}
		data = append(data, ed)
	}
	return r.Store.Append(ctx, stream, expected, data...)
}

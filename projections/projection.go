// Package projections is the read side: read models derived from the event
// stream, each in its own SQLite file, each rebuildable from zero by replay.
// A projection applies events in commit order inside a transaction that
// also moves its checkpoint, so it is idempotent by event position: an
// event at or below the checkpoint is never applied twice.
package projections

import (
	"context"
	"errors"
	"time"
)

// Event is a committed event as projections see it. Data is the raw JSON of
// the envelope's data: a projection picks out the fields it needs (see
// events.ScanObject) instead of decoding every token it never looks at.
type Event struct {
	Position   uint64
	Stream     string
	ID         string
	Type       string
	RecordedAt time.Time
	// Service and Node are the envelope's metadata.
	Service, Node string
	Data          []byte
}

// ErrUnknownEventType is wrapped by a projection's Apply for an event type
// it has not decided about. Ignoring a type is a decision; not knowing it
// stops the projection, loudly, until someone decides.
var ErrUnknownEventType = errors.New("unknown event type")

// Projection is one read model.
type Projection interface {
	// Name names its read store file, its checkpoint and its metrics:
	// lower case, digits and '-'.
	Name() string
	// Schema is the DDL creating its tables (CREATE ... IF NOT EXISTS).
	Schema() []string
	// Apply applies one event within tx. It is called once per position,
	// in commit order; an error rolls back the whole batch.
	Apply(ctx context.Context, tx *Tx, e Event) error
}

// Flusher is implemented by a projection that accumulates within a batch
// (counts, say) and writes once at its end, in the same transaction.
// Discard drops what was accumulated when the batch is rolled back.
type Flusher interface {
	Flush(ctx context.Context, tx *Tx) error
	Discard()
}

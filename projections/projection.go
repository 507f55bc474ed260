// Package projections is the read side: read models derived from the event
// stream, each in a read store of its own, each rebuildable from zero.
//
// A projection declares the event types it reads by its handlers, one
// typed function per type (On); an event of any other type passes it by,
// so a new event type asks nothing of the projections that do not read
// it. The Runner reads committed events from a Feed (a live subscription,
// or a bounded replay: the same runner with a limit), decodes each once
// with the typed decoders of domain/events, and applies each batch to
// every read store in a transaction that also moves the store's
// checkpoint: an event at or below the checkpoint is never applied twice.
//
// The package depends on the domain alone: the read stores (Store) and
// the feed's event store are ports, kept by adapters.
package projections

import (
	"context"
	"time"

	"github.com/chronolog/chronolog/domain/events"
)

// Meta is what a handler learns of an event besides its data: where it
// stands in the record, and its envelope.
type Meta struct {
	Position   uint64
	Stream     string
	ID         string
	Type       string
	RecordedAt time.Time
	// Service and Node are the envelope's metadata.
	Service, Node string
}

// Projection is one read model.
type Projection interface {
	// Name names its read store, its checkpoint and its metrics: lower
	// case, digits and '-'.
	Name() string
	// Schema is the DDL creating its tables (CREATE … IF NOT EXISTS). A
	// read store built with another schema is rebuilt from zero.
	Schema() []string
	// Handlers are its handlers, one per event type it reads.
	Handlers() []Handler
}

// Flusher is implemented by a projection that accumulates within a batch
// (counts, say) and writes once at its end, in the same transaction.
// Discard drops what was accumulated when the batch is rolled back.
type Flusher interface {
	Flush(ctx context.Context, tx Tx) error
	Discard()
}

// Handler applies the events of one type to a read model.
type Handler struct {
	eventType string
	apply     func(ctx context.Context, tx Tx, m Meta, e events.Event) error
}

// On makes the handler of the events of E's type from a function typed by
// it: the type it handles is the one its function takes, and the event
// reaches it decoded.
func On[E events.Event](fn func(ctx context.Context, tx Tx, m Meta, e E) error) Handler {
	var zero E
	return Handler{
		eventType: zero.EventType(),
		apply: func(ctx context.Context, tx Tx, m Meta, e events.Event) error {
			return fn(ctx, tx, m, e.(E))
		},
	}
}

// EventType is the wire name of the events h handles.
func (h Handler) EventType() string { return h.eventType }

// Model is a projection with its read store.
type Model struct {
	Projection Projection
	Store      Store
}

// Package eventstore declares the semantics every event-store adapter keeps,
// modelled on EventStoreDB: named streams with a revision, an expected stream
// state checked atomically at append, and one global order ("$all") in which
// events were committed, addressed by positions the store assigns.
//
// It is pure: no adapter lives here, only the contract. The contract tests in
// adapters/eventstore/eventstoretest hold every adapter to it.
package eventstore

import (
	"context"
	"errors"
	"fmt"
)

// ExpectedState is what the appender believes about a stream before it
// appends. The store refuses the append, atomically, when the belief is wrong.
type ExpectedState struct {
	kind     expectedKind
	revision uint64
}

type expectedKind uint8

const (
	kindAny expectedKind = iota
	kindNoStream
	kindStreamExists
	kindRevision
)

var (
	// Any appends whatever the stream's state.
	Any = ExpectedState{kind: kindAny}
	// NoStream appends only if the stream has no event yet. A TSA request
	// stream tsr-<serial> is appended once with NoStream, so the store itself
	// guarantees that a serial number is never used twice.
	NoStream = ExpectedState{kind: kindNoStream}
	// StreamExists appends only if the stream has at least one event.
	StreamExists = ExpectedState{kind: kindStreamExists}
)

// AtRevision appends only if the stream's last event has revision r
// (revisions count from 0).
func AtRevision(r uint64) ExpectedState { return ExpectedState{kind: kindRevision, revision: r} }

// Admits reports whether a stream whose current state is (exists, last)
// satisfies the expectation. last is meaningful only when exists is true.
func (e ExpectedState) Admits(exists bool, last uint64) bool {
	switch e.kind {
	case kindAny:
		return true
	case kindNoStream:
		return !exists
	case kindStreamExists:
		return exists
	case kindRevision:
		return exists && last == e.revision
	}
	return false
}

func (e ExpectedState) String() string {
	switch e.kind {
	case kindAny:
		return "any"
	case kindNoStream:
		return "no stream"
	case kindStreamExists:
		return "stream exists"
	case kindRevision:
		return fmt.Sprintf("revision %d", e.revision)
	}
	return "invalid"
}

// EventData is an event proposed for appending.
type EventData struct {
	// ID is the event's UUID (v7) in canonical lower-case form, unique
	// across the store. Adapters may refuse any other form: EventStoreDB
	// takes only UUIDs, and the embedded store keeps them as 16 octets.
	ID string
	// Type is the versioned wire name, e.g. "TimestampIssued.v1".
	Type string
	// Payload is the whole JSON envelope. The store keeps it byte-exact:
	// every hash taken later (the transparency log) is over these bytes.
	Payload []byte
}

// RecordedEvent is an event as committed.
type RecordedEvent struct {
	// Position is the event's place in the global commit order; the first
	// event ever committed has position 1 and positions only grow.
	Position uint64
	Stream   string
	// Revision is the event's index in its stream, from 0.
	Revision uint64
	ID       string
	Type     string
	Payload  []byte
}

// AppendResult tells where an append landed.
type AppendResult struct {
	// NextExpected is the revision of the stream's last event after the append.
	NextExpected uint64
	// Position is the global position of the last appended event.
	Position uint64
}

// ErrWrongExpectedState is matched with errors.Is by every
// *WrongExpectedStateError.
var ErrWrongExpectedState = errors.New("wrong expected stream state")

// ErrStreamNotFound is returned by ReadStream for a stream with no events.
var ErrStreamNotFound = errors.New("stream not found")

// ErrClosed is returned by every operation on a closed store.
var ErrClosed = errors.New("event store closed")

// WrongExpectedStateError says which stream refused an append and why.
type WrongExpectedStateError struct {
	Stream   string
	Expected ExpectedState
	// Exists and Actual describe the stream as the store found it.
	Exists bool
	Actual uint64
}

func (e *WrongExpectedStateError) Error() string {
	actual := "no stream"
	if e.Exists {
		actual = fmt.Sprintf("revision %d", e.Actual)
	}
	return fmt.Sprintf("append to %q: expected %s, found %s", e.Stream, e.Expected, actual)
}

func (e *WrongExpectedStateError) Is(target error) bool { return target == ErrWrongExpectedState }

// Store is the port every adapter implements.
//
// Append is atomic: all of events are committed, or none. It returns only
// after the commit is durable (it survives a kill -9 of the process and a
// power cut as far as the backend promises), never before. Appends of
// different streams made concurrently may be committed together.
//
// Its answer is definitive, whatever happens to ctx: nil means durable, an
// error means not recorded. ctx may stop an append only before the store
// starts to commit it; once the commit has begun, Append waits for its
// outcome. (The TSA discards a token whose append failed: finding it on
// the record afterwards would be a token issued off the books.)
type Store interface {
	Append(ctx context.Context, stream string, expected ExpectedState, events ...EventData) (AppendResult, error)
	// ReadStream returns a stream's events in revision order.
	ReadStream(ctx context.Context, stream string) ([]RecordedEvent, error)
	// ReadAll returns up to max events with Position > after, in commit order.
	ReadAll(ctx context.Context, after uint64, max int) ([]RecordedEvent, error)
	// SubscribeAll delivers every event with Position > after, in commit
	// order: first those already committed, then each new one as it commits.
	SubscribeAll(ctx context.Context, after uint64) (Subscription, error)
	// Close waits for in-flight appends to finish and releases the store.
	Close() error
}

// Subscription is a live feed of committed events.
type Subscription interface {
	// Recv blocks until the next event, ctx is done, or the subscription or
	// store is closed (then it returns ErrClosed).
	Recv(ctx context.Context) (RecordedEvent, error)
	Close() error
}

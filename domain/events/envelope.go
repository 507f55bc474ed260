// Package events defines the facts Chronolog records, their versioned wire
// names and the JSON envelope they are stored in. Events are never edited:
// a new field is an additive change within a version; anything else is a new
// version with a new wire name. Each type has a JSON Schema in schemas/events.
package events

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"

	"github.com/chronolog/chronolog/domain/eventstore"
)

// Envelope is the stored form of every event. Its JSON bytes are stored
// byte-exact and every later hash is taken over them.
type Envelope struct {
	Type       string          `json:"type"`
	ID         string          `json:"id"`
	Stream     string          `json:"stream"`
	RecordedAt time.Time       `json:"recordedAt"`
	Data       json.RawMessage `json:"data"`
	Metadata   Metadata        `json:"metadata"`
}

// Metadata ties an event to the request and the node that produced it.
type Metadata struct {
	CorrelationID string `json:"correlationId,omitempty"`
	Node          string `json:"node,omitempty"`
	Service       string `json:"service,omitempty"`
}

// Event is implemented by every event payload type.
type Event interface {
	// EventType is the versioned wire name, e.g. "TimestampIssued.v1".
	EventType() string
}

// Encode wraps e in an envelope and returns it ready to append. id comes from
// the caller (a UUIDv7 source) and recordedAt from the caller's clock: the
// domain takes neither from the machine. The bytes are those json.Marshal
// would write for an Envelope, fields in its order.
func Encode(id, stream string, recordedAt time.Time, meta Metadata, e Event) (eventstore.EventData, error) {
	size := 320 + len(id) + len(stream)
	if ti, ok := e.(TimestampIssued); ok {
		size += base64.StdEncoding.EncodedLen(len(ti.Token))
	}
	b, err := AppendEnvelope(make([]byte, 0, size), id, stream, recordedAt, meta, e)
	if err != nil {
		return eventstore.EventData{}, err
	}
	return eventstore.EventData{ID: id, Type: e.EventType(), Payload: b}, nil
}

// AppendEnvelope appends e's envelope, as Encode makes it, to b: a caller
// recording several events can keep their payloads in one buffer.
func AppendEnvelope(b []byte, id, stream string, recordedAt time.Time, meta Metadata, e Event) ([]byte, error) {
	typ := e.EventType()
	b = append(b, `{"type":`...)
	b = appendString(b, typ)
	b = append(b, `,"id":`...)
	b = appendString(b, id)
	b = append(b, `,"stream":`...)
	b = appendString(b, stream)
	b = append(b, `,"recordedAt":`...)
	b, err := appendTime(b, recordedAt.UTC())
	if err != nil {
		return b, fmt.Errorf("encode recordedAt of %s: %w", typ, err)
	}
	b = append(b, `,"data":`...)
	if a, ok := e.(jsonAppender); ok {
		b, err = a.appendJSON(b)
	} else {
		var data []byte
		data, err = json.Marshal(e)
		b = append(b, data...)
	}
	if err != nil {
		return b, fmt.Errorf("encode %s: %w", typ, err)
	}
	b = append(b, `,"metadata":`...)
	b = meta.appendJSON(b)
	return append(b, '}'), nil
}

// Decode parses a stored envelope and its data into the registered type.
func Decode(payload []byte) (Envelope, Event, error) {
	var env Envelope
	if err := json.Unmarshal(payload, &env); err != nil {
		return Envelope{}, nil, fmt.Errorf("decode envelope: %w", err)
	}
	mk, ok := registry[env.Type]
	if !ok {
		return env, nil, fmt.Errorf("decode %s: unknown event type", env.Type)
	}
	e := mk()
	if err := json.Unmarshal(env.Data, e); err != nil {
		return env, nil, fmt.Errorf("decode %s: %w", env.Type, err)
	}
	return env, e, nil
}

// registry maps each wire name to a constructor of its payload.
var registry = map[string]func() Event{
	TypeTimestampRequested:   func() Event { return &TimestampRequested{} },
	TypeFilterDecided:        func() Event { return &FilterDecided{} },
	TypeFilterChainDecided:   func() Event { return &FilterChainDecided{} },
	TypeTimestampIssued:      func() Event { return &TimestampIssued{} },
	TypeTimestampRejected:    func() Event { return &TimestampRejected{} },
	TypeTimestampRejectedV1:  func() Event { return &TimestampRejectedV1{} },
	TypeTimestampForwarded:   func() Event { return &TimestampForwarded{} },
	TypeTimestampUndelivered: func() Event { return &TimestampUndelivered{} },

	TypeServiceConfigured:     func() Event { return &ServiceConfigured{} },
	TypeServiceConfigChanged:  func() Event { return &ServiceConfigChanged{} },
	TypeServiceConfigRefused:  func() Event { return &ServiceConfigRefused{} },
	TypeServiceAlgorithmEnded: func() Event { return &ServiceAlgorithmEnded{} },

	TypeLogSegmentSealed:    func() Event { return &LogSegmentSealed{} },
	TypeLogCheckpointSigned: func() Event { return &LogCheckpointSigned{} },

	TypeSigningKeyGenerated:        func() Event { return &SigningKeyGenerated{} },
	TypeCertificateImported:        func() Event { return &CertificateImported{} },
	TypeSigningKeyActivated:        func() Event { return &SigningKeyActivated{} },
	TypeSigningKeyRetired:          func() Event { return &SigningKeyRetired{} },
	TypeSigningKeyUnavailable:      func() Event { return &SigningKeyUnavailable{} },
	TypeSigningKeyRestored:         func() Event { return &SigningKeyRestored{} },
	TypeSigningCertificateExpiring: func() Event { return &SigningCertificateExpiring{} },

	TypeClockSampled:        func() Event { return &ClockSampled{} },
	TypeClockSyncLost:       func() Event { return &ClockSyncLost{} },
	TypeClockSyncRegained:   func() Event { return &ClockSyncRegained{} },
	TypeLeapSecondAnnounced: func() Event { return &LeapSecondAnnounced{} },
}

// Upcaster is an event of a type no longer written that reads as one of a
// type that is: readers of the record handle the current type only.
type Upcaster interface {
	Event
	Upcast() Event
}

// upcasts maps the wire name of a type no longer written to the one its
// events read as.
var upcasts = map[string]string{
	TypeTimestampRejectedV1: TypeTimestampRejected,
}

// CurrentType is the wire name events of eventType read as: itself, or
// for a type no longer written, the one its Upcast gives.
func CurrentType(eventType string) string {
	if t, ok := upcasts[eventType]; ok {
		return t
	}
	return eventType
}

// Types lists every registered wire name (for schema checks).
func Types() []string {
	out := make([]string, 0, len(registry))
	for t := range registry {
		out = append(out, t)
	}
	return out
}

// New returns an empty payload of the registered type, or nil.
func New(eventType string) Event {
	if mk, ok := registry[eventType]; ok {
		return mk()
	}
	return nil
}

// EnvelopeParts holds what every envelope of one stream, time and
// metadata shares, encoded once: a request's events (up to one per
// filter) differ only in their type, id and data.
type EnvelopeParts struct {
	// streamAt is `,"stream":…,"recordedAt":…`; meta is `,"metadata":{…}}`.
	streamAt, meta []byte
}

// NewEnvelopeParts encodes the shared parts.
func NewEnvelopeParts(stream string, recordedAt time.Time, meta Metadata) (*EnvelopeParts, error) {
	p := &EnvelopeParts{}
	b := append(make([]byte, 0, 96+len(stream)), `,"stream":`...)
	b = appendString(b, stream)
	b = append(b, `,"recordedAt":`...)
	b, err := appendTime(b, recordedAt.UTC())
	if err != nil {
		return nil, fmt.Errorf("encode recordedAt: %w", err)
	}
	p.streamAt = b
	m := append(make([]byte, 0, 128), `,"metadata":`...)
	p.meta = append(meta.appendJSON(m), '}')
	return p, nil
}

// Append appends e's envelope to b: the same bytes AppendEnvelope writes.
func (p *EnvelopeParts) Append(b []byte, id string, e Event) ([]byte, error) {
	typ := e.EventType()
	b = append(b, `{"type":`...)
	b = appendString(b, typ)
	b = append(b, `,"id":`...)
	b = appendString(b, id)
	b = append(b, p.streamAt...)
	b = append(b, `,"data":`...)
	var err error
	if a, ok := e.(jsonAppender); ok {
		b, err = a.appendJSON(b)
	} else {
		var data []byte
		data, err = json.Marshal(e)
		b = append(b, data...)
	}
	if err != nil {
		return b, fmt.Errorf("encode %s: %w", typ, err)
	}
	return append(b, p.meta...), nil
}

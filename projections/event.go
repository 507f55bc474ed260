package projections

import (
	"fmt"

	"github.com/chronolog/chronolog/domain/events"
	"github.com/chronolog/chronolog/domain/eventstore"
)

// FromRecorded reads a stored envelope into an Event without decoding its
// data: at replay speed, only the fields a projection reads are decoded.
func FromRecorded(r eventstore.RecordedEvent) (Event, error) {
	e := Event{Position: r.Position, Stream: r.Stream, ID: r.ID, Type: r.Type}
	err := events.ScanObject(r.Payload, func(k string, v []byte) error {
		var err error
		switch k {
		case "recordedAt":
			e.RecordedAt, err = events.Time(v)
		case "data":
			e.Data = v
		case "metadata":
			err = events.ScanObject(v, func(k string, v []byte) error {
				var err error
				switch k {
				case "service":
					e.Service, err = events.String(v)
				case "node":
					e.Node, err = events.String(v)
				}
				return err
			})
		}
		return err
	})
	if err != nil {
		return Event{}, fmt.Errorf("event %d: envelope: %w", r.Position, err)
	}
	if e.Data == nil {
		return Event{}, fmt.Errorf("event %d: envelope without data", r.Position)
	}
	return e, nil
}

// Fields calls fn with each member of the event's data whose key is wanted,
// decoding nothing else.
func (e Event) Fields(fn func(key string, value []byte) error) error {
	if err := events.ScanObject(e.Data, fn); err != nil {
		return fmt.Errorf("event %d (%s): data: %w", e.Position, e.Type, err)
	}
	return nil
}

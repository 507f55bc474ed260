package tsa

import (
	"context"
	"fmt"

	"github.com/chronolog/chronolog/domain/events"
	"github.com/chronolog/chronolog/domain/eventstore"
)

// Undelivered records that the answer to the request recorded under serial
// did not reach its client: the connection was gone before the answer was
// written, or writing it failed. The request's outcome stands as recorded
// (a token issued stays issued, and it is on the log); this only adds
// what the transport saw. Its absence proves no delivery: a client may
// vanish after the last byte left.
func (s *Service) Undelivered(ctx context.Context, serial, reason string) error {
	stream := events.RequestStream(serial)
	rec := events.Recorder{Store: s.p.Recorder, Clock: s.p.Clock, IDs: s.p.IDs, Meta: events.Metadata{Node: s.cfg.Node, Service: s.cfg.Name}}
	// The request's own append made the stream; nothing else writes it.
	if _, err := rec.Record(ctx, stream, eventstore.StreamExists, events.TimestampUndelivered{Serial: serial, Reason: reason}); err != nil {
		return fmt.Errorf("record %s undelivered: %w", stream, err)
	}
	return nil
}

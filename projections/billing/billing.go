// Package billing counts the requests each client made of each service,
// per UTC day: tokens issued, requests rejected (a TSP rejection),
// refused (a transport refusal) and forwarded to an upstream TSA.
package billing

import (
	"bytes"
	"context"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/chronolog/chronolog/domain/events"
	"github.com/chronolog/chronolog/projections"
)

// Name is the projection's name: its read store file and checkpoint.
const Name = "billing"

// Statuses of TimestampRejected.
const (
	StatusRejection = "rejection"
	StatusRefused   = "refused"
)

// key is one row of the counts: a UTC day (days since 1970-01-01), a
// service, a client ("" for anonymous).
type key struct {
	day             int64
	service, client string
}

type counts struct{ issued, rejected, refused, forwarded int64 }

// Projection counts. A batch's counts are added up in memory and written
// at its end, one upsert per (day, service, client).
type Projection struct {
	pending map[key]*counts
	// names interns the clients seen, so that counting an event
	// allocates nothing once its client is known.
	names map[string]string
}

// New returns the billing projection.
func New() *Projection {
	return &Projection{pending: map[key]*counts{}, names: map[string]string{}}
}

var _ projections.Flusher = (*Projection)(nil)

// Name implements projections.Projection.
func (*Projection) Name() string { return Name }

// Schema implements projections.Projection.
func (*Projection) Schema() []string {
	return []string{
		`CREATE TABLE IF NOT EXISTS billing (
			day       TEXT NOT NULL,
			service   TEXT NOT NULL,
			client    TEXT NOT NULL,
			issued    INTEGER NOT NULL DEFAULT 0,
			rejected  INTEGER NOT NULL DEFAULT 0,
			refused   INTEGER NOT NULL DEFAULT 0,
			forwarded INTEGER NOT NULL DEFAULT 0,
			PRIMARY KEY (day, service, client)
		) WITHOUT ROWID`,
	}
}

// Apply implements projections.Projection.
func (p *Projection) Apply(ctx context.Context, tx *projections.Tx, e projections.Event) error {
	switch e.Type {
	case events.TypeTimestampIssued:
		return p.OnTimestampIssued(ctx, tx, e)
	case events.TypeTimestampRejected, events.TypeTimestampRejectedV1:
		return p.OnTimestampRejected(ctx, tx, e)
	case events.TypeTimestampForwarded:
		return p.OnTimestampForwarded(ctx, tx, e)
	case events.TypeTimestampRequested, events.TypeFilterDecided, events.TypeFilterChainDecided,
		events.TypeServiceConfigured, events.TypeServiceConfigChanged, events.TypeServiceConfigRefused, events.TypeServiceAlgorithmEnded,
		events.TypeTimestampUndelivered,
		events.TypeLogSegmentSealed, events.TypeLogCheckpointSigned,
		events.TypeSigningKeyGenerated, events.TypeCertificateImported, events.TypeSigningKeyActivated,
		events.TypeSigningKeyRetired, events.TypeSigningKeyUnavailable, events.TypeSigningKeyRestored,
		events.TypeSigningCertificateExpiring,
		events.TypeClockSampled, events.TypeClockSyncLost, events.TypeClockSyncRegained, events.TypeLeapSecondAnnounced:
		return nil
	default:
		return fmt.Errorf("%w: %s", projections.ErrUnknownEventType, e.Type)
	}
}

// OnTimestampIssued counts a token issued.
func (p *Projection) OnTimestampIssued(_ context.Context, _ *projections.Tx, e projections.Event) error {
	c, err := p.counter(e, nil)
	if err != nil {
		return err
	}
	c.issued++
	return nil
}

// OnTimestampRejected counts a rejection or a refusal.
func (p *Projection) OnTimestampRejected(_ context.Context, _ *projections.Tx, e projections.Event) error {
	var status []byte
	c, err := p.counter(e, &status)
	if err != nil {
		return err
	}
	switch string(status) {
	case StatusRejection:
		c.rejected++
	case StatusRefused:
		c.refused++
	default:
		return fmt.Errorf("event %d (%s): status %q is neither %s nor %s", e.Position, e.Type, status, StatusRejection, StatusRefused)
	}
	return nil
}

// OnTimestampForwarded counts a request forwarded upstream, whatever the
// upstream answered.
func (p *Projection) OnTimestampForwarded(_ context.Context, _ *projections.Tx, e projections.Event) error {
	c, err := p.counter(e, nil)
	if err != nil {
		return err
	}
	c.forwarded++
	return nil
}

// counter returns the counts e adds to: its day is the UTC day it was
// recorded, its service the metadata's, its client the data's. When
// status is not nil it is set to the raw "status" member.
func (p *Projection) counter(e projections.Event, status *[]byte) (*counts, error) {
	var client []byte
	err := e.Fields(func(k string, v []byte) error {
		var err error
		switch k {
		case "client":
			client, err = rawString(v)
		case "status":
			if status != nil {
				*status, err = rawString(v)
			}
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if e.RecordedAt.IsZero() {
		return nil, fmt.Errorf("event %d (%s): no recordedAt", e.Position, e.Type)
	}
	k := key{day: floorDiv(e.RecordedAt.Unix(), 86400), service: e.Service, client: p.intern(client)}
	c := p.pending[k]
	if c == nil {
		c = &counts{}
		p.pending[k] = c
	}
	return c, nil
}

func (p *Projection) intern(b []byte) string {
	// A lookup by string(b) does not allocate.
	if n, ok := p.names[string(b)]; ok {
		return n
	}
	s := string(b)
	p.names[s] = s
	return s
}

const upsert = `INSERT INTO billing (day, service, client, issued, rejected, refused, forwarded)
	VALUES (?, ?, ?, ?, ?, ?, ?)
	ON CONFLICT (day, service, client) DO UPDATE SET
		issued = issued + excluded.issued,
		rejected = rejected + excluded.rejected,
		refused = refused + excluded.refused,
		forwarded = forwarded + excluded.forwarded`

// Flush adds the batch's counts to the table.
func (p *Projection) Flush(ctx context.Context, tx *projections.Tx) error {
	for k, c := range p.pending {
		if _, err := tx.Exec(ctx, upsert, dayString(k.day), k.service, k.client, c.issued, c.rejected, c.refused, c.forwarded); err != nil {
			return fmt.Errorf("counts of %s %q %q: %w", dayString(k.day), k.service, k.client, err)
		}
	}
	clear(p.pending)
	if len(p.names) > maxNames {
		clear(p.names)
	}
	return nil
}

// maxNames bounds the interned names between batches.
const maxNames = 1 << 16

// Discard drops the batch's counts.
func (p *Projection) Discard() { clear(p.pending) }

// rawString returns the content of the JSON string v without copying when
// it holds no escape.
func rawString(v []byte) ([]byte, error) {
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		body := v[1 : len(v)-1]
		if bytes.IndexByte(body, '\\') < 0 && utf8.Valid(body) {
			return body, nil
		}
	}
	s, err := events.String(v)
	if err != nil {
		return nil, err
	}
	return []byte(s), nil
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

const dayLayout = "2006-01-02"

func dayString(day int64) string { return time.Unix(day*86400, 0).UTC().Format(dayLayout) }

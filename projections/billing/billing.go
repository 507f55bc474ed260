// Package billing counts the requests each client made of each service,
// per UTC day: tokens issued, requests rejected (a TSP rejection),
// refused (a transport refusal) and forwarded to an upstream TSA.
package billing

import (
	"context"
	"fmt"
	"time"

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
}

// New returns the billing projection.
func New() *Projection {
	return &Projection{pending: map[key]*counts{}}
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

// Handlers implements projections.Projection.
func (p *Projection) Handlers() []projections.Handler {
	return []projections.Handler{
		projections.On(p.OnTimestampIssued),
		projections.On(p.OnTimestampRejected),
		projections.On(p.OnTimestampForwarded),
	}
}

// OnTimestampIssued counts a token issued.
func (p *Projection) OnTimestampIssued(_ context.Context, _ projections.Tx, m projections.Meta, e events.TimestampIssued) error {
	c, err := p.counter(m, e.Client)
	if err != nil {
		return err
	}
	c.issued++
	return nil
}

// OnTimestampRejected counts a rejection or a refusal.
func (p *Projection) OnTimestampRejected(_ context.Context, _ projections.Tx, m projections.Meta, e events.TimestampRejected) error {
	c, err := p.counter(m, e.Client)
	if err != nil {
		return err
	}
	switch e.Status {
	case StatusRejection:
		c.rejected++
	case StatusRefused:
		c.refused++
	default:
		return fmt.Errorf("event %d: status %q is neither %s nor %s", m.Position, e.Status, StatusRejection, StatusRefused)
	}
	return nil
}

// OnTimestampForwarded counts a request forwarded upstream, whatever the
// upstream answered.
func (p *Projection) OnTimestampForwarded(_ context.Context, _ projections.Tx, m projections.Meta, e events.TimestampForwarded) error {
	c, err := p.counter(m, e.Client)
	if err != nil {
		return err
	}
	c.forwarded++
	return nil
}

// counter returns the counts an event adds to: its day is the UTC day it
// was recorded, its service the metadata's, its client the data's.
func (p *Projection) counter(m projections.Meta, client string) (*counts, error) {
	if m.RecordedAt.IsZero() {
		return nil, fmt.Errorf("event %d: no recordedAt", m.Position)
	}
	k := key{day: floorDiv(m.RecordedAt.Unix(), 86400), service: m.Service, client: client}
	c := p.pending[k]
	if c == nil {
		c = &counts{}
		p.pending[k] = c
	}
	return c, nil
}

const upsert = `INSERT INTO billing (day, service, client, issued, rejected, refused, forwarded)
	VALUES (?, ?, ?, ?, ?, ?, ?)
	ON CONFLICT (day, service, client) DO UPDATE SET
		issued = issued + excluded.issued,
		rejected = rejected + excluded.rejected,
		refused = refused + excluded.refused,
		forwarded = forwarded + excluded.forwarded`

// Flush adds the batch's counts to the table.
func (p *Projection) Flush(ctx context.Context, tx projections.Tx) error {
	for k, c := range p.pending {
		if _, err := tx.Exec(ctx, upsert, dayString(k.day), k.service, k.client, c.issued, c.rejected, c.refused, c.forwarded); err != nil {
			return fmt.Errorf("counts of %s %q %q: %w", dayString(k.day), k.service, k.client, err)
		}
	}
	clear(p.pending)
	return nil
}

// Discard drops the batch's counts.
func (p *Projection) Discard() { clear(p.pending) }

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

const dayLayout = "2006-01-02"

func dayString(day int64) string { return time.Unix(day*86400, 0).UTC().Format(dayLayout) }

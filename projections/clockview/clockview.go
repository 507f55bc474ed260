// Package clockview is the clock projection: the clock's sampling rounds,
// the changes of each service's accuracy (lost, regained), the periods a
// service spent outside its declared accuracy, and the leap seconds
// announced.
package clockview

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/chronolog/chronolog/domain/events"
	"github.com/chronolog/chronolog/projections"
)

// Name is the projection's name: its read store file and checkpoint.
const Name = "clock"

// Kinds of a change.
const (
	KindLost     = "lost"
	KindRegained = "regained"
)

// Projection builds the clock's read model. It keeps nothing in memory.
type Projection struct{}

// New returns the clock projection.
func New() *Projection { return &Projection{} }

// Name implements projections.Projection.
func (*Projection) Name() string { return Name }

// Schema implements projections.Projection. Times are unix nanoseconds.
func (*Projection) Schema() []string {
	return []string{
		`CREATE TABLE IF NOT EXISTS clock_samples (
			position     INTEGER PRIMARY KEY,
			event_id     TEXT NOT NULL,
			at           INTEGER NOT NULL,
			synchronised INTEGER NOT NULL,
			bound_ns     INTEGER NOT NULL,
			offset_ns    INTEGER NOT NULL,
			agreeing     INTEGER NOT NULL,
			sources      INTEGER NOT NULL,
			quorum       INTEGER NOT NULL,
			reason       TEXT NOT NULL,
			leap         TEXT NOT NULL
		)`,
		`CREATE INDEX IF NOT EXISTS clock_samples_at ON clock_samples (at)`,
		`CREATE INDEX IF NOT EXISTS clock_samples_event ON clock_samples (event_id)`,
		`CREATE TABLE IF NOT EXISTS clock_changes (
			position    INTEGER PRIMARY KEY,
			service     TEXT NOT NULL,
			kind        TEXT NOT NULL CHECK (kind IN ('lost', 'regained')),
			at          INTEGER NOT NULL,
			reason      TEXT NOT NULL,
			bound_ns    INTEGER NOT NULL,
			accuracy_ns INTEGER NOT NULL,
			sample      TEXT NOT NULL
		)`,
		`CREATE INDEX IF NOT EXISTS clock_changes_at ON clock_changes (at)`,
		// A period is opened by a ClockSyncLost (position its position)
		// and closed by the next ClockSyncRegained of its service; end_at
		// and duration_ns are NULL while it is open.
		`CREATE TABLE IF NOT EXISTS clock_outside_accuracy (
			position    INTEGER PRIMARY KEY,
			service     TEXT NOT NULL,
			start_at    INTEGER NOT NULL,
			end_at      INTEGER,
			duration_ns INTEGER,
			reason      TEXT NOT NULL,
			closed_by   INTEGER
		)`,
		`CREATE INDEX IF NOT EXISTS clock_outside_accuracy_service ON clock_outside_accuracy (service, start_at)`,
		`CREATE INDEX IF NOT EXISTS clock_outside_accuracy_start ON clock_outside_accuracy (start_at)`,
		`CREATE UNIQUE INDEX IF NOT EXISTS clock_outside_accuracy_open ON clock_outside_accuracy (service) WHERE end_at IS NULL`,
		`CREATE TABLE IF NOT EXISTS clock_leaps (
			position  INTEGER PRIMARY KEY,
			leap      TEXT NOT NULL,
			at        INTEGER NOT NULL,
			sample    TEXT NOT NULL,
			sources   TEXT NOT NULL, -- a JSON array
			refused   INTEGER NOT NULL,
			window_ns INTEGER NOT NULL
		)`,
		`CREATE INDEX IF NOT EXISTS clock_leaps_at ON clock_leaps (at)`,
	}
}

// Handlers implements projections.Projection.
func (p *Projection) Handlers() []projections.Handler {
	return []projections.Handler{
		projections.On(p.OnClockSampled),
		projections.On(p.OnClockSyncLost),
		projections.On(p.OnClockSyncRegained),
		projections.On(p.OnLeapSecondAnnounced),
	}
}

// OnClockSampled records a sampling round (its readings are left in the
// event).
func (p *Projection) OnClockSampled(ctx context.Context, tx projections.Tx, e projections.Meta, s events.ClockSampled) error {
	_, err := tx.Exec(ctx, `INSERT INTO clock_samples (position, event_id, at, synchronised, bound_ns, offset_ns,
		agreeing, sources, quorum, reason, leap) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (position) DO NOTHING`,
		e.Position, e.ID, s.At.UnixNano(), s.Synchronised, s.BoundNs, s.OffsetNs, s.Agreeing, s.Sources, s.Quorum, s.Reason, s.Leap)
	if err != nil {
		return fmt.Errorf("event %d (%s): %w", e.Position, e.Type, err)
	}
	return nil
}

// OnClockSyncLost records the change and opens a period outside accuracy,
// unless one is open already (a server restarted while out of accuracy
// reports the loss again; the period began at the first report).
func (p *Projection) OnClockSyncLost(ctx context.Context, tx projections.Tx, e projections.Meta, l events.ClockSyncLost) error {
	if err := change(ctx, tx, e, l.Service, KindLost, l.At, l.Reason, l.BoundNs, l.AccuracyNs, l.Sample); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `INSERT INTO clock_outside_accuracy (position, service, start_at, reason)
		VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING`, e.Position, l.Service, l.At.UnixNano(), l.Reason)
	if err != nil {
		return fmt.Errorf("event %d (%s): open period: %w", e.Position, e.Type, err)
	}
	return nil
}

// OnClockSyncRegained records the change and closes the service's open
// period. With none open, a regain naming when accuracy was lost records
// the period it closes; one that does not (the first judgement after a
// start) closes nothing.
func (p *Projection) OnClockSyncRegained(ctx context.Context, tx projections.Tx, e projections.Meta, r events.ClockSyncRegained) error {
	if err := change(ctx, tx, e, r.Service, KindRegained, r.At, "", r.BoundNs, r.AccuracyNs, r.Sample); err != nil {
		return err
	}
	at := r.At.UnixNano()
	res, err := tx.Exec(ctx, `UPDATE clock_outside_accuracy SET end_at = ?1, duration_ns = max(?1 - start_at, 0), closed_by = ?2
		WHERE service = ?3 AND end_at IS NULL`, at, e.Position, r.Service)
	if err != nil {
		return fmt.Errorf("event %d (%s): close period: %w", e.Position, e.Type, err)
	}
	if res > 0 || r.LostAt == nil {
		return nil
	}
	start := r.LostAt.UnixNano()
	_, err = tx.Exec(ctx, `INSERT INTO clock_outside_accuracy (position, service, start_at, end_at, duration_ns, reason, closed_by)
		VALUES (?, ?, ?, ?, ?, '', ?) ON CONFLICT DO NOTHING`, e.Position, r.Service, start, at, max(at-start, 0), e.Position)
	if err != nil {
		return fmt.Errorf("event %d (%s): record period: %w", e.Position, e.Type, err)
	}
	return nil
}

func change(ctx context.Context, tx projections.Tx, e projections.Meta, service, kind string, at time.Time, reason string, bound, accuracy int64, sample string) error {
	_, err := tx.Exec(ctx, `INSERT INTO clock_changes (position, service, kind, at, reason, bound_ns, accuracy_ns, sample)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (position) DO NOTHING`,
		e.Position, service, kind, at.UnixNano(), reason, bound, accuracy, sample)
	if err != nil {
		return fmt.Errorf("event %d (%s): %w", e.Position, e.Type, err)
	}
	return nil
}

// OnLeapSecondAnnounced records the announcement.
func (p *Projection) OnLeapSecondAnnounced(ctx context.Context, tx projections.Tx, e projections.Meta, l events.LeapSecondAnnounced) error {
	sources, err := json.Marshal(l.Sources)
	if err != nil {
		return fmt.Errorf("event %d (%s): %w", e.Position, e.Type, err)
	}
	_, err = tx.Exec(ctx, `INSERT INTO clock_leaps (position, leap, at, sample, sources, refused, window_ns)
		VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (position) DO NOTHING`,
		e.Position, l.Leap, l.At.UnixNano(), l.Sample, string(sources), l.Refused, l.WindowNs)
	if err != nil {
		return fmt.Errorf("event %d (%s): %w", e.Position, e.Type, err)
	}
	return nil
}

package clockview

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Sample is one sampling round of the clock.
type Sample struct {
	Position uint64 `json:"position"`
	// EventID is the ClockSampled event's id, the one a TimestampIssued
	// names as its clockSample.
	EventID      string    `json:"eventId"`
	At           time.Time `json:"at"`
	Synchronised bool      `json:"synchronised"`
	// BoundNs is how far the clock may have been from UTC; OffsetNs the
	// median offset of the agreeing sources.
	BoundNs  int64  `json:"boundNs"`
	OffsetNs int64  `json:"offsetNs"`
	Agreeing int    `json:"agreeing"`
	Sources  int    `json:"sources"`
	Quorum   int    `json:"quorum"`
	Reason   string `json:"reason,omitempty"`
	// Leap is none, insert or delete.
	Leap string `json:"leap"`
}

// Change is a service's accuracy lost or regained.
type Change struct {
	Position uint64 `json:"position"`
	Service  string `json:"service"`
	// Kind is lost or regained.
	Kind   string    `json:"kind"`
	At     time.Time `json:"at"`
	Reason string    `json:"reason,omitempty"`
	// BoundNs is the clock's bound at the change (zero when it was not
	// synchronised at all); AccuracyNs the service's declared accuracy.
	BoundNs    int64 `json:"boundNs"`
	AccuracyNs int64 `json:"accuracyNs"`
	// Sample is the id of the ClockSampled event that showed it.
	Sample string `json:"sample"`
}

// Period is a time a service spent outside its declared accuracy: its
// requests were answered timeNotAvailable.
type Period struct {
	Service string    `json:"service"`
	Start   time.Time `json:"start"`
	// End is nil, and Open true, while the period lasts; DurationNs is
	// then zero.
	End        *time.Time `json:"end"`
	Open       bool       `json:"open"`
	DurationNs int64      `json:"durationNs"`
	Reason     string     `json:"reason,omitempty"`
}

// Leap is a leap second the clock sources announced.
type Leap struct {
	Position uint64 `json:"position"`
	// Leap is insert or delete; At the instant, the end of a UTC day.
	Leap    string    `json:"leap"`
	At      time.Time `json:"at"`
	Sample  string    `json:"sample"`
	Sources []string  `json:"sources"`
	// Refused tells whether requests were refused within WindowNs of At.
	Refused  bool  `json:"refused"`
	WindowNs int64 `json:"windowNs"`
}

// span appends `column >= from AND column < to` for the bounds that are
// not zero.
func span(where []string, args []any, column string, from, to time.Time) ([]string, []any) {
	if !from.IsZero() {
		where, args = append(where, column+` >= ?`), append(args, from.UnixNano())
	}
	if !to.IsZero() {
		where, args = append(where, column+` < ?`), append(args, to.UnixNano())
	}
	return where, args
}

func whereClause(where []string) string {
	if len(where) == 0 {
		return ""
	}
	return ` WHERE ` + strings.Join(where, ` AND `)
}

func instant(ns int64) time.Time { return time.Unix(0, ns).UTC() }

// Samples returns the sampling rounds at or after from and before to
// (zero: unbounded), in time order, at most limit of them (no limit when
// limit is zero or negative).
func Samples(ctx context.Context, db *sql.DB, from, to time.Time, limit int) ([]Sample, error) {
	where, args := span(nil, nil, `at`, from, to)
	q := `SELECT position, event_id, at, synchronised, bound_ns, offset_ns, agreeing, sources, quorum, reason, leap
		FROM clock_samples` + whereClause(where) + ` ORDER BY at, position`
	if limit > 0 {
		q += ` LIMIT ?`
		args = append(args, limit)
	}
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("clock: samples: %w", err)
	}
	defer rows.Close()
	var out []Sample
	for rows.Next() {
		var (
			s       Sample
			pos, at int64
		)
		if err := rows.Scan(&pos, &s.EventID, &at, &s.Synchronised, &s.BoundNs, &s.OffsetNs, &s.Agreeing, &s.Sources, &s.Quorum, &s.Reason, &s.Leap); err != nil {
			return nil, fmt.Errorf("clock: samples: %w", err)
		}
		s.Position, s.At = uint64(pos), instant(at)
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("clock: samples: %w", err)
	}
	return out, nil
}

// Changes returns the accuracy changes of every service at or after from
// and before to (zero: unbounded), in time order.
func Changes(ctx context.Context, db *sql.DB, from, to time.Time) ([]Change, error) {
	where, args := span(nil, nil, `at`, from, to)
	rows, err := db.QueryContext(ctx, `SELECT position, service, kind, at, reason, bound_ns, accuracy_ns, sample
		FROM clock_changes`+whereClause(where)+` ORDER BY at, position`, args...)
	if err != nil {
		return nil, fmt.Errorf("clock: changes: %w", err)
	}
	defer rows.Close()
	var out []Change
	for rows.Next() {
		var (
			c       Change
			pos, at int64
		)
		if err := rows.Scan(&pos, &c.Service, &c.Kind, &at, &c.Reason, &c.BoundNs, &c.AccuracyNs, &c.Sample); err != nil {
			return nil, fmt.Errorf("clock: changes: %w", err)
		}
		c.Position, c.At = uint64(pos), instant(at)
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("clock: changes: %w", err)
	}
	return out, nil
}

// OutsideAccuracy returns the periods of service (every service when
// empty) outside its declared accuracy that overlap [from, to) (zero:
// unbounded), by start.
func OutsideAccuracy(ctx context.Context, db *sql.DB, service string, from, to time.Time) ([]Period, error) {
	var (
		where []string
		args  []any
	)
	if service != "" {
		where, args = append(where, `service = ?`), append(args, service)
	}
	if !to.IsZero() {
		where, args = append(where, `start_at < ?`), append(args, to.UnixNano())
	}
	if !from.IsZero() {
		where, args = append(where, `(end_at IS NULL OR end_at > ?)`), append(args, from.UnixNano())
	}
	rows, err := db.QueryContext(ctx, `SELECT service, start_at, end_at, duration_ns, reason
		FROM clock_outside_accuracy`+whereClause(where)+` ORDER BY start_at, service`, args...)
	if err != nil {
		return nil, fmt.Errorf("clock: outside accuracy: %w", err)
	}
	defer rows.Close()
	var out []Period
	for rows.Next() {
		var (
			p        Period
			start    int64
			end, dur sql.NullInt64
		)
		if err := rows.Scan(&p.Service, &start, &end, &dur, &p.Reason); err != nil {
			return nil, fmt.Errorf("clock: outside accuracy: %w", err)
		}
		p.Start = instant(start)
		if end.Valid {
			e := instant(end.Int64)
			p.End, p.DurationNs = &e, dur.Int64
		} else {
			p.Open = true
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("clock: outside accuracy: %w", err)
	}
	return out, nil
}

// Leaps returns the leap seconds announced for instants at or after from
// and before to (zero: unbounded), by instant.
func Leaps(ctx context.Context, db *sql.DB, from, to time.Time) ([]Leap, error) {
	where, args := span(nil, nil, `at`, from, to)
	rows, err := db.QueryContext(ctx, `SELECT position, leap, at, sample, sources, refused, window_ns
		FROM clock_leaps`+whereClause(where)+` ORDER BY at, position`, args...)
	if err != nil {
		return nil, fmt.Errorf("clock: leaps: %w", err)
	}
	defer rows.Close()
	var out []Leap
	for rows.Next() {
		var (
			l       Leap
			pos, at int64
			sources string
		)
		if err := rows.Scan(&pos, &l.Leap, &at, &l.Sample, &sources, &l.Refused, &l.WindowNs); err != nil {
			return nil, fmt.Errorf("clock: leaps: %w", err)
		}
		l.Position, l.At = uint64(pos), instant(at)
		if err := json.Unmarshal([]byte(sources), &l.Sources); err != nil {
			return nil, fmt.Errorf("clock: leaps: sources of %d: %w", pos, err)
		}
		if l.Sources == nil {
			l.Sources = []string{}
		}
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("clock: leaps: %w", err)
	}
	return out, nil
}

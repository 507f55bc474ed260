package archive

import (
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/chronolog/chronolog/domain/events"
)

var (
	// ErrNotFound is wrapped for a serial the archive does not hold (by
	// BySerial, and by Search for its cursor).
	ErrNotFound = errors.New("archive: not found")
	// ErrInvalidImprint is wrapped by ByImprint for a digest that is not hex.
	ErrInvalidImprint = errors.New("archive: imprint digest is not hex")
)

// Entry is one issued token as the archive describes it. The token itself
// is in the TimestampIssued event of Stream.
type Entry struct {
	// Serial is the token's serial number, lower-case hex.
	Serial string `json:"serial"`
	// Position is the position of the TimestampIssued event; Stream the
	// request's stream (tsr-<serial>).
	Position uint64 `json:"position"`
	Stream   string `json:"stream"`
	Service  string `json:"service"`
	// Client is the identity the filters established; empty when anonymous.
	Client string `json:"client,omitempty"`
	// Protocol is rfc3161 or authenticode.
	Protocol string `json:"protocol"`
	// HashAlgorithm and HashedMessage (hex) are the request's imprint;
	// empty when the request was not found.
	HashAlgorithm string    `json:"hashAlgorithm"`
	HashedMessage string    `json:"hashedMessage"`
	GenTime       time.Time `json:"genTime"`
	Policy        string    `json:"policy"`
	// Signer is the hex SHA-256 of the TSA certificate.
	Signer string `json:"signer"`
	// ClockSample is the id of the ClockSampled event the clock gate
	// admitted the request on; empty with an unverified clock.
	ClockSample string `json:"clockSample,omitempty"`
	// ReceivedAt is when the request arrived; zero when unknown.
	ReceivedAt time.Time `json:"receivedAt,omitzero"`
}

// Query selects entries for Search and Count.
type Query struct {
	// Service and Client select one service or client; empty selects all.
	Service, Client string
	// From (inclusive) and To (exclusive) bound genTime; zero is unbounded.
	From, To time.Time
	// After is the serial of the last entry of the previous page: the
	// page starts after it, in (genTime, serial) order. Count ignores it.
	After string
	// Limit is the page's size: DefaultLimit when zero or negative, at
	// most MaxLimit. Count ignores it.
	Limit int
}

// Page sizes of Search.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

// entries selects the entries with their names; the conditions below
// are on the columns of a.
const entries = `SELECT a.serial, a.position, a.stream, s.name, c.name, k.protocol, k.hash_algorithm,
	a.hashed_message, a.gen_time, k.policy, k.signer, coalesce(m.event_id, ''), a.received_at
	FROM archive a
	JOIN archive_services s ON s.id = a.service
	JOIN archive_clients c ON c.id = a.client
	JOIN archive_kinds k ON k.id = a.kind
	LEFT JOIN archive_samples m ON m.id = a.clock_sample`

const bySerialSQL = entries + ` WHERE a.serial = ?`

type scanner interface{ Scan(dest ...any) error }

func scanEntry(s scanner) (Entry, error) {
	var (
		e        Entry
		pos      int64
		gen      int64
		received sql.NullInt64
		stream   sql.NullString
		hashed   []byte
	)
	if err := s.Scan(&e.Serial, &pos, &stream, &e.Service, &e.Client, &e.Protocol, &e.HashAlgorithm,
		&hashed, &gen, &e.Policy, &e.Signer, &e.ClockSample, &received); err != nil {
		return Entry{}, err
	}
	e.Stream = events.RequestStream(e.Serial)
	if stream.Valid {
		e.Stream = stream.String
	}
	e.HashedMessage = hex.EncodeToString(hashed)
	e.Position = uint64(pos)
	e.GenTime = time.Unix(0, gen).UTC()
	if received.Valid {
		e.ReceivedAt = time.Unix(0, received.Int64).UTC()
	}
	return e, nil
}

// BySerial returns the entry of a serial (hex, any case), or an error
// wrapping ErrNotFound.
func BySerial(ctx context.Context, db *sql.DB, serial string) (Entry, error) {
	serial = normalHex(serial)
	e, err := scanEntry(db.QueryRowContext(ctx, bySerialSQL, serial))
	if errors.Is(err, sql.ErrNoRows) {
		return Entry{}, fmt.Errorf("serial %s: %w", serial, ErrNotFound)
	}
	if err != nil {
		return Entry{}, fmt.Errorf("archive: serial %s: %w", serial, err)
	}
	return e, nil
}

// ByImprint returns the entries whose request carried the imprint
// (hashAlg as the events name it, e.g. sha256; empty matches any), in
// (genTime, serial) order.
func ByImprint(ctx context.Context, db *sql.DB, hashAlg, hexDigest string) ([]Entry, error) {
	digest, err := hex.DecodeString(strings.TrimSpace(hexDigest))
	if err != nil {
		return nil, fmt.Errorf("%w: %q: %v", ErrInvalidImprint, hexDigest, err)
	}
	q, args := imprintSQL(hashAlg, digest)
	out, err := query(ctx, db, q, args)
	if err != nil {
		return nil, fmt.Errorf("archive: imprint: %w", err)
	}
	return out, nil
}

func imprintSQL(hashAlg string, digest []byte) (string, []any) {
	// archive_imprint indexes the digest's first 8 bytes.
	q := entries + ` WHERE substr(a.hashed_message, 1, 8) = substr(?1, 1, 8) AND a.hashed_message = ?1`
	args := []any{digest}
	if hashAlg != "" {
		q += ` AND k.hash_algorithm = ?2`
		args = append(args, hashAlg)
	}
	return q + ` ORDER BY a.gen_time, a.serial`, args
}

// Search returns a page of the entries q selects, in (genTime, serial)
// order. A cursor After that is not in the archive is an error wrapping
// ErrNotFound.
func Search(ctx context.Context, db *sql.DB, q Query) ([]Entry, error) {
	var c *cursor
	if q.After != "" {
		c = &cursor{serial: normalHex(q.After)}
		err := db.QueryRowContext(ctx, `SELECT gen_time FROM archive WHERE serial = ?`, c.serial).Scan(&c.genTime)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("cursor %s: %w", c.serial, ErrNotFound)
		}
		if err != nil {
			return nil, fmt.Errorf("archive: cursor: %w", err)
		}
	}
	sq, args := searchSQL(q, c)
	out, err := query(ctx, db, sq, args)
	if err != nil {
		return nil, fmt.Errorf("archive: search: %w", err)
	}
	return out, nil
}

// cursor is the entry a page starts after.
type cursor struct {
	genTime int64
	serial  string
}

func searchSQL(q Query, c *cursor) (string, []any) {
	where, args := q.where()
	if c != nil {
		// The range term lets the (…, gen_time) indexes seek to the cursor.
		where = append(where, `a.gen_time >= ? AND (a.gen_time > ? OR a.serial > ?)`)
		args = append(args, c.genTime, c.genTime, c.serial)
	}
	limit := q.Limit
	if limit <= 0 {
		limit = DefaultLimit
	}
	limit = min(limit, MaxLimit)
	return entries + whereClause(where) + ` ORDER BY a.gen_time, a.serial LIMIT ?`, append(args, limit)
}

// Count returns how many entries q selects, whatever its After and Limit.
func Count(ctx context.Context, db *sql.DB, q Query) (int, error) {
	where, args := q.where()
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM archive a`+whereClause(where), args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("archive: count: %w", err)
	}
	return n, nil
}

func (q Query) where() ([]string, []any) {
	var (
		where []string
		args  []any
	)
	if q.Service != "" {
		where, args = append(where, `a.service = (SELECT id FROM archive_services WHERE name = ?)`), append(args, q.Service)
	}
	if q.Client != "" {
		where, args = append(where, `a.client = (SELECT id FROM archive_clients WHERE name = ?)`), append(args, q.Client)
	}
	if !q.From.IsZero() {
		where, args = append(where, `a.gen_time >= ?`), append(args, q.From.UnixNano())
	}
	if !q.To.IsZero() {
		where, args = append(where, `a.gen_time < ?`), append(args, q.To.UnixNano())
	}
	return where, args
}

func whereClause(where []string) string {
	if len(where) == 0 {
		return ""
	}
	return ` WHERE ` + strings.Join(where, ` AND `)
}

func query(ctx context.Context, db *sql.DB, q string, args []any) ([]Entry, error) {
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Entry
	for rows.Next() {
		e, err := scanEntry(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

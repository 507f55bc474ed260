// Package archive is the response archive: one row per issued token,
// found by serial, by message imprint, or by service or client and time.
// It does not hold the tokens: they stay in the event store, in the
// TimestampIssued event of the stream a row names.
package archive

import (
	"context"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/chronolog/chronolog/domain/events"
	"github.com/chronolog/chronolog/projections"
)

// Name is the projection's name: its read store file and checkpoint.
const Name = "archive"

// Protocols of an entry.
const (
	ProtocolRFC3161      = "rfc3161"
	ProtocolAuthenticode = "authenticode"
)

// request is what a TimestampRequested said that the archive keeps until
// the request's conclusion.
type request struct {
	service, protocol, hashAlg string
	hashed                     []byte
	// receivedAt is unix nanoseconds; 0 when unknown.
	receivedAt int64
}

// kind is what many tokens share besides their service and client.
type kind struct{ protocol, hashAlg, policy, signer string }

// Projection builds the archive. A request's TimestampRequested is kept
// in memory until its conclusion in the same batch (the events of one
// request are committed together, so this is the rule); what is left at
// the end of a batch is written to the archive_pending table, where a
// conclusion in a later batch finds it.
type Projection struct {
	pending map[string]request
	// The ids of the names and kinds the rows refer to, as far as this
	// projection has met them.
	services, clients, samples map[string]int64
	kinds                      map[kind]int64
}

// New returns the archive projection.
func New() *Projection {
	p := &Projection{pending: map[string]request{}}
	p.forget()
	return p
}

func (p *Projection) forget() {
	p.services, p.clients, p.samples, p.kinds = map[string]int64{}, map[string]int64{}, map[string]int64{}, map[kind]int64{}
}

var _ projections.Flusher = (*Projection)(nil)

// Name implements projections.Projection.
func (*Projection) Name() string { return Name }

// Schema implements projections.Projection. A row is keyed by the
// position of its TimestampIssued event and refers to its service, its
// client, its kind (protocol, imprint's hash algorithm, policy, signer)
// and its clock sample by small ids, so that the strings every token
// repeats are stored once. Times are unix nanoseconds, hashed_message the
// digest's bytes, stream NULL when it is tsr-<serial>. archive_imprint
// indexes the digest's first 8 bytes rather than all of it: it is the
// one index inserted into at random, and a quarter of the size is that
// much fewer pages rewritten per batch once the archive is large
// (ByImprint compares the whole digest).
func (*Projection) Schema() []string {
	return []string{
		`CREATE TABLE IF NOT EXISTS archive (
			position       INTEGER PRIMARY KEY,
			serial         TEXT NOT NULL UNIQUE,
			service        INTEGER NOT NULL,
			client         INTEGER NOT NULL,
			kind           INTEGER NOT NULL,
			hashed_message BLOB NOT NULL,
			gen_time       INTEGER NOT NULL,
			received_at    INTEGER,
			clock_sample   INTEGER,
			stream         TEXT
		)`,
		`CREATE INDEX IF NOT EXISTS archive_imprint ON archive (substr(hashed_message, 1, 8))`,
		`CREATE INDEX IF NOT EXISTS archive_gen_time ON archive (gen_time)`,
		`CREATE INDEX IF NOT EXISTS archive_service_time ON archive (service, gen_time)`,
		`CREATE INDEX IF NOT EXISTS archive_client_time ON archive (client, gen_time)`,
		`CREATE TABLE IF NOT EXISTS archive_services (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE)`,
		`CREATE TABLE IF NOT EXISTS archive_clients (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE)`,
		`CREATE TABLE IF NOT EXISTS archive_samples (id INTEGER PRIMARY KEY, event_id TEXT NOT NULL UNIQUE)`,
		`CREATE TABLE IF NOT EXISTS archive_kinds (
			id             INTEGER PRIMARY KEY,
			protocol       TEXT NOT NULL,
			hash_algorithm TEXT NOT NULL,
			policy         TEXT NOT NULL,
			signer         TEXT NOT NULL,
			UNIQUE (protocol, hash_algorithm, policy, signer)
		)`,
		`CREATE TABLE IF NOT EXISTS archive_pending (
			serial         TEXT PRIMARY KEY,
			service        TEXT NOT NULL,
			protocol       TEXT NOT NULL,
			hash_algorithm TEXT NOT NULL,
			hashed_message BLOB NOT NULL,
			received_at    INTEGER NOT NULL
		) WITHOUT ROWID`,
	}
}

// Handlers implements projections.Projection.
func (p *Projection) Handlers() []projections.Handler {
	return []projections.Handler{
		projections.On(p.OnTimestampRequested),
		projections.On(p.OnTimestampIssued),
		projections.On(p.OnTimestampRejected),
		projections.On(p.OnTimestampForwarded),
	}
}

// OnTimestampRequested keeps the request's imprint until its conclusion.
func (p *Projection) OnTimestampRequested(_ context.Context, _ projections.Tx, m projections.Meta, e events.TimestampRequested) error {
	if e.Serial == "" {
		return fmt.Errorf("event %d: no serial", m.Position)
	}
	hashed, err := hex.DecodeString(e.HashedMessage)
	if err != nil {
		return fmt.Errorf("event %d: hashedMessage: %w", m.Position, err)
	}
	var receivedAt int64
	if !e.ReceivedAt.IsZero() {
		receivedAt = e.ReceivedAt.UnixNano()
	}
	p.pending[e.Serial] = request{service: e.Service, protocol: e.Protocol, hashAlg: e.HashAlgorithm, hashed: hashed, receivedAt: receivedAt}
	return nil
}

const insertEntry = `INSERT INTO archive (position, serial, service, client, kind, hashed_message, gen_time, received_at, clock_sample, stream)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
	ON CONFLICT (serial) DO NOTHING`

// OnTimestampIssued completes the request's row. The token is not read.
func (p *Projection) OnTimestampIssued(ctx context.Context, tx projections.Tx, m projections.Meta, e events.TimestampIssued) error {
	if e.Serial == "" || e.GenTime.IsZero() {
		return fmt.Errorf("event %d: no serial or genTime", m.Position)
	}
	r, ok := p.pending[e.Serial]
	if ok {
		delete(p.pending, e.Serial)
	} else {
		var err error
		if r, ok, err = takePending(ctx, tx, e.Serial); err != nil {
			return fmt.Errorf("event %d: pending request: %w", m.Position, err)
		}
	}
	service := m.Service
	if service == "" {
		service = r.service
	}
	proto := ProtocolRFC3161
	switch {
	case e.Protocol != "":
		proto = e.Protocol
	case r.protocol != "":
		proto = r.protocol
	}
	hashed := r.hashed
	if hashed == nil {
		hashed = []byte{}
	}
	var receivedAt, sample, stream any
	if ok && r.receivedAt != 0 {
		receivedAt = r.receivedAt
	}
	if m.Stream != events.RequestStream(e.Serial) {
		stream = m.Stream
	}
	svc, err := p.id(ctx, tx, p.services, `archive_services`, `name`, service)
	if err != nil {
		return fmt.Errorf("event %d: service: %w", m.Position, err)
	}
	client, err := p.id(ctx, tx, p.clients, `archive_clients`, `name`, e.Client)
	if err != nil {
		return fmt.Errorf("event %d: client: %w", m.Position, err)
	}
	if e.ClockSample != "" {
		if sample, err = p.id(ctx, tx, p.samples, `archive_samples`, `event_id`, e.ClockSample); err != nil {
			return fmt.Errorf("event %d: clock sample: %w", m.Position, err)
		}
	}
	k, err := p.kind(ctx, tx, kind{protocol: proto, hashAlg: r.hashAlg, policy: e.Policy, signer: e.Signer})
	if err != nil {
		return fmt.Errorf("event %d: kind: %w", m.Position, err)
	}
	if _, err := tx.Exec(ctx, insertEntry, m.Position, e.Serial, svc, client, k, hashed, e.GenTime.UnixNano(),
		receivedAt, sample, stream); err != nil {
		return fmt.Errorf("event %d: insert: %w", m.Position, err)
	}
	return nil
}

// maxIDs bounds each map of ids kept between batches: clock samples keep
// coming, and clients may be many.
const maxIDs = 4096

// id returns the id of a name in table (column), recording it if new.
func (p *Projection) id(ctx context.Context, tx projections.Tx, ids map[string]int64, table, column, name string) (int64, error) {
	if id, ok := ids[name]; ok {
		return id, nil
	}
	var id int64
	if err := tx.QueryRow(ctx, `INSERT INTO `+table+` (`+column+`) VALUES (?)
		ON CONFLICT (`+column+`) DO UPDATE SET `+column+` = excluded.`+column+` RETURNING id`, name).Scan(&id); err != nil {
		return 0, err
	}
	if len(ids) >= maxIDs {
		clear(ids)
	}
	ids[name] = id
	return id, nil
}

func (p *Projection) kind(ctx context.Context, tx projections.Tx, k kind) (int64, error) {
	if id, ok := p.kinds[k]; ok {
		return id, nil
	}
	var id int64
	if err := tx.QueryRow(ctx, `INSERT INTO archive_kinds (protocol, hash_algorithm, policy, signer) VALUES (?, ?, ?, ?)
		ON CONFLICT (protocol, hash_algorithm, policy, signer) DO UPDATE SET protocol = excluded.protocol RETURNING id`,
		k.protocol, k.hashAlg, k.policy, k.signer).Scan(&id); err != nil {
		return 0, err
	}
	if len(p.kinds) >= maxIDs {
		clear(p.kinds)
	}
	p.kinds[k] = id
	return id, nil
}

// OnTimestampRejected drops the request: nothing was issued.
func (p *Projection) OnTimestampRejected(ctx context.Context, tx projections.Tx, m projections.Meta, e events.TimestampRejected) error {
	return p.drop(ctx, tx, m, e.Serial)
}

// OnTimestampForwarded drops the request: the token, if any, is the
// upstream's, kept in the event as its response.
func (p *Projection) OnTimestampForwarded(ctx context.Context, tx projections.Tx, m projections.Meta, e events.TimestampForwarded) error {
	return p.drop(ctx, tx, m, e.Serial)
}

func (p *Projection) drop(ctx context.Context, tx projections.Tx, m projections.Meta, serial string) error {
	if serial == "" {
		return fmt.Errorf("event %d: no serial", m.Position)
	}
	if _, ok := p.pending[serial]; ok {
		delete(p.pending, serial)
		return nil
	}
	if _, err := tx.Exec(ctx, `DELETE FROM archive_pending WHERE serial = ?`, serial); err != nil {
		return fmt.Errorf("event %d: drop pending: %w", m.Position, err)
	}
	return nil
}

func takePending(ctx context.Context, tx projections.Tx, serial string) (request, bool, error) {
	var r request
	err := tx.QueryRow(ctx, `DELETE FROM archive_pending WHERE serial = ?
		RETURNING service, protocol, hash_algorithm, hashed_message, received_at`, serial).
		Scan(&r.service, &r.protocol, &r.hashAlg, &r.hashed, &r.receivedAt)
	switch err {
	case nil:
		return r, true, nil
	case projections.ErrNoRows:
		return request{}, false, nil
	}
	return request{}, false, err
}

// Flush writes the requests still waiting for their conclusion.
func (p *Projection) Flush(ctx context.Context, tx projections.Tx) error {
	for serial, r := range p.pending {
		if r.hashed == nil {
			r.hashed = []byte{}
		}
		if _, err := tx.Exec(ctx, `INSERT INTO archive_pending (serial, service, protocol, hash_algorithm, hashed_message, received_at)
			VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (serial) DO NOTHING`,
			serial, r.service, r.protocol, r.hashAlg, r.hashed, r.receivedAt); err != nil {
			return fmt.Errorf("pending request %s: %w", serial, err)
		}
	}
	clear(p.pending)
	return nil
}

// Discard forgets the batch's requests, and the ids it may have recorded.
func (p *Projection) Discard() {
	clear(p.pending)
	p.forget()
}

// normalHex lower-cases a hex string as the events write it.
func normalHex(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

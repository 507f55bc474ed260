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

// Projection builds the archive. A request's TimestampRequested is kept
// in memory until its conclusion in the same batch (the events of one
// request are committed together, so this is the rule); what is left at
// the end of a batch is written to the archive_pending table, where a
// conclusion in a later batch finds it.
type Projection struct {
	pending map[string]request
	// names interns the services, protocols and hash algorithms, a
	// handful of values repeated in every request.
	names map[string]string
}

// New returns the archive projection.
func New() *Projection {
	return &Projection{pending: map[string]request{}, names: map[string]string{}}
}

var _ projections.Flusher = (*Projection)(nil)

// Name implements projections.Projection.
func (*Projection) Name() string { return Name }

// Schema implements projections.Projection. Times are unix nanoseconds,
// serials and signers lower-case hex, hashed_message the digest's bytes.
// archive_imprint indexes the digest's first 8 bytes rather than all of
// it: it is the one index inserted into at random, and a quarter of the
// size is that much fewer pages rewritten per batch once the archive is
// large (ByImprint compares the whole digest).
func (*Projection) Schema() []string {
	return []string{
		`CREATE TABLE IF NOT EXISTS archive (
			serial         TEXT PRIMARY KEY,
			position       INTEGER NOT NULL,
			stream         TEXT NOT NULL,
			service        TEXT NOT NULL,
			client         TEXT NOT NULL,
			protocol       TEXT NOT NULL,
			hash_algorithm TEXT NOT NULL,
			hashed_message BLOB NOT NULL,
			gen_time       INTEGER NOT NULL,
			policy         TEXT NOT NULL,
			signer         TEXT NOT NULL,
			clock_sample   TEXT NOT NULL,
			received_at    INTEGER
		)`,
		`CREATE INDEX IF NOT EXISTS archive_imprint ON archive (substr(hashed_message, 1, 8))`,
		`CREATE INDEX IF NOT EXISTS archive_gen_time ON archive (gen_time)`,
		`CREATE INDEX IF NOT EXISTS archive_service_time ON archive (service, gen_time)`,
		`CREATE INDEX IF NOT EXISTS archive_client_time ON archive (client, gen_time)`,
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

// Apply implements projections.Projection.
func (p *Projection) Apply(ctx context.Context, tx *projections.Tx, e projections.Event) error {
	switch e.Type {
	case events.TypeTimestampRequested:
		return p.OnTimestampRequested(ctx, tx, e)
	case events.TypeTimestampIssued:
		return p.OnTimestampIssued(ctx, tx, e)
	case events.TypeTimestampRejected, events.TypeTimestampRejectedV1:
		return p.OnTimestampRejected(ctx, tx, e)
	case events.TypeTimestampForwarded:
		return p.OnTimestampForwarded(ctx, tx, e)
	case events.TypeFilterDecided, events.TypeFilterChainDecided,
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

// OnTimestampRequested keeps the request's imprint until its conclusion.
func (p *Projection) OnTimestampRequested(_ context.Context, _ *projections.Tx, e projections.Event) error {
	var (
		serial string
		r      request
	)
	err := e.Fields(func(k string, v []byte) error {
		var (
			raw []byte
			err error
		)
		switch k {
		case "serial":
			serial, err = events.String(v)
			return err
		case "receivedAt":
			r.receivedAt, err = unixNano(v)
			return err
		case "service", "protocol", "hashAlgorithm", "hashedMessage":
			if raw, err = rawString(v); err != nil {
				return err
			}
		default:
			return nil
		}
		switch k {
		case "service":
			r.service = p.intern(raw)
		case "protocol":
			r.protocol = p.intern(raw)
		case "hashAlgorithm":
			r.hashAlg = p.intern(raw)
		case "hashedMessage":
			r.hashed = make([]byte, hex.DecodedLen(len(raw)))
			if _, err := hex.Decode(r.hashed, raw); err != nil {
				return fmt.Errorf("hashedMessage: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if serial == "" {
		return fmt.Errorf("event %d (%s): no serial", e.Position, e.Type)
	}
	if r.hashed == nil {
		r.hashed = []byte{}
	}
	p.pending[serial] = r
	return nil
}

func (p *Projection) intern(b []byte) string {
	if s, ok := p.names[string(b)]; ok {
		return s
	}
	s := string(b)
	p.names[s] = s
	return s
}

const insertEntry = `INSERT INTO archive (serial, position, stream, service, client, protocol,
	hash_algorithm, hashed_message, gen_time, policy, signer, clock_sample, received_at)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
	ON CONFLICT (serial) DO NOTHING`

// OnTimestampIssued completes the request's row. The token is skipped,
// not decoded.
func (p *Projection) OnTimestampIssued(ctx context.Context, tx *projections.Tx, e projections.Event) error {
	var (
		serial, policy, signer, client, protocol, sample []byte
		genTime                                          int64
		haveGenTime                                      bool
	)
	err := e.Fields(func(k string, v []byte) error {
		var err error
		switch k {
		case "serial":
			serial, err = rawString(v)
		case "genTime":
			genTime, err = unixNano(v)
			haveGenTime = true
		case "policy":
			policy, err = rawString(v)
		case "signer":
			signer, err = rawString(v)
		case "client":
			client, err = rawString(v)
		case "protocol":
			protocol, err = rawString(v)
		case "clockSample":
			sample, err = rawString(v)
		}
		return err
	})
	if err != nil {
		return err
	}
	if len(serial) == 0 || !haveGenTime {
		return fmt.Errorf("event %d (%s): no serial or genTime", e.Position, e.Type)
	}
	r, ok := p.pending[alias(serial)]
	if ok {
		delete(p.pending, alias(serial))
	} else if r, ok, err = takePending(ctx, tx, alias(serial)); err != nil {
		return fmt.Errorf("event %d (%s): pending request: %w", e.Position, e.Type, err)
	}
	service := e.Service
	if service == "" {
		service = r.service
	}
	proto := ProtocolRFC3161
	switch {
	case len(protocol) > 0:
		proto = alias(protocol)
	case r.protocol != "":
		proto = r.protocol
	}
	hashed := r.hashed
	if hashed == nil {
		hashed = []byte{}
	}
	var receivedAt any
	if ok && r.receivedAt != 0 {
		receivedAt = r.receivedAt
	}
	// The strings below alias e.Data only for the duration of the call:
	// the driver copies what it binds.
	_, err = tx.Exec(ctx, insertEntry, alias(serial), int64(e.Position), e.Stream, service, alias(client), proto,
		r.hashAlg, hashed, genTime, alias(policy), alias(signer), alias(sample), receivedAt)
	if err != nil {
		return fmt.Errorf("event %d (%s): insert: %w", e.Position, e.Type, err)
	}
	return nil
}

// OnTimestampRejected drops the request: nothing was issued.
func (p *Projection) OnTimestampRejected(ctx context.Context, tx *projections.Tx, e projections.Event) error {
	return p.drop(ctx, tx, e)
}

// OnTimestampForwarded drops the request: the token, if any, is the
// upstream's, kept in the event as its response.
func (p *Projection) OnTimestampForwarded(ctx context.Context, tx *projections.Tx, e projections.Event) error {
	return p.drop(ctx, tx, e)
}

func (p *Projection) drop(ctx context.Context, tx *projections.Tx, e projections.Event) error {
	serial, err := serialOf(e)
	if err != nil {
		return err
	}
	if _, ok := p.pending[alias(serial)]; ok {
		delete(p.pending, alias(serial))
		return nil
	}
	if _, err := tx.Exec(ctx, `DELETE FROM archive_pending WHERE serial = ?`, alias(serial)); err != nil {
		return fmt.Errorf("event %d (%s): drop pending: %w", e.Position, e.Type, err)
	}
	return nil
}

// serialOf returns the raw serial of a request event.
func serialOf(e projections.Event) ([]byte, error) {
	var serial []byte
	err := e.Fields(func(k string, v []byte) error {
		var err error
		if k == "serial" {
			serial, err = rawString(v)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if len(serial) == 0 {
		return nil, fmt.Errorf("event %d (%s): no serial", e.Position, e.Type)
	}
	return serial, nil
}

func takePending(ctx context.Context, tx *projections.Tx, serial string) (request, bool, error) {
	var r request
	err := tx.QueryRow(ctx, `DELETE FROM archive_pending WHERE serial = ?
		RETURNING service, protocol, hash_algorithm, hashed_message, received_at`, serial).
		Scan(&r.service, &r.protocol, &r.hashAlg, &r.hashed, &r.receivedAt)
	if err == nil {
		return r, true, nil
	}
	if isNoRows(err) {
		return request{}, false, nil
	}
	return request{}, false, err
}

// Flush writes the requests still waiting for their conclusion.
func (p *Projection) Flush(ctx context.Context, tx *projections.Tx) error {
	for serial, r := range p.pending {
		if _, err := tx.Exec(ctx, `INSERT INTO archive_pending (serial, service, protocol, hash_algorithm, hashed_message, received_at)
			VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (serial) DO NOTHING`,
			serial, r.service, r.protocol, r.hashAlg, r.hashed, r.receivedAt); err != nil {
			return fmt.Errorf("pending request %s: %w", serial, err)
		}
	}
	clear(p.pending)
	if len(p.names) > maxNames {
		clear(p.names)
	}
	return nil
}

// maxNames bounds the interned names kept between batches.
const maxNames = 4096

// Discard forgets the batch's requests.
func (p *Projection) Discard() { clear(p.pending) }

// normalHex lower-cases a hex string as the events write it.
func normalHex(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// Package renewaldue is the renewal-due read model: for every token issued,
// when it loses its evidential value and which renewal it then needs
// (domain/renewal decides both), searchable and countable by the
// properties a renewal is planned by: the hash algorithm of the imprint,
// the signature algorithm, and the issuer and serial number of the TSA
// certificate.
//
// It keeps, from SigningKeyActivated, the TSA certificates by their SHA-256
// (the signer TimestampIssued names); from TimestampRequested, the imprint's
// hash algorithm of each request until it is issued, rejected or
// forwarded; and on TimestampIssued one row per token, assessed with the
// algorithm catalogue it was given, whose version the row keeps.
package renewaldue

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/chronolog/chronolog/domain/events"
	"github.com/chronolog/chronolog/domain/renewal"
	"github.com/chronolog/chronolog/projections"
)

// Name is the read model's name: its read store, checkpoint and metrics.
const Name = "renewal-due"

// Projection is the renewal-due read model.
type Projection struct {
	catalog *renewal.Catalog
	// err is why the embedded catalogue could not be loaded; Apply
	// returns it rather than assess anything without a catalogue.
	err error
	// batch holds the hash algorithm of the requests opened in the
	// current batch: most close in the same batch, and never touch the
	// pending table. Flush writes the others; Discard forgets them.
	batch map[string]string
	// certs caches the certificates read or recorded; Discard clears it,
	// since a rolled-back batch may have added one.
	certs map[string]certificate
}

// New returns the projection assessing tokens with c, or with the embedded
// catalogue (renewal.Load) when c is nil. A read store built with one
// catalogue edition and continued with another holds rows of both, each
// with its version; rebuild it from zero to assess every token with the
// new one.
func New(c *renewal.Catalog) *Projection {
	if c != nil {
		return &Projection{catalog: c}
	}
	c, err := renewal.Load()
	return &Projection{catalog: c, err: err}
}

// Catalog is the algorithm catalogue the projection assesses with.
func (p *Projection) Catalog() *renewal.Catalog { return p.catalog }

// Name implements projections.Projection.
func (*Projection) Name() string { return Name }

// Schema creates the tables. Times are stored as fixed-width UTC RFC 3339
// text (see formatTime), so that text order is time order; the empty
// string is an unknown time.
func (*Projection) Schema() []string {
	return []string{
		`CREATE TABLE IF NOT EXISTS certificates (
			cert_sha256   TEXT PRIMARY KEY,
			key_type      TEXT NOT NULL,
			not_after     TEXT NOT NULL,
			issuer        TEXT NOT NULL,
			serial_number TEXT NOT NULL
		)`,
		`CREATE TABLE IF NOT EXISTS pending (
			serial         TEXT PRIMARY KEY,
			hash_algorithm TEXT NOT NULL
		)`,
		`CREATE TABLE IF NOT EXISTS tokens (
			serial              TEXT PRIMARY KEY,
			gen_time            TEXT NOT NULL,
			service             TEXT NOT NULL,
			hash_algorithm      TEXT NOT NULL,
			signature_algorithm TEXT NOT NULL,
			cert_sha256         TEXT NOT NULL,
			cert_issuer         TEXT NOT NULL,
			cert_serial         TEXT NOT NULL,
			cert_not_after      TEXT NOT NULL,
			due_at              TEXT NOT NULL,
			reason              TEXT NOT NULL,
			renewal             TEXT NOT NULL,
			catalog_version     TEXT NOT NULL
		)`,
		`CREATE INDEX IF NOT EXISTS tokens_due_at ON tokens (due_at)`,
		`CREATE INDEX IF NOT EXISTS tokens_hash ON tokens (hash_algorithm, due_at)`,
		`CREATE INDEX IF NOT EXISTS tokens_signature ON tokens (signature_algorithm, due_at)`,
		`CREATE INDEX IF NOT EXISTS tokens_certificate ON tokens (cert_issuer, cert_serial)`,
		`CREATE INDEX IF NOT EXISTS tokens_cert_sha256 ON tokens (cert_sha256, cert_not_after)`,
		`CREATE INDEX IF NOT EXISTS tokens_service ON tokens (service, due_at)`,
	}
}

// ignored are the event types this read model has decided it does not
// need, so that an event type nobody decided about stops it (Apply).
var ignored = map[string]bool{
	// A filter's verdict: the request's outcome comes as Issued,
	// Rejected or Forwarded.
	events.TypeFilterDecided:      true,
	events.TypeFilterChainDecided: true,
	// Service configuration: the key a service signs with is recorded by
	// SigningKeyActivated at every start.
	events.TypeServiceConfigured:    true,
	events.TypeServiceConfigChanged: true,
	events.TypeServiceConfigRefused: true,
	// A service running with an ended algorithm: its tokens say so
	// themselves, and are due at once.
	events.TypeServiceAlgorithmEnded: true,
	// Delivery: a token issued stays issued, delivered or not.
	events.TypeTimestampUndelivered: true,
	// The transparency log.
	events.TypeLogSegmentSealed:    true,
	events.TypeLogCheckpointSigned: true,
	// Key lifecycle: a generated key or an imported certificate signs
	// nothing until it is activated, and the activation carries all this
	// model needs; retirement and outages do not change what a token
	// already issued stands on; the expiry warning repeats the notAfter
	// the activation recorded.
	events.TypeSigningKeyGenerated:        true,
	events.TypeCertificateImported:        true,
	events.TypeSigningKeyRetired:          true,
	events.TypeSigningKeyUnavailable:      true,
	events.TypeSigningKeyRestored:         true,
	events.TypeSigningCertificateExpiring: true,
	// The clock: a token's genTime is in TimestampIssued.
	events.TypeClockSampled:        true,
	events.TypeClockSyncLost:       true,
	events.TypeClockSyncRegained:   true,
	events.TypeLeapSecondAnnounced: true,
}

// Apply implements projections.Projection. An event type neither handled
// nor ignored returns projections.ErrUnknownEventType.
func (p *Projection) Apply(ctx context.Context, tx *projections.Tx, e projections.Event) error {
	if p.err != nil {
		return fmt.Errorf("%s: %w", Name, p.err)
	}
	switch e.Type {
	case events.TypeSigningKeyActivated:
		return p.OnSigningKeyActivated(ctx, tx, e)
	case events.TypeTimestampRequested:
		return p.OnTimestampRequested(ctx, tx, e)
	case events.TypeTimestampIssued:
		return p.OnTimestampIssued(ctx, tx, e)
	case events.TypeTimestampRejected, events.TypeTimestampRejectedV1:
		return p.OnTimestampRejected(ctx, tx, e)
	case events.TypeTimestampForwarded:
		return p.OnTimestampForwarded(ctx, tx, e)
	}
	if ignored[e.Type] {
		return nil
	}
	return fmt.Errorf("%w: %s", projections.ErrUnknownEventType, e.Type)
}

// OnSigningKeyActivated records a service's TSA certificate (recorded again
// at every start: the last recording wins) and assesses again the tokens
// recorded before it was known, which were due at once.
func (p *Projection) OnSigningKeyActivated(ctx context.Context, tx *projections.Tx, e projections.Event) error {
	var certSHA256, keyType, issuer, serialNumber string
	var notAfter time.Time
	err := e.Fields(func(k string, v []byte) error {
		var err error
		switch k {
		case "certificateSha256":
			certSHA256, err = events.String(v)
		case "keyType":
			keyType, err = events.String(v)
		case "issuer":
			issuer, err = events.String(v)
		case "serialNumber":
			serialNumber, err = events.String(v)
		case "notAfter":
			notAfter, err = events.Time(v)
		}
		return err
	})
	if err != nil {
		return err
	}
	if certSHA256 == "" {
		return nil // the log key: it signs checkpoints, not tokens
	}
	if _, err := tx.Exec(ctx, `INSERT INTO certificates (cert_sha256, key_type, not_after, issuer, serial_number)
		VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (cert_sha256) DO UPDATE SET key_type = excluded.key_type, not_after = excluded.not_after,
			issuer = excluded.issuer, serial_number = excluded.serial_number`,
		certSHA256, keyType, formatTime(notAfter), issuer, serialNumber); err != nil {
		return fmt.Errorf("certificate %s: %w", certSHA256, err)
	}
	delete(p.certs, certSHA256) // the recording just made wins
	if notAfter.IsZero() {
		return nil
	}
	return p.reassess(ctx, tx, certSHA256, certificate{keyType: keyType, notAfter: notAfter, issuer: issuer, serial: serialNumber})
}

// reassess assesses the tokens of a certificate that was unknown when they
// were recorded.
func (p *Projection) reassess(ctx context.Context, tx *projections.Tx, certSHA256 string, c certificate) error {
	rows, err := tx.Query(ctx, `SELECT serial, gen_time, hash_algorithm FROM tokens WHERE cert_sha256 = ? AND cert_not_after = ''`, certSHA256)
	if err != nil {
		return fmt.Errorf("tokens of certificate %s: %w", certSHA256, err)
	}
	type row struct {
		serial, hash string
		gen          time.Time
	}
	var todo []row
	for rows.Next() {
		var r row
		var gen string
		if err := rows.Scan(&r.serial, &gen, &r.hash); err != nil {
			rows.Close()
			return err
		}
		if r.gen, err = parseTime(gen); err != nil {
			rows.Close()
			return fmt.Errorf("token %s: gen_time: %w", r.serial, err)
		}
		todo = append(todo, r)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return fmt.Errorf("tokens of certificate %s: %w", certSHA256, err)
	}
	for _, r := range todo {
		a := renewal.Due(c.token(r.serial, r.gen, r.hash), p.catalog)
		if _, err := tx.Exec(ctx, `UPDATE tokens SET signature_algorithm = ?, cert_issuer = ?, cert_serial = ?, cert_not_after = ?,
			due_at = ?, reason = ?, renewal = ?, catalog_version = ? WHERE serial = ?`,
			c.keyType, c.issuer, c.serial, formatTime(c.notAfter),
			formatTime(a.DueAt), a.Reason, a.Renewal, p.catalog.Version(), r.serial); err != nil {
			return fmt.Errorf("token %s: %w", r.serial, err)
		}
	}
	return nil
}

// OnTimestampRequested keeps the imprint's hash algorithm until the
// request's outcome.
func (p *Projection) OnTimestampRequested(ctx context.Context, tx *projections.Tx, e projections.Event) error {
	var serial, hash string
	err := e.Fields(func(k string, v []byte) error {
		var err error
		switch k {
		case "serial":
			serial, err = events.String(v)
		case "hashAlgorithm":
			hash, err = events.String(v)
		}
		return err
	})
	if err != nil {
		return err
	}
	if p.batch == nil {
		p.batch = map[string]string{}
	}
	p.batch[serial] = hash
	return nil
}

// Flush writes the requests still open at the batch's end.
func (p *Projection) Flush(ctx context.Context, tx *projections.Tx) error {
	for serial, hash := range p.batch {
		if _, err := tx.Exec(ctx, `INSERT INTO pending (serial, hash_algorithm) VALUES (?, ?)
			ON CONFLICT (serial) DO UPDATE SET hash_algorithm = excluded.hash_algorithm`, serial, hash); err != nil {
			return fmt.Errorf("request %s: %w", serial, err)
		}
	}
	clear(p.batch)
	return nil
}

// Discard forgets what the rolled-back batch left in memory.
func (p *Projection) Discard() {
	clear(p.batch)
	clear(p.certs)
}

// pendingHash takes the hash algorithm of an open request out of the
// batch or the pending table.
func (p *Projection) pendingHash(ctx context.Context, tx *projections.Tx, serial string) (string, error) {
	if hash, ok := p.batch[serial]; ok {
		delete(p.batch, serial)
		return hash, nil
	}
	var hash string
	err := tx.QueryRow(ctx, `SELECT hash_algorithm FROM pending WHERE serial = ?`, serial).Scan(&hash)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	if _, err := tx.Exec(ctx, `DELETE FROM pending WHERE serial = ?`, serial); err != nil {
		return "", err
	}
	return hash, nil
}

// OnTimestampRejected drops a request refused.
func (p *Projection) OnTimestampRejected(ctx context.Context, tx *projections.Tx, e projections.Event) error {
	return p.closeRequest(ctx, tx, e)
}

// OnTimestampForwarded drops a request a proxy service passed upstream:
// the upstream's token is not ours to renew.
func (p *Projection) OnTimestampForwarded(ctx context.Context, tx *projections.Tx, e projections.Event) error {
	return p.closeRequest(ctx, tx, e)
}

// closeRequest drops a request that issued no token of ours.
func (p *Projection) closeRequest(ctx context.Context, tx *projections.Tx, e projections.Event) error {
	serial, err := serialOf(e)
	if err != nil {
		return err
	}
	if _, err := p.pendingHash(ctx, tx, serial); err != nil {
		return fmt.Errorf("request %s: %w", serial, err)
	}
	return nil
}

// OnTimestampIssued records and assesses the token. Its token bytes are
// never decoded: everything needed is in the events.
func (p *Projection) OnTimestampIssued(ctx context.Context, tx *projections.Tx, e projections.Event) error {
	var serial, signer string
	var gen time.Time
	err := e.Fields(func(k string, v []byte) error {
		var err error
		switch k {
		case "serial":
			serial, err = events.String(v)
		case "genTime":
			gen, err = events.Time(v)
		case "signer":
			signer, err = events.String(v)
		}
		return err
	})
	if err != nil {
		return err
	}

	hash, err := p.pendingHash(ctx, tx, serial)
	if err != nil {
		return fmt.Errorf("token %s: request: %w", serial, err)
	}
	c, err := p.certificate(ctx, tx, signer)
	if err != nil {
		return fmt.Errorf("token %s: %w", serial, err)
	}

	a := renewal.Due(c.token(serial, gen, hash), p.catalog)
	if _, err := tx.Exec(ctx, `INSERT INTO tokens (serial, gen_time, service, hash_algorithm, signature_algorithm,
			cert_sha256, cert_issuer, cert_serial, cert_not_after, due_at, reason, renewal, catalog_version)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		serial, formatTime(gen), e.Service, hash, c.keyType,
		signer, c.issuer, c.serial, formatTime(c.notAfter),
		formatTime(a.DueAt), a.Reason, a.Renewal, p.catalog.Version()); err != nil {
		return fmt.Errorf("token %s: %w", serial, err)
	}
	return nil
}

// certificate reads a TSA certificate by its fingerprint, the zero one
// when the record never activated it (its tokens are then due at once).
func (p *Projection) certificate(ctx context.Context, tx *projections.Tx, sha string) (certificate, error) {
	if c, ok := p.certs[sha]; ok {
		return c, nil
	}
	var c certificate
	var notAfter string
	err := tx.QueryRow(ctx, `SELECT key_type, not_after, issuer, serial_number FROM certificates WHERE cert_sha256 = ?`, sha).
		Scan(&c.keyType, &notAfter, &c.issuer, &c.serial)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return certificate{}, nil // not cached: an activation may come later
	case err != nil:
		return c, fmt.Errorf("certificate %s: %w", sha, err)
	}
	if c.notAfter, err = parseTime(notAfter); err != nil {
		return c, fmt.Errorf("certificate %s: notAfter: %w", sha, err)
	}
	if p.certs == nil {
		p.certs = map[string]certificate{}
	}
	p.certs[sha] = c
	return c, nil
}

// certificate is a TSA certificate as its activation describes it.
type certificate struct {
	keyType, issuer, serial string
	notAfter                time.Time
}

func (c certificate) token(serial string, gen time.Time, hash string) renewal.Token {
	return renewal.Token{
		Serial: serial, GenTime: gen, HashAlgorithm: hash, KeyType: c.keyType,
		CertNotAfter: c.notAfter, CertIssuer: c.issuer, CertSerial: c.serial,
	}
}

func serialOf(e projections.Event) (string, error) {
	var serial string
	err := e.Fields(func(k string, v []byte) error {
		if k != "serial" {
			return nil
		}
		var err error
		serial, err = events.String(v)
		return err
	})
	return serial, err
}

// timeLayout writes UTC times at a fixed width (years 0000 to 9999, as
// the events allow), so that comparing the text compares the times.
const timeLayout = "2006-01-02T15:04:05.000000000Z07:00"

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(timeLayout)
}

func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	return time.Parse(time.RFC3339Nano, s)
}

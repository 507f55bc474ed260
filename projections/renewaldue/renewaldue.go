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
	// err is why the embedded catalogue could not be loaded; every
	// handler returns it rather than assess anything without one.
	err error
	// batch holds the hash algorithm of the requests opened in the
	// current batch: most close in the same batch, and never touch the
	// pending table. Flush writes the others; Discard forgets them.
	batch map[string]string
	// certs and classes cache rows read or written; Discard clears them,
	// since a rolled-back batch may have added one.
	certs   map[string]certificate
	classes map[class]int64
}

// New returns the projection assessing tokens with c, or with the embedded
// catalogue (renewal.Load) when c is nil. A read store built with one
// catalogue edition and continued with another holds rows of both, each
// with its version; rebuild it from zero to assess every token with the
// new one.
func New(c *renewal.Catalog) *Projection {
	p := &Projection{catalog: c, batch: map[string]string{}}
	if c == nil {
		p.catalog, p.err = renewal.Load()
	}
	p.forget()
	return p
}

func (p *Projection) forget() {
	p.certs, p.classes = map[string]certificate{}, map[class]int64{}
}

var _ projections.Flusher = (*Projection)(nil)

// Catalog is the algorithm catalogue the projection assesses with.
func (p *Projection) Catalog() *renewal.Catalog { return p.catalog }

// Name implements projections.Projection.
func (*Projection) Name() string { return Name }

// Schema creates the tables. A token's row holds what is its own (serial,
// genTime, when it is due) and its class: what it shares with the other
// tokens of its service, hash algorithm and certificate, assessed alike.
// A certificate is recorded when a token names it, known (its attributes
// set, known = 1) once SigningKeyActivated describes it.
//
// gen_time and due_at are unix nanoseconds (a due date after 2262, past
// their range, is kept as the range's end: the catalogue's horizon is
// decades nearer); the certificates' not_after is fixed-width UTC RFC
// 3339 text (formatTime), empty when unknown.
func (*Projection) Schema() []string {
	return []string{
		`CREATE TABLE IF NOT EXISTS certificates (
			id            INTEGER PRIMARY KEY,
			cert_sha256   TEXT NOT NULL UNIQUE,
			known         INTEGER NOT NULL,
			key_type      TEXT NOT NULL,
			not_after     TEXT NOT NULL,
			issuer        TEXT NOT NULL,
			serial_number TEXT NOT NULL
		)`,
		`CREATE TABLE IF NOT EXISTS classes (
			id              INTEGER PRIMARY KEY,
			service         TEXT NOT NULL,
			hash_algorithm  TEXT NOT NULL,
			certificate     INTEGER NOT NULL,
			cert_known      INTEGER NOT NULL,
			reason          TEXT NOT NULL,
			renewal         TEXT NOT NULL,
			catalog_version TEXT NOT NULL,
			UNIQUE (service, hash_algorithm, certificate, cert_known, reason, renewal, catalog_version)
		)`,
		`CREATE TABLE IF NOT EXISTS pending (
			serial         TEXT PRIMARY KEY,
			hash_algorithm TEXT NOT NULL
		) WITHOUT ROWID`,
		`CREATE TABLE IF NOT EXISTS tokens (
			serial   TEXT PRIMARY KEY,
			class    INTEGER NOT NULL,
			gen_time INTEGER NOT NULL,
			due_at   INTEGER NOT NULL
		) WITHOUT ROWID`,
		`CREATE INDEX IF NOT EXISTS tokens_class_due ON tokens (class, due_at)`,
	}
}

// Handlers implements projections.Projection. The other events are not
// this model's: a filter's verdict (the outcome comes as issued, rejected
// or forwarded); the configuration (SigningKeyActivated records the key a
// service signs with at every start); a service running with an ended
// algorithm (its tokens say so themselves); delivery (a token issued
// stays issued); the log; the other key events (a generated key or an
// imported certificate signs nothing until it is activated, retirement
// and outages do not change what a token issued stands on); the clock.
func (p *Projection) Handlers() []projections.Handler {
	return []projections.Handler{
		projections.On(p.OnSigningKeyActivated),
		projections.On(p.OnTimestampRequested),
		projections.On(p.OnTimestampIssued),
		projections.On(p.OnTimestampRejected),
		projections.On(p.OnTimestampForwarded),
	}
}

// certificate is a TSA certificate as its activation describes it.
type certificate struct {
	id                      int64
	known                   bool
	keyType, issuer, serial string
	notAfter                time.Time
}

func (c certificate) token(serial string, gen time.Time, hash string) renewal.Token {
	return renewal.Token{
		Serial: serial, GenTime: gen, HashAlgorithm: hash, KeyType: c.keyType,
		CertNotAfter: c.notAfter, CertIssuer: c.issuer, CertSerial: c.serial,
	}
}

// class is what tokens assessed alike share.
type class struct {
	service, hash           string
	cert                    int64
	certKnown               bool
	reason, renewal, catVer string
}

// OnSigningKeyActivated records a service's TSA certificate (recorded again
// at every start: the last recording wins) and assesses again the tokens
// recorded before it was known, which were due at once.
func (p *Projection) OnSigningKeyActivated(ctx context.Context, tx projections.Tx, m projections.Meta, e events.SigningKeyActivated) error {
	if p.err != nil {
		return fmt.Errorf("%s: %w", Name, p.err)
	}
	if e.CertificateSHA256 == "" {
		return nil // the log key: it signs checkpoints, not tokens
	}
	c := certificate{known: !e.NotAfter.IsZero(), keyType: e.KeyType, issuer: e.Issuer, serial: e.SerialNumber, notAfter: e.NotAfter}
	if err := tx.QueryRow(ctx, `INSERT INTO certificates (cert_sha256, known, key_type, not_after, issuer, serial_number)
		VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (cert_sha256) DO UPDATE SET known = excluded.known, key_type = excluded.key_type,
			not_after = excluded.not_after, issuer = excluded.issuer, serial_number = excluded.serial_number
		RETURNING id`,
		e.CertificateSHA256, c.known, e.KeyType, formatTime(e.NotAfter), e.Issuer, e.SerialNumber).Scan(&c.id); err != nil {
		return fmt.Errorf("event %d: certificate %s: %w", m.Position, e.CertificateSHA256, err)
	}
	p.certs[e.CertificateSHA256] = c
	if !c.known {
		return nil
	}
	return p.reassess(ctx, tx, c)
}

// reassess assesses the tokens of a certificate that was unknown when they
// were recorded.
func (p *Projection) reassess(ctx context.Context, tx projections.Tx, c certificate) error {
	rows, err := tx.Query(ctx, `SELECT t.serial, t.gen_time, cl.service, cl.hash_algorithm FROM tokens t JOIN classes cl ON cl.id = t.class
		WHERE t.class IN (SELECT id FROM classes WHERE certificate = ? AND cert_known = 0)`, c.id)
	if err != nil {
		return fmt.Errorf("tokens of certificate %d: %w", c.id, err)
	}
	type row struct {
		serial, service, hash string
		gen                   int64
	}
	var todo []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.serial, &r.gen, &r.service, &r.hash); err != nil {
			rows.Close()
			return err
		}
		todo = append(todo, r)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return fmt.Errorf("tokens of certificate %d: %w", c.id, err)
	}
	for _, r := range todo {
		gen := time.Unix(0, r.gen).UTC()
		a := renewal.Due(c.token(r.serial, gen, r.hash), p.catalog)
		cl, err := p.class(ctx, tx, r.service, r.hash, c, a)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE tokens SET class = ?, due_at = ? WHERE serial = ?`, cl, unixNano(a.DueAt), r.serial); err != nil {
			return fmt.Errorf("token %s: %w", r.serial, err)
		}
	}
	return nil
}

// OnTimestampRequested keeps the imprint's hash algorithm until the
// request's outcome.
func (p *Projection) OnTimestampRequested(_ context.Context, _ projections.Tx, _ projections.Meta, e events.TimestampRequested) error {
	if p.err != nil {
		return fmt.Errorf("%s: %w", Name, p.err)
	}
	p.batch[e.Serial] = e.HashAlgorithm
	return nil
}

// Flush writes the requests still open at the batch's end.
func (p *Projection) Flush(ctx context.Context, tx projections.Tx) error {
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
	p.forget()
}

// pendingHash takes the hash algorithm of an open request out of the
// batch or the pending table.
func (p *Projection) pendingHash(ctx context.Context, tx projections.Tx, serial string) (string, error) {
	if hash, ok := p.batch[serial]; ok {
		delete(p.batch, serial)
		return hash, nil
	}
	var hash string
	err := tx.QueryRow(ctx, `DELETE FROM pending WHERE serial = ? RETURNING hash_algorithm`, serial).Scan(&hash)
	if errors.Is(err, projections.ErrNoRows) {
		return "", nil
	}
	return hash, err
}

// OnTimestampRejected drops a request refused.
func (p *Projection) OnTimestampRejected(ctx context.Context, tx projections.Tx, _ projections.Meta, e events.TimestampRejected) error {
	return p.closeRequest(ctx, tx, e.Serial)
}

// OnTimestampForwarded drops a request a proxy service passed upstream:
// the upstream's token is not ours to renew.
func (p *Projection) OnTimestampForwarded(ctx context.Context, tx projections.Tx, _ projections.Meta, e events.TimestampForwarded) error {
	return p.closeRequest(ctx, tx, e.Serial)
}

// closeRequest drops a request that issued no token of ours.
func (p *Projection) closeRequest(ctx context.Context, tx projections.Tx, serial string) error {
	if p.err != nil {
		return fmt.Errorf("%s: %w", Name, p.err)
	}
	if _, err := p.pendingHash(ctx, tx, serial); err != nil {
		return fmt.Errorf("request %s: %w", serial, err)
	}
	return nil
}

// OnTimestampIssued records and assesses the token. Its token bytes are
// not read: everything needed is in the events.
func (p *Projection) OnTimestampIssued(ctx context.Context, tx projections.Tx, m projections.Meta, e events.TimestampIssued) error {
	if p.err != nil {
		return fmt.Errorf("%s: %w", Name, p.err)
	}
	hash, err := p.pendingHash(ctx, tx, e.Serial)
	if err != nil {
		return fmt.Errorf("token %s: request: %w", e.Serial, err)
	}
	c, err := p.certificate(ctx, tx, e.Signer)
	if err != nil {
		return fmt.Errorf("token %s: %w", e.Serial, err)
	}
	a := renewal.Due(c.token(e.Serial, e.GenTime, hash), p.catalog)
	cl, err := p.class(ctx, tx, m.Service, hash, c, a)
	if err != nil {
		return fmt.Errorf("token %s: %w", e.Serial, err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO tokens (serial, class, gen_time, due_at) VALUES (?, ?, ?, ?)`,
		e.Serial, cl, unixNano(e.GenTime), unixNano(a.DueAt)); err != nil {
		return fmt.Errorf("token %s: %w", e.Serial, err)
	}
	return nil
}

// maxCached bounds the certificates and classes kept between batches.
const maxCached = 1024

// certificate returns the TSA certificate of a fingerprint, recording it
// unknown when no activation described it yet (its tokens are then due
// at once).
func (p *Projection) certificate(ctx context.Context, tx projections.Tx, sha string) (certificate, error) {
	if c, ok := p.certs[sha]; ok {
		return c, nil
	}
	var c certificate
	var notAfter string
	err := tx.QueryRow(ctx, `INSERT INTO certificates (cert_sha256, known, key_type, not_after, issuer, serial_number)
		VALUES (?, 0, '', '', '', '')
		ON CONFLICT (cert_sha256) DO UPDATE SET cert_sha256 = excluded.cert_sha256
		RETURNING id, known, key_type, not_after, issuer, serial_number`, sha).
		Scan(&c.id, &c.known, &c.keyType, &notAfter, &c.issuer, &c.serial)
	if err != nil {
		return c, fmt.Errorf("certificate %s: %w", sha, err)
	}
	if c.notAfter, err = parseTime(notAfter); err != nil {
		return c, fmt.Errorf("certificate %s: notAfter: %w", sha, err)
	}
	if len(p.certs) >= maxCached {
		clear(p.certs)
	}
	p.certs[sha] = c
	return c, nil
}

// class returns the id of the class of a token of service, hash and
// certificate c assessed as a.
func (p *Projection) class(ctx context.Context, tx projections.Tx, service, hash string, c certificate, a renewal.Assessment) (int64, error) {
	k := class{service: service, hash: hash, cert: c.id, certKnown: c.known, reason: a.Reason, renewal: a.Renewal, catVer: p.catalog.Version()}
	if id, ok := p.classes[k]; ok {
		return id, nil
	}
	var id int64
	if err := tx.QueryRow(ctx, `INSERT INTO classes (service, hash_algorithm, certificate, cert_known, reason, renewal, catalog_version)
		VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (service, hash_algorithm, certificate, cert_known, reason, renewal, catalog_version)
			DO UPDATE SET service = excluded.service RETURNING id`,
		k.service, k.hash, k.cert, k.certKnown, k.reason, k.renewal, k.catVer).Scan(&id); err != nil {
		return 0, fmt.Errorf("class: %w", err)
	}
	if len(p.classes) >= maxCached {
		clear(p.classes)
	}
	p.classes[k] = id
	return id, nil
}

// unixNano is t in unix nanoseconds, clamped to their range.
func unixNano(t time.Time) int64 {
	switch {
	case t.Before(minTime):
		return minTime.UnixNano()
	case t.After(maxTime):
		return maxTime.UnixNano()
	}
	return t.UnixNano()
}

var minTime, maxTime = time.Unix(0, -1<<63), time.Unix(0, 1<<63-1)

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

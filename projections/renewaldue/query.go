package renewaldue

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

// Query selects tokens by the criteria a renewal is planned by: the hash
// value procedure and the signature procedure of the token, the issuer and
// serial number of its TSA certificate. Empty fields select everything.
type Query struct {
	// DueBefore keeps the tokens due strictly before it.
	DueBefore time.Time `json:"dueBefore,omitzero"`
	// HashAlgorithm is the imprint's hash algorithm (sha256, sha3-512, …).
	HashAlgorithm string `json:"hashAlgorithm,omitempty"`
	// SignatureAlgorithm is the TSA key's type (rsa-2048, ecdsa-p256, …).
	SignatureAlgorithm string `json:"signatureAlgorithm,omitempty"`
	// CertIssuer and CertSerial are the TSA certificate's issuer DN and
	// serial number (hex), as SigningKeyActivated records them.
	CertIssuer string `json:"certIssuer,omitempty"`
	CertSerial string `json:"certSerial,omitempty"`
	// Service is the timestamp service that issued the token.
	Service string `json:"service,omitempty"`
	// After is a cursor: Search returns tokens in the order of their
	// serials (as text), and only those after this serial; pass the last
	// serial of one block to get the next. Count counts the tokens after
	// it too, what is left to go through.
	After string `json:"after,omitempty"`
	// Limit bounds Search's block: DefaultLimit when zero, at most
	// MaxLimit. Count and CountBy ignore it.
	Limit int `json:"limit,omitempty"`
}

// Search's block sizes.
const (
	DefaultLimit = 100
	MaxLimit     = 10000
)

// Entry is one token and its assessment.
type Entry struct {
	Serial  string    `json:"serial"`
	GenTime time.Time `json:"genTime"`
	Service string    `json:"service"`
	// HashAlgorithm is empty when the request is not on record.
	HashAlgorithm string `json:"hashAlgorithm"`
	// SignatureAlgorithm is the TSA key's type; empty, like the other
	// certificate fields, when the certificate is unknown to the record.
	SignatureAlgorithm string    `json:"signatureAlgorithm"`
	CertSHA256         string    `json:"certSha256"`
	CertIssuer         string    `json:"certIssuer"`
	CertSerial         string    `json:"certSerial"`
	CertNotAfter       time.Time `json:"certNotAfter,omitzero"`
	// DueAt is the last instant the token keeps its evidential value
	// unrenewed, Reason what ends then, Renewal the renewal it needs
	// ("timestamp" or "hash-tree"); see domain/renewal.
	DueAt   time.Time `json:"dueAt"`
	Reason  string    `json:"reason"`
	Renewal string    `json:"renewal"`
	// CatalogVersion is the algorithm catalogue edition of the assessment.
	CatalogVersion string `json:"catalogVersion"`
}

// What CountBy groups by.
const (
	ByHashAlgorithm      = "hashAlgorithm"
	BySignatureAlgorithm = "signatureAlgorithm"
	ByCertificate        = "certificate"
	ByRenewal            = "renewal"
	ByMonth              = "month"
)

// Group is one group's count.
type Group struct {
	// Key is the group's value: the algorithm, the renewal kind, the
	// month due (YYYY-MM, UTC), or for a certificate its SHA-256.
	Key string `json:"key"`
	// CertIssuer and CertSerial name the certificate of a group by
	// certificate; empty when it is unknown to the record.
	CertIssuer string `json:"certIssuer,omitempty"`
	CertSerial string `json:"certSerial,omitempty"`
	Count      int    `json:"count"`
	// FirstDue is the earliest DueAt in the group.
	FirstDue time.Time `json:"firstDue"`
}

// tokensSQL selects the tokens with their class and certificate; the
// conditions below are on t, cl and ce.
const tokensSQL = ` FROM tokens t JOIN classes cl ON cl.id = t.class JOIN certificates ce ON ce.id = cl.certificate`

// groupings are CountBy's groups: the grouping expression and, for
// certificates, the columns naming the group.
var groupings = map[string]struct{ key, names string }{
	ByHashAlgorithm:      {"cl.hash_algorithm", "'', ''"},
	BySignatureAlgorithm: {"ce.key_type", "'', ''"},
	ByCertificate:        {"ce.cert_sha256", "max(ce.issuer), max(ce.serial_number)"},
	ByRenewal:            {"cl.renewal", "'', ''"},
	ByMonth:              {"strftime('%Y-%m', t.due_at / 1000000000, 'unixepoch')", "'', ''"},
}

// where is q's condition and its arguments. The class condition comes
// first and always, so that tokens_class_due serves the due date.
func (q Query) where() (string, []any) {
	var classConds []string
	var args []any
	for _, f := range []struct{ col, v string }{
		{"c.hash_algorithm", q.HashAlgorithm},
		{"e.key_type", q.SignatureAlgorithm},
		{"e.issuer", q.CertIssuer},
		{"e.serial_number", q.CertSerial},
		{"c.service", q.Service},
	} {
		if f.v != "" {
			classConds = append(classConds, f.col+" = ?")
			args = append(args, f.v)
		}
	}
	classes := `SELECT c.id FROM classes c`
	if len(classConds) > 0 {
		classes += ` JOIN certificates e ON e.id = c.certificate WHERE ` + strings.Join(classConds, " AND ")
	}
	conds := []string{`t.class IN (` + classes + `)`}
	if !q.DueBefore.IsZero() {
		conds = append(conds, `t.due_at < ?`)
		args = append(args, unixNano(q.DueBefore))
	}
	if q.After != "" {
		conds = append(conds, "t.serial > ?")
		args = append(args, q.After)
	}
	return " WHERE " + strings.Join(conds, " AND "), args
}

// Search returns the tokens q selects, one block of at most q.Limit, in
// the order of their serials.
func Search(ctx context.Context, db *sql.DB, q Query) ([]Entry, error) {
	limit := q.Limit
	switch {
	case limit < 0 || limit > MaxLimit:
		return nil, fmt.Errorf("renewal-due search: limit %d outside [0, %d]", limit, MaxLimit)
	case limit == 0:
		limit = DefaultLimit
	}
	where, args := q.where()
	rows, err := db.QueryContext(ctx, `SELECT t.serial, t.gen_time, cl.service, cl.hash_algorithm, ce.key_type,
		ce.cert_sha256, ce.issuer, ce.serial_number, ce.not_after, t.due_at, cl.reason, cl.renewal, cl.catalog_version`+
		tokensSQL+where+` ORDER BY t.serial LIMIT ?`, append(args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("renewal-due search: %w", err)
	}
	defer rows.Close()
	out := []Entry{}
	for rows.Next() {
		var (
			e        Entry
			gen      int64
			notAfter string
			dueAt    int64
		)
		if err := rows.Scan(&e.Serial, &gen, &e.Service, &e.HashAlgorithm, &e.SignatureAlgorithm,
			&e.CertSHA256, &e.CertIssuer, &e.CertSerial, &notAfter, &dueAt, &e.Reason, &e.Renewal, &e.CatalogVersion); err != nil {
			return nil, fmt.Errorf("renewal-due search: %w", err)
		}
		e.GenTime = time.Unix(0, gen).UTC()
		e.DueAt = time.Unix(0, dueAt).UTC()
		if e.CertNotAfter, err = parseTime(notAfter); err != nil {
			return nil, fmt.Errorf("renewal-due search: token %s: %w", e.Serial, err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("renewal-due search: %w", err)
	}
	return out, nil
}

// Count counts the tokens q selects (q.Limit aside).
func Count(ctx context.Context, db *sql.DB, q Query) (int, error) {
	where, args := q.where()
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM tokens t`+where, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("renewal-due count: %w", err)
	}
	return n, nil
}

// CountBy counts the tokens q selects (q.Limit aside) in groups: by
// "hashAlgorithm", "signatureAlgorithm", "certificate", "renewal" or
// "month" (of DueAt). Groups come in the order of their keys.
func CountBy(ctx context.Context, db *sql.DB, q Query, by string) ([]Group, error) {
	g, ok := groupings[by]
	if !ok {
		return nil, fmt.Errorf("renewal-due count by %q: by %s, %s, %s, %s or %s",
			by, ByHashAlgorithm, BySignatureAlgorithm, ByCertificate, ByRenewal, ByMonth)
	}
	where, args := q.where()
	rows, err := db.QueryContext(ctx, `SELECT `+g.key+` AS k, `+g.names+`, count(*), min(t.due_at)
		`+tokensSQL+where+` GROUP BY k ORDER BY k`, args...)
	if err != nil {
		return nil, fmt.Errorf("renewal-due count by %s: %w", by, err)
	}
	defer rows.Close()
	out := []Group{}
	for rows.Next() {
		var gr Group
		var first int64
		if err := rows.Scan(&gr.Key, &gr.CertIssuer, &gr.CertSerial, &gr.Count, &first); err != nil {
			return nil, fmt.Errorf("renewal-due count by %s: %w", by, err)
		}
		gr.FirstDue = time.Unix(0, first).UTC()
		out = append(out, gr)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("renewal-due count by %s: %w", by, err)
	}
	return out, nil
}

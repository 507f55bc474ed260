package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"database/sql"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/chronolog/chronolog/adapters/eventstore/sqlite"
	readstore "github.com/chronolog/chronolog/adapters/readstore/sqlite"
	"github.com/chronolog/chronolog/adapters/signer/softkey"
	"github.com/chronolog/chronolog/domain/authenticode"
	"github.com/chronolog/chronolog/domain/events"
	"github.com/chronolog/chronolog/domain/rfc3161"
	"github.com/chronolog/chronolog/projections"
)

// verifyReplay re-checks every token up to the rebuilt stores' position
// and compares each rebuilt read model with the live one.
func verifyReplay(ctx context.Context, st *sqlite.Store, data string, models []projections.Model, rebuilt []*readstore.Store) error {
	upTo := rebuilt[0].Checkpoint()
	tokens, problems, err := verifyTokens(ctx, st, data, upTo)
	if err != nil {
		return err
	}
	fmt.Printf("tokens:     %d checked (signature, imprint, serial), %d problems\n", tokens, len(problems))
	for _, p := range problems {
		fmt.Printf("  - %s\n", p)
	}
	diffs := 0
	for i, s := range rebuilt {
		d, err := compareWithLive(ctx, st, models[i], s, filepath.Join(data, "read", s.Name()+".db"))
		if err != nil {
			return err
		}
		for _, line := range d {
			fmt.Printf("  - %s: %s\n", s.Name(), line)
		}
		state := "equal to the live one"
		if len(d) > 0 {
			state = "DIFFERS from the live one"
		}
		fmt.Printf("read model: %s at position %d: %s\n", s.Name(), s.Checkpoint(), state)
		diffs += len(d)
	}
	if len(problems) > 0 || diffs > 0 {
		return fmt.Errorf("%w: %d token problems, %d read-model differences", errVerify, len(problems), diffs)
	}
	fmt.Println("verified:   OK")
	return nil
}

// tokenCheck holds what the check of one token needs from its stream.
type tokenCheck struct {
	alg    string
	digest []byte
}

// verifyTokens reads every event up to upTo and checks each token: its
// CMS signature by its TSA certificate (carried in the token or in
// another one, or DATA/pki/tsa.pem), its imprint against the request
// recorded before it, and its serial against its stream and every other.
func verifyTokens(ctx context.Context, st *sqlite.Store, data string, upTo uint64) (int, []string, error) {
	requested := map[string]tokenCheck{}
	certs := map[string]*x509.Certificate{}
	if c, err := softkey.ReadCertificates(filepath.Join(data, "pki", "tsa.pem")); err == nil {
		for _, cert := range c {
			certs[fingerprint(cert)] = cert
		}
	}
	serials := map[string]uint64{}
	var problems []string
	n := 0
	var after uint64
	for after < upTo {
		recs, err := st.ReadAll(ctx, after, 4096)
		if err != nil {
			return n, problems, err
		}
		if len(recs) == 0 {
			break
		}
		for _, r := range recs {
			if r.Position > upTo {
				break
			}
			after = r.Position
			switch r.Type {
			case events.TypeTimestampRequested, events.TypeTimestampIssued:
			default:
				continue
			}
			_, e, err := events.Decode(r.Payload)
			if err != nil {
				problems = append(problems, fmt.Sprintf("event %d: %v", r.Position, err))
				continue
			}
			switch e := e.(type) {
			case *events.TimestampRequested:
				d, _ := hex.DecodeString(e.HashedMessage)
				requested[e.Serial] = tokenCheck{alg: e.HashAlgorithm, digest: d}
			case *events.TimestampIssued:
				n++
				if p := checkToken(e, r.Stream, requested[e.Serial], certs); p != "" {
					problems = append(problems, fmt.Sprintf("event %d, serial %s: %s", r.Position, e.Serial, p))
				}
				if prev, dup := serials[e.Serial]; dup {
					problems = append(problems, fmt.Sprintf("event %d: serial %s was issued before, at event %d", r.Position, e.Serial, prev))
				}
				serials[e.Serial] = r.Position
				delete(requested, e.Serial)
			}
		}
	}
	return n, problems, nil
}

func checkToken(e *events.TimestampIssued, stream string, req tokenCheck, certs map[string]*x509.Certificate) string {
	if stream != events.RequestStream(e.Serial) {
		return fmt.Sprintf("recorded in stream %s", stream)
	}
	if e.Protocol == events.ProtocolAuthenticode {
		v, err := authenticode.Verify(e.Token)
		if err != nil {
			return "Authenticode countersignature: " + err.Error()
		}
		if sum := sha256.Sum256(v.Content); !bytes.Equal(sum[:], req.digest) {
			return "Authenticode countersignature over other content than was requested"
		}
		return ""
	}
	if tc, err := rfc3161.TokenCertificates(e.Token); err == nil {
		for _, c := range tc {
			certs[fingerprint(c)] = c
		}
	}
	signer, ok := certs[e.Signer]
	if !ok {
		return "its TSA certificate " + e.Signer[:min(16, len(e.Signer))] + "… is neither in a token nor in DATA/pki/tsa.pem"
	}
	// The signature and imprint are what is re-checked here; the chain to
	// a root is tsactl verify's job, against the CA the relying party trusts.
	roots := x509.NewCertPool()
	roots.AddCert(signer)
	v, err := rfc3161.VerifyToken(e.Token, rfc3161.VerifyOptions{Roots: roots, Certificates: []*x509.Certificate{signer}, Digest: req.digest})
	if err != nil {
		return "signature or imprint: " + err.Error()
	}
	if got := v.TSTInfo.SerialNumber.Text(16); !strings.EqualFold(got, e.Serial) {
		return fmt.Sprintf("the token's serial is %s", got)
	}
	return ""
}

func fingerprint(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return hex.EncodeToString(sum[:])
}

// compareWithLive lists the rows that differ between a rebuilt read store
// and the live one, table by table. A running tsad keeps the live one
// moving: the comparison reads it in one snapshot, and when that snapshot
// stands further than the rebuilt store, the rebuilt store is brought to
// the same position first (a few rounds at most under load).
func compareWithLive(ctx context.Context, st *sqlite.Store, m projections.Model, s *readstore.Store, livePath string) ([]string, error) {
	conn, err := s.DB().Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `ATTACH DATABASE ? AS live`, "file:"+livePath+"?mode=ro"); err != nil {
		return nil, fmt.Errorf("attach %s: %w", livePath, err)
	}
	defer func() { _, _ = conn.ExecContext(context.Background(), `DETACH DATABASE live`) }()
	for range 10 {
		tx, err := conn.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
		if err != nil {
			return nil, err
		}
		var live uint64
		err = tx.QueryRowContext(ctx, `SELECT position FROM live.checkpoint WHERE projection = ?`, s.Name()).Scan(&live)
		// The transactions only read: rolling back loses nothing.
		if err != nil {
			_ = tx.Rollback()
			return nil, fmt.Errorf("the live %s's checkpoint: %w", s.Name(), err)
		}
		if live == s.Checkpoint() {
			diffs, err := compareTables(ctx, tx)
			_ = tx.Rollback()
			return diffs, err
		}
		_ = tx.Rollback()
		if live < s.Checkpoint() {
			return nil, fmt.Errorf("the live %s stands at %d, behind the rebuilt one at %d: is its projection stopped?", s.Name(), live, s.Checkpoint())
		}
		if _, err := projections.Replay(ctx, projections.ReplayFeed(st), []projections.Model{m},
			projections.RunnerConfig{Until: live, MaxBatch: 8192}); err != nil {
			return nil, err
		}
	}
	return nil, fmt.Errorf("the live %s kept moving: stop tsad, or verify when it is quieter", s.Name())
}

// compareTables counts, table by table, the rows of main and live that the
// other lacks.
func compareTables(ctx context.Context, conn *sql.Tx) ([]string, error) {
	rows, err := conn.QueryContext(ctx, `SELECT name FROM main.sqlite_master WHERE type = 'table' AND name NOT IN ('checkpoint') AND name NOT LIKE 'sqlite_%' ORDER BY name`)
	if err != nil {
		return nil, err
	}
	var tables []string
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			rows.Close()
			return nil, err
		}
		tables = append(tables, t)
	}
	rows.Close()
	var diffs []string
	for _, t := range tables {
		var onlyRebuilt, onlyLive int
		q := `SELECT COUNT(*) FROM (SELECT * FROM main."%[1]s" EXCEPT SELECT * FROM live."%[1]s")`
		if err := conn.QueryRowContext(ctx, fmt.Sprintf(q, t)).Scan(&onlyRebuilt); err != nil {
			return nil, fmt.Errorf("compare table %s: %w", t, err)
		}
		q = `SELECT COUNT(*) FROM (SELECT * FROM live."%[1]s" EXCEPT SELECT * FROM main."%[1]s")`
		if err := conn.QueryRowContext(ctx, fmt.Sprintf(q, t)).Scan(&onlyLive); err != nil {
			return nil, fmt.Errorf("compare table %s: %w", t, err)
		}
		if onlyRebuilt+onlyLive > 0 {
			diffs = append(diffs, fmt.Sprintf("table %s: %d rows only in the rebuilt store, %d only in the live one", t, onlyRebuilt, onlyLive))
		}
	}
	return diffs, nil
}

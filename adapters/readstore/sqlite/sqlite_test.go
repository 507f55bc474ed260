package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chronolog/chronolog/projections"
)

// table is a projection of one table and no handler.
type table struct {
	name, ddl string
}

func (t table) Name() string                  { return t.name }
func (t table) Schema() []string              { return []string{t.ddl} }
func (table) Handlers() []projections.Handler { return nil }
func rowsTable(name string) projections.Projection {
	return table{name, `CREATE TABLE IF NOT EXISTS t (k TEXT PRIMARY KEY, v)`}
}

func open(t *testing.T, path string, p projections.Projection) *Store {
	t.Helper()
	s, err := Open(context.Background(), path, p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func put(t *testing.T, s *Store, to uint64, kv ...any) {
	t.Helper()
	err := s.Update(context.Background(), to, func(tx projections.Tx) error {
		for i := 0; i < len(kv); i += 2 {
			if _, err := tx.Exec(context.Background(), `INSERT INTO t (k, v) VALUES (?, ?)`, kv[i], kv[i+1]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func count(t *testing.T, db *sql.DB) int {
	t.Helper()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM t`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestUpdate: rows and checkpoint commit together; a failed update leaves
// neither; the checkpoint only moves forward; reopened, the store stands
// where it stood.
func TestUpdate(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "s.db")
	s := open(t, path, rowsTable("rows"))
	put(t, s, 3, "a", 1, "b", int64(2))
	boom := errors.New("boom")
	err := s.Update(ctx, 5, func(tx projections.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO t (k, v) VALUES (?, ?)`, "c", 3); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) || s.Checkpoint() != 3 || count(t, s.DB()) != 2 {
		t.Fatalf("failed update: %v, checkpoint %d, %d rows", err, s.Checkpoint(), count(t, s.DB()))
	}
	if err := s.Update(ctx, 3, func(projections.Tx) error { return nil }); err == nil {
		t.Error("the checkpoint stood still")
	}
	if err := s.Update(ctx, 2, func(projections.Tx) error { return nil }); err == nil {
		t.Error("the checkpoint went back")
	}
	// A statement that fails within fn rolls the whole update back.
	err = s.Update(ctx, 6, func(tx projections.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO t (k, v) VALUES (?, ?)`, "d", 4); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO t (k, v) VALUES (?, ?)`, "a", 5)
		return err
	})
	if err == nil || !strings.Contains(err.Error(), "UNIQUE") || count(t, s.DB()) != 2 {
		t.Fatalf("duplicate key: %v, %d rows", err, count(t, s.DB()))
	}
	put(t, s, 7, "e", "five")
	s.Close()
	s = open(t, path, rowsTable("rows"))
	if s.Checkpoint() != 7 || count(t, s.DB()) != 3 || s.Rebuilt() {
		t.Fatalf("reopened at %d with %d rows (rebuilt %v)", s.Checkpoint(), count(t, s.DB()), s.Rebuilt())
	}
}

// TestTxScans: what a transaction reads back, by destination type.
func TestTxScans(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "s.db"), rowsTable("rows"))
	err := s.Update(ctx, 1, func(tx projections.Tx) error {
		for _, kv := range [][2]any{{"s", "text"}, {"b", []byte{1, 2}}, {"i", uint64(1 << 40)}, {"f", 1.5}, {"t", true}, {"n", nil}} {
			if _, err := tx.Exec(ctx, `INSERT INTO t (k, v) VALUES (?, ?)`, kv[0], kv[1]); err != nil {
				return err
			}
		}
		var (
			str  string
			b    []byte
			i    int64
			u    uint64
			n    int
			f    float64
			flag bool
			null string
		)
		for _, q := range []struct {
			k    string
			dest any
		}{{"s", &str}, {"b", &b}, {"i", &i}, {"i", &u}, {"i", &n}, {"f", &f}, {"t", &flag}, {"n", &null}} {
			if err := tx.QueryRow(ctx, `SELECT v FROM t WHERE k = ?`, q.k).Scan(q.dest); err != nil {
				return err
			}
		}
		if str != "text" || string(b) != "\x01\x02" || i != 1<<40 || u != 1<<40 || n != 1<<40 || f != 1.5 || !flag || null != "" {
			t.Errorf("scanned %q %v %d %d %d %v %v %q", str, b, i, u, n, f, flag, null)
		}
		if err := tx.QueryRow(ctx, `SELECT v FROM t WHERE k = ?`, "none").Scan(&str); !errors.Is(err, projections.ErrNoRows) {
			t.Errorf("no row: %v", err)
		}
		rows, err := tx.Query(ctx, `SELECT k FROM t ORDER BY k`)
		if err != nil {
			return err
		}
		var keys []string
		for rows.Next() {
			var k string
			if err := rows.Scan(&k); err != nil {
				return err
			}
			keys = append(keys, k)
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return err
		}
		if strings.Join(keys, "") != "bfinst" {
			t.Errorf("keys %v", keys)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO t (k, v) VALUES (?, ?)`, "x", struct{}{}); err == nil {
			t.Error("a struct bound")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestSchemaChangeRebuilds: a store built with another schema, or by a
// build that recorded none, is made anew; read-only, it is refused.
func TestSchemaChangeRebuilds(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "s.db")
	s := open(t, path, rowsTable("rows"))
	put(t, s, 9, "a", 1)
	s.Close()

	changed := table{"rows", `CREATE TABLE IF NOT EXISTS t (k TEXT PRIMARY KEY, v, w)`}
	if r, err := OpenReadOnly(ctx, path, changed); err == nil || !strings.Contains(err.Error(), "another schema") {
		if err == nil {
			r.Close()
		}
		t.Fatalf("read-only open of another schema: %v", err)
	}
	s = open(t, path, changed)
	if !s.Rebuilt() || s.Checkpoint() != 0 || count(t, s.DB()) != 0 {
		t.Fatalf("rebuilt %v, checkpoint %d, %d rows", s.Rebuilt(), s.Checkpoint(), count(t, s.DB()))
	}
	s.Close()

	// An older build's store: a checkpoint table of two columns.
	old := filepath.Join(dir, "old.db")
	db, err := sql.Open("sqlite3", old)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`CREATE TABLE checkpoint (projection TEXT PRIMARY KEY, position INTEGER NOT NULL)`,
		`INSERT INTO checkpoint VALUES ('rows', 42)`, `CREATE TABLE t (k TEXT PRIMARY KEY, v)`, `INSERT INTO t VALUES ('a', 1)`} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	s = open(t, old, rowsTable("rows"))
	if !s.Rebuilt() || s.Checkpoint() != 0 || count(t, s.DB()) != 0 {
		t.Fatalf("older store: rebuilt %v, checkpoint %d, %d rows", s.Rebuilt(), s.Checkpoint(), count(t, s.DB()))
	}
}

// TestOpenReadOnly: a read store opened read-only beside its writer reads
// its rows and checkpoint, refuses Update, and changes nothing; a missing
// one is not created.
func TestOpenReadOnly(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "c.db")
	w := open(t, path, rowsTable("rows"))
	put(t, w, 30, "a", 1, "b", 2)

	r, err := OpenReadOnly(ctx, path, rowsTable("rows"))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.Checkpoint() != 30 || count(t, r.DB()) != 2 {
		t.Fatalf("read-only: checkpoint %d, %d rows; want 30 and 2", r.Checkpoint(), count(t, r.DB()))
	}
	// The writer goes on beside it.
	put(t, w, 40, "c", 3)
	if got := count(t, r.DB()); got != 3 {
		t.Errorf("the read-only store sees %d rows after the writer wrote 3", got)
	}
	if _, err := r.DB().Exec(`DELETE FROM t`); err == nil {
		t.Error("the read-only store's connection can write")
	}
	err = r.Update(ctx, 41, func(projections.Tx) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "read-only") || r.Checkpoint() != 30 {
		t.Errorf("Update on a read-only store: %v, checkpoint %d", err, r.Checkpoint())
	}
	if _, err := w.DB().Exec(`DELETE FROM t`); err == nil {
		t.Error("the writer's query connections can write")
	}

	missing := filepath.Join(t.TempDir(), "missing.db")
	if s, err := OpenReadOnly(ctx, missing, rowsTable("rows")); err == nil {
		s.Close()
		t.Error("opened a missing read store")
	}
	if _, err := os.Stat(missing); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("OpenReadOnly created %s", missing)
	}
}

// TestBulk: a bulk store keeps its unique indexes from the start and
// builds the others when it finishes, then is a store like any other.
func TestBulk(t *testing.T) {
	ctx := context.Background()
	p := indexed{}
	path := filepath.Join(t.TempDir(), "bulk.db")
	s, err := Open(ctx, path, p, Options{Bulk: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	indexes := func() string {
		t.Helper()
		var names string
		if err := s.DB().QueryRow(`SELECT coalesce(group_concat(name, ','), '') FROM (SELECT name FROM sqlite_schema WHERE type = 'index' AND name NOT LIKE 'sqlite_%' ORDER BY name)`).Scan(&names); err != nil {
			t.Fatal(err)
		}
		return names
	}
	if got := indexes(); got != "t_one" {
		t.Fatalf("indexes before Finish: %q", got)
	}
	put(t, s, 2, "a", 1, "b", 2)
	if err := s.Update(ctx, 3, func(tx projections.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO t (k, v) VALUES ('c', 2)`)
		return err
	}); err == nil {
		t.Error("the unique index did not hold in bulk")
	}
	if err := s.Finish(ctx); err != nil {
		t.Fatal(err)
	}
	if got := indexes(); got != "t_one,t_v" {
		t.Fatalf("indexes after Finish: %q", got)
	}
	var mode string
	if err := s.DB().QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
		t.Fatalf("journal mode %q, %v", mode, err)
	}
	put(t, s, 4, "d", 4)
	if s.Checkpoint() != 4 || count(t, s.DB()) != 3 {
		t.Fatalf("checkpoint %d, %d rows", s.Checkpoint(), count(t, s.DB()))
	}
}

// indexed is a table with a unique index and another.
type indexed struct{}

func (indexed) Name() string { return "indexed" }
func (indexed) Schema() []string {
	return []string{`CREATE TABLE IF NOT EXISTS t (k TEXT PRIMARY KEY, v)`,
		`CREATE UNIQUE INDEX IF NOT EXISTS t_one ON t (v)`, `CREATE INDEX IF NOT EXISTS t_v ON t (v, k)`}
}
func (indexed) Handlers() []projections.Handler { return nil }

// Package sqlite keeps a projection's read store in a SQLite file of its
// own: its tables and its checkpoint (projections.Store). The read store
// is rebuildable, so it commits without fsync (synchronous=NORMAL in WAL):
// a crash may lose its last batches, never its consistency, since the rows
// and the checkpoint commit together and the runner resumes from the
// checkpoint.
//
// One connection writes, through go-sqlite3's driver statements (prepared
// once, kept for the connection's life, run without database/sql's
// per-call work); a small pool of read-only connections answers queries
// (DB). The checkpoint row also records a digest of the projection's
// schema: a store built with another schema is thrown away at open and
// rebuilt from zero by the runner.
package sqlite

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"database/sql/driver"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/mattn/go-sqlite3"

	"github.com/chronolog/chronolog/projections"
)

// Options tune a read store.
type Options struct {
	// CacheKiB is the writer connection's page cache. Default 2048
	// (2 MiB): a live store commits small batches, and its misses are
	// reads from the system's file cache, which a server's RSS does not
	// count; a replay writing millions of rows into an index over random
	// keys (an imprint) wants more.
	CacheKiB int
	// ReadConns bounds the read-only connections of DB. Default 2.
	ReadConns int
	// Bulk builds a fresh store as fast as it can, for a replay: its
	// journal in memory and no fsync, and the schema's (non-unique)
	// indexes built by Finish, once all rows are in, rather than row by
	// row. A bulk store that was not finished is not to be used.
	Bulk bool
}

// Store is one projection's read store.
type Store struct {
	name, path string
	digest     string
	readOnly   bool
	rebuilt    bool

	wdb   *sql.DB
	wconn *sql.Conn
	conn  *sqlite3.SQLiteConn // wconn's, used only within wconn.Raw
	stmts map[string]driver.Stmt
	args  []driver.NamedValue

	rdb *sql.DB

	// deferred are the indexes a bulk store builds when it finishes.
	deferred []string

	mu         sync.Mutex
	checkpoint uint64
}

var _ projections.Store = (*Store)(nil)

// SchemaDigest names a projection's schema: the store keeps it beside its
// checkpoint, and a store holding another is rebuilt.
func SchemaDigest(p projections.Projection) string {
	h := sha256.New()
	for _, q := range p.Schema() {
		h.Write([]byte(q))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

const checkpointDDL = `CREATE TABLE IF NOT EXISTS checkpoint (
	projection TEXT PRIMARY KEY,
	position   INTEGER NOT NULL,
	schema     TEXT NOT NULL
)`

// Open opens (or creates) the read store of p at path. A store built
// with another schema (or by a build that did not record it) is deleted
// and made anew, empty: Rebuilt tells so.
func Open(ctx context.Context, path string, p projections.Projection, opt Options) (*Store, error) {
	if opt.CacheKiB <= 0 {
		opt.CacheKiB = 2048
	}
	if opt.ReadConns <= 0 {
		opt.ReadConns = 2
	}
	s := &Store{name: p.Name(), path: path, digest: SchemaDigest(p), stmts: map[string]driver.Stmt{}}
	found, digest, err := s.openWriter(ctx, opt)
	if err != nil {
		return nil, err
	}
	if found && digest != s.digest {
		if err := s.closeWriter(); err != nil {
			return nil, fmt.Errorf("read store %s: rebuild: %w", path, err)
		}
		for _, f := range []string{path, path + "-wal", path + "-shm"} {
			if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
				return nil, fmt.Errorf("read store %s: rebuild: %w", path, err)
			}
		}
		if _, _, err := s.openWriter(ctx, opt); err != nil {
			return nil, err
		}
		s.rebuilt = true
	}
	if err := s.init(ctx, p, opt.Bulk); err != nil {
		s.Close()
		return nil, fmt.Errorf("read store %s of %s: %w", path, p.Name(), err)
	}
	if err := s.openReaders(opt.ReadConns); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// OpenReadOnly opens the existing read store of p at path for reading
// only (SQLite mode=ro), beside the server that keeps it or not: it
// creates, migrates and writes nothing, and Update refuses. Its checkpoint
// is the one found at open. A store built with another schema is an
// error: the server rebuilds it when it starts.
func OpenReadOnly(ctx context.Context, path string, p projections.Projection) (*Store, error) {
	// mode=ro creates nothing, but says only "unable to open database file".
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("read store of %s: %w", p.Name(), err)
	}
	s := &Store{name: p.Name(), path: path, digest: SchemaDigest(p), readOnly: true}
	if err := s.openReaders(2); err != nil {
		return nil, err
	}
	found, digest, err := readCheckpoint(ctx, s.rdb, s.name, &s.checkpoint)
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("read store %s of %s: %w", path, p.Name(), err)
	}
	if found && digest != s.digest {
		s.Close()
		return nil, fmt.Errorf("read store %s of %s was built with another schema (by another build of tsad): the server rebuilds it when it starts", path, p.Name())
	}
	return s, nil
}

func dsn(path, params string) string {
	r := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23")
	return "file:" + r.Replace(path) + "?" + params
}

// openWriter opens the writer connection and reads the checkpoint row's
// schema digest, if the store has one; found tells whether the file held
// any table at all.
func (s *Store) openWriter(ctx context.Context, opt Options) (found bool, digest string, err error) {
	journal := "_journal_mode=WAL&_synchronous=NORMAL"
	if opt.Bulk {
		journal = "_journal_mode=MEMORY&_synchronous=OFF"
	}
	s.wdb, err = sql.Open("sqlite3", dsn(s.path, fmt.Sprintf(
		"%s&_busy_timeout=5000&_foreign_keys=off&_cache_size=-%d", journal, opt.CacheKiB)))
	if err != nil {
		return false, "", fmt.Errorf("open read store %s: %w", s.path, err)
	}
	s.wdb.SetMaxOpenConns(1)
	s.wdb.SetMaxIdleConns(1)
	s.wdb.SetConnMaxLifetime(0)
	s.wdb.SetConnMaxIdleTime(0)
	if s.wconn, err = s.wdb.Conn(ctx); err != nil {
		s.wdb.Close()
		return false, "", fmt.Errorf("open read store %s: %w", s.path, err)
	}
	if err := s.wconn.Raw(func(dc any) error {
		c, ok := dc.(*sqlite3.SQLiteConn)
		if !ok {
			return fmt.Errorf("the writer connection is a %T", dc)
		}
		s.conn = c
		return nil
	}); err != nil {
		return false, "", errors.Join(fmt.Errorf("open read store %s: %w", s.path, err), s.closeWriter())
	}
	var tables int
	if err := s.wconn.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE type = 'table'`).Scan(&tables); err != nil {
		return false, "", errors.Join(fmt.Errorf("read store %s: %w", s.path, err), s.closeWriter())
	}
	if tables == 0 {
		return false, "", nil
	}
	var pos uint64
	if _, digest, err = readCheckpoint(ctx, s.wconn, s.name, &pos); err != nil {
		// A checkpoint table without a schema: an older build's store.
		return true, "", nil
	}
	return true, digest, nil
}

type queryRower interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// readCheckpoint reads the checkpoint row of name; found is false when
// there is none.
func readCheckpoint(ctx context.Context, q queryRower, name string, pos *uint64) (found bool, digest string, err error) {
	err = q.QueryRowContext(ctx, `SELECT position, schema FROM checkpoint WHERE projection = ?`, name).Scan(pos, &digest)
	if errors.Is(err, sql.ErrNoRows) {
		return false, "", nil
	}
	if err != nil {
		return false, "", err
	}
	return true, digest, nil
}

// init creates the tables and the checkpoint row, and reads it; a bulk
// store leaves its non-unique indexes for Finish (a unique one is a rule
// its rows must keep).
func (s *Store) init(ctx context.Context, p projections.Projection, bulk bool) error {
	for _, q := range append([]string{checkpointDDL}, p.Schema()...) {
		if bulk && strings.HasPrefix(strings.ToUpper(strings.TrimSpace(q)), "CREATE INDEX") {
			s.deferred = append(s.deferred, q)
			continue
		}
		if _, err := s.wconn.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("schema: %w", err)
		}
	}
	if _, err := s.wconn.ExecContext(ctx, `INSERT INTO checkpoint (projection, position, schema) VALUES (?, 0, ?)
		ON CONFLICT (projection) DO NOTHING`, s.name, s.digest); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	_, _, err := readCheckpoint(ctx, s.wconn, s.name, &s.checkpoint)
	return err
}

func (s *Store) openReaders(n int) error {
	db, err := sql.Open("sqlite3", dsn(s.path, "mode=ro&_busy_timeout=5000"))
	if err != nil {
		return fmt.Errorf("open read store %s: %w", s.path, err)
	}
	db.SetMaxOpenConns(n)
	db.SetMaxIdleConns(n)
	s.rdb = db
	return nil
}

// Finish builds a bulk store's indexes and makes it a store like any
// other (WAL, synchronous=NORMAL). It does nothing to another store.
func (s *Store) Finish(ctx context.Context) error {
	if s.readOnly || s.wconn == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.deferred) > 0 {
		if _, err := s.wconn.ExecContext(ctx, s.deferred[0]); err != nil {
			return fmt.Errorf("read store %s: index: %w", s.path, err)
		}
		s.deferred = s.deferred[1:]
	}
	for _, q := range []string{"PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL"} {
		if _, err := s.wconn.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("read store %s: %s: %w", s.path, q, err)
		}
	}
	return nil
}

// Name is the projection's name.
func (s *Store) Name() string { return s.name }

// Path is the read store's file.
func (s *Store) Path() string { return s.path }

// Rebuilt tells that Open found the store built with another schema and
// made it anew.
func (s *Store) Rebuilt() bool { return s.rebuilt }

// DB reads the store: read-only connections, for queries.
func (s *Store) DB() *sql.DB { return s.rdb }

// Checkpoint is the position of the last event applied.
func (s *Store) Checkpoint() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.checkpoint
}

// Update runs fn in one transaction that moves the checkpoint to `to`.
func (s *Store) Update(ctx context.Context, to uint64, fn func(projections.Tx) error) error {
	if s.readOnly {
		return fmt.Errorf("%s: the read store %s is open read-only", s.name, s.path)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if to <= s.checkpoint {
		return fmt.Errorf("%s: checkpoint %d would not move past %d", s.name, to, s.checkpoint)
	}
	if to > 1<<63-1 {
		return fmt.Errorf("%s: position %d out of range", s.name, to)
	}
	err := s.wconn.Raw(func(any) error {
		if err := s.run("BEGIN IMMEDIATE"); err != nil {
			return fmt.Errorf("begin: %w", err)
		}
		err := fn(tx{s})
		if err == nil {
			if _, err = (tx{s}).Exec(ctx, `UPDATE checkpoint SET position = ? WHERE projection = ?`, int64(to), s.name); err != nil {
				err = fmt.Errorf("checkpoint: %w", err)
			}
		}
		if err == nil {
			if err = s.run("COMMIT"); err != nil {
				err = fmt.Errorf("commit: %w", err)
			}
		}
		if err != nil {
			if rbErr := s.run("ROLLBACK"); rbErr != nil && !strings.Contains(rbErr.Error(), "no transaction") {
				err = errors.Join(err, fmt.Errorf("rollback: %w", rbErr))
			}
		}
		return err
	})
	if err != nil {
		return err
	}
	s.checkpoint = to
	return nil
}

// stmt returns the prepared statement of query, preparing it once.
func (s *Store) stmt(query string) (driver.Stmt, error) {
	if st, ok := s.stmts[query]; ok {
		return st, nil
	}
	st, err := s.conn.Prepare(query)
	if err != nil {
		return nil, err
	}
	s.stmts[query] = st
	return st, nil
}

func (s *Store) run(query string) error {
	st, err := s.stmt(query)
	if err != nil {
		return err
	}
	_, err = st.(driver.StmtExecContext).ExecContext(context.Background(), nil)
	return err
}

// bind converts args as database/sql would for the driver.
func (s *Store) bind(args []any) ([]driver.NamedValue, error) {
	s.args = s.args[:0]
	for i, a := range args {
		var v driver.Value
		switch a := a.(type) {
		case nil, int64, float64, bool, []byte, string:
			v = a
		case int:
			v = int64(a)
		case int32:
			v = int64(a)
		case uint32:
			v = int64(a)
		case uint64:
			if a > 1<<63-1 {
				return nil, fmt.Errorf("argument %d: %d out of range", i+1, a)
			}
			v = int64(a)
		default:
			return nil, fmt.Errorf("argument %d: a %T", i+1, a)
		}
		s.args = append(s.args, driver.NamedValue{Ordinal: i + 1, Value: v})
	}
	return s.args, nil
}

// tx is a transaction of Update: statements run on the writer connection
// with a context that cannot be cancelled (go-sqlite3 runs a cancellable
// one on a goroutine of its own), checked between statements.
type tx struct{ s *Store }

func (t tx) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	st, err := t.s.stmt(query)
	if err != nil {
		return 0, err
	}
	nv, err := t.s.bind(args)
	if err != nil {
		return 0, err
	}
	res, err := st.(driver.StmtExecContext).ExecContext(context.Background(), nv)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (t tx) Query(ctx context.Context, query string, args ...any) (projections.Rows, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	st, err := t.s.stmt(query)
	if err != nil {
		return nil, err
	}
	nv, err := t.s.bind(args)
	if err != nil {
		return nil, err
	}
	rs, err := st.(driver.StmtQueryContext).QueryContext(context.Background(), nv)
	if err != nil {
		return nil, err
	}
	return &rows{rows: rs, dest: make([]driver.Value, len(rs.Columns()))}, nil
}

func (t tx) QueryRow(ctx context.Context, query string, args ...any) projections.Row {
	rs, err := t.Query(ctx, query, args...)
	if err != nil {
		return row{err: err}
	}
	return row{rows: rs}
}

type row struct {
	rows projections.Rows
	err  error
}

func (r row) Scan(dest ...any) error {
	if r.err != nil {
		return r.err
	}
	defer r.rows.Close()
	if !r.rows.Next() {
		if err := r.rows.Err(); err != nil {
			return err
		}
		return projections.ErrNoRows
	}
	return r.rows.Scan(dest...)
}

// rows reads a driver's rows; a statement's rows must be closed before
// the statement runs again.
type rows struct {
	rows driver.Rows
	dest []driver.Value
	err  error
	done bool
}

func (r *rows) Next() bool {
	if r.done {
		return false
	}
	if err := r.rows.Next(r.dest); err != nil {
		if !errors.Is(err, io.EOF) {
			r.err = err
		}
		r.done = true
		return false
	}
	return true
}

func (r *rows) Scan(dest ...any) error {
	if len(dest) != len(r.dest) {
		return fmt.Errorf("scan: %d destinations for %d columns", len(dest), len(r.dest))
	}
	for i, d := range dest {
		if err := assign(d, r.dest[i]); err != nil {
			return fmt.Errorf("scan column %d: %w", i, err)
		}
	}
	return nil
}

func (r *rows) Err() error { return r.err }

func (r *rows) Close() error {
	r.done = true
	return r.rows.Close()
}

// assign stores a column's value in dest; NULL stores the zero value.
func assign(dest any, v driver.Value) error {
	switch d := dest.(type) {
	case *string:
		switch v := v.(type) {
		case string:
			*d = v
		case []byte:
			*d = string(v)
		case nil:
			*d = ""
		default:
			return fmt.Errorf("a %T into a string", v)
		}
	case *[]byte:
		switch v := v.(type) {
		case []byte:
			*d = append([]byte(nil), v...)
		case string:
			*d = []byte(v)
		case nil:
			*d = nil
		default:
			return fmt.Errorf("a %T into bytes", v)
		}
	case *int64:
		n, err := asInt(v)
		*d = n
		return err
	case *int:
		n, err := asInt(v)
		*d = int(n)
		return err
	case *uint64:
		n, err := asInt(v)
		if n < 0 {
			return fmt.Errorf("%d into a uint64", n)
		}
		*d = uint64(n)
		return err
	case *bool:
		n, err := asInt(v)
		*d = n != 0
		return err
	case *float64:
		switch v := v.(type) {
		case float64:
			*d = v
		case int64:
			*d = float64(v)
		case nil:
			*d = 0
		default:
			return fmt.Errorf("a %T into a float64", v)
		}
	default:
		return fmt.Errorf("cannot scan into a %T", dest)
	}
	return nil
}

func asInt(v driver.Value) (int64, error) {
	switch v := v.(type) {
	case int64:
		return v, nil
	case bool:
		if v {
			return 1, nil
		}
		return 0, nil
	case nil:
		return 0, nil
	}
	return 0, fmt.Errorf("a %T into an integer", v)
}

// Close closes the read store.
func (s *Store) Close() error {
	var errs []error
	if s.wconn != nil {
		errs = append(errs, s.closeWriter())
	}
	if s.rdb != nil {
		errs = append(errs, s.rdb.Close())
	}
	return errors.Join(errs...)
}

func (s *Store) closeWriter() error {
	var errs []error
	if s.wconn != nil {
		errs = append(errs, s.wconn.Raw(func(any) error {
			for q, st := range s.stmts {
				if err := st.Close(); err != nil {
					return fmt.Errorf("close %s: %w", q, err)
				}
			}
			return nil
		}))
		clear(s.stmts)
		errs = append(errs, s.wconn.Close())
	}
	errs = append(errs, s.wdb.Close())
	s.wconn, s.wdb, s.conn = nil, nil, nil
	return errors.Join(errs...)
}

package projections

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"regexp"
	"sync"

	_ "github.com/mattn/go-sqlite3" // the read stores' database/sql driver
)

var projectionName = regexp.MustCompile(`^[a-z][a-z0-9-]{0,40}$`)

// Store is one projection's read store: its own SQLite file holding its
// tables and its checkpoint, the position of the last event applied.
type Store struct {
	p    Projection
	db   *sql.DB
	path string

	mu         sync.Mutex
	checkpoint uint64
	readOnly   bool
}

// Open opens (or creates) the read store of p at path. The read store is
// rebuildable, so it commits without fsync (synchronous=NORMAL in WAL): a
// crash may lose its last batches, never its consistency, since rows and
// checkpoint commit together and replay resumes from the checkpoint.
func Open(ctx context.Context, path string, p Projection) (*Store, error) {
	if !projectionName.MatchString(p.Name()) {
		return nil, fmt.Errorf("projection name %q: lower case, digits and '-'", p.Name())
	}
	// A 64 MiB page cache: an index over random keys (an imprint) touches
	// a new page per row, and a replay writes millions of them.
	dsn := "file:" + path + "?_journal_mode=WAL&_synchronous=NORMAL&_busy_timeout=5000&_foreign_keys=off&_cache_size=-65536"
	db, err := sql.Open("sqlite3", dsn)
	if err != nil {
		return nil, fmt.Errorf("open read store %s: %w", path, err)
	}
	s := &Store{p: p, db: db, path: path}
	if err := s.init(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("read store %s of %s: %w", path, p.Name(), err)
	}
	return s, nil
}

// OpenReadOnly opens the existing read store of p at path for reading
// only (SQLite mode=ro), beside the server that keeps it or not: it
// creates, migrates and writes nothing, and Apply refuses. Its checkpoint
// is the one found at open.
func OpenReadOnly(ctx context.Context, path string, p Projection) (*Store, error) {
	if !projectionName.MatchString(p.Name()) {
		return nil, fmt.Errorf("projection name %q: lower case, digits and '-'", p.Name())
	}
	// mode=ro creates nothing, but says only "unable to open database file".
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("read store of %s: %w", p.Name(), err)
	}
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro&_busy_timeout=5000")
	if err != nil {
		return nil, fmt.Errorf("open read store %s: %w", path, err)
	}
	s := &Store{p: p, db: db, path: path, readOnly: true}
	if err := s.readCheckpoint(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("read store %s of %s: %w", path, p.Name(), err)
	}
	return s, nil
}

func (s *Store) init(ctx context.Context) error {
	stmts := append([]string{`CREATE TABLE IF NOT EXISTS checkpoint (projection TEXT PRIMARY KEY, position INTEGER NOT NULL)`}, s.p.Schema()...)
	for _, q := range stmts {
		if _, err := s.db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("schema: %w", err)
		}
	}
	return s.readCheckpoint(ctx)
}

func (s *Store) readCheckpoint(ctx context.Context) error {
	err := s.db.QueryRowContext(ctx, `SELECT position FROM checkpoint WHERE projection = ?`, s.p.Name()).Scan(&s.checkpoint)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	return err
}

// Name is the projection's name.
func (s *Store) Name() string { return s.p.Name() }

// Path is the read store's file.
func (s *Store) Path() string { return s.path }

// DB is the read store's database, for queries.
func (s *Store) DB() *sql.DB { return s.db }

// Checkpoint is the position of the last event applied.
func (s *Store) Checkpoint() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.checkpoint
}

// Apply applies the events above the checkpoint, in one transaction that
// moves the checkpoint to the last of them. Events at or below it were
// applied before and are skipped: delivering a batch twice is harmless.
func (s *Store) Apply(ctx context.Context, evs []Event) error {
	if s.readOnly {
		return fmt.Errorf("%s: the read store %s is open read-only", s.p.Name(), s.path)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	i := 0
	for i < len(evs) && evs[i].Position <= s.checkpoint {
		i++
	}
	evs = evs[i:]
	if len(evs) == 0 {
		return nil
	}
	stx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("%s: begin: %w", s.p.Name(), err)
	}
	tx := newTx(stx)
	committed := false
	defer func() {
		tx.close()
		if !committed {
			stx.Rollback()
			if f, ok := s.p.(Flusher); ok {
				f.Discard()
			}
		}
	}()
	last := s.checkpoint
	for _, e := range evs {
		if e.Position <= last {
			return fmt.Errorf("%s: position %d after %d: events out of order", s.p.Name(), e.Position, last)
		}
		if err := s.p.Apply(ctx, tx, e); err != nil {
			return fmt.Errorf("%s: event %d (%s): %w", s.p.Name(), e.Position, e.Type, err)
		}
		last = e.Position
	}
	if f, ok := s.p.(Flusher); ok {
		if err := f.Flush(ctx, tx); err != nil {
			return fmt.Errorf("%s: flush: %w", s.p.Name(), err)
		}
	}
	if _, err := tx.Exec(ctx, `INSERT INTO checkpoint (projection, position) VALUES (?, ?)
		ON CONFLICT (projection) DO UPDATE SET position = excluded.position`, s.p.Name(), last); err != nil {
		return fmt.Errorf("%s: checkpoint: %w", s.p.Name(), err)
	}
	if err := stx.Commit(); err != nil {
		return fmt.Errorf("%s: commit: %w", s.p.Name(), err)
	}
	committed = true
	s.checkpoint = last
	return nil
}

// Close closes the read store.
func (s *Store) Close() error { return s.db.Close() }

// Package sqlite is the embedded default event store: one SQLite file in WAL
// mode with synchronous=FULL, so that an acknowledged append survives a kill
// -9 of the process and, as far as the disk honours fsync, a power cut.
//
// One writer goroutine owns the only write connection and group-commits:
// it takes the first pending append, drains whatever else is queued (up to
// Config.MaxBatch), applies them all in one BEGIN IMMEDIATE … COMMIT
// transaction and acknowledges each append only after COMMIT returned. Each
// append is checked against its expected state inside the transaction and
// fails alone (wrong expected state, duplicate event id) without undoing
// the others; two appends to the same stream in one batch see each other.
// If COMMIT fails every append of the batch gets the error.
//
// Storage: one row per append (see record.go), keyed by the position of its
// last event, with a unique (stream, first revision) index that both finds
// a stream's records and refuses a second "stream must not exist" append,
// and a WITHOUT ROWID index of event ids that keeps them unique. The
// appending goroutine encodes its record before queueing it, so the
// writer's serial work is binding and stepping two statements per append.
//
// Reads go through a separate pool of read-only connections: WAL readers do
// not block the writer, and each read sees a committed prefix of the global
// order. Subscriptions catch up from the table and are then woken by the
// writer after every commit through a broadcast "new head" signal, which
// never blocks the writer.
//
// One process owns a database file at a time: SQLite's locks keep two
// writers correct (each batch reads the head under the write lock), but a
// subscription only hears of commits made by its own Store, and the read
// models a server builds from its store are not made for two builders
// (adapters/datadir keeps a second writer out). Tools that only read
// (replay, export) open the store with Config.ReadOnly beside the running
// writer: read-only connections, no writer, no migration.
package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/s2"
	"github.com/mattn/go-sqlite3"

	"github.com/chronolog/chronolog/domain/eventstore"
)

const (
	defaultMaxBatch    = 512
	defaultBusyTimeout = 5 * time.Second
	defaultReadConns   = 4

	// subscriptionPage is how many events a subscription reads at once.
	subscriptionPage = 256
)

// Config configures a Store.
type Config struct {
	// Path is the database file; it is created if missing. Required.
	Path string
	// MaxBatch caps how many appends one transaction group-commits.
	// Default 512.
	MaxBatch int
	// QueueSize is how many appends may wait for the writer before Append
	// blocks. Default 4×MaxBatch.
	QueueSize int
	// BusyTimeout is SQLite's busy_timeout on every connection. Default 5 s.
	BusyTimeout time.Duration
	// ReadConns is the size of the read-only connection pool. Default 4.
	ReadConns int
	// LiveTail is how many of the newest events are kept in memory for
	// subscriptions that keep up; default 8192, negative for none.
	LiveTail int
	// ReadOnly opens an existing store for reading only, beside a running
	// writer or not: read-only connections (SQLite mode=ro), no writer
	// and no migration. Append returns ErrReadOnly, SubscribeAll too (a
	// subscription hears of commits from its own Store's writer only),
	// and Head stays where the store stood when it was opened. The
	// writer's settings above are ignored.
	ReadOnly bool
}

// ErrReadOnly is returned by the writes of a store opened read-only.
var ErrReadOnly = errors.New("eventstore/sqlite: the store is open read-only")

// Store is the SQLite event store. It implements eventstore.Store and is
// safe for concurrent use.
type Store struct {
	wdb   *sql.DB
	wconn *sql.Conn // the writer's connection, used through Raw
	rdb   *sql.DB

	w          writerStmts // prepared on wconn's driver connection
	streamStmt *sql.Stmt   // read pool
	allStmt    *sql.Stmt   // read pool

	maxBatch int

	// mu guards closing against concurrent sends on queue.
	mu         sync.RWMutex
	closing    bool
	queue      chan *appendReq
	writerDone chan struct{}
	closed     chan struct{} // closed once the store is closed
	closeOnce  sync.Once
	closeErr   error

	// head is the position of the last committed event. The writer stores
	// head and then closes notify (replacing it), so a subscriber that took
	// notify before loading head never sleeps through a commit.
	head     atomic.Uint64
	notifyMu sync.Mutex
	notify   chan struct{}
	// tail caches the newest events for subscriptions that keep up.
	tail *liveTail
	// dicts are the dictionaries records are compressed against.
	dicts *dictionaries

	// journalMode and synchronous are what the writer connection reported
	// at open; New refuses to run without wal and FULL (2).
	journalMode string
	synchronous int

	readOnly bool
}

var _ eventstore.Store = (*Store)(nil)

type streamState struct {
	exists bool
	last   uint64
}

// New opens (creating and migrating if needed) the database at cfg.Path and
// starts the writer. ctx bounds opening only.
func New(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Path == "" {
		return nil, errors.New("eventstore/sqlite: Config.Path is required")
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = defaultMaxBatch
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = 4 * cfg.MaxBatch
	}
	if cfg.BusyTimeout <= 0 {
		cfg.BusyTimeout = defaultBusyTimeout
	}
	if cfg.ReadConns <= 0 {
		cfg.ReadConns = defaultReadConns
	}
	switch {
	case cfg.LiveTail == 0:
		cfg.LiveTail = 8192
	case cfg.LiveTail < 0:
		cfg.LiveTail = 0
	}
	s := &Store{
		maxBatch:   cfg.MaxBatch,
		queue:      make(chan *appendReq, cfg.QueueSize),
		writerDone: make(chan struct{}),
		closed:     make(chan struct{}),
		notify:     make(chan struct{}),
		tail:       newLiveTail(cfg.LiveTail),
		readOnly:   cfg.ReadOnly,
	}
	s.dicts = newDictionaries(s.loadDict)
	if cfg.ReadOnly {
		if err := s.openReadOnly(ctx, cfg); err != nil {
			return nil, errors.Join(err, s.release())
		}
		close(s.writerDone)
		return s, nil
	}
	if err := s.open(ctx, cfg); err != nil {
		return nil, errors.Join(err, s.release())
	}
	go s.writer()
	return s, nil
}

// dsn builds a SQLite URI for path; mattn/go-sqlite3 consumes the
// underscore parameters, SQLite the others.
func dsn(path string, params string) string {
	r := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23")
	return "file:" + r.Replace(path) + "?" + params
}

// writerDSN is the DSN of the writer connection: WAL, synchronous=FULL (an
// fsync per commit) and a busy timeout.
func writerDSN(path string, busy time.Duration) string {
	return dsn(path, fmt.Sprintf(
		"_journal_mode=WAL&_synchronous=FULL&_busy_timeout=%d&_mutex=no", busy.Milliseconds()))
}

func (s *Store) open(ctx context.Context, cfg Config) error {
	var err error
	s.wdb, err = sql.Open("sqlite3", writerDSN(cfg.Path, cfg.BusyTimeout))
	if err != nil {
		return fmt.Errorf("eventstore/sqlite: open writer: %w", err)
	}
	s.wdb.SetMaxOpenConns(1)
	s.wdb.SetMaxIdleConns(1)
	s.wdb.SetConnMaxLifetime(0)
	s.wdb.SetConnMaxIdleTime(0)
	s.wconn, err = s.wdb.Conn(ctx)
	if err != nil {
		return fmt.Errorf("eventstore/sqlite: open %s: %w", cfg.Path, err)
	}
	if err := s.wconn.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&s.journalMode); err != nil {
		return fmt.Errorf("eventstore/sqlite: read journal_mode: %w", err)
	}
	if err := s.wconn.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&s.synchronous); err != nil {
		return fmt.Errorf("eventstore/sqlite: read synchronous: %w", err)
	}
	if !strings.EqualFold(s.journalMode, "wal") || s.synchronous != 2 {
		return fmt.Errorf("eventstore/sqlite: %s: journal_mode=%s synchronous=%d, want wal and 2 (FULL)",
			cfg.Path, s.journalMode, s.synchronous)
	}
	if err := migrate(ctx, s.wconn); err != nil {
		return fmt.Errorf("eventstore/sqlite: migrate %s: %w", cfg.Path, err)
	}
	if err := probeWrite(ctx, s.wconn); err != nil {
		return fmt.Errorf("eventstore/sqlite: %s cannot be written: %w", cfg.Path, err)
	}
	var head int64
	if err := s.wconn.QueryRowContext(ctx, headQuery).Scan(&head); err != nil {
		return fmt.Errorf("eventstore/sqlite: read head: %w", err)
	}
	s.head.Store(uint64(head))
	if err := s.wconn.Raw(func(dc any) error {
		c, ok := dc.(*sqlite3.SQLiteConn)
		if !ok {
			return fmt.Errorf("writer connection is a %T", dc)
		}
		return s.w.prepare(c)
	}); err != nil {
		return fmt.Errorf("eventstore/sqlite: prepare writer: %w", err)
	}
	// Appends go on with the latest dictionary.
	var id int64
	var dict []byte
	switch err := s.wconn.QueryRowContext(ctx, "SELECT id, dict FROM dictionaries ORDER BY id DESC LIMIT 1").Scan(&id, &dict); {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return fmt.Errorf("eventstore/sqlite: read the dictionary: %w", err)
	default:
		d := s2.NewDict(dict)
		if d == nil {
			return fmt.Errorf("eventstore/sqlite: dictionary %d is malformed", id)
		}
		s.dicts.use(uint64(id), d)
	}

	return s.openReaders(ctx, cfg)
}

// openReadOnly opens the read pool alone, on an existing store whose
// schema is this build's.
func (s *Store) openReadOnly(ctx context.Context, cfg Config) error {
	// mode=ro does not create a missing file, but says only "unable to
	// open database file".
	if _, err := os.Stat(cfg.Path); err != nil {
		return fmt.Errorf("eventstore/sqlite: open read-only: %w", err)
	}
	if err := s.openReaders(ctx, cfg); err != nil {
		return err
	}
	var head int64
	if err := s.rdb.QueryRowContext(ctx, headQuery).Scan(&head); err != nil {
		return fmt.Errorf("eventstore/sqlite: read head: %w", err)
	}
	s.head.Store(uint64(head))
	return nil
}

// openReaders opens the pool of read-only connections and prepares its
// statements.
func (s *Store) openReaders(ctx context.Context, cfg Config) error {
	var err error
	s.rdb, err = sql.Open("sqlite3", dsn(cfg.Path, fmt.Sprintf("mode=ro&_busy_timeout=%d", cfg.BusyTimeout.Milliseconds())))
	if err != nil {
		return fmt.Errorf("eventstore/sqlite: open readers: %w", err)
	}
	s.rdb.SetMaxOpenConns(cfg.ReadConns)
	s.rdb.SetMaxIdleConns(cfg.ReadConns)
	s.rdb.SetConnMaxLifetime(0)
	s.rdb.SetConnMaxIdleTime(0)
	if s.readOnly {
		// Nobody migrated it on the way in.
		var v int
		if err := s.rdb.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
			var se sqlite3.Error
			if errors.As(err, &se) && se.Code == sqlite3.ErrReadonly {
				// No writer has the store open, so its -shm and -wal
				// files are gone, and this user may not make them.
				return fmt.Errorf("eventstore/sqlite: %s: %w (a reader makes the WAL's -shm and -wal files beside a store no writer has open: the directory must be writable to this user)", cfg.Path, err)
			}
			return fmt.Errorf("eventstore/sqlite: %s: read user_version: %w", cfg.Path, err)
		}
		switch {
		case v > schemaVersion:
			return fmt.Errorf("eventstore/sqlite: %s: schema version %d is newer than this build (%d)", cfg.Path, v, schemaVersion)
		case v < schemaVersion:
			return fmt.Errorf("eventstore/sqlite: %s: schema version %d, this build reads %d: a writer (tsad) migrates it when it opens it", cfg.Path, v, schemaVersion)
		}
	}
	if s.streamStmt, err = s.rdb.PrepareContext(ctx,
		"SELECT last_position, first_revision, count, record FROM appends WHERE stream = ? ORDER BY first_revision"); err != nil {
		return fmt.Errorf("eventstore/sqlite: prepare: %w", err)
	}
	if s.allStmt, err = s.rdb.PrepareContext(ctx,
		"SELECT last_position, stream, first_revision, count, record FROM appends WHERE last_position > ? ORDER BY last_position LIMIT ?"); err != nil {
		return fmt.Errorf("eventstore/sqlite: prepare: %w", err)
	}
	return nil
}

// loadDict reads a stored dictionary's bytes.
func (s *Store) loadDict(ctx context.Context, id uint64) ([]byte, error) {
	var b []byte
	err := s.rdb.QueryRowContext(ctx, "SELECT dict FROM dictionaries WHERE id = ?", int64(id)).Scan(&b)
	return b, err
}

// probeWrite writes a page and rolls it back. SQLite opens a file it may
// not write read-only without a word (and BEGIN IMMEDIATE passes in WAL
// mode): the first append would be the first to hear of it.
func probeWrite(ctx context.Context, c *sql.Conn) error {
	if _, err := c.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return err
	}
	_, err := c.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", schemaVersion))
	if _, rbErr := c.ExecContext(ctx, "ROLLBACK"); err == nil {
		err = rbErr
	}
	return err
}

func (s *Store) isClosed() bool {
	select {
	case <-s.closed:
		return true
	default:
		return false
	}
}

// Close stops taking appends, waits until every queued append is answered,
// checkpoints the WAL and closes every connection. It is idempotent.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closing = true
		close(s.queue)
		s.mu.Unlock()
		<-s.writerDone
		close(s.closed)
		// Best effort: fold the WAL back into the database file.
		if s.wconn != nil {
			_, _ = s.wconn.ExecContext(context.Background(), "PRAGMA wal_checkpoint(TRUNCATE)")
		}
		s.closeErr = s.release()
	})
	return s.closeErr
}

// release closes statements and connections that are open.
func (s *Store) release() error {
	var errs []error
	if s.wconn != nil {
		errs = append(errs, s.wconn.Raw(func(any) error { return s.w.close() }))
	}
	for _, st := range []*sql.Stmt{s.streamStmt, s.allStmt} {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	if s.wconn != nil {
		errs = append(errs, s.wconn.Close())
	}
	if s.rdb != nil {
		errs = append(errs, s.rdb.Close())
	}
	if s.wdb != nil {
		errs = append(errs, s.wdb.Close())
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("eventstore/sqlite: close: %w", err)
	}
	return nil
}

// driverArgs is a reusable argument list for driver statements.
type driverArgs []driver.NamedValue

func (a *driverArgs) reset() { *a = (*a)[:0] }

func (a *driverArgs) add(v driver.Value) {
	*a = append(*a, driver.NamedValue{Ordinal: len(*a) + 1, Value: v})
}

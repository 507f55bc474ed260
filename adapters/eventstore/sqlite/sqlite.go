// Package sqlite is the embedded default event store: one SQLite file in WAL
// mode with synchronous=FULL, so that an acknowledged append survives a kill
// -9 of the process and, as far as the disk honours fsync, a power cut.
//
// One writer goroutine owns the only write connection and group-commits:
// it takes the first pending append, drains whatever else is queued (up to
// Config.MaxBatch), applies them all in one BEGIN IMMEDIATE … COMMIT
// transaction and acknowledges each append only after COMMIT returned. Each
// append is checked against its expected state inside the transaction and
// guarded by its own SAVEPOINT, so an append that fails (wrong expected
// state, duplicate event id) fails alone; two appends to the same stream in
// one batch see each other. If COMMIT fails every append of the batch gets
// the error.
//
// Reads go through a separate pool of read-only connections: WAL readers do
// not block the writer, and each read sees a committed prefix of the global
// order. Subscriptions catch up from the table and are then woken by the
// writer after every commit through a broadcast "new head" signal, which
// never blocks the writer.
//
// One process owns a database file at a time: SQLite's locks keep two
// writers correct, but a subscription only hears of commits made by its own
// Store.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mattn/go-sqlite3"

	"github.com/chronolog/chronolog/domain/eventstore"
)

const (
	defaultMaxBatch    = 512
	defaultBusyTimeout = 5 * time.Second
	defaultReadConns   = 4

	// schemaVersion is kept in PRAGMA user_version.
	schemaVersion = 1

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
}

// Store is the SQLite event store. It implements eventstore.Store and is
// safe for concurrent use.
type Store struct {
	wdb   *sql.DB
	wconn *sql.Conn // owned by the writer goroutine after New returns
	rdb   *sql.DB

	// Prepared on the writer connection.
	lastRevStmt, insertStmt *sql.Stmt
	// multiInsert[n] inserts n events in one statement. SQLite makes a
	// single statement atomic, so an append of up to maxMultiInsert events
	// needs no SAVEPOINT: half the round trips through cgo on the hot path.
	multiInsert                map[int]*sql.Stmt
	beginStmt, commitStmt      *sql.Stmt
	savepointStmt, releaseStmt *sql.Stmt
	rollbackToStmt             *sql.Stmt
	streamStmt                 *sql.Stmt // read pool
	allStmt                    *sql.Stmt // read pool

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

	// journalMode and synchronous are what the writer connection reported
	// at open; New refuses to run without wal and FULL (2).
	journalMode string
	synchronous int
}

var _ eventstore.Store = (*Store)(nil)

type appendReq struct {
	ctx      context.Context
	stream   string
	expected eventstore.ExpectedState
	events   []eventstore.EventData
	done     chan appendResp // buffered, 1
}

type appendResp struct {
	res eventstore.AppendResult
	err error
}

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
	s := &Store{
		maxBatch:   cfg.MaxBatch,
		queue:      make(chan *appendReq, cfg.QueueSize),
		writerDone: make(chan struct{}),
		closed:     make(chan struct{}),
		notify:     make(chan struct{}),
	}
	if err := s.open(ctx, cfg); err != nil {
		s.release()
		return nil, err
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
	busy := cfg.BusyTimeout.Milliseconds()
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
	var head sql.NullInt64
	if err := s.wconn.QueryRowContext(ctx, "SELECT max(position) FROM events").Scan(&head); err != nil {
		return fmt.Errorf("eventstore/sqlite: read head: %w", err)
	}
	s.head.Store(uint64(head.Int64))

	if s.lastRevStmt, err = s.wconn.PrepareContext(ctx,
		"SELECT revision FROM events WHERE stream = ? ORDER BY revision DESC LIMIT 1"); err != nil {
		return fmt.Errorf("eventstore/sqlite: prepare: %w", err)
	}
	if s.insertStmt, err = s.wconn.PrepareContext(ctx,
		"INSERT INTO events (stream, revision, id, type, payload) VALUES (?, ?, ?, ?, ?)"); err != nil {
		return fmt.Errorf("eventstore/sqlite: prepare: %w", err)
	}
	for _, p := range []struct {
		stmt **sql.Stmt
		q    string
	}{
		{&s.beginStmt, "BEGIN IMMEDIATE"},
		{&s.commitStmt, "COMMIT"},
		{&s.savepointStmt, "SAVEPOINT append"},
		{&s.releaseStmt, "RELEASE append"},
		{&s.rollbackToStmt, "ROLLBACK TO append"},
	} {
		if *p.stmt, err = s.wconn.PrepareContext(ctx, p.q); err != nil {
			return fmt.Errorf("eventstore/sqlite: prepare %s: %w", p.q, err)
		}
	}

	s.rdb, err = sql.Open("sqlite3", dsn(cfg.Path, fmt.Sprintf("mode=ro&_busy_timeout=%d", busy)))
	if err != nil {
		return fmt.Errorf("eventstore/sqlite: open readers: %w", err)
	}
	s.rdb.SetMaxOpenConns(cfg.ReadConns)
	s.rdb.SetMaxIdleConns(cfg.ReadConns)
	s.rdb.SetConnMaxLifetime(0)
	s.rdb.SetConnMaxIdleTime(0)
	if s.streamStmt, err = s.rdb.PrepareContext(ctx,
		"SELECT position, revision, id, type, payload FROM events WHERE stream = ? ORDER BY revision"); err != nil {
		return fmt.Errorf("eventstore/sqlite: prepare: %w", err)
	}
	if s.allStmt, err = s.rdb.PrepareContext(ctx,
		"SELECT position, stream, revision, id, type, payload FROM events WHERE position > ? ORDER BY position LIMIT ?"); err != nil {
		return fmt.Errorf("eventstore/sqlite: prepare: %w", err)
	}
	return nil
}

// migrate brings the schema to schemaVersion. A stream's revision is read
// from the (stream, revision) unique index, so no separate streams table
// has to be kept in step on the hot path.
func migrate(ctx context.Context, c *sql.Conn) error {
	var v int
	if err := c.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return err
	}
	if v > schemaVersion {
		return fmt.Errorf("schema version %d is newer than this build (%d)", v, schemaVersion)
	}
	if v == schemaVersion {
		return nil
	}
	if _, err := c.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return err
	}
	steps := []string{
		// v0 → v1
		`CREATE TABLE IF NOT EXISTS events (
			position INTEGER PRIMARY KEY,
			stream   TEXT    NOT NULL CHECK (stream <> ''),
			revision INTEGER NOT NULL CHECK (revision >= 0),
			id       TEXT    NOT NULL UNIQUE CHECK (id <> ''),
			type     TEXT    NOT NULL CHECK (type <> ''),
			payload  BLOB    NOT NULL,
			UNIQUE (stream, revision)
		) STRICT`,
	}
	for _, q := range steps[v:] {
		if _, err := c.ExecContext(ctx, q); err != nil {
			_, _ = c.ExecContext(ctx, "ROLLBACK")
			return err
		}
	}
	if _, err := c.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", schemaVersion)); err != nil {
		_, _ = c.ExecContext(ctx, "ROLLBACK")
		return err
	}
	if _, err := c.ExecContext(ctx, "COMMIT"); err != nil {
		_, _ = c.ExecContext(ctx, "ROLLBACK")
		return err
	}
	return nil
}

func validate(stream string, events []eventstore.EventData) error {
	if stream == "" {
		return errors.New("eventstore/sqlite: append: empty stream name")
	}
	if len(events) == 0 {
		return fmt.Errorf("eventstore/sqlite: append to %q: no events", stream)
	}
	for i, e := range events {
		if e.ID == "" {
			return fmt.Errorf("eventstore/sqlite: append to %q: event %d has an empty ID", stream, i)
		}
		if e.Type == "" {
			return fmt.Errorf("eventstore/sqlite: append to %q: event %d (%s) has an empty Type", stream, i, e.ID)
		}
	}
	return nil
}

// Append appends events to stream if expected admits the stream's state,
// and returns once the commit is durable.
//
// If ctx is done before the writer takes the append, the append is dropped
// and ctx.Err() returned. If ctx ends after the writer took it, Append
// returns ctx.Err() at once but the append may still commit: callers must
// treat any error as "not known to be durable" and fail closed, never as
// "not written". After Close, Append returns eventstore.ErrClosed.
func (s *Store) Append(ctx context.Context, stream string, expected eventstore.ExpectedState, events ...eventstore.EventData) (eventstore.AppendResult, error) {
	if err := validate(stream, events); err != nil {
		return eventstore.AppendResult{}, err
	}
	if err := ctx.Err(); err != nil {
		return eventstore.AppendResult{}, err
	}
	req := &appendReq{
		ctx:      ctx,
		stream:   stream,
		expected: expected,
		events:   events,
		done:     make(chan appendResp, 1),
	}
	s.mu.RLock()
	if s.closing {
		s.mu.RUnlock()
		return eventstore.AppendResult{}, eventstore.ErrClosed
	}
	select {
	case s.queue <- req:
		s.mu.RUnlock()
	case <-ctx.Done():
		s.mu.RUnlock()
		return eventstore.AppendResult{}, ctx.Err()
	}
	select {
	case r := <-req.done:
		return r.res, r.err
	case <-ctx.Done():
		return eventstore.AppendResult{}, ctx.Err()
	}
}

// writer is the only goroutine that writes. It exits once Close closed the
// queue and every queued append has been answered.
func (s *Store) writer() {
	defer close(s.writerDone)
	batch := make([]*appendReq, 0, s.maxBatch)
	state := make(map[string]streamState)
	for {
		first, ok := <-s.queue
		if !ok {
			return
		}
		batch = append(batch[:0], first)
	drain:
		for len(batch) < s.maxBatch {
			select {
			case r, ok := <-s.queue:
				if !ok {
					break drain
				}
				batch = append(batch, r)
			default:
				break drain
			}
		}
		s.commit(batch, state)
		clear(state)
		clear(batch)
	}
}

// commit applies batch in one transaction and answers every request.
func (s *Store) commit(batch []*appendReq, state map[string]streamState) {
	ctx := context.Background()
	resps := make([]appendResp, len(batch))
	live := 0
	for i, r := range batch {
		// An append whose caller has already given up is not written.
		if err := r.ctx.Err(); err != nil {
			resps[i].err = err
			continue
		}
		live++
	}
	answer := func() {
		for i, r := range batch {
			r.done <- resps[i]
		}
	}
	failAll := func(err error) {
		for i := range resps {
			if resps[i].err == nil {
				resps[i] = appendResp{err: err}
			}
		}
		answer()
	}
	if live == 0 {
		answer()
		return
	}
	if _, err := s.beginStmt.ExecContext(ctx); err != nil {
		failAll(fmt.Errorf("eventstore/sqlite: begin: %w", err))
		return
	}
	var head uint64
	for i, r := range batch {
		if resps[i].err != nil {
			continue
		}
		res, err, fatal := s.apply(ctx, r, state)
		if fatal != nil {
			_, _ = s.wconn.ExecContext(ctx, "ROLLBACK")
			failAll(fmt.Errorf("eventstore/sqlite: append to %q: %w", r.stream, fatal))
			return
		}
		resps[i] = appendResp{res: res, err: err}
		if err == nil {
			head = max(head, res.Position)
		}
	}
	if _, err := s.commitStmt.ExecContext(ctx); err != nil {
		_, _ = s.wconn.ExecContext(ctx, "ROLLBACK")
		failAll(fmt.Errorf("eventstore/sqlite: commit: %w", err))
		return
	}
	if head > 0 {
		s.head.Store(head)
		s.notifyMu.Lock()
		close(s.notify)
		s.notify = make(chan struct{})
		s.notifyMu.Unlock()
	}
	answer()
}

// apply writes one append inside the open transaction. err fails this
// append alone; fatal aborts the whole batch.
func (s *Store) apply(ctx context.Context, r *appendReq, state map[string]streamState) (res eventstore.AppendResult, err, fatal error) {
	st, ok := state[r.stream]
	if !ok {
		var last int64
		switch err := s.lastRevStmt.QueryRowContext(ctx, r.stream).Scan(&last); {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return res, nil, err
		default:
			st = streamState{exists: true, last: uint64(last)}
		}
	}
	if !r.expected.Admits(st.exists, st.last) {
		return res, &eventstore.WrongExpectedStateError{
			Stream: r.stream, Expected: r.expected, Exists: st.exists, Actual: st.last,
		}, nil
	}
	rev := uint64(0)
	if st.exists {
		rev = st.last + 1
	}
	if len(r.events) <= maxMultiInsert {
		return s.applyOneStatement(ctx, r, state, rev)
	}
	if _, err := s.savepointStmt.ExecContext(ctx); err != nil {
		return res, nil, err
	}
	var pos int64
	for i, e := range r.events {
		payload := e.Payload
		if payload == nil {
			payload = []byte{}
		}
		out, err := s.insertStmt.ExecContext(ctx, r.stream, int64(rev)+int64(i), e.ID, e.Type, payload)
		if err == nil {
			pos, err = out.LastInsertId()
		}
		if err != nil {
			var se sqlite3.Error
			if errors.As(err, &se) && se.Code == sqlite3.ErrConstraint {
				if _, rbErr := s.rollbackToStmt.ExecContext(ctx); rbErr != nil {
					return res, nil, rbErr
				}
				if _, rbErr := s.releaseStmt.ExecContext(ctx); rbErr != nil {
					return res, nil, rbErr
				}
				if se.ExtendedCode == sqlite3.ErrConstraintUnique || se.ExtendedCode == sqlite3.ErrConstraintPrimaryKey {
					return res, fmt.Errorf("eventstore/sqlite: append to %q: event %s: duplicate event id: %w", r.stream, e.ID, err), nil
				}
				return res, fmt.Errorf("eventstore/sqlite: append to %q: event %s: %w", r.stream, e.ID, err), nil
			}
			return res, nil, err
		}
	}
	if _, err := s.releaseStmt.ExecContext(ctx); err != nil {
		return res, nil, err
	}
	last := rev + uint64(len(r.events)) - 1
	state[r.stream] = streamState{exists: true, last: last}
	return eventstore.AppendResult{NextExpected: last, Position: uint64(pos)}, nil, nil
}

func (s *Store) isClosed() bool {
	select {
	case <-s.closed:
		return true
	default:
		return false
	}
}

// readErr maps an error met while reading: ErrClosed once the store is closed.
func (s *Store) readErr(op string, err error) error {
	if s.isClosed() {
		return eventstore.ErrClosed
	}
	return fmt.Errorf("eventstore/sqlite: %s: %w", op, err)
}

// ReadStream returns stream's events in revision order, or an error
// matching eventstore.ErrStreamNotFound when it has none.
func (s *Store) ReadStream(ctx context.Context, stream string) ([]eventstore.RecordedEvent, error) {
	if s.isClosed() {
		return nil, eventstore.ErrClosed
	}
	rows, err := s.streamStmt.QueryContext(ctx, stream)
	if err != nil {
		return nil, s.readErr("read stream", err)
	}
	defer rows.Close()
	var out []eventstore.RecordedEvent
	for rows.Next() {
		e := eventstore.RecordedEvent{Stream: stream}
		var pos, rev int64
		if err := rows.Scan(&pos, &rev, &e.ID, &e.Type, &e.Payload); err != nil {
			return nil, s.readErr("read stream", err)
		}
		e.Position, e.Revision = uint64(pos), uint64(rev)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, s.readErr("read stream", err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("eventstore/sqlite: read %q: %w", stream, eventstore.ErrStreamNotFound)
	}
	return out, nil
}

// ReadAll returns up to max events with Position > after, in commit order.
// max must be positive.
func (s *Store) ReadAll(ctx context.Context, after uint64, max int) ([]eventstore.RecordedEvent, error) {
	if s.isClosed() {
		return nil, eventstore.ErrClosed
	}
	if max <= 0 {
		return nil, fmt.Errorf("eventstore/sqlite: read all: max must be positive, got %d", max)
	}
	return s.readAll(ctx, after, max)
}

func (s *Store) readAll(ctx context.Context, after uint64, max int) ([]eventstore.RecordedEvent, error) {
	rows, err := s.allStmt.QueryContext(ctx, int64(after), max)
	if err != nil {
		return nil, s.readErr("read all", err)
	}
	defer rows.Close()
	out := make([]eventstore.RecordedEvent, 0, min(max, subscriptionPage))
	for rows.Next() {
		var e eventstore.RecordedEvent
		var pos, rev int64
		if err := rows.Scan(&pos, &e.Stream, &rev, &e.ID, &e.Type, &e.Payload); err != nil {
			return nil, s.readErr("read all", err)
		}
		e.Position, e.Revision = uint64(pos), uint64(rev)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, s.readErr("read all", err)
	}
	return out, nil
}

// SubscribeAll returns a subscription to every event with Position >
// after. ctx bounds the call only; the subscription lives until it or the
// store is closed.
func (s *Store) SubscribeAll(ctx context.Context, after uint64) (eventstore.Subscription, error) {
	if s.isClosed() {
		return nil, eventstore.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return &subscription{store: s, last: after, closed: make(chan struct{})}, nil
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
		_, _ = s.wconn.ExecContext(context.Background(), "PRAGMA wal_checkpoint(TRUNCATE)")
		s.closeErr = s.release()
	})
	return s.closeErr
}

// release closes statements and connections that are open.
func (s *Store) release() error {
	var errs []error
	for _, st := range s.multiInsert {
		errs = append(errs, st.Close())
	}
	for _, st := range []*sql.Stmt{
		s.lastRevStmt, s.insertStmt, s.beginStmt, s.commitStmt,
		s.savepointStmt, s.releaseStmt, s.rollbackToStmt, s.streamStmt, s.allStmt,
	} {
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

// waitChan returns the channel the writer closes at its next commit.
func (s *Store) waitChan() <-chan struct{} {
	s.notifyMu.Lock()
	defer s.notifyMu.Unlock()
	return s.notify
}

// subscription reads pages from the store and sleeps on the writer's
// broadcast when caught up. Recv must not be called concurrently; Close may
// be called at any time.
type subscription struct {
	store     *Store
	last      uint64 // position of the last event delivered
	buf       []eventstore.RecordedEvent
	closed    chan struct{}
	closeOnce sync.Once
}

func (sub *subscription) Recv(ctx context.Context) (eventstore.RecordedEvent, error) {
	for {
		select {
		case <-sub.closed:
			return eventstore.RecordedEvent{}, eventstore.ErrClosed
		case <-sub.store.closed:
			return eventstore.RecordedEvent{}, eventstore.ErrClosed
		default:
		}
		if err := ctx.Err(); err != nil {
			return eventstore.RecordedEvent{}, err
		}
		if len(sub.buf) > 0 {
			e := sub.buf[0]
			sub.buf[0] = eventstore.RecordedEvent{}
			sub.buf = sub.buf[1:]
			sub.last = e.Position
			return e, nil
		}
		wait := sub.store.waitChan()
		if sub.store.head.Load() > sub.last {
			evs, err := sub.store.readAll(ctx, sub.last, subscriptionPage)
			if err != nil {
				if ctxErr := ctx.Err(); ctxErr != nil {
					return eventstore.RecordedEvent{}, ctxErr
				}
				return eventstore.RecordedEvent{}, err
			}
			if len(evs) > 0 {
				sub.buf = evs
				continue
			}
		}
		select {
		case <-wait:
		case <-ctx.Done():
		case <-sub.closed:
		case <-sub.store.closed:
		}
	}
}

func (sub *subscription) Close() error {
	sub.closeOnce.Do(func() { close(sub.closed) })
	return nil
}

// maxMultiInsert bounds the appends written with one INSERT statement.
const maxMultiInsert = 8

// applyOneStatement writes all of an append's events with one INSERT: the
// statement either inserts every row or, on a constraint error, none.
func (s *Store) applyOneStatement(ctx context.Context, r *appendReq, state map[string]streamState, rev uint64) (res eventstore.AppendResult, err, fatal error) {
	n := len(r.events)
	stmt, ok := s.multiInsert[n]
	if !ok {
		q := "INSERT INTO events (stream, revision, id, type, payload) VALUES (?, ?, ?, ?, ?)" +
			strings.Repeat(", (?, ?, ?, ?, ?)", n-1)
		if stmt, fatal = s.wconn.PrepareContext(ctx, q); fatal != nil {
			return res, nil, fatal
		}
		if s.multiInsert == nil {
			s.multiInsert = map[int]*sql.Stmt{}
		}
		s.multiInsert[n] = stmt
	}
	args := make([]any, 0, 5*n)
	for i, e := range r.events {
		payload := e.Payload
		if payload == nil {
			payload = []byte{}
		}
		args = append(args, r.stream, int64(rev)+int64(i), e.ID, e.Type, payload)
	}
	out, err := stmt.ExecContext(ctx, args...)
	var pos int64
	if err == nil {
		pos, err = out.LastInsertId()
	}
	if err != nil {
		var se sqlite3.Error
		if errors.As(err, &se) && se.Code == sqlite3.ErrConstraint {
			if se.ExtendedCode == sqlite3.ErrConstraintUnique || se.ExtendedCode == sqlite3.ErrConstraintPrimaryKey {
				return res, fmt.Errorf("eventstore/sqlite: append to %q: duplicate event id: %w", r.stream, err), nil
			}
			return res, fmt.Errorf("eventstore/sqlite: append to %q: %w", r.stream, err), nil
		}
		return res, nil, err
	}
	last := rev + uint64(n) - 1
	state[r.stream] = streamState{exists: true, last: last}
	return eventstore.AppendResult{NextExpected: last, Position: uint64(pos)}, nil, nil
}

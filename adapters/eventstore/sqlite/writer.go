package sqlite

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/mattn/go-sqlite3"

	"github.com/chronolog/chronolog/domain/eventstore"
)

type appendReq struct {
	ctx      context.Context
	stream   string
	expected eventstore.ExpectedState
	events   []eventstore.EventData
	enc      encodedAppend
	done     chan appendResp // buffered, 1
}

type appendResp struct {
	res eventstore.AppendResult
	err error
}

// reqPool recycles appendReqs (and their channels) whose answer was read.
var reqPool = sync.Pool{New: func() any { return &appendReq{done: make(chan appendResp, 1)} }}

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
// and returns once the commit is durable. Event ids must be canonical
// lower-case UUIDs, unique across the store.
//
// Its answer is definitive: nil means the events are durable, an error
// means they are not and never will be. ctx bounds only the wait for the
// writer to take the append; an append whose ctx is done before its batch
// is committed is left out and answered with ctx.Err(). Once the writer
// has it, Append waits for the commit's outcome, however long the commit
// takes, rather than answer "unknown": a caller that fails closed on an
// error (the TSA discards the token) must never find it recorded after
// all. After Close, Append returns eventstore.ErrClosed.
func (s *Store) Append(ctx context.Context, stream string, expected eventstore.ExpectedState, events ...eventstore.EventData) (eventstore.AppendResult, error) {
	if s.readOnly {
		return eventstore.AppendResult{}, fmt.Errorf("%w: no append (to %q)", ErrReadOnly, stream)
	}
	if err := validate(stream, events); err != nil {
		return eventstore.AppendResult{}, err
	}
	if err := ctx.Err(); err != nil {
		return eventstore.AppendResult{}, err
	}
	enc, err := encodeAppend(events, s.dicts)
	if err != nil {
		return eventstore.AppendResult{}, fmt.Errorf("eventstore/sqlite: append to %q: %w", stream, err)
	}
	req := reqPool.Get().(*appendReq)
	req.ctx, req.stream, req.expected, req.events, req.enc = ctx, stream, expected, events, enc
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
	r := <-req.done
	*req = appendReq{done: req.done}
	reqPool.Put(req)
	return r.res, r.err
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
	resps := make([]appendResp, len(batch))
	live := 0
	for i, r := range batch {
		// An append whose caller has already given up is not written;
		// its caller learns so from the answer it waits for.
		if err := r.ctx.Err(); err != nil {
			resps[i].err = err
			continue
		}
		live++
	}
	if d := s.dicts.learned.Swap(nil); d != nil {
		// Stored before any record is compressed with it; if it cannot
		// be, appends go on with the one they have.
		var id int64
		if err := s.wconn.Raw(func(any) error {
			var err error
			id, err = s.w.storeDict(d.Bytes())
			return err
		}); err == nil {
			s.dicts.use(uint64(id), d)
		}
	}
	var head uint64
	var failed error
	if live > 0 {
		failed = s.wconn.Raw(func(any) error {
			var err error
			head, err = s.w.commitBatch(batch, resps, state)
			return err
		})
	}
	if failed != nil {
		for i := range resps {
			if resps[i].err == nil {
				resps[i] = appendResp{err: failed}
			}
		}
	} else if head > s.head.Load() {
		s.tail.push(committedEvents(batch, resps))
		s.head.Store(head)
		s.notifyMu.Lock()
		close(s.notify)
		s.notify = make(chan struct{})
		s.notifyMu.Unlock()
	}
	for i, r := range batch {
		r.done <- resps[i]
	}
}

// maxIDsPerStmt bounds the event ids inserted by one statement; larger
// appends are guarded by a SAVEPOINT instead.
const maxIDsPerStmt = 16

// writerStmts are the writer's statements on its driver connection. They
// are used only inside wconn.Raw, by one goroutine at a time.
type writerStmts struct {
	begin, commit, rollback        driver.Stmt
	savepoint, release, rollbackTo driver.Stmt
	head, lastRev                  driver.Stmt
	insert, unappend               driver.Stmt
	insertDict                     driver.Stmt
	ids                            [maxIDsPerStmt + 1]driver.Stmt // ids[n] inserts n ids
	args                           driverArgs
}

const headQuery = "SELECT coalesce(max(last_position), 0) FROM appends"

func (w *writerStmts) prepare(c *sqlite3.SQLiteConn) error {
	for _, p := range []struct {
		stmt *driver.Stmt
		q    string
	}{
		{&w.begin, "BEGIN IMMEDIATE"},
		{&w.commit, "COMMIT"},
		{&w.rollback, "ROLLBACK"},
		{&w.savepoint, "SAVEPOINT append"},
		{&w.release, "RELEASE append"},
		{&w.rollbackTo, "ROLLBACK TO append"},
		{&w.head, headQuery},
		{&w.lastRev, "SELECT first_revision + count - 1 FROM appends WHERE stream = ? ORDER BY first_revision DESC LIMIT 1"},
		{&w.insert, "INSERT INTO appends (last_position, stream, first_revision, count, record) VALUES (?, ?, ?, ?, ?)"},
		{&w.unappend, "DELETE FROM appends WHERE last_position = ?"},
		{&w.insertDict, "INSERT INTO dictionaries (dict) VALUES (?)"},
	} {
		st, err := c.Prepare(p.q)
		if err != nil {
			return fmt.Errorf("prepare %s: %w", p.q, err)
		}
		*p.stmt = st
	}
	for n := 1; n <= maxIDsPerStmt; n++ {
		q := "INSERT INTO event_ids (id, position) VALUES (?, ?)" + strings.Repeat(", (?, ?)", n-1)
		st, err := c.Prepare(q)
		if err != nil {
			return fmt.Errorf("prepare %s: %w", q, err)
		}
		w.ids[n] = st
	}
	return nil
}

func (w *writerStmts) close() error {
	var errs []error
	all := append([]driver.Stmt{w.begin, w.commit, w.rollback, w.savepoint, w.release, w.rollbackTo,
		w.head, w.lastRev, w.insert, w.unappend, w.insertDict}, w.ids[:]...)
	for _, st := range all {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	*w = writerStmts{}
	return errors.Join(errs...)
}

func (w *writerStmts) exec(st driver.Stmt) error {
	_, err := st.(driver.StmtExecContext).ExecContext(context.Background(), w.args)
	return err
}

// queryInt runs a one-column query; found is false when it has no row.
func (w *writerStmts) queryInt(st driver.Stmt) (v int64, found bool, err error) {
	rows, err := st.(driver.StmtQueryContext).QueryContext(context.Background(), w.args)
	if err != nil {
		return 0, false, err
	}
	defer rows.Close()
	dest := []driver.Value{nil}
	switch err := rows.Next(dest); {
	case errors.Is(err, io.EOF):
		return 0, false, nil
	case err != nil:
		return 0, false, err
	}
	v, ok := dest[0].(int64)
	if !ok {
		return 0, false, fmt.Errorf("query returned a %T", dest[0])
	}
	return v, true, nil
}

func (w *writerStmts) run(st driver.Stmt, args ...driver.Value) error {
	w.args.reset()
	for _, a := range args {
		w.args.add(a)
	}
	return w.exec(st)
}

// storeDict stores a dictionary in a transaction of its own and returns
// its id.
func (w *writerStmts) storeDict(dict []byte) (int64, error) {
	if err := w.run(w.begin); err != nil {
		return 0, err
	}
	w.args.reset()
	w.args.add(dict)
	res, err := w.insertDict.(driver.StmtExecContext).ExecContext(context.Background(), w.args)
	var id int64
	if err == nil {
		id, err = res.LastInsertId()
	}
	if err == nil {
		err = w.run(w.commit)
	}
	if err != nil {
		_ = w.run(w.rollback)
		return 0, err
	}
	return id, nil
}

// commitBatch runs one transaction over the live appends of batch and
// fills their answers. An error it returns fails every append of the batch:
// nothing of it was committed. It returns the new head.
func (w *writerStmts) commitBatch(batch []*appendReq, resps []appendResp, state map[string]streamState) (uint64, error) {
	if err := w.run(w.begin); err != nil {
		return 0, fmt.Errorf("eventstore/sqlite: begin: %w", err)
	}
	abort := func(err error) (uint64, error) {
		_ = w.run(w.rollback)
		return 0, err
	}
	// The head is read under the write lock: another process may have
	// written since our last batch.
	w.args.reset()
	h, _, err := w.queryInt(w.head)
	if err != nil {
		return abort(fmt.Errorf("eventstore/sqlite: read head: %w", err))
	}
	head := uint64(h)
	for i, r := range batch {
		if resps[i].err != nil {
			continue
		}
		res, err, fatal := w.apply(r, state, &head)
		if fatal != nil {
			return abort(fmt.Errorf("eventstore/sqlite: append to %q: %w", r.stream, fatal))
		}
		resps[i] = appendResp{res: res, err: err}
	}
	if err := w.run(w.commit); err != nil {
		return abort(fmt.Errorf("eventstore/sqlite: commit: %w", err))
	}
	return head, nil
}

// apply writes one append inside the open transaction. err fails this
// append alone and leaves nothing of it; fatal aborts the whole batch.
func (w *writerStmts) apply(r *appendReq, state map[string]streamState, head *uint64) (res eventstore.AppendResult, err, fatal error) {
	st, known := state[r.stream]
	// A stream that must not exist needs no lookup: the unique (stream,
	// first revision) index refuses revision 0 of an existing stream.
	if !known && r.expected != eventstore.NoStream {
		if st, fatal = w.streamState(r.stream); fatal != nil {
			return res, nil, fatal
		}
	}
	if !r.expected.Admits(st.exists, st.last) {
		return res, wrongState(r, st), nil
	}
	n := uint64(len(r.events))
	first := uint64(0)
	if st.exists {
		first = st.last + 1
	}
	last := *head + n
	guarded := n > maxIDsPerStmt
	if guarded {
		if err := w.run(w.savepoint); err != nil {
			return res, nil, err
		}
	}
	if err := w.run(w.insert, int64(last), r.stream, int64(first), int64(n), r.enc.record); err != nil {
		if guarded {
			if fatal := w.undo(); fatal != nil {
				return res, nil, fatal
			}
		}
		if isUnique(err) {
			// The stream has revisions this writer did not know of.
			if st, fatal = w.streamState(r.stream); fatal != nil {
				return res, nil, fatal
			}
			return res, wrongState(r, st), nil
		}
		if isConstraint(err) {
			return res, fmt.Errorf("eventstore/sqlite: append to %q: %w", r.stream, err), nil
		}
		return res, nil, err
	}
	if err := w.insertIDs(r.enc.ids, last-n+1); err != nil {
		if guarded {
			fatal = w.undo()
		} else {
			fatal = w.run(w.unappend, int64(last))
		}
		if fatal != nil {
			return res, nil, fatal
		}
		if isUnique(err) {
			return res, fmt.Errorf("eventstore/sqlite: append to %q: duplicate event id: %w", r.stream, err), nil
		}
		if isConstraint(err) {
			return res, fmt.Errorf("eventstore/sqlite: append to %q: %w", r.stream, err), nil
		}
		return res, nil, err
	}
	if guarded {
		if err := w.run(w.release); err != nil {
			return res, nil, err
		}
	}
	*head = last
	next := first + n - 1
	state[r.stream] = streamState{exists: true, last: next}
	return eventstore.AppendResult{NextExpected: next, Position: last}, nil, nil
}

// insertIDs indexes ids at positions from firstPos on, maxIDsPerStmt at a
// time.
func (w *writerStmts) insertIDs(ids [][16]byte, firstPos uint64) error {
	for len(ids) > 0 {
		k := min(len(ids), maxIDsPerStmt)
		w.args.reset()
		for i := range ids[:k] {
			w.args.add(ids[i][:])
			w.args.add(int64(firstPos) + int64(i))
		}
		if err := w.exec(w.ids[k]); err != nil {
			return err
		}
		ids, firstPos = ids[k:], firstPos+uint64(k)
	}
	return nil
}

// undo rolls back to and releases the append's SAVEPOINT.
func (w *writerStmts) undo() error {
	if err := w.run(w.rollbackTo); err != nil {
		return err
	}
	return w.run(w.release)
}

func (w *writerStmts) streamState(stream string) (streamState, error) {
	w.args.reset()
	w.args.add(stream)
	last, found, err := w.queryInt(w.lastRev)
	if err != nil {
		return streamState{}, fmt.Errorf("read revision: %w", err)
	}
	return streamState{exists: found, last: uint64(last)}, nil
}

func wrongState(r *appendReq, st streamState) error {
	return &eventstore.WrongExpectedStateError{Stream: r.stream, Expected: r.expected, Exists: st.exists, Actual: st.last}
}

func isConstraint(err error) bool {
	var se sqlite3.Error
	return errors.As(err, &se) && se.Code == sqlite3.ErrConstraint
}

func isUnique(err error) bool {
	var se sqlite3.Error
	return errors.As(err, &se) && (se.ExtendedCode == sqlite3.ErrConstraintUnique || se.ExtendedCode == sqlite3.ErrConstraintPrimaryKey)
}

// committedEvents are the events of the batch's appends that committed, in
// position order, for the live tail.
func committedEvents(batch []*appendReq, resps []appendResp) []eventstore.RecordedEvent {
	var out []eventstore.RecordedEvent
	for i, r := range batch {
		if resps[i].err != nil {
			continue
		}
		n := uint64(len(r.events))
		first, rev := resps[i].res.Position-n+1, resps[i].res.NextExpected-n+1
		for j, e := range r.events {
			out = append(out, eventstore.RecordedEvent{
				Position: first + uint64(j), Stream: r.stream, Revision: rev + uint64(j),
				ID: e.ID, Type: e.Type, Payload: r.enc.payloads[j],
			})
		}
	}
	return out
}

package translog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/chronolog/chronolog/domain/events"
	"github.com/chronolog/chronolog/domain/eventstore"
	"github.com/chronolog/chronolog/domain/merkle"
)

// fakeStore is an in-memory event store with EventStoreDB semantics,
// enough for the writer.
type fakeStore struct {
	mu      sync.Mutex
	all     []eventstore.RecordedEvent
	streams map[string]int
	changed chan struct{}
}

func newFakeStore() *fakeStore {
	return &fakeStore{streams: map[string]int{}, changed: make(chan struct{})}
}

func (s *fakeStore) Append(_ context.Context, stream string, exp eventstore.ExpectedState, evs ...eventstore.EventData) (eventstore.AppendResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, exists := s.streams[stream]
	if !exp.Admits(exists, uint64(n-1)) {
		return eventstore.AppendResult{}, &eventstore.WrongExpectedStateError{Stream: stream, Expected: exp, Exists: exists, Actual: uint64(n - 1)}
	}
	for _, e := range evs {
		s.all = append(s.all, eventstore.RecordedEvent{Position: uint64(len(s.all) + 1), Stream: stream, Revision: uint64(n), ID: e.ID, Type: e.Type, Payload: e.Payload})
		n++
	}
	s.streams[stream] = n
	close(s.changed)
	s.changed = make(chan struct{})
	return eventstore.AppendResult{NextExpected: uint64(n - 1), Position: uint64(len(s.all))}, nil
}

func (s *fakeStore) size() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return uint64(len(s.all))
}

func (s *fakeStore) ReadStream(_ context.Context, stream string) ([]eventstore.RecordedEvent, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []eventstore.RecordedEvent
	for _, e := range s.all {
		if e.Stream == stream {
			out = append(out, e)
		}
	}
	if len(out) == 0 {
		return nil, eventstore.ErrStreamNotFound
	}
	return out, nil
}

func (s *fakeStore) SubscribeAll(_ context.Context, after uint64) (eventstore.Subscription, error) {
	return &fakeSub{s: s, next: after}, nil
}

type fakeSub struct {
	s    *fakeStore
	next uint64
}

func (f *fakeSub) Recv(ctx context.Context) (eventstore.RecordedEvent, error) {
	for {
		f.s.mu.Lock()
		if f.next < uint64(len(f.s.all)) {
			e := f.s.all[f.next]
			f.next++
			f.s.mu.Unlock()
			return e, nil
		}
		ch := f.s.changed
		f.s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return eventstore.RecordedEvent{}, ctx.Err()
		}
	}
}

func (f *fakeSub) Close() error { return nil }

// fakeLog is a log in memory that signs checkpoints and can be taken down.
type fakeLog struct {
	mu     sync.Mutex
	leaves [][]byte
	down   error
	signer note.Signer
	// queued is a leaf appended but not yet integrated: not counted in
	// Size, as Trillian's queued leaves are not, until an append at its
	// index finds it there.
	queued []byte
}

func (l *fakeLog) Append(_ context.Context, index uint64, leaf []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.down != nil {
		return l.down
	}
	switch {
	case index < uint64(len(l.leaves)):
		if !bytes.Equal(l.leaves[index], leaf) {
			return fmt.Errorf("%w: another leaf at %d", ErrConflict, index)
		}
		return nil
	case index > uint64(len(l.leaves)):
		return fmt.Errorf("%w: gap before %d", ErrConflict, index)
	}
	if l.queued != nil {
		q := l.queued
		l.queued = nil
		l.leaves = append(l.leaves, q)
		if !bytes.Equal(q, leaf) {
			return fmt.Errorf("%w: another leaf was queued at %d", ErrConflict, index)
		}
		return nil
	}
	l.leaves = append(l.leaves, bytes.Clone(leaf))
	return nil
}

func (l *fakeLog) Size(context.Context) (uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.down != nil {
		return 0, l.down
	}
	return uint64(len(l.leaves)), nil
}

func (l *fakeLog) Leaf(_ context.Context, i uint64) ([]byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.down != nil {
		return nil, l.down
	}
	return l.leaves[i], nil
}

func (l *fakeLog) hashes() []merkle.Hash {
	hs := make([]merkle.Hash, len(l.leaves))
	for i, b := range l.leaves {
		hs[i] = merkle.LeafHash(b)
	}
	return hs
}

func (l *fakeLog) Checkpoint(context.Context) ([]byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.down != nil {
		return nil, l.down
	}
	return SignCheckpoint(Checkpoint{Origin: l.signer.Name(), Size: uint64(len(l.leaves)), Root: merkle.Root(l.hashes())}, l.signer)
}

func (l *fakeLog) InclusionProof(_ context.Context, index, size uint64) ([]merkle.Hash, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return merkle.InclusionProof(index, l.hashes()[:size])
}

func (l *fakeLog) ConsistencyProof(_ context.Context, a, b uint64) ([]merkle.Hash, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return merkle.ConsistencyProof(a, l.hashes()[:b])
}

func (l *fakeLog) setDown(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.down = err
}

type seqIDs struct {
	mu sync.Mutex
	n  int
}

func (s *seqIDs) NewID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n++
	return fmt.Sprintf("00000000-0000-7000-8000-%012d", s.n)
}

type fixedClock struct{}

func (fixedClock) Now() time.Time { return time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC) }

type quiet struct{}

func (quiet) Info(string, ...any)  {}
func (quiet) Error(string, ...any) {}

type rig struct {
	store *fakeStore
	log   *fakeLog
	tick  chan time.Time
	w     *Writer
	stop  func() error
}

func startWriter(t *testing.T, store *fakeStore, log *fakeLog, maxEvents int) *rig {
	t.Helper()
	return startWriterWith(t, store, log, maxEvents, fixedClock{})
}

func startWriterWith(t *testing.T, store *fakeStore, log *fakeLog, maxEvents int, clock Clock) *rig {
	t.Helper()
	r := &rig{store: store, log: log, tick: make(chan time.Time)}
	w, err := NewWriter(WriterConfig{Backend: "tessera", MaxEvents: maxEvents, Node: "n1"},
		WriterPorts{Store: store, Log: log, IDs: &seqIDs{}, Clock: clock, Tick: r.tick, Logger: quiet{}})
	if err != nil {
		t.Fatal(err)
	}
	r.w = w
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	var once sync.Once
	var runErr error
	r.stop = func() error {
		once.Do(func() {
			cancel()
			runErr = <-done
		})
		return runErr
	}
	t.Cleanup(func() { r.stop() })
	return r
}

func (r *rig) tickOnce(t *testing.T) {
	t.Helper()
	select {
	case r.tick <- time.Time{}:
	case <-time.After(5 * time.Second):
		t.Fatal("the writer took no tick for 5 s")
	}
}

func appendEvents(t *testing.T, s *fakeStore, n int) {
	t.Helper()
	for i := range n {
		stream := fmt.Sprintf("tsr-%d-%d", time.Now().UnixNano(), i)
		if _, err := s.Append(context.Background(), stream, eventstore.NoStream,
			eventstore.EventData{ID: fmt.Sprintf("id-%s", stream), Type: events.TypeTimestampIssued, Payload: fmt.Appendf(nil, `{"n":%q}`, stream)}); err != nil {
			t.Fatal(err)
		}
	}
}

// waitCovered ticks until the log covers every event in the store that is
// not the writer's own trailing bookkeeping.
func (r *rig) waitCovered(t *testing.T, upTo uint64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for r.w.Status().Covered < upTo {
		if time.Now().After(deadline) {
			t.Fatalf("covered %d, want %d; status %+v", r.w.Status().Covered, upTo, r.w.Status())
		}
		r.tickOnce(t)
	}
}

// leafOf is the segment leaf over consecutive stored events.
func leafOf(evs []eventstore.RecordedEvent) SegmentLeaf {
	var hs []merkle.Hash
	for _, e := range evs {
		hs = append(hs, merkle.LeafHash(e.Payload))
	}
	return SegmentLeaf{First: evs[0].Position, Last: evs[len(evs)-1].Position, Count: uint64(len(evs)), Root: merkle.Root(hs)}
}

// leafOver is the leaf over the store's events first…last.
func leafOver(s *fakeStore, first, last uint64) SegmentLeaf {
	s.mu.Lock()
	defer s.mu.Unlock()
	return leafOf(s.all[first-1 : last])
}

// checkLog holds the log to the store: leaves cover consecutive positions
// with no gap and no repeat, each root is over the stored bytes, and each
// leaf has exactly one LogSegmentSealed at its index.
func checkLog(t *testing.T, store *fakeStore, log *fakeLog) {
	t.Helper()
	store.mu.Lock()
	all := append([]eventstore.RecordedEvent{}, store.all...)
	store.mu.Unlock()
	log.mu.Lock()
	leaves := append([][]byte{}, log.leaves...)
	log.mu.Unlock()
	next := uint64(1)
	for i, raw := range leaves {
		l, err := ParseSegmentLeaf(raw)
		if err != nil {
			t.Fatalf("leaf %d: %v", i, err)
		}
		if l.First != next {
			t.Fatalf("leaf %d starts at %d, want %d: a gap or a repeat", i, l.First, next)
		}
		if l != leafOf(all[l.First-1:l.Last]) {
			t.Fatalf("leaf %d does not commit to events %d–%d", i, l.First, l.Last)
		}
		next = l.Last + 1
	}
	sealed, _ := store.ReadStream(context.Background(), events.LogSegmentsStream)
	if len(sealed) != len(leaves) {
		t.Fatalf("%d LogSegmentSealed events for %d leaves", len(sealed), len(leaves))
	}
	for i, e := range sealed {
		_, ev, err := events.Decode(e.Payload)
		if err != nil || ev.(*events.LogSegmentSealed).Index != uint64(i) || e.Revision != uint64(i) {
			t.Fatalf("sealed event %d: %+v %v", i, ev, err)
		}
	}
}

func TestWriterSealsRecordsAndCheckpoints(t *testing.T) {
	signer, _ := keys(t, origin)
	store, log := newFakeStore(), &fakeLog{signer: signer}
	r := startWriter(t, store, log, 5)
	appendEvents(t, store, 12)
	r.waitCovered(t, 12)
	// A tick is taken before it is handled: tick until a checkpoint
	// covers every leaf.
	for deadline := time.Now().Add(5 * time.Second); ; {
		r.tickOnce(t)
		if st := r.w.Status(); st.CheckpointSize == st.Leaves {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no checkpoint caught up with the leaves: %+v", r.w.Status())
		}
	}
	if err := r.stop(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run returned %v", err)
	}
	st := r.w.Status()
	if !st.LogUp || st.Leaves < 3 || st.CheckpointSize < 3 || st.CheckpointSize > st.Leaves || st.LagSamples == 0 {
		t.Fatalf("status %+v", st)
	}
	checkLog(t, store, log)
	cps, err := store.ReadStream(context.Background(), events.LogCheckpointsStream)
	if err != nil || len(cps) == 0 {
		t.Fatalf("no checkpoint recorded: %v", err)
	}
	_, ev, _ := events.Decode(cps[len(cps)-1].Payload)
	if cp := ev.(*events.LogCheckpointSigned); cp.Size != st.CheckpointSize || cp.Origin != origin {
		t.Fatalf("last checkpoint %+v", cp)
	}
}

func TestWriterRidesOutALogOutageWithoutGapOrDuplicate(t *testing.T) {
	signer, _ := keys(t, origin)
	store, log := newFakeStore(), &fakeLog{signer: signer}
	r := startWriter(t, store, log, 4)
	appendEvents(t, store, 6)
	r.waitCovered(t, 6)
	log.setDown(errors.New("connection refused"))
	appendEvents(t, store, 9) // issuance goes on
	for range 3 {
		r.tickOnce(t)
	}
	if st := r.w.Status(); st.LogUp || st.LastError == "" {
		t.Fatalf("status during the outage %+v", st)
	}
	log.setDown(nil)
	r.waitCovered(t, store.size()-1) // everything but perhaps trailing bookkeeping
	for deadline := time.Now().Add(5 * time.Second); !r.w.Status().LogUp; r.tickOnce(t) {
		if time.Now().After(deadline) {
			t.Fatalf("still down after recovery: %+v", r.w.Status())
		}
	}
	r.stop()
	checkLog(t, store, log)
}

func TestWriterResumesAfterRestartAndLostBookkeeping(t *testing.T) {
	signer, _ := keys(t, origin)
	store, log := newFakeStore(), &fakeLog{signer: signer}
	r := startWriter(t, store, log, 3)
	appendEvents(t, store, 7)
	r.waitCovered(t, 7)
	r.stop()
	// A crash between appending a leaf and recording it: the log holds a
	// leaf the store has no LogSegmentSealed for.
	last, _ := ParseSegmentLeaf(log.leaves[len(log.leaves)-1])
	appendEvents(t, store, 2)
	seg := leafOver(store, last.Last+1, store.size())
	if err := log.Append(context.Background(), uint64(len(log.leaves)), seg.Marshal()); err != nil {
		t.Fatal(err)
	}
	r2 := startWriter(t, store, log, 3)
	appendEvents(t, store, 4)
	r2.waitCovered(t, store.size()-1)
	r2.stop()
	checkLog(t, store, log)
}

func TestWriterStopsOnAForeignLeaf(t *testing.T) {
	signer, _ := keys(t, origin)
	store, log := newFakeStore(), &fakeLog{signer: signer}
	// A segments stream claiming more leaves than the log has: the log
	// lost leaves, which the writer must not paper over.
	for i := range 2 {
		exp := eventstore.NoStream
		if i > 0 {
			exp = eventstore.AtRevision(uint64(i - 1))
		}
		store.Append(context.Background(), events.LogSegmentsStream, exp, eventstore.EventData{ID: fmt.Sprint(i), Type: events.TypeLogSegmentSealed, Payload: []byte("{}")})
	}
	r := startWriter(t, store, log, 3)
	if err := r.stop(); !errors.Is(err, ErrConflict) {
		t.Fatalf("Run = %v, want ErrConflict", err)
	}
}

// TestWriterAdoptsAnEarlierCutQueuedBeforeACrash: the log integrates, after
// the writer restarted, a leaf its earlier life queued (Trillian leaves
// queued are not in its size). The writer's own cut of that segment then
// conflicts; it adopts the log's leaf and goes on after it, with no gap or
// repeat.
func TestWriterAdoptsAnEarlierCutQueuedBeforeACrash(t *testing.T) {
	signer, _ := keys(t, origin)
	store, log := newFakeStore(), &fakeLog{signer: signer}
	r := startWriter(t, store, log, 3)
	appendEvents(t, store, 5)
	r.waitCovered(t, 5)
	r.stop()
	last, _ := ParseSegmentLeaf(log.leaves[len(log.leaves)-1])
	appendEvents(t, store, 4)
	// The earlier life cut [last+1, last+2] and queued it.
	queued := leafOver(store, last.Last+1, last.Last+2)
	log.mu.Lock()
	log.queued = queued.Marshal()
	log.mu.Unlock()

	r2 := startWriter(t, store, log, 3)
	r2.waitCovered(t, store.size()-1)
	r2.stop()
	checkLog(t, store, log)
	found := false
	for _, l := range log.leaves {
		found = found || bytes.Equal(l, queued.Marshal())
	}
	if !found {
		t.Fatal("the queued leaf is not in the log")
	}
}

// manualClock is a clock the test moves.
type manualClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// waitSeen waits until the writer has received every event in the store.
func (r *rig) waitSeen(t *testing.T) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); r.w.Status().Seen < r.store.size(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the writer saw %d of %d events", r.w.Status().Seen, r.store.size())
		}
	}
}

// tickUntilCheckpointed ticks until a recorded checkpoint covers every
// event up to position upTo, and the writer has received what it recorded
// meanwhile. (A tick is taken before it is handled: the status seen after
// one may be the one before it.)
func (r *rig) tickUntilCheckpointed(t *testing.T, upTo uint64) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; {
		r.tickOnce(t)
		if st := r.w.Status(); st.Covered >= upTo && st.CheckpointSize == st.Leaves {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no checkpoint covers position %d: %+v", upTo, r.w.Status())
		}
	}
	r.waitSeen(t)
}

// TestWriterLagCountsFromTheFirstSubstantiveEvent: after an idle spell the
// writer's own bookkeeping events (the last segment's LogSegmentSealed,
// the last LogCheckpointSigned) have waited, uncut, since before it. The
// first segment cut under the next load holds them, but its lag runs from
// the first event that made it worth cutting reaching the writer, not
// from them.
func TestWriterLagCountsFromTheFirstSubstantiveEvent(t *testing.T) {
	signer, _ := keys(t, origin)
	clock := &manualClock{now: time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)}
	store, log := newFakeStore(), &fakeLog{signer: signer}
	r := startWriterWith(t, store, log, 100, clock)
	w := r.w

	const tick = 250 * time.Millisecond
	// Load: three events, cut and checkpointed a tick after they arrive.
	appendEvents(t, store, 3)
	r.waitSeen(t)
	clock.advance(tick)
	r.tickUntilCheckpointed(t, store.size())
	// Idle: only the writer's bookkeeping is pending, and no tick cuts it.
	if st := w.Status(); st.Covered >= store.size() {
		t.Fatalf("no bookkeeping pending after the checkpoint: %+v, %d events", st, store.size())
	}
	for range 4 {
		clock.advance(25 * time.Second / 4)
		r.tickOnce(t)
	}
	// Load again.
	appendEvents(t, store, 3)
	r.waitSeen(t)
	clock.advance(tick)
	r.tickUntilCheckpointed(t, store.size())

	st := w.Status()
	if st.LagSamples != 2 || st.LagMax != tick || st.LagP50 != tick {
		t.Errorf("lag over %d segments: p50 %s, max %s; want 2 segments, each %s", st.LagSamples, st.LagP50, st.LagMax, tick)
	}
}

// TestWriterLagLeavesOutSegmentsOfBookkeepingAlone: a segment cut by size
// that holds only the writer's bookkeeping has no event of the TSA's to
// time, and gives no lag sample (rather than one from the zero time).
func TestWriterLagLeavesOutSegmentsOfBookkeepingAlone(t *testing.T) {
	signer, _ := keys(t, origin)
	clock := &manualClock{now: time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)}
	store, log := newFakeStore(), &fakeLog{signer: signer}
	// Two events a segment: the LogSegmentSealed and LogCheckpointSigned
	// of each round fill the next segment by themselves.
	r := startWriterWith(t, store, log, 2, clock)
	appendEvents(t, store, 2)
	r.waitSeen(t) // the segment of the two is cut
	clock.advance(time.Second)
	// The first tick checkpoints it; each tick after checkpoints a
	// segment of the previous round's bookkeeping.
	for deadline := time.Now().Add(5 * time.Second); r.w.Status().CheckpointSize < 3; r.tickOnce(t) {
		if time.Now().After(deadline) {
			t.Fatalf("no third checkpoint: %+v", r.w.Status())
		}
	}
	if st := r.w.Status(); st.LagSamples != 1 || st.LagMax != time.Second {
		t.Errorf("%d checkpointed segments gave %d lag samples, max %s; want 1 sample of 1s", st.CheckpointSize, st.LagSamples, st.LagMax)
	}
}

// errorCount counts what the writer logs as an error.
type errorCount struct {
	mu     sync.Mutex
	errors []string
}

func (*errorCount) Info(string, ...any) {}
func (c *errorCount) Error(msg string, _ ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.errors = append(c.errors, msg)
}

// A step cut short because the writer is stopping is no failure: the
// step is taken again at the next start, and an error in the server's
// log at every shutdown would teach operators to ignore the real ones.
func TestWriterStoppingLogsNoError(t *testing.T) {
	signer, _ := keys(t, origin)
	logged := &errorCount{}
	tick := make(chan time.Time)
	close(tick) // every retry may go at once
	w, err := NewWriter(WriterConfig{Backend: "tessera", MaxEvents: 5, Node: "n1"},
		WriterPorts{Store: newFakeStore(), Log: &fakeLog{signer: signer}, IDs: &seqIDs{}, Clock: fixedClock{}, Tick: tick, Logger: logged})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err = w.retry(ctx, "record a sealed segment", func() error {
		return fmt.Errorf("append: %w", ctx.Err())
	})
	if !errors.Is(err, context.Canceled) || len(logged.errors) != 0 {
		t.Fatalf("stopping: returned %v, logged %q", err, logged.errors)
	}

	// A real failure is still logged, once, while the writer retries.
	ctx, cancel = context.WithCancel(context.Background())
	tries := 0
	err = w.retry(ctx, "record a sealed segment", func() error {
		if tries++; tries == 3 {
			cancel()
		}
		return errors.New("disk full")
	})
	if !errors.Is(err, context.Canceled) || len(logged.errors) != 1 {
		t.Fatalf("failing: returned %v, logged %q", err, logged.errors)
	}
}

// Package eventstoretest is the contract every eventstore.Store adapter
// passes: SQLite now, PostgreSQL and EventStoreDB later. An adapter's test
// package calls Run with a function opening fresh stores; adapters that can
// be killed and reopened also call RunCrash, and MaybeCrashChild from
// TestMain.
package eventstoretest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/chronolog/chronolog/domain/eventstore"
)

// opTimeout bounds every single operation of the suite, so that a hung
// adapter fails the test instead of stalling it.
const opTimeout = 10 * time.Second

// Run runs the contract suite. Subtests run in parallel, each on its own
// store from open, which returns a fresh, empty store. The suite closes it
// (Close must be idempotent); open may register its own cleanup with
// t.Cleanup, which then runs after the suite's Close.
func Run(t *testing.T, open func(t *testing.T) eventstore.Store) {
	t.Helper()
	if open == nil {
		t.Fatal("eventstoretest: open is nil")
	}
	tests := []struct {
		name string
		fn   func(t *testing.T, s eventstore.Store)
	}{
		{"AppendAndReadBack", testAppendAndReadBack},
		{"RevisionsContinue", testRevisionsContinue},
		{"ExpectedState", testExpectedState},
		{"FailedAppendLeavesNothing", testFailedAppendLeavesNothing},
		{"DuplicateEventID", testDuplicateEventID},
		{"InvalidInput", testInvalidInput},
		{"ReadStreamNotFound", testReadStreamNotFound},
		{"ReadAllPaging", testReadAllPaging},
		{"GlobalOrderIsCommitOrder", testGlobalOrder},
		{"CanceledContext", testCanceledContext},
		{"CancelAgreesWithStore", testCancelAgreesWithStore},
		{"ConcurrentWriters", testConcurrentWriters},
		{"SubscribeFromStart", testSubscribeFromStart},
		{"SubscribeFromMiddle", testSubscribeFromMiddle},
		{"SubscribeWhileWriting", testSubscribeWhileWriting},
		{"SubscriptionClose", testSubscriptionClose},
		{"StoreClose", testStoreClose},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := open(t)
			t.Cleanup(func() { _ = s.Close() })
			tc.fn(t, s)
		})
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), opTimeout)
	t.Cleanup(cancel)
	return ctx
}

// NewEvent returns an event with a fresh UUIDv7 id and the given type and
// payload.
func NewEvent(typ string, payload []byte) eventstore.EventData {
	return eventstore.EventData{ID: uuid.Must(uuid.NewV7()).String(), Type: typ, Payload: payload}
}

func jsonEvent(n int) eventstore.EventData {
	return NewEvent("Test.v1", fmt.Appendf(nil, `{"n":%d}`, n))
}

func mustAppend(t *testing.T, s eventstore.Store, stream string, exp eventstore.ExpectedState, evs ...eventstore.EventData) eventstore.AppendResult {
	t.Helper()
	res, err := s.Append(ctxT(t), stream, exp, evs...)
	if err != nil {
		t.Fatalf("Append(%q, %v): %v", stream, exp, err)
	}
	return res
}

func mustReadStream(t *testing.T, s eventstore.Store, stream string) []eventstore.RecordedEvent {
	t.Helper()
	evs, err := s.ReadStream(ctxT(t), stream)
	if err != nil {
		t.Fatalf("ReadStream(%q): %v", stream, err)
	}
	return evs
}

// readAllEvents pages through ReadAll and checks positions strictly grow.
func readAllEvents(t *testing.T, s eventstore.Store, page int) []eventstore.RecordedEvent {
	t.Helper()
	var out []eventstore.RecordedEvent
	var after uint64
	for {
		evs, err := s.ReadAll(ctxT(t), after, page)
		if err != nil {
			t.Fatalf("ReadAll(%d, %d): %v", after, page, err)
		}
		if len(evs) > page {
			t.Fatalf("ReadAll(%d, %d) returned %d events", after, page, len(evs))
		}
		for _, e := range evs {
			if e.Position <= after {
				t.Fatalf("ReadAll(after=%d): position %d does not grow (previous %d)", after, e.Position, after)
			}
			after = e.Position
		}
		out = append(out, evs...)
		if len(evs) < page {
			return out
		}
	}
}

func sameEvent(want eventstore.EventData, got eventstore.RecordedEvent) error {
	if got.ID != want.ID || got.Type != want.Type || !bytes.Equal(got.Payload, want.Payload) {
		return fmt.Errorf("got event {%s %s %q}, want {%s %s %q}", got.ID, got.Type, got.Payload, want.ID, want.Type, want.Payload)
	}
	return nil
}

func testAppendAndReadBack(t *testing.T, s eventstore.Store) {
	big := bytes.Repeat([]byte(`{"k":"0123456789abcdef"},`), 4096) // ~100 KB
	evs := []eventstore.EventData{
		NewEvent("TimestampRequested.v1", []byte(`{"serial":"01","nonce":"\u00e9\u2028"}`)),
		NewEvent("Binary.v1", []byte{0x00, 0xff, 0xfe, '\n', 0x00, 0x80, 'x'}), // not UTF-8, NULs
		NewEvent("TimestampIssued.v1", big),
		NewEvent("Spaces.v1", []byte("  {\"a\" : 1 }\r\n ")), // not canonical JSON: kept as is
	}
	res := mustAppend(t, s, "tsr-1", eventstore.NoStream, evs...)
	if res.NextExpected != 3 {
		t.Errorf("NextExpected = %d, want 3", res.NextExpected)
	}
	got := mustReadStream(t, s, "tsr-1")
	if len(got) != len(evs) {
		t.Fatalf("ReadStream returned %d events, want %d", len(got), len(evs))
	}
	var prev uint64
	for i, e := range got {
		if err := sameEvent(evs[i], e); err != nil {
			t.Errorf("event %d: %v", i, err)
		}
		if e.Stream != "tsr-1" {
			t.Errorf("event %d: Stream = %q", i, e.Stream)
		}
		if e.Revision != uint64(i) {
			t.Errorf("event %d: Revision = %d", i, e.Revision)
		}
		if e.Position == 0 || e.Position <= prev {
			t.Errorf("event %d: Position %d after %d", i, e.Position, prev)
		}
		prev = e.Position
	}
	if res.Position != got[len(got)-1].Position {
		t.Errorf("AppendResult.Position = %d, last event's position = %d", res.Position, got[len(got)-1].Position)
	}
	all := readAllEvents(t, s, 100)
	if len(all) != len(evs) {
		t.Fatalf("ReadAll returned %d events, want %d", len(all), len(evs))
	}
	for i, e := range all {
		if err := sameEvent(evs[i], e); err != nil {
			t.Errorf("ReadAll event %d: %v", i, err)
		}
		if e.Stream != got[i].Stream || e.Revision != got[i].Revision || e.Position != got[i].Position {
			t.Errorf("ReadAll event %d = %s@%d pos %d, ReadStream says %s@%d pos %d",
				i, e.Stream, e.Revision, e.Position, got[i].Stream, got[i].Revision, got[i].Position)
		}
	}
	// The caller's slices may be reused after Append returns.
	evs[0].Payload = nil
	if again := mustReadStream(t, s, "tsr-1"); !bytes.Equal(again[0].Payload, got[0].Payload) {
		t.Error("stored payload changed with the caller's slice")
	}
}

func testRevisionsContinue(t *testing.T, s eventstore.Store) {
	r1 := mustAppend(t, s, "s", eventstore.NoStream, jsonEvent(0), jsonEvent(1))
	r2 := mustAppend(t, s, "s", eventstore.Any, jsonEvent(2))
	r3 := mustAppend(t, s, "s", eventstore.AtRevision(2), jsonEvent(3), jsonEvent(4), jsonEvent(5))
	if r1.NextExpected != 1 || r2.NextExpected != 2 || r3.NextExpected != 5 {
		t.Errorf("NextExpected = %d, %d, %d, want 1, 2, 5", r1.NextExpected, r2.NextExpected, r3.NextExpected)
	}
	if !(r1.Position < r2.Position && r2.Position < r3.Position) {
		t.Errorf("positions %d, %d, %d do not grow", r1.Position, r2.Position, r3.Position)
	}
	got := mustReadStream(t, s, "s")
	for i, e := range got {
		if e.Revision != uint64(i) {
			t.Errorf("event %d has revision %d", i, e.Revision)
		}
	}
	if len(got) != 6 {
		t.Errorf("stream has %d events, want 6", len(got))
	}
}

func testExpectedState(t *testing.T, s eventstore.Store) {
	// Existing streams hold revisions 0 and 1.
	cases := []struct {
		stream string
		exp    eventstore.ExpectedState
		ok     bool
		exists bool
		actual uint64
	}{
		{"two", eventstore.Any, true, true, 1},
		{"new-any", eventstore.Any, true, false, 0},
		{"two", eventstore.NoStream, false, true, 1},
		{"new-nostream", eventstore.NoStream, true, false, 0},
		{"two", eventstore.StreamExists, true, true, 1},
		{"new-exists", eventstore.StreamExists, false, false, 0},
		{"two", eventstore.AtRevision(1), true, true, 1},
		{"two", eventstore.AtRevision(0), false, true, 1},
		{"two", eventstore.AtRevision(2), false, true, 1},
		{"new-rev", eventstore.AtRevision(0), false, false, 0},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s/%v", c.stream, c.exp), func(t *testing.T) {
			// Each case gets its own stream in the state it describes.
			stream := c.stream + "-" + uuid.NewString()
			if c.exists {
				mustAppend(t, s, stream, eventstore.NoStream, jsonEvent(0), jsonEvent(1))
			}
			before, _ := s.ReadStream(ctxT(t), stream)
			res, err := s.Append(ctxT(t), stream, c.exp, jsonEvent(9))
			if c.ok {
				if err != nil {
					t.Fatalf("Append with %v: %v", c.exp, err)
				}
				want := uint64(0)
				if c.exists {
					want = c.actual + 1
				}
				if res.NextExpected != want {
					t.Errorf("NextExpected = %d, want %d", res.NextExpected, want)
				}
				return
			}
			if !errors.Is(err, eventstore.ErrWrongExpectedState) {
				t.Fatalf("Append with %v: err = %v, want ErrWrongExpectedState", c.exp, err)
			}
			var we *eventstore.WrongExpectedStateError
			if !errors.As(err, &we) {
				t.Fatalf("err %v is not a *WrongExpectedStateError", err)
			}
			if we.Stream != stream || we.Expected != c.exp || we.Exists != c.exists || (c.exists && we.Actual != c.actual) {
				t.Errorf("error = %+v, want stream %q expected %v exists %v actual %d", *we, stream, c.exp, c.exists, c.actual)
			}
			after, _ := s.ReadStream(ctxT(t), stream)
			if len(after) != len(before) {
				t.Errorf("refused append changed the stream: %d events before, %d after", len(before), len(after))
			}
		})
	}
}

func testFailedAppendLeavesNothing(t *testing.T, s eventstore.Store) {
	mustAppend(t, s, "a", eventstore.NoStream, jsonEvent(0))
	head := readAllEvents(t, s, 100)
	ghost := []eventstore.EventData{jsonEvent(1), jsonEvent(2), jsonEvent(3)}
	if _, err := s.Append(ctxT(t), "a", eventstore.AtRevision(7), ghost...); !errors.Is(err, eventstore.ErrWrongExpectedState) {
		t.Fatalf("Append at wrong revision: err = %v", err)
	}
	if _, err := s.Append(ctxT(t), "b", eventstore.StreamExists, ghost...); !errors.Is(err, eventstore.ErrWrongExpectedState) {
		t.Fatalf("Append StreamExists to missing stream: err = %v", err)
	}
	if _, err := s.ReadStream(ctxT(t), "b"); !errors.Is(err, eventstore.ErrStreamNotFound) {
		t.Errorf("refused append created stream b: err = %v", err)
	}
	if got := mustReadStream(t, s, "a"); len(got) != 1 {
		t.Errorf("stream a has %d events, want 1", len(got))
	}
	all := readAllEvents(t, s, 100)
	if len(all) != len(head) {
		t.Errorf("ReadAll has %d events after refused appends, want %d", len(all), len(head))
	}
	// The ids of the refused events are still free.
	res := mustAppend(t, s, "a", eventstore.AtRevision(0), ghost...)
	if res.NextExpected != 3 || res.Position <= head[len(head)-1].Position {
		t.Errorf("append after refusals = %+v", res)
	}
}

func testDuplicateEventID(t *testing.T, s eventstore.Store) {
	e := jsonEvent(0)
	mustAppend(t, s, "first", eventstore.NoStream, e)
	// Event ids are unique across the store. An adapter either refuses the
	// append or treats it as an idempotent no-op; it never stores the id twice.
	_, _ = s.Append(ctxT(t), "second", eventstore.Any, jsonEvent(1), e)
	_, _ = s.Append(ctxT(t), "third", eventstore.Any, jsonEvent(2), jsonEvent(2)) // duplicate within one append
	seen := map[string]int{}
	for _, r := range readAllEvents(t, s, 100) {
		seen[r.ID]++
		if seen[r.ID] > 1 {
			t.Errorf("event id %s stored twice", r.ID)
		}
	}
}

func testInvalidInput(t *testing.T, s eventstore.Store) {
	ctx := ctxT(t)
	cases := map[string]func() error{
		"empty stream": func() error { _, err := s.Append(ctx, "", eventstore.Any, jsonEvent(0)); return err },
		"no events":    func() error { _, err := s.Append(ctx, "x", eventstore.Any); return err },
		"empty id": func() error {
			_, err := s.Append(ctx, "x", eventstore.Any, eventstore.EventData{Type: "T.v1", Payload: []byte("{}")})
			return err
		},
		"empty type": func() error {
			_, err := s.Append(ctx, "x", eventstore.Any, eventstore.EventData{ID: uuid.NewString(), Payload: []byte("{}")})
			return err
		},
	}
	for name, f := range cases {
		if err := f(); err == nil {
			t.Errorf("%s: Append succeeded", name)
		}
	}
	if evs := readAllEvents(t, s, 10); len(evs) != 0 {
		t.Errorf("invalid appends left %d events", len(evs))
	}
}

func testReadStreamNotFound(t *testing.T, s eventstore.Store) {
	if _, err := s.ReadStream(ctxT(t), "nope"); !errors.Is(err, eventstore.ErrStreamNotFound) {
		t.Errorf("ReadStream of a missing stream: err = %v, want ErrStreamNotFound", err)
	}
	mustAppend(t, s, "nope-not", eventstore.NoStream, jsonEvent(0))
	if _, err := s.ReadStream(ctxT(t), "nope"); !errors.Is(err, eventstore.ErrStreamNotFound) {
		t.Errorf("ReadStream of a missing stream next to another: err = %v", err)
	}
}

func testReadAllPaging(t *testing.T, s eventstore.Store) {
	if evs, err := s.ReadAll(ctxT(t), 0, 10); err != nil || len(evs) != 0 {
		t.Fatalf("ReadAll of an empty store = %d events, %v", len(evs), err)
	}
	var want []eventstore.EventData
	for i := range 10 {
		evs := []eventstore.EventData{jsonEvent(i * 2), jsonEvent(i*2 + 1)}
		want = append(want, evs...)
		mustAppend(t, s, fmt.Sprintf("p-%d", i%3), eventstore.Any, evs...)
	}
	all := readAllEvents(t, s, 1000)
	if len(all) != len(want) {
		t.Fatalf("ReadAll: %d events, want %d", len(all), len(want))
	}
	for i := range all {
		if err := sameEvent(want[i], all[i]); err != nil {
			t.Errorf("ReadAll event %d: %v", i, err)
		}
	}
	for _, page := range []int{1, 3, 7} {
		paged := readAllEvents(t, s, page)
		if len(paged) != len(all) {
			t.Errorf("paging by %d: %d events, want %d", page, len(paged), len(all))
			continue
		}
		for i := range paged {
			if paged[i].Position != all[i].Position || paged[i].ID != all[i].ID {
				t.Errorf("paging by %d: event %d differs", page, i)
			}
		}
	}
	mid := all[8].Position
	rest, err := s.ReadAll(ctxT(t), mid, 5)
	if err != nil {
		t.Fatal(err)
	}
	if len(rest) != 5 || rest[0].ID != all[9].ID {
		t.Errorf("ReadAll(after=%d, 5) = %d events starting at %v", mid, len(rest), rest)
	}
	// after need not be an existing position.
	if gap, err := s.ReadAll(ctxT(t), all[len(all)-1].Position, 10); err != nil || len(gap) != 0 {
		t.Errorf("ReadAll after the head = %d events, %v", len(gap), err)
	}
	if far, err := s.ReadAll(ctxT(t), all[len(all)-1].Position+1000, 10); err != nil || len(far) != 0 {
		t.Errorf("ReadAll beyond the head = %d events, %v", len(far), err)
	}
}

func testGlobalOrder(t *testing.T, s eventstore.Store) {
	var ids []string
	var last uint64
	for i := range 20 {
		e := jsonEvent(i)
		res := mustAppend(t, s, fmt.Sprintf("g-%d", i%4), eventstore.Any, e)
		if res.Position <= last {
			t.Fatalf("append %d got position %d after %d", i, res.Position, last)
		}
		last = res.Position
		ids = append(ids, e.ID)
	}
	all := readAllEvents(t, s, 1000)
	if len(all) != len(ids) {
		t.Fatalf("ReadAll: %d events, want %d", len(all), len(ids))
	}
	for i := range all {
		if all[i].ID != ids[i] {
			t.Errorf("ReadAll[%d] = %s, want %s (commit order)", i, all[i].ID, ids[i])
		}
	}
}

func testCanceledContext(t *testing.T, s eventstore.Store) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := s.Append(ctx, "c", eventstore.NoStream, jsonEvent(0)); !errors.Is(err, context.Canceled) {
		t.Errorf("Append with a canceled context: err = %v, want context.Canceled", err)
	}
	// The store still works.
	mustAppend(t, s, "d", eventstore.NoStream, jsonEvent(1))
}

// testCancelAgreesWithStore cancels appends at every moment of their life
// (queued, being committed, committed) and holds the store to its answer:
// an append that returned nil is on the record, one that returned an error
// is not. A caller that fails closed on an error (the TSA discards the
// token) must never find its events recorded after all.
func testCancelAgreesWithStore(t *testing.T, s eventstore.Store) {
	const n = 400
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithCancel(t.Context())
			// From at once to well after a commit: some appends are
			// canceled in the queue, some mid-commit, some after.
			delay := time.Duration(i%40) * 50 * time.Microsecond
			timer := time.AfterFunc(delay, cancel)
			defer timer.Stop()
			defer cancel()
			_, errs[i] = s.Append(ctx, fmt.Sprintf("cancel-%d", i), eventstore.NoStream, jsonEvent(i), jsonEvent(i))
		}()
	}
	wg.Wait()
	var written, refused int
	for i := range n {
		stream := fmt.Sprintf("cancel-%d", i)
		got, err := s.ReadStream(ctxT(t), stream)
		switch {
		case errs[i] == nil && err != nil:
			t.Errorf("%s: Append succeeded but ReadStream says %v", stream, err)
		case errs[i] != nil && err == nil:
			t.Errorf("%s: Append returned %v, yet its %d events are recorded", stream, errs[i], len(got))
		case errs[i] != nil && !errors.Is(err, eventstore.ErrStreamNotFound):
			t.Errorf("%s: ReadStream: %v", stream, err)
		case errs[i] == nil:
			written++
		default:
			refused++
		}
	}
	t.Logf("%d appends written, %d not", written, refused)
}

type acked struct {
	stream string
	res    eventstore.AppendResult
	ids    []string
}

func testConcurrentWriters(t *testing.T, s eventstore.Store) {
	const writers, appends = 32, 50
	const racers = 16
	const counters, increments = 8, 10
	var (
		mu     sync.Mutex
		acks   []acked
		errs   []error
		wins   int
		wg     sync.WaitGroup
		ctx    = ctxT(t)
		record = func(a acked, err error) {
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			acks = append(acks, a)
		}
	)
	start := make(chan struct{})
	// Writers, each to its own stream.
	for w := range writers {
		wg.Go(func() {
			<-start
			stream := fmt.Sprintf("w-%d", w)
			for i := range appends {
				exp := eventstore.AtRevision(uint64(i*2 - 1))
				if i == 0 {
					exp = eventstore.NoStream
				}
				evs := []eventstore.EventData{jsonEvent(i), jsonEvent(i)}
				res, err := s.Append(ctx, stream, exp, evs...)
				record(acked{stream, res, []string{evs[0].ID, evs[1].ID}}, err)
				if err != nil {
					return
				}
			}
		})
	}
	// Racers: only one NoStream append to the contended stream wins.
	for range racers {
		wg.Go(func() {
			<-start
			e := jsonEvent(-1)
			res, err := s.Append(ctx, "contended", eventstore.NoStream, e)
			if err != nil && !errors.Is(err, eventstore.ErrWrongExpectedState) {
				record(acked{}, err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				wins++
				acks = append(acks, acked{"contended", res, []string{e.ID}})
			}
		})
	}
	// Counters: optimistic read-modify-write loops on one stream.
	for range counters {
		wg.Go(func() {
			<-start
			for done := 0; done < increments; {
				exp := eventstore.NoStream
				if evs, err := s.ReadStream(ctx, "counter"); err == nil {
					exp = eventstore.AtRevision(evs[len(evs)-1].Revision)
				} else if !errors.Is(err, eventstore.ErrStreamNotFound) {
					record(acked{}, err)
					return
				}
				e := jsonEvent(done)
				res, err := s.Append(ctx, "counter", exp, e)
				if errors.Is(err, eventstore.ErrWrongExpectedState) {
					continue
				}
				record(acked{"counter", res, []string{e.ID}}, err)
				if err != nil {
					return
				}
				done++
			}
		})
	}
	close(start)
	wg.Wait()
	for _, err := range errs {
		t.Error(err)
	}
	if wins != 1 {
		t.Errorf("%d NoStream appends to the contended stream won, want exactly 1", wins)
	}
	if t.Failed() {
		return
	}
	all := readAllEvents(t, s, 500)
	checkStore(t, all)
	byID := map[string]eventstore.RecordedEvent{}
	for _, e := range all {
		byID[e.ID] = e
	}
	total := 0
	for _, a := range acks {
		total += len(a.ids)
		for i, id := range a.ids {
			e, ok := byID[id]
			if !ok {
				t.Errorf("acknowledged event %s of %s missing", id, a.stream)
				continue
			}
			wantRev := a.res.NextExpected - uint64(len(a.ids)-1-i)
			if e.Stream != a.stream || e.Revision != wantRev {
				t.Errorf("event %s at %s@%d, acknowledged at %s@%d", id, e.Stream, e.Revision, a.stream, wantRev)
			}
			if i == len(a.ids)-1 && e.Position != a.res.Position {
				t.Errorf("event %s at position %d, acknowledged at %d", id, e.Position, a.res.Position)
			}
		}
	}
	if total != len(all) {
		t.Errorf("store holds %d events, %d were acknowledged", len(all), total)
	}
	if n := len(mustReadStream(t, s, "counter")); n != counters*increments {
		t.Errorf("counter stream has %d events, want %d", n, counters*increments)
	}
}

// checkStore checks what every store holds at all times: positions strictly
// grow in ReadAll, ids are unique, and each stream's revisions run 0, 1, …
// without gaps in position order.
func checkStore(t *testing.T, all []eventstore.RecordedEvent) map[string]uint64 {
	t.Helper()
	next := map[string]uint64{}
	ids := map[string]bool{}
	var last uint64
	for _, e := range all {
		if e.Position <= last {
			t.Errorf("position %d after %d", e.Position, last)
		}
		last = e.Position
		if ids[e.ID] {
			t.Errorf("event id %s appears twice", e.ID)
		}
		ids[e.ID] = true
		if e.Revision != next[e.Stream] {
			t.Errorf("stream %s: revision %d where %d was due (position %d)", e.Stream, e.Revision, next[e.Stream], e.Position)
		}
		next[e.Stream] = e.Revision + 1
	}
	return next
}

func recvN(t *testing.T, sub eventstore.Subscription, n int) []eventstore.RecordedEvent {
	t.Helper()
	ctx := ctxT(t)
	out := make([]eventstore.RecordedEvent, 0, n)
	for range n {
		e, err := sub.Recv(ctx)
		if err != nil {
			t.Fatalf("Recv after %d events: %v", len(out), err)
		}
		out = append(out, e)
	}
	return out
}

func samePositions(t *testing.T, got, want []eventstore.RecordedEvent) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d events, want %d", len(got), len(want))
	}
	for i := range got {
		if got[i].Position != want[i].Position || got[i].ID != want[i].ID || got[i].Stream != want[i].Stream ||
			got[i].Revision != want[i].Revision || got[i].Type != want[i].Type || !bytes.Equal(got[i].Payload, want[i].Payload) {
			t.Fatalf("event %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func testSubscribeFromStart(t *testing.T, s eventstore.Store) {
	for i := range 5 {
		mustAppend(t, s, "sub", eventstore.Any, jsonEvent(i))
	}
	sub, err := s.SubscribeAll(ctxT(t), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	first := recvN(t, sub, 5)
	samePositions(t, first, readAllEvents(t, s, 100))
	// Live: appended after the subscription caught up.
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 5; i < 10; i++ {
			if _, err := s.Append(ctxT(t), "sub", eventstore.Any, jsonEvent(i)); err != nil {
				t.Error(err)
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	live := recvN(t, sub, 5)
	<-done
	samePositions(t, append(first, live...), readAllEvents(t, s, 100))
	// Nothing more is delivered.
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if e, err := sub.Recv(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Recv with no new event = %+v, %v; want context.DeadlineExceeded", e, err)
	}
}

func testSubscribeFromMiddle(t *testing.T, s eventstore.Store) {
	for i := range 6 {
		mustAppend(t, s, fmt.Sprintf("m-%d", i%2), eventstore.Any, jsonEvent(i), jsonEvent(i+100))
	}
	all := readAllEvents(t, s, 100)
	sub, err := s.SubscribeAll(ctxT(t), all[4].Position)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	got := recvN(t, sub, len(all)-5)
	samePositions(t, got, all[5:])
	mustAppend(t, s, "m-9", eventstore.NoStream, jsonEvent(9))
	e := recvN(t, sub, 1)[0]
	if e.Stream != "m-9" || e.Position <= all[len(all)-1].Position {
		t.Errorf("live event = %+v", e)
	}
}

func testSubscribeWhileWriting(t *testing.T, s eventstore.Store) {
	const writers, appends = 8, 40
	mustAppend(t, s, "pre", eventstore.NoStream, jsonEvent(0))
	subs := make([]eventstore.Subscription, 3)
	for i := range subs {
		sub, err := s.SubscribeAll(ctxT(t), 0)
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
		subs[i] = sub
	}
	total := 1 + writers*appends*2
	got := make([][]eventstore.RecordedEvent, len(subs))
	var wg sync.WaitGroup
	for i, sub := range subs {
		wg.Go(func() {
			ctx := ctxT(t)
			for len(got[i]) < total {
				e, err := sub.Recv(ctx)
				if err != nil {
					t.Errorf("subscriber %d: Recv after %d events: %v", i, len(got[i]), err)
					return
				}
				got[i] = append(got[i], e)
				if i == 0 && len(got[i])%50 == 0 {
					time.Sleep(2 * time.Millisecond) // a slow subscriber
				}
			}
		})
	}
	var ww sync.WaitGroup
	for w := range writers {
		ww.Go(func() {
			for i := range appends {
				if _, err := s.Append(ctxT(t), fmt.Sprintf("live-%d", w), eventstore.Any, jsonEvent(i), jsonEvent(i)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	ww.Wait()
	wg.Wait()
	if t.Failed() {
		return
	}
	all := readAllEvents(t, s, 1000)
	for i := range subs {
		samePositions(t, got[i], all)
	}
}

func testSubscriptionClose(t *testing.T, s eventstore.Store) {
	mustAppend(t, s, "x", eventstore.NoStream, jsonEvent(0))
	sub, err := s.SubscribeAll(ctxT(t), 0)
	if err != nil {
		t.Fatal(err)
	}
	recvN(t, sub, 1)
	// Close wakes a blocked Recv.
	errc := make(chan error, 1)
	go func() {
		_, err := sub.Recv(ctxT(t))
		errc <- err
	}()
	time.Sleep(20 * time.Millisecond)
	if err := sub.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, eventstore.ErrClosed) {
			t.Errorf("blocked Recv after Close: %v, want ErrClosed", err)
		}
	case <-time.After(opTimeout):
		t.Fatal("Close did not wake a blocked Recv")
	}
	mustAppend(t, s, "x", eventstore.Any, jsonEvent(1))
	if _, err := sub.Recv(ctxT(t)); !errors.Is(err, eventstore.ErrClosed) {
		t.Errorf("Recv after Close: %v, want ErrClosed", err)
	}
	_ = sub.Close() // idempotent
}

func testStoreClose(t *testing.T, s eventstore.Store) {
	mustAppend(t, s, "x", eventstore.NoStream, jsonEvent(0))
	sub, err := s.SubscribeAll(ctxT(t), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	recvN(t, sub, 1)
	// In-flight appends finish (or fail with ErrClosed) when Close returns.
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			_, err := s.Append(ctxT(t), fmt.Sprintf("y-%d", i), eventstore.NoStream, jsonEvent(i))
			if err != nil && !errors.Is(err, eventstore.ErrClosed) {
				t.Errorf("Append racing Close: %v", err)
			}
		})
	}
	errc := make(chan error, 1)
	go func() {
		ctx := ctxT(t)
		for {
			if _, err := sub.Recv(ctx); err != nil {
				errc <- err
				return
			}
		}
	}()
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	wg.Wait()
	select {
	case err := <-errc:
		if !errors.Is(err, eventstore.ErrClosed) {
			t.Errorf("Recv after the store closed: %v, want ErrClosed", err)
		}
	case <-time.After(opTimeout):
		t.Fatal("closing the store did not wake a blocked Recv")
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	ctx := ctxT(t)
	if _, err := s.Append(ctx, "x", eventstore.Any, jsonEvent(1)); !errors.Is(err, eventstore.ErrClosed) {
		t.Errorf("Append after Close: %v, want ErrClosed", err)
	}
	if _, err := s.ReadStream(ctx, "x"); !errors.Is(err, eventstore.ErrClosed) {
		t.Errorf("ReadStream after Close: %v, want ErrClosed", err)
	}
	if _, err := s.ReadAll(ctx, 0, 10); !errors.Is(err, eventstore.ErrClosed) {
		t.Errorf("ReadAll after Close: %v, want ErrClosed", err)
	}
	if _, err := s.SubscribeAll(ctx, 0); !errors.Is(err, eventstore.ErrClosed) {
		t.Errorf("SubscribeAll after Close: %v, want ErrClosed", err)
	}
}

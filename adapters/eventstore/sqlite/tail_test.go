package sqlite

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/chronolog/chronolog/adapters/eventstore/eventstoretest"
	"github.com/chronolog/chronolog/domain/eventstore"
)

func positions(evs []eventstore.RecordedEvent) []uint64 {
	var out []uint64
	for _, e := range evs {
		out = append(out, e.Position)
	}
	return out
}

func TestLiveTail(t *testing.T) {
	tail := newLiveTail(4)
	if _, ok := tail.after(0, 10); ok {
		t.Fatal("an empty tail answered")
	}
	var evs []eventstore.RecordedEvent
	for p := uint64(1); p <= 10; p++ {
		evs = append(evs, eventstore.RecordedEvent{Position: p})
	}
	tail.push(evs[:3])
	tail.push(evs[3:])
	for _, c := range []struct {
		after uint64
		max   int
		want  []uint64
		ok    bool
	}{
		{after: 5, max: 10, ok: false}, // 6 fell out of the ring
		{after: 6, max: 10, want: []uint64{7, 8, 9, 10}, ok: true},
		{after: 7, max: 2, want: []uint64{8, 9}, ok: true},
		{after: 10, max: 10, ok: true},
		{after: 12, max: 10, ok: true},
	} {
		got, ok := tail.after(c.after, c.max)
		if ok != c.ok || len(got) != len(c.want) {
			t.Errorf("after(%d, %d) = %v, %v; want %v, %v", c.after, c.max, positions(got), ok, c.want, c.ok)
			continue
		}
		for i := range got {
			if got[i].Position != c.want[i] {
				t.Errorf("after(%d, %d) = %v, want %v", c.after, c.max, positions(got), c.want)
			}
		}
	}
	// A gap in positions (another process wrote the file) drops the cache.
	tail.push([]eventstore.RecordedEvent{{Position: 20}})
	if got, ok := tail.after(6, 10); ok {
		t.Fatalf("after a gap the tail still answers for 7: %v", positions(got))
	}
	if got, ok := tail.after(19, 10); !ok || len(got) != 1 || got[0].Position != 20 {
		t.Fatalf("after(19) = %v, %v", positions(got), ok)
	}
}

// The contract holds whether subscriptions are served from the table only,
// or from a tail so small they keep switching between it and the table.
func TestContractWithoutOrWithATinyLiveTail(t *testing.T) {
	for name, n := range map[string]int{"none": -1, "tiny": 3} {
		t.Run(name, func(t *testing.T) {
			eventstoretest.Run(t, func(t *testing.T) eventstore.Store { return newStore(t, Config{LiveTail: n}) })
		})
	}
}

func TestRecvBatch(t *testing.T) {
	s := newStore(t, Config{})
	ctx := context.Background()
	sub, err := s.SubscribeAll(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	for i := range 4 {
		if _, err := s.Append(ctx, fmt.Sprintf("b-%d", i), eventstore.NoStream, ev("T.v1", "{}"), ev("T.v1", "{}"), ev("T.v1", "{}")); err != nil {
			t.Fatal(err)
		}
	}
	batcher := sub.(interface {
		RecvBatch(context.Context, int) ([]eventstore.RecordedEvent, error)
	})
	var got []uint64
	for len(got) < 12 {
		evs, err := batcher.RecvBatch(ctx, 5)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) == 0 || len(evs) > 5 {
			t.Fatalf("a batch of %d events, want 1–5", len(evs))
		}
		got = append(got, positions(evs)...)
	}
	for i, p := range got {
		if p != uint64(i+1) {
			t.Fatalf("positions %v", got)
		}
	}
	// Caught up, it blocks until ctx ends.
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if evs, err := batcher.RecvBatch(short, 5); err == nil {
		t.Fatalf("RecvBatch returned %v with nothing new", positions(evs))
	}
}

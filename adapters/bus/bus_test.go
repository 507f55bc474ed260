package bus

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// start runs r until the test ends, then closes it and b.
func start(t *testing.T, b *Bus, r *message.Router) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- r.Run(context.Background()) }()
	select {
	case <-r.Running():
	case err := <-done:
		t.Fatalf("router: %v", err)
	}
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Errorf("close router: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("router: %v", err)
		}
		if err := b.Close(); err != nil {
			t.Errorf("close bus: %v", err)
		}
	})
}

func newBus(t *testing.T) *Bus {
	t.Helper()
	b, err := New(Config{Logger: quiet(), RetryInterval: time.Millisecond, RetryMaxInterval: 4 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func batchAt(after uint64, n int) Batch {
	b := Batch{After: after}
	for i := range n {
		p := after + 1 + uint64(i)
		b.Events = append(b.Events, rec(p, "s", p, "A.v1", "{}"))
	}
	return b
}

// Every handler sees every batch, in order, and Publish returns only once
// all have applied it.
func TestPublishOrderedAndAcknowledged(t *testing.T) {
	b := newBus(t)
	r, err := b.NewRouter(RouterConfig{OnPoison: func(p Poisoned) { t.Errorf("poisoned: %+v", p) }})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	last := map[string]uint64{}
	for _, name := range []string{"one", "two"} {
		b.AddHandler(r, name, func(ctx context.Context, batch Batch) error {
			mu.Lock()
			defer mu.Unlock()
			if batch.After != last[name] {
				t.Errorf("%s: batch after %d, last applied %d", name, batch.After, last[name])
			}
			last[name] = batch.Last()
			return nil
		})
	}
	start(t, b, r)
	var after uint64
	for i := range 200 {
		batch := batchAt(after, 1+i%7)
		if err := b.Publish(batch); err != nil {
			t.Fatal(err)
		}
		after = batch.Last()
		mu.Lock()
		if last["one"] != after || last["two"] != after {
			t.Fatalf("Publish returned before both handlers applied up to %d: %v", after, last)
		}
		mu.Unlock()
	}
}

// poisonRun publishes one batch to a handler failing as fail says, and
// returns how often it was called and what was poisoned.
func poisonRun(t *testing.T, fail func(call int) error) (calls int, poisoned []Poisoned, onTopic []*message.Message) {
	t.Helper()
	b := newBus(t)
	var mu sync.Mutex
	r, err := b.NewRouter(RouterConfig{OnPoison: func(p Poisoned) {
		mu.Lock()
		defer mu.Unlock()
		poisoned = append(poisoned, p)
	}})
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int32
	b.AddHandler(r, "proj", func(ctx context.Context, batch Batch) error { return fail(int(n.Add(1))) })
	got := make(chan *message.Message, 4)
	r.AddConsumerHandler("poison-reader", PoisonTopic, b.Subscriber(), func(msg *message.Message) error {
		got <- msg
		return nil
	})
	start(t, b, r)
	if err := b.Publish(batchAt(0, 3)); err != nil {
		t.Fatal(err)
	}
	// The poisoned batch was published on the poison topic before
	// Publish returned.
	for len(got) > 0 {
		onTopic = append(onTopic, <-got)
	}
	mu.Lock()
	defer mu.Unlock()
	return int(n.Load()), poisoned, onTopic
}

func TestRetriedThenApplied(t *testing.T) {
	calls, poisoned, _ := poisonRun(t, func(call int) error {
		if call < 3 {
			return errors.New("database is locked")
		}
		return nil
	})
	if calls != 3 || len(poisoned) != 0 {
		t.Fatalf("%d calls, poisoned %v", calls, poisoned)
	}
}

func TestPoisonedAfterRetries(t *testing.T) {
	calls, poisoned, onTopic := poisonRun(t, func(int) error { return errors.New("disk full") })
	if calls != 4 {
		t.Errorf("%d calls, want 1 + 3 retries", calls)
	}
	if len(poisoned) != 1 || poisoned[0].Handler != "proj" || poisoned[0].Topic != EventsTopic || !strings.Contains(poisoned[0].Reason, "disk full") {
		t.Fatalf("poisoned %+v", poisoned)
	}
	if len(onTopic) != 1 {
		t.Fatalf("%d messages on %s", len(onTopic), PoisonTopic)
	}
	m := onTopic[0]
	if m.Metadata.Get(PoisonHandler) != "proj" || m.Metadata.Get(MetaEventTypes) != "A.v1" || m.UUID != "events-1-3" {
		t.Fatalf("poisoned message %s %v", m.UUID, m.Metadata)
	}
	if b, err := DecodeMessage(m); err != nil || b.Last() != 3 {
		t.Fatalf("poisoned batch does not decode: %v", err)
	}
}

func TestPermanentNotRetried(t *testing.T) {
	calls, poisoned, _ := poisonRun(t, func(int) error { return Permanent(errors.New("unknown event type")) })
	if calls != 1 || len(poisoned) != 1 {
		t.Fatalf("%d calls, poisoned %v", calls, poisoned)
	}
}

func TestPanicRecovered(t *testing.T) {
	calls, poisoned, _ := poisonRun(t, func(int) error { panic("boom") })
	if calls != 4 || len(poisoned) != 1 || !strings.Contains(poisoned[0].Reason, "boom") {
		t.Fatalf("%d calls, poisoned %v", calls, poisoned)
	}
}

func TestUndecodableIsPermanent(t *testing.T) {
	b := newBus(t)
	var poisoned []Poisoned
	r, err := b.NewRouter(RouterConfig{OnPoison: func(p Poisoned) { poisoned = append(poisoned, p) }})
	if err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int32
	b.AddHandler(r, "proj", func(context.Context, Batch) error { calls.Add(1); return nil })
	start(t, b, r)
	if err := b.Publisher().Publish(EventsTopic, message.NewMessage("junk", []byte("junk"))); err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 0 || len(poisoned) != 1 || !strings.Contains(poisoned[0].Reason, "malformed") {
		t.Fatalf("%d calls, poisoned %+v", calls.Load(), poisoned)
	}
}

func TestPermanentWraps(t *testing.T) {
	base := errors.New("x")
	p := Permanent(base)
	if !IsPermanent(p) || !errors.Is(p, base) || Permanent(nil) != nil || IsPermanent(base) {
		t.Fatal("Permanent")
	}
	if !IsPermanent(errors.Join(errors.New("y"), p)) {
		t.Fatal("wrapped Permanent")
	}
	if _, err := New(Config{RetryInterval: time.Second, RetryMaxInterval: time.Millisecond}); err == nil {
		t.Fatal("inconsistent retry intervals accepted")
	}
	if err := (&Bus{}).Publish(Batch{}); err == nil {
		t.Fatal("empty batch published")
	}
}

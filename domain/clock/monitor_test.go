package clock

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/chronolog/chronolog/domain/events"
	"github.com/chronolog/chronolog/domain/eventstore"
)

// The fakes below stand in for the monitor's ports in this domain test.

type fakeSource struct {
	r   Reading
	err error
}

func (s fakeSource) Read(context.Context) (Reading, error) { return s.r, s.err }

type appends struct {
	mu   sync.Mutex
	fail error
	got  [][]eventstore.EventData
}

func (a *appends) Append(_ context.Context, stream string, _ eventstore.ExpectedState, evs ...eventstore.EventData) (eventstore.AppendResult, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.fail != nil {
		return eventstore.AppendResult{}, a.fail
	}
	if stream != events.ClockStream {
		return eventstore.AppendResult{}, fmt.Errorf("appended to %s", stream)
	}
	a.got = append(a.got, evs)
	return eventstore.AppendResult{}, nil
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

type fixed time.Time

func (f fixed) Now() time.Time { return time.Time(f) }

type logged struct {
	mu   sync.Mutex
	msgs []string
}

func (l *logged) Info(msg string, _ ...any) { l.mu.Lock(); l.msgs = append(l.msgs, msg); l.mu.Unlock() }
func (l *logged) Error(msg string, _ ...any) {
	l.mu.Lock()
	l.msgs = append(l.msgs, msg)
	l.mu.Unlock()
}

func newMonitor(t *testing.T, store *appends, tick chan time.Time, sources ...NamedSource) *Monitor {
	t.Helper()
	m, err := NewMonitor(MonitorConfig{Policy: DefaultPolicy(), Period: time.Second, Timeout: time.Second, Node: "n1"},
		MonitorPorts{Sources: sources, Store: store, IDs: &seqIDs{}, Clock: fixed(t0), Tick: tick,
			Accuracies: func() map[string]time.Duration { return map[string]time.Duration{"default": time.Second} },
			Logger:     &logged{}})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// A round is recorded before the gate judges by it, and the sample's id
// is the one every token admitted on it names.
func TestMonitorRecordsBeforeTheGateOpens(t *testing.T) {
	store := &appends{}
	m := newMonitor(t, store, make(chan time.Time),
		NamedSource{Kind: SourceNTP, Name: "a", Source: fakeSource{r: ntp("a", time.Millisecond, 2*time.Millisecond)}},
		NamedSource{Kind: SourceNTP, Name: "b", Source: fakeSource{err: errors.New("ntp b: no answer")}})
	if _, ok := m.Gate().Current(); ok {
		t.Fatal("the gate judges before any round")
	}
	a, err := m.Round(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(store.got) != 1 || store.got[0][0].Type != events.TypeClockSampled || store.got[0][0].ID != a.SampleID {
		t.Fatalf("recorded %+v for sample %s", store.got, a.SampleID)
	}
	cur, ok := m.Gate().Current()
	if !ok || cur.SampleID != a.SampleID {
		t.Fatalf("the gate holds %+v", cur)
	}
	_, e, err := events.Decode(store.got[0][0].Payload)
	if err != nil {
		t.Fatal(err)
	}
	// A failed source is named in the sample, its error without the
	// adapter's repetition of its name.
	if s := e.(*events.ClockSampled); len(s.Readings) != 2 || s.Readings[1].Error != "no answer" {
		t.Fatalf("sample %+v", s)
	}
}

// A round that cannot be recorded closes the gate: nothing may rest on a
// sample that is not on the record.
func TestMonitorClosesTheGateWhenTheRoundIsNotRecorded(t *testing.T) {
	store := &appends{}
	m := newMonitor(t, store, make(chan time.Time),
		NamedSource{Kind: SourceNTP, Name: "a", Source: fakeSource{r: ntp("a", time.Millisecond, 2*time.Millisecond)}})
	if _, err := m.Round(context.Background()); err != nil {
		t.Fatal(err)
	}
	store.fail = errors.New("disk full")
	if _, err := m.Round(context.Background()); err == nil {
		t.Fatal("an unrecorded round did not fail")
	}
	cur, _ := m.Gate().Current()
	if cur.Synchronised {
		t.Fatalf("the gate is open on an unrecorded round: %+v", cur)
	}
	if _, why := m.Gate().Admit(t0, time.Second); why == "" {
		t.Fatal("the gate admits on an unrecorded round")
	}
}

// Run takes a round at each tick and stops with its context.
func TestMonitorRunsOnItsTicks(t *testing.T) {
	store := &appends{}
	tick := make(chan time.Time)
	m := newMonitor(t, store, tick,
		NamedSource{Kind: SourceNTP, Name: "a", Source: fakeSource{r: ntp("a", time.Millisecond, 2*time.Millisecond)}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); m.Run(ctx) }()
	for range 3 {
		tick <- t0
	}
	cancel()
	<-done
	store.mu.Lock()
	defer store.mu.Unlock()
	if len(store.got) < 2 {
		t.Fatalf("%d rounds recorded for 3 ticks", len(store.got))
	}
}

func TestNewMonitorRefusesMissingPorts(t *testing.T) {
	if _, err := NewMonitor(MonitorConfig{Timeout: time.Second}, MonitorPorts{}); err == nil {
		t.Error("a monitor without sources")
	}
	src := []NamedSource{{Kind: SourceKernel, Name: "adjtimex", Source: fakeSource{}}}
	if _, err := NewMonitor(MonitorConfig{Timeout: time.Second}, MonitorPorts{Sources: src}); err == nil {
		t.Error("a monitor without its ports")
	}
}

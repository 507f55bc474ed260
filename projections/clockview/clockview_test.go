package clockview

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	readstore "github.com/chronolog/chronolog/adapters/readstore/sqlite"
	"github.com/chronolog/chronolog/domain/events"
	"github.com/chronolog/chronolog/domain/eventstore"
	"github.com/chronolog/chronolog/projections"
	"github.com/chronolog/chronolog/projections/projectionstest"
	"github.com/google/uuid"
)

// model is the clock projection in a read store.
type model struct {
	*readstore.Store
	p *Projection
}

func open(t testing.TB) model { return openAt(t, t.TempDir()+"/x.db") }

func openAt(t testing.TB, path string) model {
	t.Helper()
	p := New()
	s, err := readstore.Open(context.Background(), path, p, readstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return model{s, p}
}

func (m model) model() projections.Model { return projections.Model{Projection: m.p, Store: m.Store} }

func apply(t testing.TB, m model, evs ...eventstore.RecordedEvent) {
	t.Helper()
	if err := projectionstest.Apply(m.model(), evs...); err != nil {
		t.Fatal(err)
	}
}

func clock(l *projectionstest.Log, at time.Time, e events.Event) eventstore.RecordedEvent {
	return l.Add(events.ClockStream, at, events.Metadata{Node: "tsa-1"}, e)
}

var t0 = time.Date(2026, 11, 22, 16, 0, 0, 0, time.UTC)

func minute(n int) time.Time { return t0.Add(time.Duration(n) * time.Minute) }

func lost(service string, m int, reason string) events.ClockSyncLost {
	return events.ClockSyncLost{Service: service, AccuracyNs: 1_000_000, Sample: uuid.NewString(), BoundNs: 2_000_000, Reason: reason, At: minute(m)}
}

func regained(service string, m int, lostAt *int) events.ClockSyncRegained {
	e := events.ClockSyncRegained{Service: service, AccuracyNs: 1_000_000, Sample: uuid.NewString(), BoundNs: 400_000, At: minute(m)}
	if lostAt != nil {
		at := minute(*lostAt)
		e.LostAt, e.OutageNs = &at, int64(minute(m).Sub(at))
	}
	return e
}

func ptr(n int) *int { return &n }

func TestAppliesEveryEventType(t *testing.T) {
	projectionstest.AppliesEveryEventType(t, open(t).model())
}

// TestUndecodableEventStopsTheBatch: an event of a type the projection
// reads whose data cannot be decoded fails its batch, which leaves
// nothing behind.
func TestUndecodableEventStopsTheBatch(t *testing.T) {
	s := open(t)
	l := projectionstest.NewLog(t)
	good := clock(l, t0, lost("default", 0, "no quorum"))
	bad := clock(l, t0, lost("default", 0, "no quorum"))
	bad.Payload = []byte(`{"type":"ClockSyncLost.v1","data":{"service":"default","at":12}}`)
	err := projectionstest.Apply(s.model(), good, bad)
	if err == nil || !strings.Contains(err.Error(), "ClockSyncLost.v1") {
		t.Fatalf("got %v, want the event refused", err)
	}
	if s.Checkpoint() != 0 {
		t.Fatalf("checkpoint %d", s.Checkpoint())
	}
	if ch, _ := Changes(context.Background(), s.DB(), time.Time{}, time.Time{}); len(ch) != 0 {
		t.Fatalf("rolled back batch left %+v", ch)
	}
}

func TestOutsideAccuracy(t *testing.T) {
	type period struct {
		service  string
		start    int
		end      int // -1: open
		reason   string
		duration time.Duration
	}
	tests := []struct {
		name    string
		batches [][]events.Event
		want    []period
	}{
		{
			name:    "lost then regained",
			batches: [][]events.Event{{lost("default", 0, "no quorum"), regained("default", 5, ptr(0))}},
			want:    []period{{"default", 0, 5, "no quorum", 5 * time.Minute}},
		},
		{
			name:    "still lost",
			batches: [][]events.Event{{lost("default", 0, "no quorum")}},
			want:    []period{{"default", 0, -1, "no quorum", 0}},
		},
		{
			name:    "across batches",
			batches: [][]events.Event{{lost("default", 0, "no quorum")}, {}, {regained("default", 7, ptr(0))}},
			want:    []period{{"default", 0, 7, "no quorum", 7 * time.Minute}},
		},
		{
			name: "lost again after a restart keeps the first start",
			batches: [][]events.Event{
				{lost("default", 0, "no quorum")},
				{lost("default", 3, "sources disagree"), regained("default", 4, ptr(3))},
			},
			want: []period{{"default", 0, 4, "no quorum", 4 * time.Minute}},
		},
		{
			name:    "the first judgement closes nothing",
			batches: [][]events.Event{{regained("default", 0, nil), regained("eu", 1, nil)}},
		},
		{
			name:    "a restart judging met closes the open period",
			batches: [][]events.Event{{lost("default", 0, "no quorum")}, {regained("default", 2, nil)}},
			want:    []period{{"default", 0, 2, "no quorum", 2 * time.Minute}},
		},
		{
			name:    "a regain naming an unseen loss",
			batches: [][]events.Event{{regained("default", 9, ptr(1))}},
			want:    []period{{"default", 1, 9, "", 8 * time.Minute}},
		},
		{
			name: "services apart, twice",
			batches: [][]events.Event{{
				lost("default", 0, "no quorum"), lost("eu", 0, "bound 2ms exceeds 1ms"),
				regained("default", 1, ptr(0)), lost("default", 3, "no quorum"),
				regained("eu", 10, ptr(0)),
			}},
			want: []period{
				{"default", 0, 1, "no quorum", time.Minute},
				{"eu", 0, 10, "bound 2ms exceeds 1ms", 10 * time.Minute},
				{"default", 3, -1, "no quorum", 0},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t)
			l := projectionstest.NewLog(t)
			nchanges := 0
			for _, b := range tt.batches {
				var evs []eventstore.RecordedEvent
				for _, e := range b {
					evs = append(evs, clock(l, t0, e))
				}
				evs = append(evs, clock(l, t0, events.ClockSampled{At: t0, Leap: "none"}))
				apply(t, s, evs...)
				nchanges += len(b)
			}
			got, err := OutsideAccuracy(context.Background(), s.DB(), "", time.Time{}, time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			var want []Period
			for _, p := range tt.want {
				w := Period{Service: p.service, Start: minute(p.start), Reason: p.reason, DurationNs: int64(p.duration)}
				if p.end < 0 {
					w.Open = true
				} else {
					end := minute(p.end)
					w.End = &end
				}
				want = append(want, w)
			}
			if !slices.EqualFunc(got, want, func(a, b Period) bool {
				return a.Service == b.Service && a.Start.Equal(b.Start) && a.Open == b.Open && a.DurationNs == b.DurationNs &&
					a.Reason == b.Reason && (a.End == nil) == (b.End == nil) && (a.End == nil || a.End.Equal(*b.End))
			}) {
				t.Fatalf("got  %s\nwant %s", js(got), js(want))
			}
			ch, err := Changes(context.Background(), s.DB(), time.Time{}, time.Time{})
			if err != nil || len(ch) != nchanges {
				t.Fatalf("%d changes, want %d: %v", len(ch), nchanges, err)
			}
		})
	}
}

func js(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestQueries(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	l := projectionstest.NewLog(t)
	var evs []eventstore.RecordedEvent
	var ids []string
	for m := range 10 {
		e := events.ClockSampled{At: minute(m), Synchronised: m%4 != 3, BoundNs: int64(100_000 * (m + 1)), OffsetNs: int64(-1000 * m),
			Agreeing: 2, Sources: 3, Quorum: 2, DriftPPM: 15, Leap: "none",
			Readings: []events.ClockReading{{Source: "ntp", Name: "a", At: minute(m), Leap: "none", Synchronised: true}}}
		if m%4 == 3 {
			e.Reason, e.Agreeing = "no quorum", 1
		}
		ev := clock(l, minute(m), e)
		ids = append(ids, ev.ID)
		evs = append(evs, ev)
		switch m {
		case 3:
			evs = append(evs, clock(l, minute(m), lost("default", m, "no quorum")), clock(l, minute(m), lost("eu", m, "no quorum")))
		case 4:
			evs = append(evs, clock(l, minute(m), regained("default", m, ptr(3))))
		case 8:
			evs = append(evs, clock(l, minute(m), regained("eu", m, ptr(3))))
			leapAt := time.Date(2026, 12, 31, 23, 59, 59, 0, time.UTC).Add(time.Second)
			evs = append(evs, clock(l, minute(m), events.LeapSecondAnnounced{Leap: "insert", At: leapAt, Sample: ev.ID,
				Sources: []string{"ntp a", "chrony b"}, Refused: true, WindowNs: int64(2 * time.Second)}))
		}
	}
	apply(t, s, evs...)
	db := s.DB()

	t.Run("samples", func(t *testing.T) {
		got, err := Samples(ctx, db, minute(2), minute(6), 0)
		if err != nil || len(got) != 4 {
			t.Fatalf("%d samples, %v", len(got), err)
		}
		g := got[1]
		if g.EventID != ids[3] || !g.At.Equal(minute(3)) || g.Synchronised || g.Reason != "no quorum" || g.BoundNs != 400_000 ||
			g.OffsetNs != -3000 || g.Agreeing != 1 || g.Sources != 3 || g.Quorum != 2 || g.Leap != "none" || g.Position == 0 {
			t.Fatalf("%+v", g)
		}
		if got, _ := Samples(ctx, db, time.Time{}, time.Time{}, 3); len(got) != 3 || !got[2].At.Equal(minute(2)) {
			t.Fatalf("limit: %+v", got)
		}
		if got, _ := Samples(ctx, db, time.Time{}, time.Time{}, 0); len(got) != 10 {
			t.Fatalf("all: %d", len(got))
		}
	})
	t.Run("changes", func(t *testing.T) {
		got, err := Changes(ctx, db, minute(3), minute(5))
		if err != nil {
			t.Fatal(err)
		}
		var kinds []string
		for _, c := range got {
			kinds = append(kinds, c.Service+" "+c.Kind)
		}
		if want := []string{"default lost", "eu lost", "default regained"}; !slices.Equal(kinds, want) {
			t.Fatalf("%v, want %v", kinds, want)
		}
		if c := got[0]; c.Reason != "no quorum" || c.BoundNs != 2_000_000 || c.AccuracyNs != 1_000_000 || c.Sample == "" || !c.At.Equal(minute(3)) {
			t.Fatalf("%+v", c)
		}
	})
	t.Run("outside accuracy", func(t *testing.T) {
		for _, tt := range []struct {
			service  string
			from, to time.Time
			want     []string
		}{
			{"", time.Time{}, time.Time{}, []string{"default", "eu"}},
			{"eu", time.Time{}, time.Time{}, []string{"eu"}},
			{"", minute(5), time.Time{}, []string{"eu"}},
			{"", time.Time{}, minute(3), nil},
			{"", minute(3), minute(4), []string{"default", "eu"}},
			{"nope", time.Time{}, time.Time{}, nil},
		} {
			got, err := OutsideAccuracy(ctx, db, tt.service, tt.from, tt.to)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, p := range got {
				names = append(names, p.Service)
			}
			if !slices.Equal(names, tt.want) {
				t.Errorf("%q %v %v: %v, want %v", tt.service, tt.from, tt.to, names, tt.want)
			}
		}
	})
	t.Run("leaps", func(t *testing.T) {
		got, err := Leaps(ctx, db, time.Time{}, time.Time{})
		if err != nil || len(got) != 1 {
			t.Fatalf("%+v %v", got, err)
		}
		if g := got[0]; g.Leap != "insert" || !g.At.Equal(time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)) || g.Sample != ids[8] ||
			!slices.Equal(g.Sources, []string{"ntp a", "chrony b"}) || !g.Refused || g.WindowNs != int64(2*time.Second) {
			t.Fatalf("%+v", g)
		}
	})
}

// TestIdempotent: a batch delivered twice, or again to a reopened store,
// leaves the same rows.
func TestIdempotent(t *testing.T) {
	path := t.TempDir() + "/x.db"
	s := openAt(t, path)
	l := projectionstest.NewLog(t)
	var batch []eventstore.RecordedEvent
	for m := range 6 {
		batch = append(batch, clock(l, minute(m), events.ClockSampled{At: minute(m), Synchronised: true, Leap: "none"}))
		switch m {
		case 1:
			batch = append(batch, clock(l, minute(m), lost("default", m, "no quorum")))
		case 4:
			batch = append(batch, clock(l, minute(m), regained("default", m, ptr(1))))
		}
	}
	apply(t, s, batch...)
	tables := []string{"clock_samples", "clock_changes", "clock_outside_accuracy", "clock_leaps"}
	want := map[string][]string{}
	for _, tb := range tables {
		want[tb] = dump(t, s.DB(), tb)
	}
	apply(t, s, batch...)
	s.Close()
	s = openAt(t, path)
	apply(t, s, batch[2:]...)
	for _, tb := range tables {
		if got := dump(t, s.DB(), tb); !slices.Equal(got, want[tb]) {
			t.Errorf("%s\n%v\nwant\n%v", tb, got, want[tb])
		}
	}
	if len(want["clock_samples"]) != 6 || len(want["clock_changes"]) != 2 || len(want["clock_outside_accuracy"]) != 1 {
		t.Fatalf("rows %v", want)
	}
}

func dump(t testing.TB, db *sql.DB, table string) []string {
	t.Helper()
	rows, err := db.Query(`SELECT * FROM ` + table + ` ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%v", vals))
	}
	return out
}

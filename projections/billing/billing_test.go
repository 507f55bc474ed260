package billing

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	readstore "github.com/chronolog/chronolog/adapters/readstore/sqlite"
	"github.com/chronolog/chronolog/domain/eventstore"
	"github.com/chronolog/chronolog/projections"
	"github.com/chronolog/chronolog/projections/projectionstest"
)

// model is the billing projection in a read store.
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

func all(t testing.TB, s model) []Row {
	t.Helper()
	rows, err := Counts(context.Background(), s.DB(), Filter{})
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func TestAppliesEveryEventType(t *testing.T) {
	projectionstest.AppliesEveryEventType(t, open(t).model())
}

// TestFailedBatchLeavesNothing: the counts of a batch that fails are not
// added to the next one's.
func TestFailedBatchLeavesNothing(t *testing.T) {
	s := open(t)
	l := projectionstest.NewLog(t)
	at := time.Now()
	r := projectionstest.Req{Serial: projectionstest.SerialAt(at), Service: "default", Digest: projectionstest.RandomHex(32), At: at}
	err := projectionstest.Apply(s.model(), l.Issued(r), l.Rejected(r, "maybe"))
	if err == nil || !strings.Contains(err.Error(), "maybe") {
		t.Fatalf("got %v, want the status refused", err)
	}
	if s.Checkpoint() != 0 || len(s.p.pending) != 0 {
		t.Fatalf("checkpoint %d, %d pending counts after a rolled back batch", s.Checkpoint(), len(s.p.pending))
	}
	r2 := projectionstest.Req{Serial: projectionstest.SerialAt(at), Service: "default", Digest: projectionstest.RandomHex(32), At: at}
	apply(t, s, l.Issued(r2))
	if rows := all(t, s); len(rows) != 1 || rows[0].Issued != 1 {
		t.Fatalf("rows %+v", rows)
	}
}

func TestRefusesAnUnknownStatus(t *testing.T) {
	s := open(t)
	l := projectionstest.NewLog(t)
	r := projectionstest.Req{Serial: projectionstest.SerialAt(time.Now()), Service: "default", At: time.Now()}
	if err := projectionstest.Apply(s.model(), l.Rejected(r, "maybe")); err == nil || !strings.Contains(err.Error(), "maybe") {
		t.Fatalf("got %v", err)
	}
}

func TestCounts(t *testing.T) {
	day := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	type ev struct {
		kind            string // issued, rejection, refused, forwarded
		service, client string
		at              time.Time
	}
	tests := []struct {
		name string
		// batches holds the events, a batch each.
		batches [][]ev
		want    []Row
	}{
		{
			name:    "nothing",
			batches: [][]ev{{{kind: "requested", service: "a", at: day}}},
		},
		{
			name: "every kind",
			batches: [][]ev{{
				{"issued", "a", "CN=x", day}, {"issued", "a", "CN=x", day.Add(time.Hour)}, {"rejection", "a", "CN=x", day},
				{"refused", "a", "CN=x", day}, {"refused", "a", "CN=x", day}, {"forwarded", "a", "CN=x", day},
			}},
			want: []Row{{Day: "2026-11-22", Service: "a", Client: "CN=x", Issued: 2, Rejected: 1, Refused: 2, Forwarded: 1}},
		},
		{
			name: "anonymous, services, clients",
			batches: [][]ev{{
				{"issued", "b", "", day}, {"issued", "a", "", day}, {"issued", "a", "CN=y", day}, {"issued", "a", "CN=x", day},
				{"refused", "b", "", day},
			}},
			want: []Row{
				{Day: "2026-11-22", Service: "a", Client: "", Issued: 1},
				{Day: "2026-11-22", Service: "a", Client: "CN=x", Issued: 1},
				{Day: "2026-11-22", Service: "a", Client: "CN=y", Issued: 1},
				{Day: "2026-11-22", Service: "b", Client: "", Issued: 1, Refused: 1},
			},
		},
		{
			name: "UTC days",
			batches: [][]ev{{
				{"issued", "a", "", day.Add(-time.Nanosecond)}, {"issued", "a", "", day},
				{"issued", "a", "", day.Add(24*time.Hour - time.Nanosecond)},
				// 00:30 in Berlin is still the 22nd's last hour in UTC.
				{"issued", "a", "", time.Date(2026, 11, 23, 0, 30, 0, 0, time.FixedZone("CET", 3600))},
			}},
			want: []Row{
				{Day: "2026-11-21", Service: "a", Issued: 1},
				{Day: "2026-11-22", Service: "a", Issued: 3},
			},
		},
		{
			name: "batches add up",
			batches: [][]ev{
				{{"issued", "a", "CN=x", day}, {"issued", "a", "CN=x", day}},
				{{"issued", "a", "CN=x", day}, {"rejection", "a", "CN=x", day}},
				{{"forwarded", "a", "CN=x", day}},
			},
			want: []Row{{Day: "2026-11-22", Service: "a", Client: "CN=x", Issued: 3, Rejected: 1, Forwarded: 1}},
		},
		{
			name: "escaped client",
			batches: [][]ev{{
				{"issued", "a", `CN=a\, b "q" <c>`, day}, {"issued", "a", `CN=a\, b "q" <c>`, day},
			}},
			want: []Row{{Day: "2026-11-22", Service: "a", Client: `CN=a\, b "q" <c>`, Issued: 2}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t)
			l := projectionstest.NewLog(t)
			for _, b := range tt.batches {
				var evs []eventstore.RecordedEvent
				for _, e := range b {
					r := projectionstest.Req{Serial: projectionstest.SerialAt(e.at), Service: e.service, Client: e.client, Digest: projectionstest.RandomHex(32), At: e.at}
					switch e.kind {
					case "requested":
						evs = append(evs, l.Requested(r), l.Filters(r))
					case "issued":
						evs = append(evs, l.Issued(r))
					case "rejection", "refused":
						evs = append(evs, l.Rejected(r, e.kind))
					case "forwarded":
						evs = append(evs, l.Forwarded(r))
					}
				}
				apply(t, s, evs...)
			}
			if got := all(t, s); !slices.Equal(got, tt.want) {
				t.Fatalf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestFilter(t *testing.T) {
	s := open(t)
	l := projectionstest.NewLog(t)
	day := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	var evs []eventstore.RecordedEvent
	for d := range 5 {
		for _, c := range []string{"", "CN=x"} {
			for _, svc := range []string{"a", "b"} {
				at := day.AddDate(0, 0, d)
				evs = append(evs, l.Issued(projectionstest.Req{Serial: projectionstest.SerialAt(at), Service: svc, Client: c, At: at}))
			}
		}
	}
	apply(t, s, evs...)
	tests := []struct {
		name string
		f    Filter
		want int // rows
		days []string
	}{
		{"all", Filter{}, 20, nil},
		{"days inclusive", Filter{From: day.AddDate(0, 0, 1), To: day.AddDate(0, 0, 2)}, 8, []string{"2026-11-23", "2026-11-24"}},
		{"day bounds are days", Filter{From: time.Date(2026, 11, 23, 23, 59, 0, 0, time.UTC), To: time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)}, 4, []string{"2026-11-23"}},
		{"service", Filter{Service: "b"}, 10, nil},
		{"client", Filter{Client: "CN=x", From: day}, 10, nil},
		{"service and client", Filter{Service: "a", Client: "CN=x", To: day}, 1, []string{"2026-11-22"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rows, err := Counts(context.Background(), s.DB(), tt.f)
			if err != nil {
				t.Fatal(err)
			}
			if len(rows) != tt.want {
				t.Fatalf("%d rows, want %d: %+v", len(rows), tt.want, rows)
			}
			for i, r := range rows {
				if tt.days != nil && !slices.Contains(tt.days, r.Day) {
					t.Errorf("day %s", r.Day)
				}
				if (tt.f.Service != "" && r.Service != tt.f.Service) || (tt.f.Client != "" && r.Client != tt.f.Client) {
					t.Errorf("row %+v", r)
				}
				if i > 0 {
					p := rows[i-1]
					if p.Day > r.Day || (p.Day == r.Day && (p.Service > r.Service || (p.Service == r.Service && p.Client >= r.Client))) {
						t.Errorf("order: %+v before %+v", p, r)
					}
				}
			}
		})
	}
}

// TestIdempotent: a batch delivered twice, or again to a reopened store,
// is counted once.
func TestIdempotent(t *testing.T) {
	path := t.TempDir() + "/x.db"
	s := openAt(t, path)
	l := projectionstest.NewLog(t)
	at := time.Date(2026, 11, 22, 16, 7, 45, 0, time.UTC)
	var batch []eventstore.RecordedEvent
	for i := range 30 {
		r := projectionstest.Req{Serial: projectionstest.SerialAt(at), Service: "default", Client: []string{"", "CN=x", "CN=y"}[i%3], Digest: projectionstest.RandomHex(32), At: at.Add(time.Duration(i) * time.Hour)}
		batch = append(batch, l.Request(r)...)
	}
	apply(t, s, batch...)
	want := all(t, s)
	if len(want) != 6 {
		t.Fatalf("rows %+v", want)
	}
	apply(t, s, batch...)
	if got := all(t, s); !slices.Equal(got, want) {
		t.Fatalf("after a second delivery\n%+v\nwant\n%+v", got, want)
	}
	s.Close()
	s = openAt(t, path)
	apply(t, s, batch[40:]...)
	if got := all(t, s); !slices.Equal(got, want) {
		t.Fatalf("after reopening\n%+v\nwant\n%+v", got, want)
	}
}

func TestWriteCSV(t *testing.T) {
	var b bytes.Buffer
	err := WriteCSV(&b, []Row{
		{Day: "2026-11-22", Service: "a", Client: "", Issued: 3, Rejected: 1},
		{Day: "2026-11-22", Service: "a", Client: "CN=x,O=Example, Inc.", Refused: 2, Forwarded: 4},
		{Day: "2026-11-23", Service: "b", Client: `say "hi"`, Issued: 1},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := "day,service,client,issued,rejected,refused,forwarded\n" +
		"2026-11-22,a,,3,1,0,0\n" +
		"2026-11-22,a,\"CN=x,O=Example, Inc.\",0,0,2,4\n" +
		"2026-11-23,b,\"say \"\"hi\"\"\",1,0,0,0\n"
	if b.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", b.String(), want)
	}
	b.Reset()
	if err := WriteCSV(&b, nil); err != nil || b.String() != "day,service,client,issued,rejected,refused,forwarded\n" {
		t.Fatalf("empty: %q %v", b.String(), err)
	}
}

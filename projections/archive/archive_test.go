package archive

import (
	"context"
	"database/sql"
	"errors"
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
)

// model is the archive in a read store.
type model struct {
	*readstore.Store
	p *Projection
}

func open(t testing.TB) model {
	t.Helper()
	return openAt(t, t.TempDir()+"/x.db")
}

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

// dump returns every row of table, as text, in a stable order.
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
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestAppliesEveryEventType(t *testing.T) {
	m := open(t)
	projectionstest.AppliesEveryEventType(t, m.model())
}

// TestFailedBatchLeavesNothing: a batch that fails leaves neither rows nor
// requests in memory behind it, and the checkpoint where it was.
func TestFailedBatchLeavesNothing(t *testing.T) {
	m := open(t)
	l := projectionstest.NewLog(t)
	r := projectionstest.Req{Serial: projectionstest.SerialAt(time.Now()), Service: "default", Digest: projectionstest.RandomHex(32), At: time.Now().UTC()}
	other := projectionstest.Req{Serial: projectionstest.SerialAt(time.Now()), Service: "default", Digest: projectionstest.RandomHex(32), At: time.Now().UTC()}
	batch := []eventstore.RecordedEvent{l.Requested(r), l.Requested(other), l.Issued(other)}
	batch = append(batch, l.Add(events.RequestStream(r.Serial), r.At, events.Metadata{}, events.TimestampIssued{Policy: "1.2.3"}))
	err := projectionstest.Apply(m.model(), batch...)
	if err == nil || !strings.Contains(err.Error(), "no serial") {
		t.Fatalf("got %v, want an issued event without serial refused", err)
	}
	if m.Checkpoint() != 0 {
		t.Fatalf("checkpoint moved to %d", m.Checkpoint())
	}
	if len(m.p.pending) != 0 {
		t.Fatalf("rolled back batch left %d pending requests", len(m.p.pending))
	}
	for _, table := range []string{"archive", "archive_pending", "archive_services"} {
		if rows := dump(t, m.DB(), table); len(rows) != 0 {
			t.Fatalf("%s rows %v", table, rows)
		}
	}
}

func TestApply(t *testing.T) {
	at := time.Date(2026, 11, 22, 16, 7, 45, 123456789, time.UTC)
	gen := at.Add(1500 * time.Microsecond)
	type want struct {
		entries []Entry // by serial order of the requests
		pending int
	}
	tests := []struct {
		name string
		// batches returns the batches to apply, given the requests.
		batches func(l *projectionstest.Log, rs []projectionstest.Req) [][]eventstore.RecordedEvent
		reqs    []projectionstest.Req
		want    want
	}{
		{
			name: "issued in one batch",
			reqs: []projectionstest.Req{{Service: "default", Client: "CN=alice,O=Example", Protocol: ""}},
			batches: func(l *projectionstest.Log, rs []projectionstest.Req) [][]eventstore.RecordedEvent {
				return [][]eventstore.RecordedEvent{l.Request(rs[0])}
			},
			want: want{entries: []Entry{{Service: "default", Client: "CN=alice,O=Example", Protocol: "rfc3161", HashAlgorithm: "sha256", ReceivedAt: at}}},
		},
		{
			name: "request split across batches",
			reqs: []projectionstest.Req{{Service: "eu", Protocol: "rfc3161"}},
			batches: func(l *projectionstest.Log, rs []projectionstest.Req) [][]eventstore.RecordedEvent {
				evs := l.Request(rs[0])
				return [][]eventstore.RecordedEvent{evs[:1], evs[1:2], evs[2:]}
			},
			want: want{entries: []Entry{{Service: "eu", Protocol: "rfc3161", HashAlgorithm: "sha256", ReceivedAt: at}}},
		},
		{
			name: "authenticode",
			reqs: []projectionstest.Req{{Service: "codesign", Protocol: ProtocolAuthenticode, Client: "build"}},
			batches: func(l *projectionstest.Log, rs []projectionstest.Req) [][]eventstore.RecordedEvent {
				return [][]eventstore.RecordedEvent{l.Request(rs[0])}
			},
			want: want{entries: []Entry{{Service: "codesign", Client: "build", Protocol: "authenticode", HashAlgorithm: "sha256", ReceivedAt: at}}},
		},
		{
			name: "service falls back to the request's",
			reqs: []projectionstest.Req{{Service: "legacy"}},
			batches: func(l *projectionstest.Log, rs []projectionstest.Req) [][]eventstore.RecordedEvent {
				return [][]eventstore.RecordedEvent{{l.Requested(rs[0]), l.Filters(rs[0]), l.IssuedMeta(rs[0], events.Metadata{Node: "tsa-1"})}}
			},
			want: want{entries: []Entry{{Service: "legacy", Protocol: "rfc3161", HashAlgorithm: "sha256", ReceivedAt: at}}},
		},
		{
			name: "issued without its request",
			reqs: []projectionstest.Req{{Service: "default"}},
			batches: func(l *projectionstest.Log, rs []projectionstest.Req) [][]eventstore.RecordedEvent {
				return [][]eventstore.RecordedEvent{{l.Issued(rs[0])}}
			},
			want: want{entries: []Entry{{Service: "default", Protocol: "rfc3161", HashAlgorithm: "", HashedMessage: "-"}}},
		},
		{
			name: "rejected and forwarded leave nothing",
			reqs: []projectionstest.Req{{Service: "default"}, {Service: "default"}, {Service: "proxy"}},
			batches: func(l *projectionstest.Log, rs []projectionstest.Req) [][]eventstore.RecordedEvent {
				return [][]eventstore.RecordedEvent{{
					l.Requested(rs[0]), l.Rejected(rs[0], "rejection"),
					l.Requested(rs[1]), l.Rejected(rs[1], "refused"),
					l.Requested(rs[2]), l.Forwarded(rs[2]),
				}}
			},
		},
		{
			name: "rejected in a later batch drops the pending row",
			reqs: []projectionstest.Req{{Service: "default"}, {Service: "proxy"}, {Service: "default"}},
			batches: func(l *projectionstest.Log, rs []projectionstest.Req) [][]eventstore.RecordedEvent {
				return [][]eventstore.RecordedEvent{
					{l.Requested(rs[0]), l.Requested(rs[1]), l.Requested(rs[2])},
					{l.Rejected(rs[0], "rejection"), l.Forwarded(rs[1])},
				}
			},
			want: want{pending: 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t)
			l := projectionstest.NewLog(t)
			for i := range tt.reqs {
				tt.reqs[i].Serial = projectionstest.SerialAt(at.Add(time.Duration(i) * time.Millisecond))
				tt.reqs[i].Digest = projectionstest.RandomHex(32)
				tt.reqs[i].At = at
			}
			var last uint64
			for _, b := range tt.batches(l, tt.reqs) {
				apply(t, s, b...)
				last = b[len(b)-1].Position
			}
			if s.Checkpoint() != last {
				t.Fatalf("checkpoint %d, want %d", s.Checkpoint(), last)
			}
			if n := len(dump(t, s.DB(), "archive_pending")); n != tt.want.pending {
				t.Errorf("%d pending rows, want %d", n, tt.want.pending)
			}
			got, err := Search(context.Background(), s.DB(), Query{})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want.entries) {
				t.Fatalf("%d entries, want %d: %+v", len(got), len(tt.want.entries), got)
			}
			for i, w := range tt.want.entries {
				r := tt.reqs[i]
				w.Serial, w.Stream = r.Serial, events.RequestStream(r.Serial)
				switch w.HashedMessage {
				case "-":
					w.HashedMessage = ""
				default:
					w.HashedMessage = r.Digest
				}
				w.GenTime, w.Policy, w.Signer, w.ClockSample = gen, projectionstest.Policy, projectionstest.Signer, "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"
				g := got[i]
				if g.Position == 0 {
					t.Errorf("entry %d: no position", i)
				}
				w.Position = g.Position
				if g != w {
					t.Errorf("entry %d\n got %+v\nwant %+v", i, g, w)
				}
			}
		})
	}
}

// TestIdempotent: a batch delivered twice, or again to a reopened store,
// leaves the same rows.
func TestIdempotent(t *testing.T) {
	path := t.TempDir() + "/x.db"
	s := openAt(t, path)
	l := projectionstest.NewLog(t)
	at := time.Date(2026, 11, 22, 16, 7, 45, 0, time.UTC)
	var batch []eventstore.RecordedEvent
	for i := range 20 {
		r := projectionstest.Req{Serial: projectionstest.SerialAt(at.Add(time.Duration(i) * time.Second)), Service: "default", Digest: projectionstest.RandomHex(32), At: at.Add(time.Duration(i) * time.Second)}
		batch = append(batch, l.Request(r)...)
	}
	// The last request's conclusion is in no batch yet: a pending row.
	batch = batch[:len(batch)-1]
	apply(t, s, batch...)
	entries, pending := dump(t, s.DB(), "archive"), dump(t, s.DB(), "archive_pending")
	if len(entries) != 19 || len(pending) != 1 {
		t.Fatalf("%d entries, %d pending", len(entries), len(pending))
	}
	apply(t, s, batch...)
	if got := dump(t, s.DB(), "archive"); !slices.Equal(got, entries) {
		t.Fatalf("after a second delivery\n%v\nwant\n%v", got, entries)
	}
	s.Close()
	s = openAt(t, path)
	apply(t, s, batch[10:]...)
	if got := dump(t, s.DB(), "archive"); !slices.Equal(got, entries) {
		t.Fatalf("after reopening\n%v\nwant\n%v", got, entries)
	}
	if got := dump(t, s.DB(), "archive_pending"); !slices.Equal(got, pending) {
		t.Fatalf("pending after reopening\n%v\nwant\n%v", got, pending)
	}
}

func TestQueries(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	l := projectionstest.NewLog(t)
	day := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	shared := projectionstest.RandomHex(32)
	var reqs []projectionstest.Req
	// Ten requests a minute apart, alternating services and clients; two
	// pairs share a genTime, two requests share an imprint.
	for i := range 10 {
		at := day.Add(time.Duration(i/2*2) * time.Minute)
		r := projectionstest.Req{Serial: projectionstest.SerialAt(at), Service: []string{"a", "b"}[i%2], Client: []string{"", "CN=x", "CN=y"}[i%3], Digest: projectionstest.RandomHex(32), At: at}
		if i == 3 || i == 7 {
			r.Digest = shared
		}
		reqs = append(reqs, r)
		apply(t, s, l.Request(r)...)
	}
	db := s.DB()
	serials := func(es []Entry) []string {
		var out []string
		for _, e := range es {
			out = append(out, e.Serial)
		}
		return out
	}
	// sorted returns the serials of reqs[i] for is, in (genTime, serial) order.
	sorted := func(is ...int) []string {
		rs := make([]projectionstest.Req, 0, len(is))
		for _, i := range is {
			rs = append(rs, reqs[i])
		}
		slices.SortFunc(rs, func(a, b projectionstest.Req) int {
			if c := a.At.Compare(b.At); c != 0 {
				return c
			}
			return strings.Compare(a.Serial, b.Serial)
		})
		var out []string
		for _, r := range rs {
			out = append(out, r.Serial)
		}
		return out
	}

	t.Run("by serial", func(t *testing.T) {
		e, err := BySerial(ctx, db, strings.ToUpper(reqs[4].Serial))
		if err != nil || e.Serial != reqs[4].Serial || e.HashedMessage != reqs[4].Digest || e.Service != "a" {
			t.Fatalf("%+v %v", e, err)
		}
		if _, err := BySerial(ctx, db, "abcdef"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("missing serial: %v", err)
		}
	})
	t.Run("by imprint", func(t *testing.T) {
		got, err := ByImprint(ctx, db, "sha256", strings.ToUpper(shared))
		if err != nil || !slices.Equal(serials(got), sorted(3, 7)) {
			t.Fatalf("%v %v", serials(got), err)
		}
		if got, _ := ByImprint(ctx, db, "", shared); len(got) != 2 {
			t.Fatalf("any algorithm: %d", len(got))
		}
		if got, _ := ByImprint(ctx, db, "sha384", shared); len(got) != 0 {
			t.Fatalf("sha384: %d", len(got))
		}
		if _, err := ByImprint(ctx, db, "sha256", "xyz"); !errors.Is(err, ErrInvalidImprint) {
			t.Fatalf("invalid digest: %v", err)
		}
	})
	searches := []struct {
		name string
		q    Query
		want []string
	}{
		{"all", Query{}, sorted(0, 1, 2, 3, 4, 5, 6, 7, 8, 9)},
		{"service", Query{Service: "b"}, sorted(1, 3, 5, 7, 9)},
		{"client", Query{Client: "CN=x"}, sorted(1, 4, 7)},
		{"service and client", Query{Service: "a", Client: "CN=y"}, sorted(2, 8)},
		{"from to", Query{From: day.Add(2 * time.Minute), To: day.Add(6 * time.Minute)}, sorted(2, 3, 4, 5)},
		{"limit", Query{Limit: 3}, sorted(0, 1, 2, 3, 4, 5, 6, 7, 8, 9)[:3]},
		{"none", Query{Service: "c"}, nil},
	}
	for _, tt := range searches {
		t.Run("search "+tt.name, func(t *testing.T) {
			got, err := Search(ctx, db, tt.q)
			if err != nil || !slices.Equal(serials(got), tt.want) {
				t.Fatalf("got %v %v\nwant %v", serials(got), err, tt.want)
			}
			tt.q.Limit = 0
			n, err := Count(ctx, db, tt.q)
			if err != nil {
				t.Fatal(err)
			}
			if tt.name != "limit" && n != len(tt.want) {
				t.Fatalf("count %d, want %d", n, len(tt.want))
			}
		})
	}
	t.Run("pages", func(t *testing.T) {
		var all []string
		q := Query{Limit: 3}
		for {
			page, err := Search(ctx, db, q)
			if err != nil {
				t.Fatal(err)
			}
			if len(page) == 0 {
				break
			}
			all = append(all, serials(page)...)
			q.After = page[len(page)-1].Serial
		}
		if want := sorted(0, 1, 2, 3, 4, 5, 6, 7, 8, 9); !slices.Equal(all, want) {
			t.Fatalf("paged %v\nwant %v", all, want)
		}
		if _, err := Search(ctx, db, Query{After: "abc"}); !errors.Is(err, ErrNotFound) {
			t.Fatalf("unknown cursor: %v", err)
		}
	})
}

// TestQueriesUseIndexes: no query of the package scans the archive.
func TestQueriesUseIndexes(t *testing.T) {
	s := open(t)
	db := s.DB()
	digest := []byte{1, 2, 3, 4, 5, 6, 7, 8, 9}
	type plan struct {
		query string
		args  []any
		index string
	}
	imprint := func(alg string) plan {
		q, args := imprintSQL(alg, digest)
		return plan{q, args, "archive_imprint"}
	}
	search := func(q Query, c *cursor, index string) plan {
		sq, args := searchSQL(q, c)
		return plan{sq, args, index}
	}
	from, to := time.Now().Add(-time.Hour), time.Now()
	for _, tt := range []plan{
		{bySerialSQL, []any{"ab"}, "sqlite_autoindex_archive_1"},
		imprint("sha256"),
		imprint(""),
		search(Query{Service: "a", From: from, To: to}, nil, "archive_service_time"),
		search(Query{Service: "a"}, &cursor{1, "ab"}, "archive_service_time"),
		search(Query{Client: "a"}, nil, "archive_client_time"),
		search(Query{From: from, To: to}, nil, "archive_gen_time"),
		search(Query{}, nil, "archive_gen_time"),
		search(Query{}, &cursor{1, "ab"}, "archive_gen_time"),
	} {
		rows, err := db.Query(`EXPLAIN QUERY PLAN `+tt.query, tt.args...)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, notused int
			var detail string
			if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		if p := strings.Join(plan, "; "); !strings.Contains(p, tt.index) {
			t.Errorf("%s\nplan %s, want %s", tt.query, p, tt.index)
		}
	}
}

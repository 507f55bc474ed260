package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/klauspost/compress/s2"

	"github.com/chronolog/chronolog/domain/eventstore"
)

func TestRecordRoundTrip(t *testing.T) {
	r := mrand.New(mrand.NewPCG(3, 4))
	random := make([]byte, 5000)
	for i := range random {
		random[i] = byte(r.Uint32())
	}
	cases := map[string][]eventstore.EventData{
		"tsa request":    tsaRequestEvents(r),
		"incompressible": {{ID: uuid.NewString(), Type: "Blob.v1", Payload: random}},
		"empty and nil": {
			{ID: uuid.NewString(), Type: "Empty.v1", Payload: []byte{}},
			{ID: uuid.NewString(), Type: "Nil.v1"},
		},
		"large": {{ID: uuid.NewString(), Type: "Big.v1", Payload: bytes.Repeat([]byte(`{"k":"v"},`), 100000)}},
	}
	dicts := learnedDictionaries(t, r)
	for name, evs := range cases {
		for _, withDict := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s, dictionary %v", name, withDict), func(t *testing.T) {
				d := dicts
				if !withDict {
					d = nil
				}
				roundTrip(t, name, evs, d)
			})
		}
	}
}

// learnedDictionaries are dictionaries with one in use, learned from a
// TSA request's record.
func learnedDictionaries(t testing.TB, r *mrand.Rand) *dictionaries {
	t.Helper()
	d := newDictionaries(nil)
	body, err := recordBody(mustEncode(t, tsaRequestEvents(r), nil).record, nil)
	if err != nil {
		t.Fatal(err)
	}
	d.use(7, s2.MakeDict(body, nil))
	return d
}

func mustEncode(t testing.TB, evs []eventstore.EventData, d *dictionaries) encodedAppend {
	t.Helper()
	enc, err := encodeAppend(evs, d)
	if err != nil {
		t.Fatal(err)
	}
	return enc
}

func roundTrip(t *testing.T, name string, evs []eventstore.EventData, dicts *dictionaries) {
	t.Helper()
	enc := mustEncode(t, evs, dicts)
	switch want := formatS2; {
	case name == "incompressible" && enc.record[0] != formatRaw:
		t.Errorf("format 0x%02x", enc.record[0])
	case name == "tsa request" && dicts != nil && enc.record[0] != formatS2Dict:
		t.Errorf("format 0x%02x with a dictionary", enc.record[0])
	case name == "large" && dicts == nil && enc.record[0] != want:
		t.Errorf("format 0x%02x", enc.record[0])
	}
	last := uint64(100)
	got, err := decodeRecord(nil, "s", last, 7, len(evs), enc.record, func(id uint64) (*s2.Dict, error) {
		return dicts.get(context.Background(), id)
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range got {
		want := evs[i]
		if e.ID != want.ID || e.Type != want.Type || !bytes.Equal(e.Payload, want.Payload) ||
			e.Stream != "s" || e.Revision != 7+uint64(i) || e.Position != last-uint64(len(evs))+1+uint64(i) {
			t.Errorf("event %d = %+v", i, e)
		}
		if enc.ids[i] != uuid.MustParse(want.ID) {
			t.Errorf("id %d = %x", i, enc.ids[i])
		}
	}
	// Appending to one payload must not overwrite the next.
	if len(got) > 1 {
		next := bytes.Clone(got[1].Payload)
		_ = append(got[0].Payload, 'X')
		if !bytes.Equal(got[1].Payload, next) {
			t.Error("payloads alias each other")
		}
	}
}

func TestRecordRefusals(t *testing.T) {
	for _, id := range []string{"x-1", "01A20F64-EA64-7103-91FC-E1A04D5B6A10", "{01a20f64-ea64-7103-91fc-e1a04d5b6a10}",
		"01a20f64ea64710391fce1a04d5b6a10", "urn:uuid:01a20f64-ea64-7103-91fc-e1a04d5b6a10"} {
		if _, err := encodeAppend([]eventstore.EventData{{ID: id, Type: "T.v1"}}, nil); err == nil {
			t.Errorf("id %q accepted", id)
		}
	}
	good, err := encodeAppend([]eventstore.EventData{{ID: uuid.NewString(), Type: "T.v1", Payload: []byte("{}")}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	raw := append([]byte{formatRaw}, mustBody(t, good.record)...)
	dicts := learnedDictionaries(t, mrand.New(mrand.NewPCG(1, 1)))
	known := func(id uint64) (*s2.Dict, error) { return dicts.get(context.Background(), id) }
	withDict := mustEncode(t, tsaRequestEvents(mrand.New(mrand.NewPCG(1, 2))), dicts).record
	for name, rec := range map[string][]byte{
		"empty":                nil,
		"unknown format":       append([]byte{0x7f}, raw[1:]...),
		"bad s2":               {formatS2, 0xff, 0xff, 0xff},
		"short id":             raw[:10],
		"cut type":             raw[:18],
		"cut payload":          raw[:len(raw)-1],
		"trailing bytes":       append(bytes.Clone(raw), 0),
		"no dictionary":        {formatS2Dict},
		"unknown dictionary":   append([]byte{formatS2Dict, 9}, withDict[2:]...),
		"bad dictionary block": append(bytes.Clone(withDict[:2]), 0xff, 0xff, 0xff),
	} {
		if _, err := decodeRecord(nil, "s", 1, 0, 1, rec, known); !errors.Is(err, errBadRecord) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
	if _, err := decodeRecord(nil, "s", 4, 0, 4, withDict, nil); !errors.Is(err, errBadRecord) {
		t.Errorf("a dictionary's record without dictionaries: err = %v", err)
	}
	if _, err := decodeRecord(nil, "s", 1, 0, 2, raw, nil); !errors.Is(err, errBadRecord) {
		t.Errorf("count beyond last position: err = %v", err)
	}
	if _, err := decodeRecord(nil, "s", 5, 0, 2, raw, nil); !errors.Is(err, errBadRecord) {
		t.Errorf("count larger than the record: err = %v", err)
	}
}

func mustBody(t *testing.T, rec []byte) []byte {
	t.Helper()
	b, err := recordBody(rec, nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// FuzzDecodeRecord: any stored bytes decode or fail cleanly, and what
// decodes re-encodes to the same body.
func FuzzDecodeRecord(f *testing.F) {
	dicts := learnedDictionaries(f, mrand.New(mrand.NewPCG(5, 5)))
	known := func(id uint64) (*s2.Dict, error) { return dicts.get(context.Background(), id) }
	enc, _ := encodeAppend(tsaRequestEvents(mrand.New(mrand.NewPCG(5, 6))), nil)
	f.Add(enc.record, 4)
	f.Add(mustEncode(f, tsaRequestEvents(mrand.New(mrand.NewPCG(5, 7))), dicts).record, 4)
	raw := append([]byte{formatRaw}, mustBodyF(enc.record, nil)...)
	f.Add(raw, 4)
	f.Add([]byte{formatRaw}, 1)
	f.Fuzz(func(t *testing.T, rec []byte, count int) {
		if count < 1 || count > 64 {
			return
		}
		evs, err := decodeRecord(nil, "s", 1000, 0, count, rec, known)
		if err != nil {
			return
		}
		in := make([]eventstore.EventData, len(evs))
		for i, e := range evs {
			in[i] = eventstore.EventData{ID: e.ID, Type: e.Type, Payload: e.Payload}
		}
		again, err := encodeAppend(in, nil)
		if err != nil {
			t.Fatalf("decoded events do not re-encode: %v", err)
		}
		if !bytes.Equal(mustBodyF(again.record, nil), mustBodyF(rec, known)) {
			t.Fatal("round trip changed the body")
		}
	})
}

func mustBodyF(rec []byte, dict dictFunc) []byte {
	b, err := recordBody(rec, dict)
	if err != nil {
		panic(err)
	}
	return b
}

// TestMigrateV1 opens a database written by schema v1 (one row per event)
// and reads every event back at its old position, revision and id.
func TestMigrateV1(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.db")
	ctx := context.Background()
	db, err := sql.Open("sqlite3", writerDSN(path, defaultBusyTimeout))
	if err != nil {
		t.Fatal(err)
	}
	ids := []string{uuid.NewString(), uuid.NewString(), uuid.NewString()}
	for _, q := range []string{
		`CREATE TABLE events (
			position INTEGER PRIMARY KEY,
			stream   TEXT    NOT NULL CHECK (stream <> ''),
			revision INTEGER NOT NULL CHECK (revision >= 0),
			id       TEXT    NOT NULL UNIQUE CHECK (id <> ''),
			type     TEXT    NOT NULL CHECK (type <> ''),
			payload  BLOB    NOT NULL,
			UNIQUE (stream, revision)
		) STRICT`,
		`INSERT INTO events (position, stream, revision, id, type, payload) VALUES
			(1, 'a', 0, '` + ids[0] + `', 'T.v1', x'7b7d'), (2, 'b', 0, '` + ids[1] + `', 'T.v1', x''), (4, 'a', 1, '` + ids[2] + `', 'U.v1', x'00ff')`,
		`PRAGMA user_version = 1`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatal(q, err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	s := newStore(t, Config{Path: path})
	all, err := s.ReadAll(ctx, 0, 10)
	if err != nil || len(all) != 3 {
		t.Fatalf("ReadAll = %v, %v", all, err)
	}
	want := []eventstore.RecordedEvent{
		{Position: 1, Stream: "a", Revision: 0, ID: ids[0], Type: "T.v1", Payload: []byte("{}")},
		{Position: 2, Stream: "b", Revision: 0, ID: ids[1], Type: "T.v1", Payload: []byte{}},
		{Position: 4, Stream: "a", Revision: 1, ID: ids[2], Type: "U.v1", Payload: []byte{0, 0xff}},
	}
	for i, e := range all {
		w := want[i]
		if e.Position != w.Position || e.Stream != w.Stream || e.Revision != w.Revision || e.ID != w.ID || e.Type != w.Type || !bytes.Equal(e.Payload, w.Payload) {
			t.Errorf("event %d = %+v, want %+v", i, e, w)
		}
	}
	if _, err := s.Append(ctx, "a", eventstore.AtRevision(0), ev("T.v1", "{}")); !errors.Is(err, eventstore.ErrWrongExpectedState) {
		t.Errorf("AtRevision(0) on a@1: %v", err)
	}
	res, err := s.Append(ctx, "a", eventstore.AtRevision(1), ev("T.v1", "{}"))
	if err != nil || res.NextExpected != 2 || res.Position != 5 {
		t.Errorf("append to migrated a = %+v, %v", res, err)
	}
	dup := eventstore.EventData{ID: ids[1], Type: "T.v1"}
	if _, err := s.Append(ctx, "c", eventstore.NoStream, dup); err == nil || !strings.Contains(err.Error(), "duplicate event id") {
		t.Errorf("a migrated id reused: %v", err)
	}
	var tables int
	if err := s.rdb.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_schema WHERE name = 'events'").Scan(&tables); err != nil || tables != 0 {
		t.Errorf("v1 table left behind: %d, %v", tables, err)
	}
}

func TestNonCanonicalIDsAreRefused(t *testing.T) {
	s := newStore(t, Config{})
	_, err := s.Append(context.Background(), "s", eventstore.NoStream, eventstore.EventData{ID: "not-a-uuid", Type: "T.v1"})
	if err == nil || !strings.Contains(err.Error(), "canonical") {
		t.Fatalf("err = %v", err)
	}
}

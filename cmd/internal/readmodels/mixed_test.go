package readmodels

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/chronolog/chronolog/adapters/eventstore/sqlite"
	readstore "github.com/chronolog/chronolog/adapters/readstore/sqlite"
	"github.com/chronolog/chronolog/domain/events"
	"github.com/chronolog/chronolog/domain/eventstore"
	"github.com/chronolog/chronolog/projections"
	"github.com/chronolog/chronolog/projections/archive"
	"github.com/chronolog/chronolog/projections/billing"
)

// TestReplayReadsBothFilterRecords: records written before
// FilterChainDecided hold one FilterDecided per check (and rejections as
// TimestampRejected.v1); a store holding requests of both kinds replays
// into every read model, each request counted once.
func TestReplayReadsBothFilterRecords(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.New(ctx, sqlite.Config{Path: filepath.Join(t.TempDir(), "events.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	at := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	id := 0
	record := func(serial string, evs ...events.Event) {
		t.Helper()
		var data []eventstore.EventData
		for _, e := range evs {
			id++
			ed, err := events.Encode(fmt.Sprintf("01938d2e-6c4b-7e2a-9f1d-%012x", id), events.RequestStream(serial), at, events.Metadata{Node: "n1", Service: "default"}, e)
			if err != nil {
				t.Fatal(err)
			}
			data = append(data, ed)
		}
		if _, err := st.Append(ctx, events.RequestStream(serial), eventstore.NoStream, data...); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 20 {
		serial := fmt.Sprintf("1a2b%04x", i)
		requested := events.TimestampRequested{Serial: serial, Service: "default", Path: "/tsa", Method: "POST", Source: "192.0.2.1:1",
			ReceivedAt: at, BodySHA256: "00", BodySize: 59, Parsed: true, HashAlgorithm: "sha256", HashedMessage: fmt.Sprintf("%064x", i)}
		issued := events.TimestampIssued{Serial: serial, GenTime: at, Policy: "1.2.3", Signer: "ab", Token: []byte{0x30, 0x00}}
		rejected := events.TimestampRejected{Serial: serial, Status: "rejection", FailInfo: "badAlg", Reason: "sha1 is not allowed"}
		rejectedV1 := events.TimestampRejectedV1{Serial: serial, Status: "rejection", FailInfo: "badAlg", Reason: "sha1 is not allowed", AnswerStatus: 200}
		accepted := events.FilterDecision{Filter: "hash-allow-list", Verdict: events.VerdictAccepted, Reason: "sha256 is allowed"}
		denied := events.FilterDecision{Filter: "hash-allow-list", Verdict: events.VerdictRejected, Reason: "sha1 is not allowed", FailInfo: "badAlg"}
		switch i % 4 {
		case 0: // before: one event per check
			record(serial, requested,
				events.FilterDecided{Serial: serial, Filter: accepted.Filter, Verdict: accepted.Verdict, Reason: accepted.Reason},
				events.FilterDecided{Serial: serial, Filter: "policy", Verdict: events.VerdictAccepted}, issued)
		case 1:
			record(serial, requested, events.FilterDecided{Serial: serial, Filter: denied.Filter, Verdict: denied.Verdict, Reason: denied.Reason, FailInfo: denied.FailInfo}, rejectedV1)
		case 2: // since: one event per chain
			record(serial, requested, events.FilterChainDecided{Serial: serial, Rule: "default", Chain: "default",
				Decisions: []events.FilterDecision{accepted, {Filter: "policy", Verdict: events.VerdictAccepted}}}, issued)
		case 3:
			record(serial, requested, events.FilterChainDecided{Serial: serial, Rule: "default", Chain: "default", Decisions: []events.FilterDecision{denied}}, rejected)
		}
	}
	models, stores, err := Open(ctx, t.TempDir(), All(), readstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer CloseAll(stores)
	if _, err := projections.Replay(ctx, projections.ReplayFeed(st), models, projections.RunnerConfig{}); err != nil {
		t.Fatal(err)
	}
	for _, s := range stores {
		if s.Checkpoint() != st.Head() {
			t.Errorf("%s stopped at %d of %d", s.Name(), s.Checkpoint(), st.Head())
		}
		switch s.Name() {
		case billing.Name:
			rows, err := billing.Counts(ctx, s.DB(), billing.Filter{})
			if err != nil || len(rows) != 1 || rows[0].Issued != 10 || rows[0].Rejected != 10 {
				t.Errorf("billing %+v, %v: want 10 issued and 10 rejected", rows, err)
			}
		case archive.Name:
			if n, err := archive.Count(ctx, s.DB(), archive.Query{}); err != nil || n != 10 {
				t.Errorf("archive holds %d tokens (%v), want 10", n, err)
			}
		}
	}
}

// somethingNew is an event type added after the projections were
// written: registered nowhere, handled by none.
type somethingNew struct {
	Detail string `json:"detail"`
}

func (somethingNew) EventType() string { return "SomethingNew.v1" }

// TestNewEventTypeNeedsNoProjectionEdit: a record holding an event type
// no projection handles (and the events package does not know) is kept
// live and replayed by every read model: each passes the event by, none
// stops.
func TestNewEventTypeNeedsNoProjectionEdit(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.New(ctx, sqlite.Config{Path: filepath.Join(t.TempDir(), "events.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	at := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	appendOne := func(id int, stream string, e events.Event) {
		t.Helper()
		ed, err := events.Encode(fmt.Sprintf("01938d2e-6c4b-7e2a-9f1d-%012x", id), stream, at, events.Metadata{Node: "n1", Service: "default"}, e)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.Append(ctx, stream, eventstore.Any, ed); err != nil {
			t.Fatal(err)
		}
	}
	serial := "1a2b"
	appendOne(1, events.RequestStream(serial), events.TimestampRequested{Serial: serial, Service: "default", Path: "/tsa", Method: "POST",
		Source: "192.0.2.1:1", ReceivedAt: at, BodySHA256: "00", BodySize: 59, Parsed: true, HashAlgorithm: "sha256", HashedMessage: fmt.Sprintf("%064x", 1)})
	appendOne(2, "news", somethingNew{Detail: "first"})
	appendOne(3, events.RequestStream(serial), events.TimestampIssued{Serial: serial, GenTime: at, Policy: "1.2.3", Signer: "ab", Token: []byte{0x30, 0x00}})

	// Live, from the start.
	models, stores, err := Open(ctx, t.TempDir(), All(), readstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer CloseAll(stores)
	r, err := projections.NewRunner(projections.LiveFeed(st, projections.LiveConfig{}), models, projections.RunnerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	appendOne(4, "news", somethingNew{Detail: "second"})
	deadline := time.Now().Add(10 * time.Second)
	for {
		done := true
		for _, s := range r.Status() {
			if s.Failed != "" {
				t.Fatalf("%s stopped: %s", s.Name, s.Failed)
			}
			done = done && s.Checkpoint == st.Head()
		}
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not caught up: %+v", r.Status())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := r.Stop(); err != nil {
		t.Fatal(err)
	}

	// Replayed, into fresh stores.
	models, stores, err = Open(ctx, t.TempDir(), All(), readstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer CloseAll(stores)
	if _, err := projections.Replay(ctx, projections.ReplayFeed(st), models, projections.RunnerConfig{}); err != nil {
		t.Fatal(err)
	}
	for _, s := range stores {
		if s.Checkpoint() != st.Head() {
			t.Errorf("%s stopped at %d of %d", s.Name(), s.Checkpoint(), st.Head())
		}
		if s.Name() == archive.Name {
			if n, err := archive.Count(ctx, s.DB(), archive.Query{}); err != nil || n != 1 {
				t.Errorf("archive holds %d tokens (%v), want 1", n, err)
			}
		}
	}
}

package translog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/chronolog/chronolog/domain/events"
	"github.com/chronolog/chronolog/domain/merkle"
)

const auditOrigin = "audit.example.org/log"

var auditT0 = time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)

// servedLog is a log as a server would serve it: a signed checkpoint, the
// leaves, and each leaf's events. Tampering edits a copy.
type servedLog struct {
	checkpoint []byte
	leaves     [][]byte
	events     [][]AuditEvent
}

func (m *servedLog) Checkpoint(context.Context) ([]byte, error) { return m.checkpoint, nil }

func (m *servedLog) Segment(_ context.Context, i uint64) ([]byte, []AuditEvent, error) {
	if i >= uint64(len(m.leaves)) {
		return nil, nil, fmt.Errorf("the log has %d segments", len(m.leaves))
	}
	return m.leaves[i], m.events[i], nil
}

func (m *servedLog) clone() *servedLog {
	c := &servedLog{checkpoint: bytes.Clone(m.checkpoint)}
	for i := range m.leaves {
		c.leaves = append(c.leaves, bytes.Clone(m.leaves[i]))
		evs := make([]AuditEvent, len(m.events[i]))
		for j, e := range m.events[i] {
			evs[j] = AuditEvent{Position: e.Position, Type: e.Type, Payload: bytes.Clone(e.Payload)}
		}
		c.events = append(c.events, evs)
	}
	return c
}

// tokenBook stands in for the token checks: an RFC 3161 token is
// "token:<serial>", an Authenticode countersignature
// "countersignature:<serial>", its genTime whatever the test said. A token
// checked as the other kind does not parse, as a real one would not; a
// token it does not know has a bad signature.
type tokenBook map[string]time.Time

const countersignaturePrefix = "countersignature:"

func (b tokenBook) check(ti *events.TimestampIssued) (time.Time, error) {
	token := string(ti.Token)
	switch counter := strings.HasPrefix(token, countersignaturePrefix); ti.Protocol {
	case "":
		if counter {
			return time.Time{}, errors.New("rfc3161: SignedData does not encapsulate a TSTInfo")
		}
	case events.ProtocolAuthenticode:
		if !counter {
			return time.Time{}, errors.New("authenticode response: encapsulated content is not data")
		}
	default:
		return time.Time{}, fmt.Errorf("no check for tokens of protocol %q", ti.Protocol)
	}
	gen, ok := b[token]
	if !ok {
		return time.Time{}, errors.New("crypto/ecdsa: verification error")
	}
	return gen, nil
}

// request is one granted request: its events, as the TSA records them.
type request struct {
	serial   string
	genTime  time.Time // recorded in the event
	token    string
	protocol string // TimestampIssued.Protocol: "" for RFC 3161
}

// buildLog records reqs as a TSA would (requested, one filter decision,
// issued), with a bookkeeping event every few requests, seals the stream
// with the real Sealer into segments of segmentEvents, and signs the
// checkpoint over the leaves.
func buildLog(t *testing.T, signer note.Signer, segmentEvents int, reqs []request) *servedLog {
	t.Helper()
	var stream []AuditEvent
	add := func(streamName string, e events.Event) {
		ed, err := events.Encode(fmt.Sprintf("id-%d", len(stream)+1), streamName, auditT0, events.Metadata{Node: "n1"}, e)
		if err != nil {
			t.Fatal(err)
		}
		stream = append(stream, AuditEvent{Position: uint64(len(stream) + 1), Type: ed.Type, Payload: ed.Payload})
	}
	for i, q := range reqs {
		s := events.RequestStream(q.serial)
		add(s, events.TimestampRequested{Serial: q.serial, Service: "tsa", Path: "/tsa", Method: "POST", Parsed: true, ReceivedAt: q.genTime, Protocol: q.protocol})
		add(s, events.FilterDecided{Serial: q.serial, Filter: "hash", Verdict: events.VerdictAccepted})
		add(s, events.TimestampIssued{Serial: q.serial, GenTime: q.genTime, Policy: "1.2.3", Token: []byte(q.token), Protocol: q.protocol})
		if i%3 == 2 {
			add(events.LogSegmentsStream, events.LogSegmentSealed{Index: uint64(i), First: 1, Last: 2, Count: 2, Log: "test"})
		}
	}
	m := &servedLog{}
	sealer := NewSealer(segmentEvents, 0, events.TypeLogSegmentSealed, events.TypeLogCheckpointSigned)
	var pending []AuditEvent
	keep := func(seg Segment) {
		m.leaves = append(m.leaves, seg.Leaf.Marshal())
		m.events = append(m.events, pending)
		pending = nil
	}
	for _, e := range stream {
		pending = append(pending, e)
		seg, full, err := sealer.Add(Event(e))
		if err != nil {
			t.Fatal(err)
		}
		if full {
			keep(seg)
		}
	}
	if seg, ok := sealer.Cut(); ok {
		keep(seg)
	}
	hashes := make([]merkle.Hash, len(m.leaves))
	for i, l := range m.leaves {
		hashes[i] = merkle.LeafHash(l)
	}
	cp, err := SignCheckpoint(Checkpoint{Origin: signer.Name(), Size: uint64(len(m.leaves)), Root: merkle.Root(hashes)}, signer)
	if err != nil {
		t.Fatal(err)
	}
	m.checkpoint = cp
	return m
}

// steadyRequests are n requests a second apart, and their tokens.
func steadyRequests(n int) ([]request, tokenBook) {
	book := tokenBook{}
	var reqs []request
	for i := range n {
		q := request{serial: fmt.Sprintf("1a%02x", i), genTime: auditT0.Add(time.Duration(i) * time.Second)}
		q.token = "token:" + q.serial
		book[q.token] = q.genTime
		reqs = append(reqs, q)
	}
	return reqs, book
}

func runAudit(t *testing.T, src AuditSource, v note.Verifier, book tokenBook, tolerance time.Duration, strict bool) (AuditReport, error) {
	t.Helper()
	a, err := NewAuditor(AuditConfig{Source: src, Log: v, CheckToken: book.check, Tolerance: tolerance, Strict: strict})
	if err != nil {
		t.Fatal(err)
	}
	return a.Run(context.Background())
}

func findingsText(r AuditReport) string {
	var b strings.Builder
	for _, f := range r.Findings {
		b.WriteString(f.String() + "\n")
	}
	return b.String()
}

// segmentOf is the leaf at index i, parsed.
func segmentOf(t *testing.T, m *servedLog, i int) SegmentLeaf {
	t.Helper()
	l, err := ParseSegmentLeaf(m.leaves[i])
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestAuditCleanLogPasses(t *testing.T) {
	signer, v := keys(t, auditOrigin)
	reqs, book := steadyRequests(12)
	m := buildLog(t, signer, 5, reqs)
	var progress []uint64
	a, err := NewAuditor(AuditConfig{Source: m, Log: v, CheckToken: book.check, Tolerance: time.Second,
		Progress: func(done, total uint64) {
			if total != uint64(len(m.leaves)) {
				t.Errorf("progress total %d, want %d", total, len(m.leaves))
			}
			progress = append(progress, done)
		}})
	if err != nil {
		t.Fatal(err)
	}
	r, err := a.Run(context.Background())
	if err != nil || r.Failures != 0 || r.Flags != 0 || len(r.Findings) != 0 {
		t.Fatalf("clean log: err %v, %d failures, %d flags\n%s", err, r.Failures, r.Flags, findingsText(r))
	}
	// 12 requests of 3 events, 4 bookkeeping events.
	if r.Segments != uint64(len(m.leaves)) || r.Events != 40 || r.Tokens != 12 {
		t.Errorf("counted %d segments, %d events, %d tokens; want %d, 40, 12", r.Segments, r.Events, r.Tokens, len(m.leaves))
	}
	if r.Checkpoint.Origin != auditOrigin || r.Checkpoint.Size != uint64(len(m.leaves)) {
		t.Errorf("checkpoint %+v", r.Checkpoint)
	}
	if len(progress) != len(m.leaves) || progress[len(progress)-1] != uint64(len(m.leaves)) {
		t.Errorf("progress calls %v", progress)
	}
}

// TestAuditDetectsTampering serves a real log with one thing changed, and
// expects a failure whose message names where.
func TestAuditDetectsTampering(t *testing.T) {
	signer, v := keys(t, auditOrigin)
	otherSigner, _ := keys(t, auditOrigin)
	reqs, book := steadyRequests(12)
	clean := buildLog(t, signer, 5, reqs)
	if len(clean.leaves) < 6 {
		t.Fatalf("the log has %d segments; the cases need 6", len(clean.leaves))
	}
	seg2 := segmentOf(t, clean, 2)
	seg3 := segmentOf(t, clean, 3)
	where2 := fmt.Sprintf("segment 2 (positions %d–%d)", seg2.First, seg2.Last)
	cpBody := func(m *servedLog) Checkpoint {
		c, err := OpenCheckpoint(m.checkpoint, v)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	resign := func(m *servedLog, c Checkpoint, s note.Signer) {
		b, err := SignCheckpoint(c, s)
		if err != nil {
			t.Fatal(err)
		}
		m.checkpoint = b
	}
	tests := []struct {
		name   string
		tamper func(m *servedLog)
		want   []string // every one must appear in the findings
	}{
		{
			name: "one byte of a stored event changed",
			tamper: func(m *servedLog) {
				// "id-…" → "Id-…" in segment 2's second event's id: a
				// change that still decodes.
				p := m.events[2][1].Payload
				i := bytes.Index(p, []byte(`"id":"id-`))
				if i < 0 {
					t.Fatalf("no id in %s", p)
				}
				p[i+6] = 'I'
			},
			want: []string{where2 + ": recomputed root differs from the logged leaf"},
		},
		{
			name:   "an event dropped from a segment",
			tamper: func(m *servedLog) { m.events[2] = slices.Delete(m.events[2], 2, 3) },
			want: []string{
				fmt.Sprintf("segment 2: %d events served, the leaf says %d", seg2.Count-1, seg2.Count),
				fmt.Sprintf("%s: position %d is missing", where2, seg2.First+2),
				where2 + ": recomputed root differs",
			},
		},
		{
			name: "an event added to a segment",
			tamper: func(m *servedLog) {
				extra := m.events[2][1]
				m.events[2] = slices.Insert(m.events[2], 2, extra)
			},
			want: []string{
				fmt.Sprintf("segment 2: %d events served, the leaf says %d", seg2.Count+1, seg2.Count),
				fmt.Sprintf("%s: the event at position %d is served after position %d: out of order or repeated", where2, seg2.First+1, seg2.First+1),
				where2 + ": recomputed root differs",
			},
		},
		{
			name: "an event's payload swapped for another's, positions kept",
			tamper: func(m *servedLog) {
				m.events[2][0].Payload, m.events[2][1].Payload = m.events[2][1].Payload, m.events[2][0].Payload
			},
			want: []string{where2 + ": recomputed root differs"},
		},
		{
			name: "checkpoint signed by another key with the same origin",
			tamper: func(m *servedLog) {
				resign(m, cpBody(m), otherSigner)
			},
			want: []string{"checkpoint: does not verify with the log's key " + auditOrigin},
		},
		{
			name: "checkpoint size edited under the log's signature",
			tamper: func(m *servedLog) {
				c := cpBody(m)
				m.checkpoint = bytes.Replace(m.checkpoint, fmt.Appendf(nil, "\n%d\n", c.Size), fmt.Appendf(nil, "\n%d\n", c.Size-1), 1)
			},
			want: []string{"checkpoint: does not verify with the log's key", "invalid signature"},
		},
		{
			name: "checkpoint root edited under the log's signature",
			tamper: func(m *servedLog) {
				c := cpBody(m)
				old := b64(c.Root)
				c.Root[0] ^= 1
				m.checkpoint = bytes.Replace(m.checkpoint, []byte(old), []byte(b64(c.Root)), 1)
			},
			want: []string{"checkpoint: does not verify with the log's key", "invalid signature"},
		},
		{
			name: "the log's key signs a root the leaves do not have",
			tamper: func(m *servedLog) {
				c := cpBody(m)
				c.Root[0] ^= 1
				resign(m, c, signer)
			},
			want: []string{fmt.Sprintf("checkpoint (size %d): the %d segment leaves served recompute root", len(clean.leaves), len(clean.leaves))},
		},
		{
			name: "the log's key signs a size the log does not serve",
			tamper: func(m *servedLog) {
				c := cpBody(m)
				c.Size++
				resign(m, c, signer)
			},
			want: []string{fmt.Sprintf("segment %d: not served, though the checkpoint at size %d covers it", len(clean.leaves), len(clean.leaves)+1)},
		},
		{
			name: "two segments served in each other's place",
			tamper: func(m *servedLog) {
				m.leaves[2], m.leaves[3] = m.leaves[3], m.leaves[2]
				m.events[2], m.events[3] = m.events[3], m.events[2]
			},
			want: []string{
				fmt.Sprintf("segment 3 (positions %d–%d): starts at or before position %d, where segment 2 ends: segments overlap or are out of order", seg2.First, seg2.Last, seg3.Last),
				fmt.Sprintf("checkpoint (size %d): the %d segment leaves served recompute root", len(clean.leaves), len(clean.leaves)),
			},
		},
		{
			name: "a segment's leaf and events changed together",
			tamper: func(m *servedLog) {
				// A consistent lie about segment 2: one event fewer, the
				// leaf recomputed to match. Only the checkpoint catches it.
				m.events[2] = m.events[2][:len(m.events[2])-1]
				var hs []merkle.Hash
				for _, e := range m.events[2] {
					hs = append(hs, merkle.LeafHash(e.Payload))
				}
				l := seg2
				l.Last, l.Count, l.Root = m.events[2][len(m.events[2])-1].Position, l.Count-1, merkle.Root(hs)
				m.leaves[2] = l.Marshal()
			},
			want: []string{
				fmt.Sprintf("segment 3 (positions %d–%d): position %d is in no segment: segment 2 ends at position %d", seg3.First, seg3.Last, seg2.Last, seg2.Last-1),
				fmt.Sprintf("checkpoint (size %d): the %d segment leaves served recompute root", len(clean.leaves), len(clean.leaves)),
			},
		},
		{
			name: "an event served under another type",
			tamper: func(m *servedLog) {
				m.events[2][0].Type = "LogSegmentSealed.v1"
			},
			want: []string{fmt.Sprintf("event at position %d: served as", seg2.First)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := clean.clone()
			tt.tamper(m)
			r, err := runAudit(t, m, v, book, time.Second, false)
			if !errors.Is(err, ErrAuditFailed) {
				t.Fatalf("Run err = %v, want ErrAuditFailed\n%s", err, findingsText(r))
			}
			if r.Failures == 0 {
				t.Fatalf("no failures in the report")
			}
			text := findingsText(r)
			for _, w := range tt.want {
				if !strings.Contains(text, w) {
					t.Errorf("findings lack %q:\n%s", w, text)
				}
			}
		})
	}
	// The same clean log, untouched by the cases above, still passes:
	// each case tampered with a copy.
	if r, err := runAudit(t, clean, v, book, time.Second, false); err != nil {
		t.Fatalf("clean log after the cases: %v\n%s", err, findingsText(r))
	}
}

func TestAuditTokens(t *testing.T) {
	signer, v := keys(t, auditOrigin)
	at := func(s float64) time.Time { return auditT0.Add(time.Duration(s * float64(time.Second))) }
	tests := []struct {
		name       string
		genTimes   []float64 // seconds after auditT0, in log order
		badToken   int       // index of a token whose check fails, -1 for none
		recordedAs int       // index of a token whose event records another genTime, -1 for none
		strict     bool
		wantFail   []string
		wantFlag   []string
		wantErr    bool
	}{
		{
			name:     "steady genTimes",
			genTimes: []float64{0, 1, 2, 3, 4, 5}, badToken: -1, recordedAs: -1,
		},
		{
			name:     "backwards within tolerance is not flagged",
			genTimes: []float64{0, 1, 2, 1.5, 3, 2.01}, badToken: -1, recordedAs: -1,
		},
		{
			name:     "backwards beyond tolerance is flagged, not failed",
			genTimes: []float64{0, 1, 2, -1.2, 3, 4}, badToken: -1, recordedAs: -1,
			wantFlag: []string{"token serial 1a03 at position 13: genTime 2026-11-24T09:59:58.8Z is 3.2s before 2026-11-24T10:00:02Z of token serial 1a02 at position 9 (tolerance 1s)"},
		},
		{
			name:     "backdating fails under strict",
			genTimes: []float64{0, 1, 2, -1.2, 3, 4}, badToken: -1, recordedAs: -1, strict: true,
			wantFlag: []string{"token serial 1a03 at position 13: genTime"},
			wantErr:  true,
		},
		{
			name:     "a token whose signature does not verify fails",
			genTimes: []float64{0, 1, 2, 3, 4, 5}, badToken: 4, recordedAs: -1,
			wantFail: []string{"token serial 1a04 at position 16: signature does not verify: crypto/ecdsa: verification error"},
			wantErr:  true,
		},
		{
			name:     "a token whose genTime is not the one its event records fails",
			genTimes: []float64{0, 1, 2, 3, 4, 5}, badToken: -1, recordedAs: 1,
			wantFail: []string{"token serial 1a01 at position 6: the token's genTime 2026-11-24T10:00:01Z differs from the 2026-11-24T10:00:01.5Z its event records"},
			wantErr:  true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			book := tokenBook{}
			var reqs []request
			for i, s := range tt.genTimes {
				q := request{serial: fmt.Sprintf("1a%02x", i), genTime: at(s)}
				q.token = "token:" + q.serial
				if i != tt.badToken {
					book[q.token] = q.genTime
				}
				if i == tt.recordedAs {
					q.genTime = q.genTime.Add(500 * time.Millisecond)
				}
				reqs = append(reqs, q)
			}
			// One segment per request and a half: tokens cross segments.
			m := buildLog(t, signer, 4, reqs)
			r, err := runAudit(t, m, v, book, time.Second, tt.strict)
			if (err != nil) != tt.wantErr || err != nil && !errors.Is(err, ErrAuditFailed) {
				t.Fatalf("Run err = %v, want error %v\n%s", err, tt.wantErr, findingsText(r))
			}
			if r.Failures != len(tt.wantFail) || r.Flags != len(tt.wantFlag) {
				t.Fatalf("%d failures, %d flags; want %d, %d\n%s", r.Failures, r.Flags, len(tt.wantFail), len(tt.wantFlag), findingsText(r))
			}
			for _, f := range r.Findings {
				want := tt.wantFlag
				if f.Severity == Failure {
					want = tt.wantFail
				}
				if !slices.ContainsFunc(want, func(w string) bool { return strings.HasPrefix(f.Message, w) }) {
					t.Errorf("unexpected %s, want one of %q", f, want)
				}
			}
			wantTokens := uint64(len(tt.genTimes))
			if tt.badToken >= 0 {
				wantTokens--
			}
			if r.Tokens != wantTokens {
				t.Errorf("%d tokens verified, want %d", r.Tokens, wantTokens)
			}
		})
	}
}

// TestAuditVerifiesEachTokenByItsKind: a log holds RFC 3161 tokens and
// Authenticode countersignatures side by side, and the check is told which
// is which by the event that records it.
func TestAuditVerifiesEachTokenByItsKind(t *testing.T) {
	signer, v := keys(t, auditOrigin)
	// Requests 1, 3 and 5 are Authenticode. Each request is three events,
	// the third its TimestampIssued; a bookkeeping event follows the third
	// request (position 10).
	mixed := func(edit func(i int, q *request, book tokenBook)) (*servedLog, tokenBook) {
		reqs, book := steadyRequests(6)
		for i := range reqs {
			q := &reqs[i]
			if i%2 == 1 {
				delete(book, q.token)
				q.protocol, q.token = events.ProtocolAuthenticode, countersignaturePrefix+q.serial
				book[q.token] = q.genTime
			}
			if edit != nil {
				edit(i, q, book)
			}
		}
		return buildLog(t, signer, 5, reqs), book
	}

	m, book := mixed(nil)
	r, err := runAudit(t, m, v, book, time.Second, false)
	if err != nil || r.Failures != 0 || r.Flags != 0 {
		t.Fatalf("a log of both kinds of token: err %v, %d failures, %d flags\n%s", err, r.Failures, r.Flags, findingsText(r))
	}
	if r.Tokens != 6 || r.Authenticode != 3 {
		t.Errorf("%d tokens verified, %d of them Authenticode; want 6 and 3", r.Tokens, r.Authenticode)
	}

	tests := []struct {
		name string
		edit func(i int, q *request, book tokenBook)
		want string
	}{
		{
			name: "a countersignature that does not verify",
			edit: func(i int, q *request, book tokenBook) {
				if i == 3 {
					delete(book, q.token)
				}
			},
			want: "Authenticode token serial 1a03 at position 13: signature does not verify: crypto/ecdsa: verification error",
		},
		{
			name: "a countersignature whose signingTime is not the genTime its event records",
			edit: func(i int, q *request, book tokenBook) {
				if i == 1 {
					q.genTime = q.genTime.Add(time.Second)
				}
			},
			want: "Authenticode token serial 1a01 at position 6: the token's genTime 2026-11-24T10:00:01Z differs from the 2026-11-24T10:00:02Z its event records",
		},
		{
			name: "a countersignature recorded as an RFC 3161 token",
			edit: func(i int, q *request, book tokenBook) {
				if i == 5 {
					q.protocol = ""
				}
			},
			want: "token serial 1a05 at position 19: signature does not verify: rfc3161: SignedData does not encapsulate a TSTInfo",
		},
		{
			name: "an RFC 3161 token recorded as a countersignature",
			edit: func(i int, q *request, book tokenBook) {
				if i == 2 {
					q.protocol = events.ProtocolAuthenticode
				}
			},
			want: "Authenticode token serial 1a02 at position 9: signature does not verify: authenticode response:",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, book := mixed(tt.edit)
			r, err := runAudit(t, m, v, book, time.Second, false)
			if !errors.Is(err, ErrAuditFailed) || r.Failures != 1 {
				t.Fatalf("err %v, %d failures; want one\n%s", err, r.Failures, findingsText(r))
			}
			if got := r.Findings[0].Message; !strings.HasPrefix(got, tt.want) {
				t.Errorf("finding %q, want %q", got, tt.want)
			}
		})
	}
}

func TestAuditListsAtMostMaxFindings(t *testing.T) {
	signer, v := keys(t, auditOrigin)
	reqs, _ := steadyRequests(maxFindings + 5)
	m := buildLog(t, signer, 4096, reqs)
	// No token verifies: one failure per token, more than a report lists.
	r, err := runAudit(t, m, v, tokenBook{}, time.Second, false)
	if !errors.Is(err, ErrAuditFailed) {
		t.Fatalf("err = %v", err)
	}
	if r.Failures != maxFindings+5 || len(r.Findings) != maxFindings || r.Omitted() != 5 {
		t.Errorf("%d failures, %d listed, %d omitted", r.Failures, len(r.Findings), r.Omitted())
	}
}

func TestAuditStopsWithItsContext(t *testing.T) {
	signer, v := keys(t, auditOrigin)
	reqs, book := steadyRequests(6)
	m := buildLog(t, signer, 3, reqs)
	ctx, cancel := context.WithCancel(context.Background())
	a, err := NewAuditor(AuditConfig{Source: m, Log: v, CheckToken: book.check,
		Progress: func(done, _ uint64) {
			if done == 2 {
				cancel()
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	r, err := a.Run(ctx)
	if !errors.Is(err, context.Canceled) || r.Segments != 2 {
		t.Fatalf("err = %v after %d segments; want context.Canceled after 2", err, r.Segments)
	}
}

func TestNewAuditorRefusesAnIncompleteConfig(t *testing.T) {
	_, v := keys(t, auditOrigin)
	m := &servedLog{}
	check := tokenBook{}.check
	for name, cfg := range map[string]AuditConfig{
		"no source":          {Log: v, CheckToken: check},
		"no verifier":        {Source: m, CheckToken: check},
		"no token check":     {Source: m, Log: v},
		"negative tolerance": {Source: m, Log: v, CheckToken: check, Tolerance: -time.Second},
	} {
		if _, err := NewAuditor(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

package logclient

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/chronolog/chronolog/adapters/eventstore/memory"
	"github.com/chronolog/chronolog/adapters/httpapi"
	"github.com/chronolog/chronolog/domain/events"
	"github.com/chronolog/chronolog/domain/eventstore"
	"github.com/chronolog/chronolog/domain/merkle"
	"github.com/chronolog/chronolog/domain/translog"
	"github.com/chronolog/chronolog/domain/tsa"
)

// The client is tested against the real auditor API (httpapi.LogAPI) over
// HTTP; only what the API reads from, the log and the store, is in memory.

// memLog is a log whose published checkpoint lags: it covers the first
// published leaves only.
type memLog struct {
	mu        sync.Mutex
	leaves    [][]byte
	published int
	signer    note.Signer
}

func (l *memLog) hashes(n uint64) []merkle.Hash {
	hs := make([]merkle.Hash, n)
	for i := range hs {
		hs[i] = merkle.LeafHash(l.leaves[i])
	}
	return hs
}

func (l *memLog) Append(context.Context, uint64, []byte) error {
	return errors.New("read-only")
}

func (l *memLog) Size(context.Context) (uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return uint64(len(l.leaves)), nil
}

func (l *memLog) Leaf(_ context.Context, i uint64) ([]byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.leaves[i], nil
}

func (l *memLog) Checkpoint(context.Context) ([]byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.checkpointAt(uint64(l.published))
}

func (l *memLog) checkpointAt(size uint64) ([]byte, error) {
	return translog.SignCheckpoint(translog.Checkpoint{Origin: l.signer.Name(), Size: size, Root: merkle.Root(l.hashes(size))}, l.signer)
}

func (l *memLog) InclusionProof(_ context.Context, index, size uint64) ([]merkle.Hash, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return merkle.InclusionProof(index, l.hashes(size))
}

func (l *memLog) ConsistencyProof(_ context.Context, a, b uint64) ([]merkle.Hash, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return merkle.ConsistencyProof(a, l.hashes(b))
}

// record appends e to stream in the memory store and returns it as
// recorded.
func record(t *testing.T, st *memory.Store, stream string, e events.Event) eventstore.RecordedEvent {
	t.Helper()
	ctx := context.Background()
	ed, err := events.Encode(fmt.Sprintf("id-%d", st.Head()+1), stream, time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC), events.Metadata{}, e)
	if err != nil {
		t.Fatal(err)
	}
	res, err := st.Append(ctx, stream, eventstore.Any, ed)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := st.ReadAll(ctx, res.Position-1, 1)
	if err != nil || len(recs) != 1 {
		t.Fatalf("read back position %d: %v", res.Position, err)
	}
	return recs[0]
}

// noTSA answers no timestamp request: the handler needs a route, these
// tests need none.
type noTSA struct{}

func (noTSA) Name() string { return "tsa" }
func (noTSA) Handle(context.Context, tsa.Request) tsa.Outcome {
	return tsa.Outcome{Kind: tsa.Refused, Refusal: tsa.RefusedMediaType}
}
func (noTSA) Refuse(_ context.Context, _ tsa.Request, r tsa.Refusal, _ string) tsa.Outcome {
	return tsa.Outcome{Kind: tsa.Refused, Refusal: r}
}
func (noTSA) Undelivered(context.Context, string, string) error { return nil }

type fixture struct {
	client   *Client
	verifier note.Verifier
	log      *memLog
	issued   map[string]eventstore.RecordedEvent // by serial
	cpEvents []eventstore.RecordedEvent
}

// newFixture serves three requests, two per segment, and two recorded
// checkpoints; the published checkpoint covers the first two segments, so
// the third token is not under a checkpoint yet.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, "client.example.org/log")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{verifier: verifier, log: &memLog{signer: signer, published: 2}, issued: map[string]eventstore.RecordedEvent{}}
	st := memory.New()
	t.Cleanup(func() { st.Close() })
	for _, serial := range []string{"a1", "b2", "c3"} {
		first := record(t, st, events.RequestStream(serial), events.TimestampRequested{Serial: serial, Parsed: true})
		f.issued[serial] = record(t, st, events.RequestStream(serial), events.TimestampIssued{Serial: serial, Token: []byte("token " + serial)})
		hs := []merkle.Hash{merkle.LeafHash(first.Payload), merkle.LeafHash(f.issued[serial].Payload)}
		leaf := translog.SegmentLeaf{First: first.Position, Last: first.Position + 1, Count: 2, Root: merkle.Root(hs)}
		f.log.leaves = append(f.log.leaves, leaf.Marshal())
	}
	for size := uint64(1); size <= 2; size++ {
		n, err := f.log.checkpointAt(size)
		if err != nil {
			t.Fatal(err)
		}
		root := merkle.Root(f.log.hashes(size))
		f.cpEvents = append(f.cpEvents, record(t, st, events.LogCheckpointsStream,
			events.LogCheckpointSigned{Origin: signer.Name(), Size: size, Root: fmt.Sprintf("%x", root), Note: string(n)}))
	}
	h, err := httpapi.New(httpapi.Config{
		Routes:          httpapi.Routes{"/tsa": noTSA{}},
		TransparencyLog: &httpapi.LogAPI{Log: f.log, Store: st, Key: vkey},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	f.client = New(srv.URL+"/", srv.Client())
	return f
}

func TestClientAgainstTheAuditorAPI(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()

	signed, err := f.client.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cp, err := translog.OpenCheckpoint(signed, f.verifier)
	if err != nil || cp.Size != 2 {
		t.Fatalf("checkpoint: size %d, %v\n%s", cp.Size, err, signed)
	}

	t.Run("proof", func(t *testing.T) {
		p, err := f.client.Proof(ctx, "B2")
		if err != nil {
			t.Fatal(err)
		}
		want := f.issued["b2"]
		if p.Serial != "b2" || p.Event.Position != want.Position || !bytes.Equal(p.Event.Payload, want.Payload) {
			t.Errorf("proof of %s at %d, want b2 at %d", p.Serial, p.Event.Position, want.Position)
		}
		ep, err := p.EventProof()
		if err != nil {
			t.Fatal(err)
		}
		if got, err := ep.Verify(f.verifier); err != nil || got.Size != 2 {
			t.Errorf("verify: size %d, %v", got.Size, err)
		}
	})

	t.Run("segment with and without events", func(t *testing.T) {
		seg, err := f.client.Segment(ctx, 1, true)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(seg.Leaf, f.log.leaves[1]) || len(seg.Events) != 2 || seg.Events[1].Position != f.issued["b2"].Position ||
			!bytes.Equal(seg.Events[1].Payload, f.issued["b2"].Payload) || seg.Events[1].Type != events.TypeTimestampIssued {
			t.Errorf("segment 1 = %+v", seg)
		}
		bare, err := f.client.Segment(ctx, 1, false)
		if err != nil || bare.Events != nil || !bytes.Equal(bare.Leaf, seg.Leaf) {
			t.Errorf("segment 1 without events = %+v, %v", bare, err)
		}
	})

	t.Run("consistency", func(t *testing.T) {
		p, err := f.client.Consistency(ctx, 1, 2)
		if err != nil {
			t.Fatal(err)
		}
		if err := merkle.VerifyConsistency(1, 2, p, merkle.Root(f.log.hashes(1)), cp.Root); err != nil {
			t.Errorf("proof 1→2 does not verify: %v", err)
		}
	})

	t.Run("inclusion", func(t *testing.T) {
		for i := range uint64(2) {
			p, err := f.client.Inclusion(ctx, i, 2)
			if err != nil {
				t.Fatal(err)
			}
			if err := merkle.VerifyInclusion(i, 2, merkle.LeafHash(f.log.leaves[i]), p, cp.Root); err != nil {
				t.Errorf("leaf %d in 2 does not verify: %v", i, err)
			}
		}
	})

	t.Run("checkpoint history in pages", func(t *testing.T) {
		page, err := f.client.Checkpoints(ctx, 0, 1)
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Checkpoints) != 1 || page.Checkpoints[0].Size != 1 || page.Next != f.cpEvents[0].Position {
			t.Fatalf("first page = %+v", page)
		}
		rest, err := f.client.Checkpoints(ctx, page.Next, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(rest.Checkpoints) != 1 || rest.Checkpoints[0].Size != 2 || rest.Next != 0 {
			t.Fatalf("second page = %+v", rest)
		}
		if _, err := translog.OpenCheckpoint([]byte(rest.Checkpoints[0].Note), f.verifier); err != nil {
			t.Errorf("recorded note: %v", err)
		}
	})
}

func TestClientErrors(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	tests := []struct {
		name        string
		call        func() error
		status      int
		message     string
		notYet      bool
		retryAfter  time.Duration
		notAPIError bool
	}{
		{
			name:   "token newer than the checkpoint",
			call:   func() error { _, err := f.client.Proof(ctx, "c3"); return err },
			status: 404, message: "token c3 is not under a checkpoint yet", notYet: true, retryAfter: time.Second,
		},
		{
			name:   "unknown serial",
			call:   func() error { _, err := f.client.Proof(ctx, "d4"); return err },
			status: 404, message: "no request with serial d4",
		},
		{
			name:   "serial that is not hex",
			call:   func() error { _, err := f.client.Proof(ctx, "x/y"); return err },
			status: 400, message: "serial must be hexadecimal",
		},
		{
			name:   "consistency backwards",
			call:   func() error { _, err := f.client.Consistency(ctx, 2, 1); return err },
			status: 400, message: "want 0 ≤ from ≤ to",
		},
		{
			name:   "consistency beyond the checkpoint",
			call:   func() error { _, err := f.client.Consistency(ctx, 1, 3); return err },
			status: 400, message: "to 3 is beyond the latest checkpoint's 2 leaves",
		},
		{
			name:   "inclusion of a leaf outside the tree",
			call:   func() error { _, err := f.client.Inclusion(ctx, 2, 2); return err },
			status: 400, message: "want 0 ≤ index < size",
		},
		{
			name:   "inclusion beyond the checkpoint",
			call:   func() error { _, err := f.client.Inclusion(ctx, 1, 3); return err },
			status: 400, message: "size 3 is beyond the latest checkpoint's 2 leaves",
		},
		{
			name:   "segment beyond the log",
			call:   func() error { _, err := f.client.Segment(ctx, 3, true); return err },
			status: 404, message: "the log has 3 segments",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			var ae *APIError
			if !errors.As(err, &ae) {
				t.Fatalf("err = %v, want an *APIError", err)
			}
			if ae.Status != tt.status || !strings.Contains(ae.Message, tt.message) || ae.RetryAfter != tt.retryAfter {
				t.Errorf("APIError %d %q retry %s; want %d, %q, %s", ae.Status, ae.Message, ae.RetryAfter, tt.status, tt.message, tt.retryAfter)
			}
			if errors.Is(err, ErrNotYet) != tt.notYet {
				t.Errorf("errors.Is(ErrNotYet) = %v, want %v", !tt.notYet, tt.notYet)
			}
			if !strings.Contains(err.Error(), fmt.Sprint(tt.status)) || !strings.Contains(err.Error(), tt.message) {
				t.Errorf("message %q lacks the status or the server's text", err)
			}
		})
	}
}

// TestClientRefusesOddAnswers serves what our API never should: the client
// must say so rather than hand it on.
func TestClientRefusesOddAnswers(t *testing.T) {
	tests := []struct {
		name    string
		handler http.HandlerFunc
		call    func(c *Client) error
		want    string
	}{
		{
			name: "a proxy's error page",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				http.Error(w, "<html>bad gateway</html>", http.StatusBadGateway)
			},
			call: func(c *Client) error { _, err := c.Checkpoint(context.Background()); return err },
			want: "502 Bad Gateway: <html>bad gateway</html>",
		},
		{
			name: "a 503 with Retry-After is not ErrNotYet",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Retry-After", "2")
				http.Error(w, `{"error":"gone"}`, http.StatusServiceUnavailable)
			},
			call: func(c *Client) error {
				_, err := c.Segment(context.Background(), 0, true)
				if errors.Is(err, ErrNotYet) {
					return errors.New("a 503 matched ErrNotYet")
				}
				return err
			},
			want: "503 Service Unavailable: gone",
		},
		{
			name: "another segment than asked for",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				fmt.Fprint(w, `{"index":7}`)
			},
			call: func(c *Client) error { _, err := c.Segment(context.Background(), 6, true); return err },
			want: "asked for segment 6, got segment 7",
		},
		{
			name: "another consistency proof than asked for",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				fmt.Fprint(w, `{"from":1,"to":3,"proof":[]}`)
			},
			call: func(c *Client) error { _, err := c.Consistency(context.Background(), 1, 2); return err },
			want: "asked for consistency 1→2, got 1→3",
		},
		{
			name: "another inclusion proof than asked for",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				fmt.Fprint(w, `{"index":1,"size":3,"proof":[]}`)
			},
			call: func(c *Client) error { _, err := c.Inclusion(context.Background(), 1, 2); return err },
			want: "asked for the inclusion of leaf 1 in 2, got 1 in 3",
		},
		{
			name: "a proof hash that is not 32 bytes",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				fmt.Fprint(w, `{"from":1,"to":2,"proof":["AAAA"]}`)
			},
			call: func(c *Client) error { _, err := c.Consistency(context.Background(), 1, 2); return err },
			want: "proof hash 0 is not 32 base64 bytes",
		},
		{
			name: "not JSON",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				fmt.Fprint(w, `<html>`)
			},
			call: func(c *Client) error { _, err := c.Proof(context.Background(), "a1"); return err },
			want: "/log/v1/proof/a1: invalid character",
		},
		{
			name: "a checkpoint larger than any",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				w.Write(bytes.Repeat([]byte("x"), maxCheckpoint+1))
			},
			call: func(c *Client) error { _, err := c.Checkpoint(context.Background()); return err },
			want: fmt.Sprintf("the answer exceeds %d bytes", maxCheckpoint),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(tt.handler)
			defer srv.Close()
			err := tt.call(New(srv.URL, srv.Client()))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

package httpapi_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/chronolog/chronolog/adapters/clock/system"
	"github.com/chronolog/chronolog/adapters/eventstore/sqlite"
	"github.com/chronolog/chronolog/adapters/httpapi"
	"github.com/chronolog/chronolog/adapters/ids"
	"github.com/chronolog/chronolog/adapters/translog/tessera"
	"github.com/chronolog/chronolog/domain/events"
	"github.com/chronolog/chronolog/domain/logwire"
	"github.com/chronolog/chronolog/domain/merkle"
	"github.com/chronolog/chronolog/domain/rfc3161"
	"github.com/chronolog/chronolog/domain/translog"
	"github.com/chronolog/chronolog/domain/tsa"
)

// logRig is a TSA whose events a real writer commits to a real Tessera log,
// served with the auditor API.
type logRig struct {
	srv      *httptest.Server
	store    *sqlite.Store
	writer   *translog.Writer
	verifier note.Verifier
}

func newLogRig(t *testing.T) *logRig {
	t.Helper()
	dir := t.TempDir()
	signer := testSigner(t)
	store, err := sqlite.New(context.Background(), sqlite.Config{Path: filepath.Join(dir, "events.db")})
	if err != nil {
		t.Fatal(err)
	}
	skey, vkey, _ := note.GenerateKey(rand.Reader, "chronolog.test/logapi")
	ns, _ := note.NewSigner(skey)
	nv, _ := note.NewVerifier(vkey)
	tl, err := tessera.New(context.Background(), tessera.Config{Dir: filepath.Join(dir, "log"), Signer: ns, CheckpointInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ticker := time.NewTicker(20 * time.Millisecond)
	w, err := translog.NewWriter(translog.WriterConfig{Backend: "tessera", MaxEvents: 8},
		translog.WriterPorts{Store: store, Log: tl, IDs: ids.Source{}, Clock: system.Clock{}, Tick: ticker.C, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	svc, err := tsa.New(tsa.Config{Name: "default", Policy: []int{1, 3, 6, 1, 4, 1, 32473, 3161, 1}},
		tsa.Ports{Clock: system.Clock{}, Serials: ids.Source{}, IDs: ids.Source{}, Rand: rand.Reader, Signer: signer, Recorder: store, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	h, err := httpapi.New(httpapi.Config{
		Routes: httpapi.Routes{"/tsa": svc}, Log: log,
		TransparencyLog: &httpapi.LogAPI{Log: tl, Store: store, Key: vkey, Files: tl.Files()},
		LogStatus:       w.Status, StoreHead: store.Head,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		srv.Close()
		cancel()
		<-done
		ticker.Stop()
		tl.Close()
		store.Close()
	})
	return &logRig{srv: srv, store: store, writer: w, verifier: nv}
}

// issue gets a token and returns it and its serial in hex.
func (r *logRig) issue(t *testing.T) ([]byte, string) {
	t.Helper()
	res, err := http.Post(r.srv.URL+"/tsa", httpapi.QueryType, bytes.NewReader(validQuery(t)))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	resp, err := rfc3161.ParseTimeStampResp(body)
	if err != nil || resp.Token == nil {
		t.Fatalf("not granted: %v", err)
	}
	info, err := rfc3161.TokenTSTInfo(resp.Token)
	if err != nil {
		t.Fatal(err)
	}
	return resp.Token, info.SerialNumber.Text(16)
}

func (r *logRig) get(t *testing.T, path string, v any) (int, http.Header) {
	t.Helper()
	res, err := http.Get(r.srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if v != nil && res.StatusCode == http.StatusOK {
		if err := json.Unmarshal(body, v); err != nil {
			t.Fatalf("%s: %v\n%s", path, err, body)
		}
	}
	if res.StatusCode != http.StatusOK && v != nil {
		var e logwire.Problem
		if json.Unmarshal(body, &e) != nil || e.Error == "" {
			t.Fatalf("%s: HTTP %d without a JSON error: %s", path, res.StatusCode, body)
		}
	}
	return res.StatusCode, res.Header
}

// proveEventually asks for a token's proof until a checkpoint covers it.
func (r *logRig) proveEventually(t *testing.T, serial string) logwire.Proof {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var p logwire.Proof
		status, hdr := r.get(t, "/log/v1/proof/"+serial, &p)
		if status == http.StatusOK {
			return p
		}
		if status != http.StatusNotFound || hdr.Get("Retry-After") == "" || time.Now().After(deadline) {
			t.Fatalf("proof of %s: HTTP %d", serial, status)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestLogAPIProvesTokensAgainstSignedCheckpoints(t *testing.T) {
	r := newLogRig(t)
	var tokens [][]byte
	var serials []string
	for range 10 {
		tok, serial := r.issue(t)
		tokens, serials = append(tokens, tok), append(serials, serial)
	}
	for i, serial := range serials {
		p := r.proveEventually(t, serial)
		ep, err := p.EventProof()
		if err != nil {
			t.Fatal(err)
		}
		cp, err := ep.Verify(r.verifier)
		if err != nil {
			t.Fatalf("token %d: %v", i, err)
		}
		_, ev, err := events.Decode(p.Event.Payload)
		if err != nil || !bytes.Equal(ev.(*events.TimestampIssued).Token, tokens[i]) {
			t.Fatalf("token %d: the proven event does not carry the token: %v", i, err)
		}
		if cp.Size < p.Segment.Index+1 {
			t.Fatalf("checkpoint of %d leaves proves segment %d", cp.Size, p.Segment.Index)
		}
	}

	// Every segment's events recompute its root; checkpoints are on record
	// and each later one extends the earlier.
	// A checkpoint is served as soon as the log publishes it, and recorded
	// as LogCheckpointSigned at the writer's next tick: wait for that.
	var cps logwire.Checkpoints
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		status, _ := r.get(t, "/log/v1/checkpoints?limit=1000", &cps)
		if status == http.StatusOK && len(cps.Checkpoints) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("checkpoints: HTTP %d, %d", status, len(cps.Checkpoints))
		}
	}
	last := cps.Checkpoints[len(cps.Checkpoints)-1]
	for i := range last.Size {
		var seg logwire.Segment
		if status, _ := r.get(t, fmt.Sprintf("/log/v1/segments/%d", i), &seg); status != http.StatusOK {
			t.Fatalf("segment %d: HTTP %d", i, status)
		}
		var hs []merkle.Hash
		for _, e := range seg.Events {
			hs = append(hs, merkle.LeafHash(e.Payload))
		}
		if root := merkle.Root(hs); !bytes.Equal(root[:], seg.Root) || uint64(len(hs)) != seg.Count {
			t.Fatalf("segment %d: its events do not recompute its root", i)
		}
	}
	first := cps.Checkpoints[0]
	var c logwire.Consistency
	if status, _ := r.get(t, fmt.Sprintf("/log/v1/consistency?from=%d&to=%d", first.Size, last.Size), &c); status != http.StatusOK {
		t.Fatalf("consistency: HTTP %d", status)
	}
	proof, err := logwire.DecodeHashes(c.Proof)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := translog.VerifyConsistency(r.verifier, []byte(first.Note), []byte(last.Note), proof); err != nil {
		t.Fatalf("recorded checkpoints are not consistent: %v", err)
	}

	// Each leaf is proven in the checkpoint's tree.
	for i := range last.Size {
		var inc logwire.Inclusion
		if status, _ := r.get(t, fmt.Sprintf("/log/v1/inclusion?index=%d&size=%d", i, last.Size), &inc); status != http.StatusOK {
			t.Fatalf("inclusion of %d: HTTP %d", i, status)
		}
		var seg logwire.Segment
		r.get(t, fmt.Sprintf("/log/v1/segments/%d?events=false", i), &seg)
		p, err := logwire.DecodeHashes(inc.Proof)
		if err != nil {
			t.Fatal(err)
		}
		if err := merkle.VerifyInclusion(i, last.Size, merkle.LeafHash(seg.Leaf), p, merkle.Hash(last.Root)); err != nil || inc.Index != i || inc.Size != last.Size {
			t.Errorf("inclusion of leaf %d in %d: %+v: %v", i, last.Size, inc, err)
		}
	}

	// Tiles are served read-only; the log's private state is not.
	for path, want := range map[string]int{
		"/log/v1/tiles/checkpoint":           200,
		"/log/v1/tiles/tile/entries/000.p/1": 0, // any: partial widths vary
		"/log/v1/tiles/.state/treeState":     404,
	} {
		status, _ := r.get(t, path, nil)
		if want != 0 && status != want {
			t.Errorf("%s: HTTP %d, want %d", path, status, want)
		}
	}
	var health string
	res, _ := http.Get(r.srv.URL + "/healthz")
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	health = string(b)
	if !strings.HasPrefix(health, "ok\nlog: up\n") || !strings.Contains(health, "checkpoint lag p50") {
		t.Errorf("healthz:\n%s", health)
	}
	res, _ = http.Get(r.srv.URL + "/metrics")
	b, _ = io.ReadAll(res.Body)
	res.Body.Close()
	for _, m := range []string{"chronolog_log_up 1", "chronolog_log_lag_events", `chronolog_log_lag_seconds{quantile="0.99"}`, "chronolog_store_head_position"} {
		if !strings.Contains(string(b), m) {
			t.Errorf("metrics lack %s", m)
		}
	}
}

func TestLogAPIErrors(t *testing.T) {
	r := newLogRig(t)
	for path, want := range map[string]int{
		"/log/v1/proof/zz":                     400,
		"/log/v1/proof/abcdef":                 404,
		"/log/v1/segments/x":                   400,
		"/log/v1/segments/999":                 404,
		"/log/v1/consistency?from=2&to=1":      400,
		"/log/v1/consistency?from=0&to=999999": 400,
		"/log/v1/inclusion?index=1&size=1":     400,
		"/log/v1/inclusion?index=0&size=99999": 400,
		"/log/v1/inclusion?index=x&size=1":     400,
		"/log/v1/checkpoints?limit=0":          400,
	} {
		if status, _ := r.get(t, path, &struct{}{}); status != want {
			t.Errorf("%s: HTTP %d, want %d", path, status, want)
		}
	}
}

package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/chronolog/chronolog/adapters/logclient"
	"github.com/chronolog/chronolog/adapters/logwire"
	"github.com/chronolog/chronolog/domain/events"
	"github.com/chronolog/chronolog/domain/merkle"
	"github.com/chronolog/chronolog/domain/translog"
)

// serve answers the log API for l, its latest checkpoint of size().
func (l *miniLog) serve(t *testing.T, size func() uint64) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /log/v1/checkpoint", func(w http.ResponseWriter, r *http.Request) {
		w.Write(l.checkpoint(t, size()))
	})
	mux.HandleFunc("GET /log/v1/segments/{index}", func(w http.ResponseWriter, r *http.Request) {
		i, _ := strconv.Atoi(r.PathValue("index"))
		leaf := l.leaves[i]
		json.NewEncoder(w).Encode(logwire.Segment{Index: uint64(i), Leaf: leaf.Marshal(), First: leaf.First, Last: leaf.Last, Count: leaf.Count, Root: leaf.Root[:]})
	})
	mux.HandleFunc("GET /log/v1/proof/a1", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(l.proof(t, size()))
	})
	mux.HandleFunc("GET /log/v1/inclusion", func(w http.ResponseWriter, r *http.Request) {
		index, _ := strconv.ParseUint(r.URL.Query().Get("index"), 10, 64)
		n, _ := strconv.ParseUint(r.URL.Query().Get("size"), 10, 64)
		if index >= n || n > size() {
			http.Error(w, `{"error":"out of range"}`, http.StatusBadRequest)
			return
		}
		p, _ := merkle.InclusionProof(index, l.hashes[:n])
		json.NewEncoder(w).Encode(logwire.Inclusion{Index: index, Size: n, Proof: logwire.EncodeHashes(p)})
	})
	mux.HandleFunc("GET /log/v1/consistency", func(w http.ResponseWriter, r *http.Request) {
		from, _ := strconv.ParseUint(r.URL.Query().Get("from"), 10, 64)
		to, _ := strconv.ParseUint(r.URL.Query().Get("to"), 10, 64)
		p, _ := merkle.ConsistencyProof(from, l.hashes[:to])
		json.NewEncoder(w).Encode(logwire.Consistency{From: from, To: to, Proof: logwire.EncodeHashes(p)})
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// sealPayload is the LogSegmentSealed the writer records for segment i.
func (l *miniLog) sealPayload(t *testing.T, i uint64) []byte {
	t.Helper()
	leaf, lh := l.leaves[i], l.hashes[i]
	return encodeEvent(t, events.LogSegmentsStream, events.LogSegmentSealed{
		Index: i, First: leaf.First, Last: leaf.Last, Count: leaf.Count,
		Root: hex.EncodeToString(leaf.Root[:]), LeafHash: hex.EncodeToString(lh[:]), Log: "tessera",
	})
}

// checkpointPayload is the LogCheckpointSigned the writer records for a
// signed checkpoint.
func checkpointPayload(t *testing.T, signed []byte) []byte {
	t.Helper()
	cp, err := parseSignedCheckpoint(signed)
	if err != nil {
		t.Fatal(err)
	}
	return encodeEvent(t, events.LogCheckpointsStream, events.LogCheckpointSigned{
		Origin: cp.Origin, Size: cp.Size, Root: hex.EncodeToString(cp.Root[:]), Note: string(signed),
	})
}

func encodeEvent(t *testing.T, stream string, e events.Event) []byte {
	t.Helper()
	ed, err := events.Encode("id-"+stream, stream, time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC), events.Metadata{}, e)
	if err != nil {
		t.Fatal(err)
	}
	return ed.Payload
}

// miniTail is a range's trailing bookkeeping after its last request at
// position 6: the seal of segment 2 (positions 5–6) at 7, a checkpoint of
// size 2 at 8 and one of size 3 at 9.
func (l *miniLog) miniTail(t *testing.T) bookkeepingTail {
	t.Helper()
	var tail bookkeepingTail
	for _, e := range []struct {
		pos     uint64
		typ     string
		payload []byte
	}{
		{5, "Event.v1", l.payloads[4]},
		{6, "Event.v1", l.payloads[5]},
		{7, events.TypeLogSegmentSealed, l.sealPayload(t, 2)},
		{8, events.TypeLogCheckpointSigned, checkpointPayload(t, l.checkpoint(t, 2))},
		{9, events.TypeLogCheckpointSigned, checkpointPayload(t, l.checkpoint(t, 3))},
	} {
		if err := tail.add(e.pos, e.typ, e.payload); err != nil {
			t.Fatal(err)
		}
	}
	return tail
}

func TestBookkeepingTailKeepsWhatFollowsTheLastOtherEvent(t *testing.T) {
	l := newMiniLog(t)
	tail := l.miniTail(t)
	if len(tail) != 3 || tail[0].position != 7 || tail[0].segment == nil || tail[0].segment.Index != 2 ||
		tail[1].checkpoint == nil || tail[1].checkpoint.Size != 2 || tail[2].checkpoint.Size != 3 {
		t.Fatalf("tail = %+v", tail)
	}
	if got := tail.positions(); got != "positions 7–9" {
		t.Errorf("positions: %q", got)
	}
	if size, seal := tail.needs(); size != 3 || seal.position != 7 {
		t.Errorf("needs %d leaves (seal at %d), want 3 for the seal of segment 2 at 7", size, seal.position)
	}
	if size, seal := tail[1:].needs(); size != 3 || seal.segment != nil {
		t.Errorf("needs %d leaves (seal %+v), want 3 for the checkpoint of size 3", size, seal)
	}
	// Another request: no tail any more.
	if err := tail.add(10, events.TypeTimestampIssued, []byte(`{}`)); err != nil || len(tail) != 0 {
		t.Errorf("after a request: %+v, %v", tail, err)
	}
	if size, _ := tail.needs(); size != 0 {
		t.Errorf("an empty tail needs %d leaves", size)
	}
	if err := tail.add(11, events.TypeLogSegmentSealed, []byte(`{"type":"LogSegmentSealed.v1"}`)); err == nil {
		t.Error("a seal that does not decode: accepted")
	}
}

// exportMiniTail exports the mini log's tail, with the token a1 at
// position 4 and the last event other than bookkeeping at lastOther,
// against a log whose checkpoint is of size().
func exportMiniTail(t *testing.T, l *miniLog, lastOther uint64, size func() uint64, wait time.Duration) (string, exportedLog, error) {
	t.Helper()
	srv := l.serve(t, size)
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "log", "proofs"), 0o755); err != nil {
		t.Fatal(err)
	}
	sum := &exportSummary{first: 3, last: 9, serials: []string{"a1"}, lastSubstantive: lastOther, tail: l.miniTail(t)}
	lg, err := exportLog(context.Background(), logclient.New(srv.URL, nil), exportOptions{out: dir, wait: wait}, sum)
	return dir, lg, err
}

// TestExportCarriesTrailingBookkeeping: the checkpoint covers the range
// up to its last request only; the seal after it is proven by its leaf's
// inclusion, the checkpoints after it by their notes and a consistency
// proof, and the verifier checks each and finds every change.
func TestExportCarriesTrailingBookkeeping(t *testing.T) {
	l := newMiniLog(t)
	dir, lg, err := exportMiniTail(t, l, 6, func() uint64 { return 3 }, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if lg.checkpoint.Size != 3 || lg.covered != 6 || lg.againstFinal != 1 || lg.consistency != 1 || lg.tailSegments != 1 {
		t.Errorf("exported %+v", lg)
	}
	for _, f := range []string{"log/checkpoint", "log/proofs/a1.json", "log/segments/2.json", "log/consistency/2-3.json"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}

	check := func(dir string, tail bookkeepingTail) (string, int) {
		var out bytes.Buffer
		v := &bundleVerifier{fsys: os.DirFS(dir), log: l.verifier, out: &out,
			manifest: &exportManifest{LogOrigin: "example.com/log"},
			issued:   map[string]exportIssued{"a1": {position: 4, payload: sha256.Sum256(l.payloads[3])}},
			tail:     tail}
		v.checkLog()
		return out.String(), v.problems
	}
	if got, n := check(dir, l.miniTail(t)); n != 0 || !strings.Contains(got,
		"bookkeeping:  positions 7–9 after the range's last other event: 1 segment seal proven in log/checkpoint, 2 checkpoints verified with the log key and consistent with it: OK") {
		t.Fatalf("%d problems:\n%s", n, got)
	}
	// Without a tail, the segment proof is a stray file.
	if got, n := check(dir, nil); n != 1 || !strings.Contains(got, "log/segments/2.json: not the proof of a segment sealed after the range's last other event") {
		t.Errorf("no tail: %d problems:\n%s", n, got)
	}

	other, _, err := note.GenerateKey(rand.Reader, "example.com/log")
	if err != nil {
		t.Fatal(err)
	}
	otherSigner, err := note.NewSigner(other)
	if err != nil {
		t.Fatal(err)
	}
	sign := func(t *testing.T, s note.Signer, size uint64, root merkle.Hash) string {
		signed, err := translog.SignCheckpoint(translog.Checkpoint{Origin: "example.com/log", Size: size, Root: root}, s)
		if err != nil {
			t.Fatal(err)
		}
		return string(signed)
	}
	editSegment := func(t *testing.T, dir string, f func(*exportSegmentProof)) {
		p := filepath.Join(dir, "log", "segments", "2.json")
		raw, _ := os.ReadFile(p)
		var sp exportSegmentProof
		if err := json.Unmarshal(raw, &sp); err != nil {
			t.Fatal(err)
		}
		f(&sp)
		raw, _ = json.Marshal(sp)
		os.WriteFile(p, raw, 0o644)
	}
	cases := []struct {
		name   string
		change func(t *testing.T, dir string, tail bookkeepingTail)
		want   string
	}{
		{"a seal's root changed", func(t *testing.T, _ string, tail bookkeepingTail) {
			s := *tail[0].segment
			s.Root = strings.Repeat("00", 32)
			tail[0].segment = &s
		}, "position 7: the LogSegmentSealed of segment 2 differs from the log's leaf in log/segments/2.json (root)"},
		{"a seal's count and leaf hash changed", func(t *testing.T, _ string, tail bookkeepingTail) {
			s := *tail[0].segment
			s.Count, s.LeafHash = 1, strings.Repeat("00", 32)
			tail[0].segment = &s
		}, "(count, leafHash)"},
		{"a seal recorded before its segment's end", func(t *testing.T, _ string, tail bookkeepingTail) {
			tail[0].position = 6
		}, "position 6: seals segment 2, which ends at position 6, after its seal"},
		{"the leaf proven in another tree size", func(t *testing.T, dir string, _ bookkeepingTail) {
			editSegment(t, dir, func(sp *exportSegmentProof) { sp.Size = 2 })
		}, "log/segments/2.json: proves segment 2 in a tree of 2 leaves, log/checkpoint has 3"},
		{"a wrong log path", func(t *testing.T, dir string, _ bookkeepingTail) {
			editSegment(t, dir, func(sp *exportSegmentProof) { sp.LogPath[0] = logwire.EncodeHashes([]merkle.Hash{{7}})[0] })
		}, "log/segments/2.json: segment 2 does not lead to the root of log/checkpoint (size 3)"},
		{"another leaf", func(t *testing.T, dir string, _ bookkeepingTail) {
			editSegment(t, dir, func(sp *exportSegmentProof) { sp.Leaf = l.leaves[1].Marshal() })
		}, "log/segments/2.json: segment 2 does not lead to the root of log/checkpoint"},
		{"the proof of another segment", func(t *testing.T, dir string, _ bookkeepingTail) {
			editSegment(t, dir, func(sp *exportSegmentProof) { sp.Index = 1 })
		}, "log/segments/2.json: the proof of segment 1"},
		{"the segment proof removed", func(t *testing.T, dir string, _ bookkeepingTail) {
			os.Remove(filepath.Join(dir, "log", "segments", "2.json"))
		}, "log/segments/2.json: missing: the segment sealed at position 7 has no inclusion proof"},
		{"a stray segment proof", func(t *testing.T, dir string, _ bookkeepingTail) {
			os.WriteFile(filepath.Join(dir, "log", "segments", "1.json"), []byte("{}"), 0o644)
		}, "log/segments/1.json: not the proof of a segment sealed after the range's last other event"},
		{"a checkpoint signed with another key", func(t *testing.T, _ string, tail bookkeepingTail) {
			c := *tail[1].checkpoint
			c.Note = sign(t, otherSigner, 2, merkle.Root(l.hashes[:2]))
			tail[1].checkpoint = &c
		}, "position 8: the LogCheckpointSigned's note does not verify with the log key"},
		{"a checkpoint's size changed beside its note", func(t *testing.T, _ string, tail bookkeepingTail) {
			c := *tail[1].checkpoint
			c.Size = 5
			tail[1].checkpoint = &c
		}, "position 8: the LogCheckpointSigned differs from its note (size)"},
		{"no consistency proof for an older checkpoint", func(t *testing.T, dir string, _ bookkeepingTail) {
			os.Remove(filepath.Join(dir, "log", "consistency", "2-3.json"))
		}, "position 8: the checkpoint of size 2: no proof that log/checkpoint extends it"},
		{"a forked checkpoint of log/checkpoint's size", func(t *testing.T, _ string, tail bookkeepingTail) {
			c := *tail[2].checkpoint
			forked := merkle.Hash{9}
			c.Note, c.Root = sign(t, l.signer, 3, forked), hex.EncodeToString(forked[:])
			tail[2].checkpoint = &c
		}, "position 9: a checkpoint of size 3 with another root than log/checkpoint's: the log forked"},
		{"a checkpoint larger than log/checkpoint", func(t *testing.T, _ string, tail bookkeepingTail) {
			c := *tail[2].checkpoint
			larger := merkle.Hash{9}
			c.Note, c.Size, c.Root = sign(t, l.signer, 4, larger), 4, hex.EncodeToString(larger[:])
			tail[2].checkpoint = &c
		}, "position 9: a checkpoint of size 4, larger than log/checkpoint's 3"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			copyDir := filepath.Join(t.TempDir(), "bundle")
			if err := os.CopyFS(copyDir, os.DirFS(dir)); err != nil {
				t.Fatal(err)
			}
			tail := l.miniTail(t)
			c.change(t, copyDir, tail)
			got, n := check(copyDir, tail)
			if n != 1 || !strings.Contains(got, "bookkeeping:  FAILED, 1 problem\n") || !strings.Contains(got, c.want) {
				t.Errorf("%d problems, want 1: %q\n%s", n, c.want, got)
			}
		})
	}
}

// TestExportWaitsForTheTailOnlyAsFarAsTheLog: the log need not cover the
// trailing bookkeeping, only hold the segments it seals.
func TestExportWaitsForTheTailOnlyAsFarAsTheLog(t *testing.T) {
	l := newMiniLog(t)
	// The range's last request at 4, in segment 1; segment 2 (positions
	// 5–6, bookkeeping, cut at the size limit) sealed at 7. A checkpoint
	// of size 2 covers the request, not segment 2: the export waits for
	// one that holds it.
	var calls atomic.Int32
	grows := func() uint64 {
		if calls.Add(1) <= 2 {
			return 2
		}
		return 3
	}
	if _, lg, err := exportMiniTail(t, l, 4, grows, 5*time.Second); err != nil || lg.checkpoint.Size != 3 {
		t.Errorf("a log that grows to hold the sealed segment: %+v, %v", lg, err)
	}
	_, _, err := exportMiniTail(t, l, 4, func() uint64 { return 2 }, 300*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "the log's latest checkpoint has 2 leaves; the range records, at position 7, the sealing of segment 2: still not under a checkpoint after 300ms") {
		t.Errorf("a log that never holds the sealed segment: %v", err)
	}
}

// TestExportRefusesALeafOtherThanItsSeal: a log serving another leaf than
// the one the store recorded sealing fails the export, not its verifier.
func TestExportRefusesALeafOtherThanItsSeal(t *testing.T) {
	l := newMiniLog(t)
	tail := l.miniTail(t)
	s := *tail[0].segment
	s.Last = 5
	tail[0].segment = &s
	srv := l.serve(t, func() uint64 { return 3 })
	_, err := exportTail(context.Background(), logclient.New(srv.URL, nil), t.TempDir(), tail, translog.Checkpoint{Size: 3, Root: merkle.Root(l.hashes)})
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("the log's segment %d differs from its seal recorded at position %d (last)", 2, 7)) {
		t.Errorf("err = %v", err)
	}
}

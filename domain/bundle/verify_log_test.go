package bundle

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
	"testing/fstest"

	"golang.org/x/mod/sumdb/note"

	"github.com/chronolog/chronolog/domain/events"
	"github.com/chronolog/chronolog/domain/logwire"
	"github.com/chronolog/chronolog/domain/merkle"
)

func sha256Of(b []byte) [32]byte { return sha256.Sum256(b) }

// wantCheck asserts that the report's check name has status and, when it
// failed, exactly the problems listed, each containing its text.
func wantCheck(t *testing.T, r *Report, name string, status Status, summary string, problems ...string) {
	t.Helper()
	c, ok := r.Check(name)
	if !ok {
		t.Fatalf("no check %s in %+v", name, r.Checks)
	}
	if c.Status != status || c.Failures != len(problems) || len(c.Problems) != len(problems) {
		t.Fatalf("%s: %s, %d problems, want %s, %d: %q", name, c.Status, c.Failures, status, len(problems), c.Problems)
	}
	if !strings.Contains(c.Summary, summary) {
		t.Errorf("%s: summary %q lacks %q", name, c.Summary, summary)
	}
	for i, p := range problems {
		if !strings.Contains(c.Problems[i], p) {
			t.Errorf("%s: problem %d is %q, want %q", name, i, c.Problems[i], p)
		}
	}
}

func clone(fsys fstest.MapFS) fstest.MapFS {
	out := fstest.MapFS{}
	for k, v := range fsys {
		c := *v
		out[k] = &c
	}
	return out
}

// TestLogTiesOlderProofsToTheCheckpoint: the proof leads to the
// checkpoint of size 2, log/checkpoint has size 3, and the bundle carries
// the consistency proof between them.
func TestLogTiesOlderProofsToTheCheckpoint(t *testing.T) {
	l := newMiniLog(t)
	fsys := l.logFiles(t, 3, 2, nil)
	r := l.checkLog(fsys, nil)
	wantCheck(t, r, "log", OK, "1 proofs verified with the log key, to checkpoint origin example.com/log size 3 (1 through consistency proofs from older checkpoints)")
	wantCheck(t, r, "bookkeeping", OK, "none after the range's last other event")
	if r.Counts.Proofs != 1 || r.Counts.ViaConsistency != 1 || r.Problems != 0 {
		t.Errorf("counts %+v, %d problems", r.Counts, r.Problems)
	}

	// Without the consistency proof, or with a wrong one, the proof is
	// not tied to log/checkpoint.
	cons := ConsistencyPath(2, 3)
	wrong := clone(fsys)
	raw, _ := MarshalFile(Consistency{From: 2, To: 3, Proof: logwire.EncodeHashes([]merkle.Hash{{1}})})
	wrong[cons] = &fstest.MapFile{Data: raw}
	wantCheck(t, l.checkLog(wrong, nil), "log", Failed, "",
		"log/proofs/a1.json: leads to the checkpoint of size 2: log/consistency/2-3.json: translog: FORK")
	other := clone(fsys)
	raw, _ = MarshalFile(Consistency{From: 1, To: 3})
	other[cons] = &fstest.MapFile{Data: raw}
	wantCheck(t, l.checkLog(other, nil), "log", Failed, "", "log/consistency/2-3.json: proves 1→3")
	missing := clone(fsys)
	delete(missing, cons)
	wantCheck(t, l.checkLog(missing, nil), "log", Failed, "", "no proof that log/checkpoint extends it")
}

func TestLogChecksEachProof(t *testing.T) {
	l := newMiniLog(t)
	_, otherKey, err := note.GenerateKey(rand.Reader, "example.com/log")
	if err != nil {
		t.Fatal(err)
	}
	otherVerifier, err := note.NewVerifier(otherKey)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		change func(fsys fstest.MapFS, v *verifier)
		want   string
	}{
		{"the proof removed", func(fsys fstest.MapFS, _ *verifier) { delete(fsys, ProofPath("a1")) },
			"log/proofs/a1.json: missing: the token issued at position 4 has no inclusion proof"},
		{"a stray proof", func(fsys fstest.MapFS, _ *verifier) { fsys[ProofPath("b2")] = &fstest.MapFile{Data: []byte("{}")} },
			"log/proofs/b2.json: not the proof of a token issued in events.jsonl"},
		{"a proof that is not JSON", func(fsys fstest.MapFS, _ *verifier) { fsys[ProofPath("a1")] = &fstest.MapFile{Data: []byte("{")} },
			"log/proofs/a1.json: unexpected end of JSON input"},
		{"the proof of another serial", func(fsys fstest.MapFS, _ *verifier) { editProof(fsys, func(p *Proof) { p.Serial = "b2" }) },
			"log/proofs/a1.json: the proof of serial b2"},
		{"an event path that is not base64", func(fsys fstest.MapFS, _ *verifier) { editProof(fsys, func(p *Proof) { p.EventPath[0] = "!" }) },
			"log/proofs/a1.json: malformed: event path: proof hash 0 is not 32 base64 bytes"},
		{"the event's bytes changed", func(fsys fstest.MapFS, _ *verifier) {
			editProof(fsys, func(p *Proof) { p.Event.Payload = []byte(`{"type":"Event.v1","position":5}`) })
		}, "log/proofs/a1.json: translog: not proven in the log: event at position 4: its bytes do not lead to the root of segment 1"},
		{"the token issued at another position", func(_ fstest.MapFS, v *verifier) {
			iss := v.issued["a1"]
			iss.position = 3
			v.issued["a1"] = iss
		}, "log/proofs/a1.json: proves the event at position 4, the token was issued at position 3"},
		{"the token's event differs in events.jsonl", func(_ fstest.MapFS, v *verifier) {
			iss := v.issued["a1"]
			iss.payload[0] ^= 1
			v.issued["a1"] = iss
		}, "log/proofs/a1.json: the event it proves differs from the line of position 4 in events.jsonl"},
		{"another origin in the manifest", func(_ fstest.MapFS, v *verifier) { v.manifest.LogOrigin = "example.org/log" },
			"log/checkpoint: origin example.com/log, the manifest says example.org/log"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fsys := l.logFiles(t, 3, 3, nil)
			v := &verifier{fsys: fsys, Options: Options{Log: l.verifier},
				manifest: &Manifest{LogOrigin: "example.com/log"},
				issued:   map[string]issued{"a1": {position: 4, payload: sha256Of(l.payloads[3])}}}
			c.change(fsys, v)
			v.checkLog()
			wantCheck(t, &v.report, "log", Failed, "", c.want)
		})
	}
	// Another log key: log/checkpoint does not verify, the trailing
	// bookkeeping is not checked.
	v := &verifier{fsys: l.logFiles(t, 3, 3, nil), Options: Options{Log: otherVerifier}, manifest: &Manifest{LogOrigin: "example.com/log"}}
	v.checkLog()
	wantCheck(t, &v.report, "log", Failed, "", "log/checkpoint: does not verify with the log key")
	wantCheck(t, &v.report, "bookkeeping", NotChecked, "without log/checkpoint")
}

func editProof(fsys fstest.MapFS, f func(*Proof)) {
	p, err := ParseProof(fsys[ProofPath("a1")].Data)
	if err != nil {
		panic(err)
	}
	f(&p)
	raw, _ := MarshalFile(p)
	fsys[ProofPath("a1")] = &fstest.MapFile{Data: raw}
}

// TestTrailingBookkeeping: the checkpoint covers the range up to its last
// request only; the seal after it is proven by its leaf's inclusion, the
// checkpoints after it by their notes and a consistency proof, and the
// verifier checks each and finds every change.
func TestTrailingBookkeeping(t *testing.T) {
	l := newMiniLog(t)
	fsys := l.logFiles(t, 3, 3, l.miniTail(t))
	r := l.checkLog(fsys, l.miniTail(t))
	wantCheck(t, r, "log", OK, "1 proofs verified with the log key, to checkpoint origin example.com/log size 3, each proving its event byte for byte as in events.jsonl")
	wantCheck(t, r, "bookkeeping", OK,
		"positions 7–9 after the range's last other event: 1 segment seal proven in log/checkpoint, 2 checkpoints verified with the log key and consistent with it")
	if c := r.Counts; c.TailSegments != 1 || c.TailCheckpoints != 2 {
		t.Errorf("counts %+v", c)
	}
	// Without a tail, the segment proof is a stray file.
	wantCheck(t, l.checkLog(fsys, nil), "bookkeeping", Failed, "",
		"log/segments/2.json: not the proof of a segment sealed after the range's last other event")

	_, otherSigner := func() (note.Verifier, note.Signer) {
		skey, vkey, err := note.GenerateKey(rand.Reader, "example.com/log")
		if err != nil {
			t.Fatal(err)
		}
		s, _ := note.NewSigner(skey)
		v, _ := note.NewVerifier(vkey)
		return v, s
	}()
	editSegment := func(fsys fstest.MapFS, f func(*SegmentProof)) {
		p := SegmentProofPath(2)
		sp, err := ParseSegmentProof(fsys[p].Data)
		if err != nil {
			t.Fatal(err)
		}
		f(&sp)
		raw, _ := MarshalFile(sp)
		fsys[p] = &fstest.MapFile{Data: raw}
	}
	cases := []struct {
		name   string
		change func(fsys fstest.MapFS, tail Tail)
		want   string
	}{
		{"a seal's root changed", func(_ fstest.MapFS, tail Tail) {
			s := *tail[0].Segment
			s.Root = strings.Repeat("00", 32)
			tail[0].Segment = &s
		}, "position 7: the LogSegmentSealed of segment 2 differs from the log's leaf in log/segments/2.json (root)"},
		{"a seal's count and leaf hash changed", func(_ fstest.MapFS, tail Tail) {
			s := *tail[0].Segment
			s.Count, s.LeafHash = 1, strings.Repeat("00", 32)
			tail[0].Segment = &s
		}, "(count, leafHash)"},
		{"a seal recorded before its segment's end", func(_ fstest.MapFS, tail Tail) {
			tail[0].Position = 6
		}, "position 6: seals segment 2, which ends at position 6, after its seal"},
		{"the leaf proven in another tree size", func(fsys fstest.MapFS, _ Tail) {
			editSegment(fsys, func(sp *SegmentProof) { sp.Size = 2 })
		}, "log/segments/2.json: proves segment 2 in a tree of 2 leaves, log/checkpoint has 3"},
		{"a wrong log path", func(fsys fstest.MapFS, _ Tail) {
			editSegment(fsys, func(sp *SegmentProof) { sp.LogPath[0] = logwire.EncodeHashes([]merkle.Hash{{7}})[0] })
		}, "log/segments/2.json: segment 2 does not lead to the root of log/checkpoint (size 3)"},
		{"another leaf", func(fsys fstest.MapFS, _ Tail) {
			editSegment(fsys, func(sp *SegmentProof) { sp.Leaf = l.leaves[1].Marshal() })
		}, "log/segments/2.json: segment 2 does not lead to the root of log/checkpoint"},
		{"the proof of another segment", func(fsys fstest.MapFS, _ Tail) {
			editSegment(fsys, func(sp *SegmentProof) { sp.Index = 1 })
		}, "log/segments/2.json: the proof of segment 1"},
		{"a segment proof with an unknown field", func(fsys fstest.MapFS, _ Tail) {
			fsys[SegmentProofPath(2)] = &fstest.MapFile{Data: []byte(`{"index":2,"extra":1}`)}
		}, `log/segments/2.json: json: unknown field "extra"`},
		{"the segment proof removed", func(fsys fstest.MapFS, _ Tail) {
			delete(fsys, SegmentProofPath(2))
		}, "log/segments/2.json: missing: the segment sealed at position 7 has no inclusion proof"},
		{"a stray segment proof", func(fsys fstest.MapFS, _ Tail) {
			fsys[SegmentProofPath(1)] = &fstest.MapFile{Data: []byte("{}")}
		}, "log/segments/1.json: not the proof of a segment sealed after the range's last other event"},
		{"a checkpoint signed with another key", func(_ fstest.MapFS, tail Tail) {
			c := *tail[1].Checkpoint
			c.Note = string(l.sign(t, otherSigner, 2, merkle.Root(l.hashes[:2])))
			tail[1].Checkpoint = &c
		}, "position 8: the LogCheckpointSigned's note does not verify with the log key"},
		{"a checkpoint's size changed beside its note", func(_ fstest.MapFS, tail Tail) {
			c := *tail[1].Checkpoint
			c.Size = 5
			tail[1].Checkpoint = &c
		}, "position 8: the LogCheckpointSigned differs from its note (size)"},
		{"no consistency proof for an older checkpoint", func(fsys fstest.MapFS, _ Tail) {
			delete(fsys, ConsistencyPath(2, 3))
		}, "position 8: the checkpoint of size 2: no proof that log/checkpoint extends it"},
		{"a forked checkpoint of log/checkpoint's size", func(_ fstest.MapFS, tail Tail) {
			c := *tail[2].Checkpoint
			forked := merkle.Hash{9}
			c.Note, c.Root = string(l.sign(t, l.signer, 3, forked)), hex.EncodeToString(forked[:])
			tail[2].Checkpoint = &c
		}, "position 9: a checkpoint of size 3 with another root than log/checkpoint's: the log forked"},
		{"a checkpoint larger than log/checkpoint", func(_ fstest.MapFS, tail Tail) {
			c := *tail[2].Checkpoint
			larger := merkle.Hash{9}
			c.Note, c.Size, c.Root = string(l.sign(t, l.signer, 4, larger)), 4, hex.EncodeToString(larger[:])
			tail[2].Checkpoint = &c
		}, "position 9: a checkpoint of size 4, larger than log/checkpoint's 3"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fsys, tail := clone(fsys), l.miniTail(t)
			c.change(fsys, tail)
			wantCheck(t, l.checkLog(fsys, tail), "bookkeeping", Failed, "", c.want)
		})
	}
}

func TestTailKeepsWhatFollowsTheLastOtherEvent(t *testing.T) {
	l := newMiniLog(t)
	tail := l.miniTail(t)
	if len(tail) != 3 || tail[0].Position != 7 || tail[0].Segment == nil || tail[0].Segment.Index != 2 ||
		tail[1].Checkpoint == nil || tail[1].Checkpoint.Size != 2 || tail[2].Checkpoint.Size != 3 {
		t.Fatalf("tail = %+v", tail)
	}
	if got := tail.Positions(); got != "positions 7–9" {
		t.Errorf("positions: %q", got)
	}
	if got := tail[2:].Positions(); got != "position 9" {
		t.Errorf("positions: %q", got)
	}
	if n := tail.Segments(); n != 1 {
		t.Errorf("%d seals, want 1", n)
	}
	if size, seal := tail.Needs(); size != 3 || seal.Position != 7 {
		t.Errorf("needs %d leaves (seal at %d), want 3 for the seal of segment 2 at 7", size, seal.Position)
	}
	if size, seal := tail[1:].Needs(); size != 3 || seal.Segment != nil {
		t.Errorf("needs %d leaves (seal %+v), want 3 for the checkpoint of size 3", size, seal)
	}
	// Another request: no tail any more.
	if err := tail.Add(10, events.TypeTimestampIssued, []byte(`{}`)); err != nil || len(tail) != 0 {
		t.Errorf("after a request: %+v, %v", tail, err)
	}
	if size, _ := tail.Needs(); size != 0 {
		t.Errorf("an empty tail needs %d leaves", size)
	}
	if err := tail.Add(11, events.TypeLogSegmentSealed, []byte(`{"type":"LogSegmentSealed.v1"}`)); err == nil {
		t.Error("a seal that does not decode: accepted")
	}
}

package translog

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"github.com/chronolog/chronolog/domain/merkle"
)

const origin = "tsa.example.org/log"

func keys(t testing.TB, name string) (note.Signer, note.Verifier) {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, name)
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return s, v
}

func TestSegmentLeafRoundTripAndRefusals(t *testing.T) {
	l := SegmentLeaf{First: 17, Last: 40, Count: 24, Root: merkle.LeafHash([]byte("x"))}
	b := l.Marshal()
	if len(b) != LeafSize || !bytes.HasPrefix(b, []byte("chronolog-segment-v1\x00")) {
		t.Fatalf("leaf %q", b)
	}
	got, err := ParseSegmentLeaf(b)
	if err != nil || got != l {
		t.Fatalf("round trip = %+v, %v", got, err)
	}
	bad := map[string][]byte{
		"short":        b[:len(b)-1],
		"long":         append(bytes.Clone(b), 0),
		"other magic":  append([]byte("chronolog-segment-v2\x00"), b[21:]...),
		"zero count":   SegmentLeaf{First: 1, Last: 1, Count: 0}.Marshal(),
		"zero first":   SegmentLeaf{First: 0, Last: 1, Count: 1}.Marshal(),
		"last < first": SegmentLeaf{First: 5, Last: 4, Count: 1}.Marshal(),
		"too many":     SegmentLeaf{First: 5, Last: 6, Count: 3}.Marshal(),
	}
	for name, v := range bad {
		if _, err := ParseSegmentLeaf(v); !errors.Is(err, ErrNotASegmentLeaf) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}

func FuzzParseSegmentLeaf(f *testing.F) {
	f.Add(SegmentLeaf{First: 1, Last: 4, Count: 4}.Marshal())
	f.Add([]byte("chronolog-segment-v1\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := ParseSegmentLeaf(b)
		if err != nil {
			return
		}
		if !bytes.Equal(l.Marshal(), b) {
			t.Fatalf("round trip changed %x", b)
		}
	})
}

func TestCheckpointFormat(t *testing.T) {
	c := Checkpoint{Origin: origin, Size: 42, Root: merkle.LeafHash([]byte("r")), Extensions: []string{"ext one"}}
	body := c.Marshal()
	want := fmt.Sprintf("%s\n42\n%s\next one\n", origin, "ZsGUJ5NfwiT1yPFDh/1/Ov3GBTBp2N+dQZKd4omY/M0=")
	if got := string(body); !strings.HasPrefix(got, origin+"\n42\n") || !strings.HasSuffix(got, "\next one\n") || strings.Count(got, "\n") != 4 {
		t.Fatalf("body %q (shape of %q)", got, want)
	}
	back, err := ParseCheckpoint(body)
	if err != nil || back.Origin != c.Origin || back.Size != c.Size || back.Root != c.Root || len(back.Extensions) != 1 {
		t.Fatalf("parse = %+v, %v", back, err)
	}
	root := "ZsGUJ5NfwiT1yPFDh/1/Ov3GBTBp2N+dQZKd4omY/M0="
	for name, bad := range map[string]string{
		"no final newline": origin + "\n1\n" + root,
		"two lines":        origin + "\n1\n",
		"empty origin":     "\n1\n" + root + "\n",
		"leading zero":     origin + "\n01\n" + root + "\n",
		"negative":         origin + "\n-1\n" + root + "\n",
		"short root":       origin + "\n1\nAAAA\n",
		"bad base64":       origin + "\n1\n" + strings.Replace(root, "Z", "*", 1) + "\n",
		"empty extension":  origin + "\n1\n" + root + "\n\n",
	} {
		if _, err := ParseCheckpoint([]byte(bad)); !errors.Is(err, ErrBadCheckpoint) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}

func FuzzParseCheckpoint(f *testing.F) {
	f.Add(Checkpoint{Origin: origin, Size: 7}.Marshal())
	f.Add([]byte(origin + "\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\nx\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseCheckpoint(b)
		if err != nil {
			return
		}
		if !bytes.Equal(c.Marshal(), b) {
			t.Fatalf("round trip changed %q into %q", b, c.Marshal())
		}
	})
}

func TestSignedCheckpoints(t *testing.T) {
	signer, verifier := keys(t, origin)
	_, otherVerifier := keys(t, origin)
	c := Checkpoint{Origin: origin, Size: 3, Root: merkle.EmptyRoot}
	signed, err := SignCheckpoint(c, signer)
	if err != nil {
		t.Fatal(err)
	}
	got, err := OpenCheckpoint(signed, verifier)
	if err != nil || got.Size != 3 {
		t.Fatalf("open = %+v, %v", got, err)
	}
	if _, err := OpenCheckpoint(signed, otherVerifier); err == nil {
		t.Error("a checkpoint verified with another key of the same name")
	}
	forged := bytes.Replace(signed, []byte("\n3\n"), []byte("\n4\n"), 1)
	if _, err := OpenCheckpoint(forged, verifier); err == nil {
		t.Error("an edited checkpoint verified")
	}
	otherSigner, _ := keys(t, "elsewhere.example/log")
	if _, err := SignCheckpoint(c, otherSigner); err == nil {
		t.Error("a key signed for another origin")
	}
}

func TestSealer(t *testing.T) {
	s := NewSealer(3, 10, "LogSegmentSealed.v1")
	if _, _, err := s.Add(Event{Position: 10, Type: "T.v1"}); err == nil {
		t.Error("an event at the log's last position was taken")
	}
	// Bookkeeping alone is never cut on time.
	if _, full, _ := s.Add(Event{Position: 11, Type: "LogSegmentSealed.v1", Payload: []byte("a")}); full {
		t.Fatal("cut after one event")
	}
	if _, ok := s.Cut(); ok {
		t.Fatal("a bookkeeping-only segment was cut")
	}
	s.Add(Event{Position: 13, Type: "TimestampIssued.v1", Payload: []byte("b")})
	seg, full, err := s.Add(Event{Position: 14, Type: "T.v1", Payload: []byte("c")})
	if err != nil || !full {
		t.Fatalf("third event: full=%v err=%v", full, err)
	}
	want := SegmentLeaf{First: 11, Last: 14, Count: 3,
		Root: merkle.Root([]merkle.Hash{merkle.LeafHash([]byte("a")), merkle.LeafHash([]byte("b")), merkle.LeafHash([]byte("c"))})}
	if seg.Leaf != want {
		t.Fatalf("segment %+v, want %+v", seg.Leaf, want)
	}
	if s.Pending() != 0 {
		t.Fatal("events left after a full segment")
	}
	s.Add(Event{Position: 15, Type: "X.v1", Payload: []byte("d")})
	seg, ok := s.Cut()
	if !ok || seg.Leaf.First != 15 || seg.Leaf.Count != 1 || seg.Leaf.Root != merkle.LeafHash([]byte("d")) {
		t.Fatalf("cut = %+v, %v", seg.Leaf, ok)
	}
	if _, _, err := s.Add(Event{Position: 15, Type: "X.v1"}); err == nil {
		t.Error("an event out of commit order was taken")
	}
}

// memLog is a log in memory: the leaves and, on demand, proofs and signed
// checkpoints, enough to exercise proof verification.
type memLog struct {
	leaves [][]byte
	signer note.Signer
}

func (l *memLog) hashes() []merkle.Hash {
	hs := make([]merkle.Hash, len(l.leaves))
	for i, b := range l.leaves {
		hs[i] = merkle.LeafHash(b)
	}
	return hs
}

func (l *memLog) checkpoint(t *testing.T, size int) []byte {
	t.Helper()
	cp, err := SignCheckpoint(Checkpoint{Origin: origin, Size: uint64(size), Root: merkle.Root(l.hashes()[:size])}, l.signer)
	if err != nil {
		t.Fatal(err)
	}
	return cp
}

func buildProof(t *testing.T) (EventProof, note.Verifier, *memLog) {
	t.Helper()
	signer, verifier := keys(t, origin)
	log := &memLog{signer: signer}
	sealer := NewSealer(5, 0)
	var segments []Segment
	payloads := map[uint64][]byte{}
	for pos := uint64(1); pos <= 23; pos++ {
		p := fmt.Appendf(nil, `{"event":%d}`, pos)
		payloads[pos] = p
		if seg, full, _ := sealer.Add(Event{Position: pos, Type: "T.v1", Payload: p}); full {
			segments = append(segments, seg)
		}
	}
	seg, _ := sealer.Cut()
	segments = append(segments, seg)
	for _, s := range segments {
		log.leaves = append(log.leaves, s.Leaf.Marshal())
	}
	// Event at position 13: segment 2 (11–15), its third event.
	si := uint64(2)
	s := segments[si]
	ep, _ := merkle.InclusionProof(2, s.EventHashes)
	lp, _ := merkle.InclusionProof(si, log.hashes())
	return EventProof{
		Position: 13, Payload: payloads[13],
		Segment: s.Leaf, SegmentIndex: si,
		EventIndex: 2, EventPath: ep,
		LogPath:    lp,
		Checkpoint: log.checkpoint(t, len(log.leaves)),
	}, verifier, log
}

func TestEventProofs(t *testing.T) {
	p, verifier, log := buildProof(t)
	cp, err := p.Verify(verifier)
	if err != nil || cp.Size != 5 {
		t.Fatalf("verify = %+v, %v", cp, err)
	}
	tampered := func(name, wantInError string, f func(p *EventProof)) {
		t.Helper()
		q := p
		q.Payload = bytes.Clone(p.Payload)
		q.EventPath = append([]merkle.Hash{}, p.EventPath...)
		q.LogPath = append([]merkle.Hash{}, p.LogPath...)
		f(&q)
		_, err := q.Verify(verifier)
		if !errors.Is(err, ErrNotIncluded) || !strings.Contains(err.Error(), wantInError) {
			t.Errorf("%s: err = %v, want it to name %q", name, err, wantInError)
		}
	}
	tampered("one byte of the event", "position 13", func(p *EventProof) { p.Payload[3] ^= 1 })
	tampered("another position", "position 12", func(p *EventProof) { p.Position = 12 })
	tampered("another segment", "segment 1", func(p *EventProof) { p.SegmentIndex = 1 })
	tampered("segment root", "segment 2", func(p *EventProof) { p.Segment.Root[0] ^= 1 })
	tampered("log path", "segment 2", func(p *EventProof) { p.LogPath[0][5] ^= 1 })
	tampered("beyond the checkpoint", "beyond", func(p *EventProof) { p.SegmentIndex = 9 })
	forgerSigner, _ := keys(t, origin)
	tampered("forged checkpoint", "signature", func(p *EventProof) {
		forger := &memLog{leaves: log.leaves, signer: forgerSigner}
		p.Checkpoint = forger.checkpoint(t, len(log.leaves))
	})
	// An event dropped from its segment: the segment root no longer matches.
	tampered("dropped event", "position 13", func(p *EventProof) { p.EventPath = p.EventPath[1:] })
}

func TestConsistencyCatchesRollbackAndFork(t *testing.T) {
	_, verifier, log := buildProof(t)
	old := log.checkpoint(t, 3)
	cur := log.checkpoint(t, 5)
	proof, _ := merkle.ConsistencyProof(3, log.hashes())
	if _, _, err := VerifyConsistency(verifier, old, cur, proof); err != nil {
		t.Fatal(err)
	}
	if _, _, err := VerifyConsistency(verifier, cur, old, nil); err == nil || !strings.Contains(err.Error(), "ROLLBACK") {
		t.Errorf("rollback: %v", err)
	}
	forked := &memLog{signer: log.signer, leaves: append([][]byte{}, log.leaves...)}
	forked.leaves[1] = SegmentLeaf{First: 6, Last: 10, Count: 5, Root: merkle.LeafHash([]byte("rewritten"))}.Marshal()
	forkProof, _ := merkle.ConsistencyProof(3, forked.hashes())
	if _, _, err := VerifyConsistency(verifier, old, forked.checkpoint(t, 5), forkProof); err == nil || !strings.Contains(err.Error(), "FORK") {
		t.Errorf("fork: %v", err)
	}
}

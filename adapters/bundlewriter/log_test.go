package bundlewriter

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chronolog/chronolog/domain/bundle"
	"github.com/chronolog/chronolog/domain/logwire"
	"github.com/chronolog/chronolog/domain/merkle"
	"github.com/chronolog/chronolog/domain/translog"
)

func readFile(t *testing.T, dir, name string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(name)))
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// TestWriteLogTiesOlderProofsToTheCheckpoint has the log grow while the
// export fetches: the proof leads to the checkpoint of size 2, the latest
// is of size 3, and the bundle carries the consistency proof between
// them.
func TestWriteLogTiesOlderProofsToTheCheckpoint(t *testing.T) {
	l := newMiniLog(t)
	var checkpoints atomic.Int32
	// The first answer, before the proofs, is size 2; later ones 3.
	lg := l.serve(t, func() uint64 {
		if checkpoints.Add(1) <= 2 { // the checkpoint, then the proof
			return 2
		}
		return 3
	})
	dir := t.TempDir()
	sum := &Summary{First: 3, Last: 4, Serials: []string{"a1"}, LastSubstantive: 4}
	if err := writeLog(context.Background(), lg, Config{Out: dir, Wait: time.Second}, sum); err != nil {
		t.Fatal(err)
	}
	if sum.Checkpoint.Size != 3 || sum.Covered != 6 || sum.AgainstFinal != 0 || sum.Consistency != 1 {
		t.Errorf("exported checkpoint size %d covering %d, %d proofs against it, %d consistency proofs; want 3, 6, 0, 1",
			sum.Checkpoint.Size, sum.Covered, sum.AgainstFinal, sum.Consistency)
	}
	// What was written verifies with the log key: the proof to the
	// checkpoint of size 2, which log/checkpoint extends.
	final := readFile(t, dir, bundle.CheckpointFile)
	p, err := bundle.ParseProof(readFile(t, dir, bundle.ProofPath("a1")))
	if err != nil {
		t.Fatal(err)
	}
	ep, err := p.EventProof()
	if err != nil {
		t.Fatal(err)
	}
	if cp, err := ep.Verify(l.verifier); err != nil || cp.Size != 2 {
		t.Fatalf("the proof: checkpoint size %d, %v", cp.Size, err)
	}
	c, err := bundle.ParseConsistency(readFile(t, dir, bundle.ConsistencyPath(2, 3)))
	if err != nil {
		t.Fatal(err)
	}
	hashes, err := logwire.DecodeHashes(c.Proof)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := translog.VerifyConsistency(l.verifier, []byte(p.Checkpoint), final, hashes); err != nil || c.From != 2 || c.To != 3 {
		t.Errorf("log/consistency/2-3.json proves %d→%d: %v", c.From, c.To, err)
	}

	// A checkpoint that never covers the range's last request: the
	// export fails, saying so.
	sum = &Summary{First: 3, Last: 9, Serials: []string{"a1"}, LastSubstantive: 9}
	err = writeLog(context.Background(), lg, Config{Out: t.TempDir(), Wait: 300 * time.Millisecond}, sum)
	if err == nil || !strings.Contains(err.Error(), "covers the events up to position 6, the range's last event that is not the log's own bookkeeping is at 9: still not covered after 300ms") {
		t.Errorf("a range beyond the log: %v", err)
	}
}

// writeMiniTail exports the mini log's tail, with the token a1 at
// position 4 and the last event other than bookkeeping at lastOther,
// against a log whose checkpoint is of size().
func writeMiniTail(t *testing.T, l *miniLog, lastOther uint64, size func() uint64, wait time.Duration) (string, *Summary, error) {
	t.Helper()
	lg := l.serve(t, size)
	dir := t.TempDir()
	sum := &Summary{First: 3, Last: 9, Serials: []string{"a1"}, LastSubstantive: lastOther, Tail: l.miniTail(t)}
	err := writeLog(context.Background(), lg, Config{Out: dir, Wait: wait}, sum)
	return dir, sum, err
}

// TestWriteCarriesTrailingBookkeeping: the checkpoint covers the range up
// to its last request only; the seal after it gets its leaf's inclusion
// proof, the older checkpoint after it a consistency proof.
func TestWriteCarriesTrailingBookkeeping(t *testing.T) {
	l := newMiniLog(t)
	dir, sum, err := writeMiniTail(t, l, 6, func() uint64 { return 3 }, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Checkpoint.Size != 3 || sum.Covered != 6 || sum.AgainstFinal != 1 || sum.Consistency != 1 || sum.Tail.Segments() != 1 {
		t.Errorf("exported %+v", sum)
	}
	for _, f := range []string{"log/checkpoint", "log/proofs/a1.json", "log/segments/2.json", "log/consistency/2-3.json"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	sp, err := bundle.ParseSegmentProof(readFile(t, dir, bundle.SegmentProofPath(2)))
	if err != nil {
		t.Fatal(err)
	}
	path, err := logwire.DecodeHashes(sp.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := translog.ParseSegmentLeaf(sp.Leaf)
	if err != nil || sp.Index != 2 || sp.Size != 3 || leaf != l.leaves[2] {
		t.Fatalf("log/segments/2.json: %+v, %v", sp, err)
	}
	if err := merkle.VerifyInclusion(2, 3, leaf.Hash(), path, merkle.Root(l.hashes)); err != nil {
		t.Errorf("log/segments/2.json: %v", err)
	}
}

// TestWriteWaitsForTheTailOnlyAsFarAsTheLog: the log need not cover the
// trailing bookkeeping, only hold the segments it seals.
func TestWriteWaitsForTheTailOnlyAsFarAsTheLog(t *testing.T) {
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
	if _, sum, err := writeMiniTail(t, l, 4, grows, 5*time.Second); err != nil || sum.Checkpoint.Size != 3 {
		t.Errorf("a log that grows to hold the sealed segment: %+v, %v", sum, err)
	}
	_, _, err := writeMiniTail(t, l, 4, func() uint64 { return 2 }, 300*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "the log's latest checkpoint has 2 leaves; the range records, at position 7, the sealing of segment 2: still not under a checkpoint after 300ms") {
		t.Errorf("a log that never holds the sealed segment: %v", err)
	}
}

// TestWriteRefusesALeafOtherThanItsSeal: a log serving another leaf than
// the one the store recorded sealing fails the export, not its verifier.
func TestWriteRefusesALeafOtherThanItsSeal(t *testing.T) {
	l := newMiniLog(t)
	tail := l.miniTail(t)
	s := *tail[0].Segment
	s.Last = 5
	tail[0].Segment = &s
	lg := l.serve(t, func() uint64 { return 3 })
	_, err := writeTail(context.Background(), lg, t.TempDir(), tail, translog.Checkpoint{Size: 3, Root: merkle.Root(l.hashes)})
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("the log's segment %d differs from its seal recorded at position %d (last)", 2, 7)) {
		t.Errorf("err = %v", err)
	}
}

// Package translogtest is the contract every translog.Log adapter passes:
// Tessera's POSIX driver and Trillian. An adapter's test calls Run with a
// function opening a fresh log, and a function reopening the same log (to
// check that what was appended survives a restart).
package translogtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/chronolog/chronolog/domain/merkle"
	"github.com/chronolog/chronolog/domain/translog"
)

// Harness opens logs for the suite.
type Harness struct {
	// Open returns a fresh, empty log that signs checkpoints with signer,
	// and a function that closes it and opens the same log again. The
	// suite closes what it opened (logs implementing io.Closer).
	Open func(t *testing.T, signer note.Signer) (log translog.Log, reopen func() translog.Log)
	// CheckpointWithin bounds how long a checkpoint may take to cover an
	// appended leaf. Default 10 s.
	CheckpointWithin time.Duration
}

// Origin is the origin of the suite's logs.
const Origin = "chronolog.test/translogtest"

// Keys returns a fresh Ed25519 note key pair for origin.
func Keys(t testing.TB, origin string) (note.Signer, note.Verifier) {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, origin)
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

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func closeLog(t *testing.T, l translog.Log) {
	t.Helper()
	if c, ok := l.(io.Closer); ok {
		if err := c.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	}
}

func leafN(i int) []byte {
	return translog.SegmentLeaf{First: uint64(10*i + 1), Last: uint64(10*i + 10), Count: 10, Root: merkle.LeafHash(fmt.Appendf(nil, "segment %d", i))}.Marshal()
}

// Run runs the contract suite.
func Run(t *testing.T, h Harness) {
	if h.CheckpointWithin <= 0 {
		h.CheckpointWithin = 10 * time.Second
	}
	t.Run("AppendReadProve", func(t *testing.T) { testAppendReadProve(t, h) })
	t.Run("RetriesAndConflicts", func(t *testing.T) { testRetriesAndConflicts(t, h) })
	t.Run("SurvivesReopen", func(t *testing.T) { testSurvivesReopen(t, h) })
}

// awaitCheckpoint polls until a checkpoint covers size leaves, verifying
// its signature.
func awaitCheckpoint(t *testing.T, h Harness, l translog.Log, v note.Verifier, size uint64) (translog.Checkpoint, []byte) {
	t.Helper()
	ctx := ctxT(t)
	deadline := time.Now().Add(h.CheckpointWithin)
	for {
		signed, err := l.Checkpoint(ctx)
		if err == nil {
			cp, err := translog.OpenCheckpoint(signed, v)
			if err != nil {
				t.Fatalf("the log's checkpoint does not verify with its key: %v\n%s", err, signed)
			}
			if cp.Size >= size {
				return cp, signed
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no checkpoint covers %d leaves after %s (last: %v)", size, h.CheckpointWithin, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func testAppendReadProve(t *testing.T, h Harness) {
	signer, verifier := Keys(t, Origin)
	l, _ := h.Open(t, signer)
	defer closeLog(t, l)
	ctx := ctxT(t)
	if size, err := l.Size(ctx); err != nil || size != 0 {
		t.Fatalf("fresh log: size %d, %v", size, err)
	}
	const n = 20
	var hashes []merkle.Hash
	for i := range n {
		if err := l.Append(ctx, uint64(i), leafN(i)); err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
		hashes = append(hashes, merkle.LeafHash(leafN(i)))
		if size, err := l.Size(ctx); err != nil || size != uint64(i+1) {
			t.Fatalf("after append %d: size %d, %v", i, size, err)
		}
	}
	for i := range n {
		got, err := l.Leaf(ctx, uint64(i))
		if err != nil || !bytes.Equal(got, leafN(i)) {
			t.Fatalf("leaf %d = %x, %v", i, got, err)
		}
	}
	cp, _ := awaitCheckpoint(t, h, l, verifier, n)
	if cp.Size != n || cp.Root != merkle.Root(hashes) || cp.Origin != Origin {
		t.Fatalf("checkpoint %+v does not commit to the %d leaves", cp, n)
	}
	for _, i := range []uint64{0, 7, n - 1} {
		p, err := l.InclusionProof(ctx, i, cp.Size)
		if err != nil {
			t.Fatalf("inclusion proof %d: %v", i, err)
		}
		if err := merkle.VerifyInclusion(i, cp.Size, hashes[i], p, cp.Root); err != nil {
			t.Fatalf("inclusion proof %d does not verify: %v", i, err)
		}
	}
	// A consistency proof from an earlier size: append more, prove the new
	// checkpoint extends the old one.
	for i := n; i < n+13; i++ {
		if err := l.Append(ctx, uint64(i), leafN(i)); err != nil {
			t.Fatal(err)
		}
		hashes = append(hashes, merkle.LeafHash(leafN(i)))
	}
	cp2, _ := awaitCheckpoint(t, h, l, verifier, n+13)
	for _, from := range []uint64{1, 5, cp.Size} {
		p, err := l.ConsistencyProof(ctx, from, cp2.Size)
		if err != nil {
			t.Fatalf("consistency %d→%d: %v", from, cp2.Size, err)
		}
		if err := merkle.VerifyConsistency(from, cp2.Size, p, merkle.Root(hashes[:from]), cp2.Root); err != nil {
			t.Fatalf("consistency %d→%d does not verify: %v", from, cp2.Size, err)
		}
	}
}

func testRetriesAndConflicts(t *testing.T, h Harness) {
	signer, _ := Keys(t, Origin)
	l, _ := h.Open(t, signer)
	defer closeLog(t, l)
	ctx := ctxT(t)
	for i := range 3 {
		if err := l.Append(ctx, uint64(i), leafN(i)); err != nil {
			t.Fatal(err)
		}
	}
	// A retry of an append that succeeded is success, and adds nothing.
	if err := l.Append(ctx, 1, leafN(1)); err != nil {
		t.Fatalf("retrying leaf 1: %v", err)
	}
	if size, _ := l.Size(ctx); size != 3 {
		t.Fatalf("size %d after a retry, want 3", size)
	}
	// Another leaf where one is, or a gap: conflicts, not retried.
	if err := l.Append(ctx, 1, leafN(9)); !errors.Is(err, translog.ErrConflict) {
		t.Fatalf("another leaf at 1: err = %v, want ErrConflict", err)
	}
	if err := l.Append(ctx, 5, leafN(5)); !errors.Is(err, translog.ErrConflict) {
		t.Fatalf("a gap before 5: err = %v, want ErrConflict", err)
	}
	if size, _ := l.Size(ctx); size != 3 {
		t.Fatalf("size %d after refused appends, want 3", size)
	}
}

func testSurvivesReopen(t *testing.T, h Harness) {
	signer, verifier := Keys(t, Origin)
	l, reopen := h.Open(t, signer)
	ctx := ctxT(t)
	for i := range 5 {
		if err := l.Append(ctx, uint64(i), leafN(i)); err != nil {
			t.Fatal(err)
		}
	}
	awaitCheckpoint(t, h, l, verifier, 5)
	l = reopen()
	defer closeLog(t, l)
	if size, err := l.Size(ctx); err != nil || size != 5 {
		t.Fatalf("reopened: size %d, %v", size, err)
	}
	if got, err := l.Leaf(ctx, 4); err != nil || !bytes.Equal(got, leafN(4)) {
		t.Fatalf("reopened: leaf 4 = %x, %v", got, err)
	}
	if err := l.Append(ctx, 5, leafN(5)); err != nil {
		t.Fatalf("append after reopen: %v", err)
	}
	awaitCheckpoint(t, h, l, verifier, 6)
}

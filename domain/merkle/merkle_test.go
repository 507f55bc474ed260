package merkle

import (
	"encoding/hex"
	"errors"
	"fmt"
	"testing"

	tdmerkle "github.com/transparency-dev/merkle"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
)

func leavesOf(n int) ([]Hash, [][]byte) {
	data := make([][]byte, n)
	hashes := make([]Hash, n)
	for i := range n {
		data[i] = fmt.Appendf(nil, "event %d", i)
		hashes[i] = LeafHash(data[i])
	}
	return hashes, data
}

// referenceRoot computes the root with transparency-dev/merkle's compact
// ranges, an independent implementation.
func referenceRoot(t *testing.T, leaves []Hash) Hash {
	t.Helper()
	rf := compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}
	r := rf.NewEmptyRange(0)
	for _, l := range leaves {
		if err := r.Append(l[:], nil); err != nil {
			t.Fatal(err)
		}
	}
	root, err := r.GetRootHash(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(leaves) == 0 {
		return Hash(rfc6962.DefaultHasher.EmptyRoot())
	}
	return Hash(root)
}

// referenceHashes gives a tdmerkle NodeFetcher-free way to build proofs:
// the proof package computes which nodes it needs; we hash them from leaves.
func nodeHash(leaves []Hash, id compact.NodeID) Hash {
	begin, end := id.Coverage()
	return Root(leaves[begin:end])
}

func TestKnownVectors(t *testing.T) {
	// RFC 6962 test vectors used by Certificate Transparency's reference code.
	if got := hex.EncodeToString(EmptyRoot[:]); got != "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" {
		t.Errorf("empty root %s", got)
	}
	if got := LeafHash(nil); hex.EncodeToString(got[:]) != "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d" {
		t.Errorf("empty leaf hash %x", got)
	}
	l, r := LeafHash([]byte("N123")), LeafHash([]byte("N456"))
	if got := NodeHash(l, r); got != Hash(rfc6962.DefaultHasher.HashChildren(l[:], r[:])) {
		t.Errorf("node hash %x", got)
	}
	if got := LeafHash([]byte("L123456")); got != Hash(rfc6962.DefaultHasher.HashLeaf([]byte("L123456"))) {
		t.Errorf("leaf hash %x", got)
	}
}

func TestAgainstTransparencyDevMerkle(t *testing.T) {
	for n := 0; n <= 70; n++ {
		leaves, _ := leavesOf(n)
		root := Root(leaves)
		if want := referenceRoot(t, leaves); root != want {
			t.Fatalf("n=%d: root %x, want %x", n, root, want)
		}
		for i := range uint64(n) {
			p, err := InclusionProof(i, leaves)
			if err != nil {
				t.Fatal(err)
			}
			nodes, err := proof.Inclusion(i, uint64(n))
			if err != nil {
				t.Fatal(err)
			}
			ref := make([]Hash, len(nodes.IDs))
			for j, id := range nodes.IDs {
				ref[j] = nodeHash(leaves, id)
			}
			refProof, err := nodes.Rehash(toSlices(ref), rfc6962.DefaultHasher.HashChildren)
			if err != nil {
				t.Fatal(err)
			}
			if !sameProof(p, refProof) {
				t.Fatalf("n=%d i=%d: inclusion proof differs from transparency-dev/merkle", n, i)
			}
			if err := VerifyInclusion(i, uint64(n), leaves[i], p, root); err != nil {
				t.Fatalf("n=%d i=%d: %v", n, i, err)
			}
			if err := proof.VerifyInclusion(rfc6962.DefaultHasher, i, uint64(n), leaves[i][:], toSlices(p), root[:]); err != nil {
				t.Fatalf("n=%d i=%d: reference rejects our proof: %v", n, i, err)
			}
		}
		for m := uint64(0); m <= uint64(n); m++ {
			p, err := ConsistencyProof(m, leaves)
			if err != nil {
				t.Fatal(err)
			}
			root1 := Root(leaves[:m])
			if err := VerifyConsistency(m, uint64(n), p, root1, root); err != nil {
				t.Fatalf("consistency %d→%d: %v", m, n, err)
			}
			if m > 0 {
				if err := proof.VerifyConsistency(rfc6962.DefaultHasher, m, uint64(n), toSlices(p), root1[:], root[:]); err != nil {
					t.Fatalf("consistency %d→%d: reference rejects our proof: %v", m, n, err)
				}
			}
		}
	}
}

func TestProofsFailWhenTheyShould(t *testing.T) {
	leaves, _ := leavesOf(13)
	root := Root(leaves)
	p, _ := InclusionProof(5, leaves)
	if err := VerifyInclusion(5, 13, leaves[6], p, root); !errors.Is(err, ErrProofMismatch) {
		t.Errorf("wrong leaf: %v", err)
	}
	if err := VerifyInclusion(4, 13, leaves[5], p, root); err == nil {
		t.Error("wrong index verified")
	}
	if err := VerifyInclusion(5, 13, leaves[5], p[:len(p)-1], root); err == nil {
		t.Error("short proof verified")
	}
	if err := VerifyInclusion(5, 13, leaves[5], append(p, root), root); !errors.Is(err, ErrProofShape) {
		t.Errorf("long proof: %v", err)
	}
	if err := VerifyInclusion(13, 13, leaves[5], p, root); err == nil {
		t.Error("index beyond the tree verified")
	}
	bad := append([]Hash{}, p...)
	bad[1][0] ^= 1
	if err := VerifyInclusion(5, 13, leaves[5], bad, root); !errors.Is(err, ErrProofMismatch) {
		t.Errorf("tampered proof: %v", err)
	}

	c, _ := ConsistencyProof(6, leaves)
	root6 := Root(leaves[:6])
	forked := append([]Hash{}, leaves...)
	forked[3] = LeafHash([]byte("rewritten"))
	if err := VerifyConsistency(6, 13, c, Root(forked[:6]), root); !errors.Is(err, ErrProofMismatch) {
		t.Errorf("rewritten history: %v", err)
	}
	if err := VerifyConsistency(6, 13, c, root6, Root(forked)); !errors.Is(err, ErrProofMismatch) {
		t.Errorf("forked new root: %v", err)
	}
	if err := VerifyConsistency(13, 6, c, root, root6); err == nil {
		t.Error("a shrinking log verified")
	}
	if err := VerifyConsistency(13, 13, nil, root, Root(forked)); !errors.Is(err, ErrProofMismatch) {
		t.Errorf("same size, different roots: %v", err)
	}
	if err := VerifyConsistency(6, 13, nil, root6, root); !errors.Is(err, ErrProofShape) {
		t.Errorf("empty proof: %v", err)
	}
}

func toSlices(hs []Hash) [][]byte {
	out := make([][]byte, len(hs))
	for i := range hs {
		out[i] = hs[i][:]
	}
	return out
}

func sameProof(a []Hash, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if Hash(b[i]) != a[i] {
			return false
		}
	}
	return true
}

var _ tdmerkle.LogHasher = rfc6962.DefaultHasher

func BenchmarkRoot4096(b *testing.B) {
	leaves, _ := leavesOf(4096)
	for b.Loop() {
		Root(leaves)
	}
}

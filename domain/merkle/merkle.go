// Package merkle is the Merkle tree of RFC 9162 §2.1 (RFC 6962's, with
// SHA-256): the leaf and node hashes, the root of a list, inclusion proofs
// within a list, and the verification of inclusion and consistency proofs
// that a log hands out. An auditor needs nothing else to check a log, so
// this package is small, pure and independent of any log's code.
package merkle

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/bits"
)

// Hash is a SHA-256 Merkle tree hash.
type Hash = [sha256.Size]byte

// LeafHash is MTH({d}) = SHA-256(0x00 || d).
func LeafHash(data []byte) Hash {
	h := sha256.New()
	h.Write([]byte{0x00})
	h.Write(data)
	var out Hash
	h.Sum(out[:0])
	return out
}

// NodeHash is SHA-256(0x01 || left || right).
func NodeHash(left, right Hash) Hash {
	var buf [1 + 2*sha256.Size]byte
	buf[0] = 0x01
	copy(buf[1:], left[:])
	copy(buf[1+sha256.Size:], right[:])
	return sha256.Sum256(buf[:])
}

// EmptyRoot is the root of an empty tree, SHA-256 of the empty string.
var EmptyRoot = sha256.Sum256(nil)

// Root is MTH(D[n]) of the leaves whose leaf hashes are given.
func Root(leaves []Hash) Hash {
	if len(leaves) == 0 {
		return EmptyRoot
	}
	// Fold a right-edge stack: O(n) hashes, O(log n) memory.
	var stack []Hash
	for i, h := range leaves {
		stack = append(stack, h)
		for n := i + 1; n&1 == 0; n >>= 1 {
			r := stack[len(stack)-1]
			l := stack[len(stack)-2]
			stack = append(stack[:len(stack)-2], NodeHash(l, r))
		}
	}
	root := stack[len(stack)-1]
	for i := len(stack) - 2; i >= 0; i-- {
		root = NodeHash(stack[i], root)
	}
	return root
}

// InclusionProof is PATH(index, D[n]) for the leaves given (RFC 9162
// §2.1.3.1), leaf-to-root order.
func InclusionProof(index uint64, leaves []Hash) ([]Hash, error) {
	if index >= uint64(len(leaves)) {
		return nil, fmt.Errorf("merkle: index %d outside a tree of %d leaves", index, len(leaves))
	}
	var path []Hash
	var walk func(m uint64, d []Hash)
	walk = func(m uint64, d []Hash) {
		n := uint64(len(d))
		if n == 1 {
			return
		}
		k := splitPoint(n)
		if m < k {
			walk(m, d[:k])
			path = append(path, Root(d[k:]))
		} else {
			walk(m-k, d[k:])
			path = append(path, Root(d[:k]))
		}
	}
	walk(index, leaves)
	return path, nil
}

// splitPoint is the largest power of two smaller than n (n > 1).
func splitPoint(n uint64) uint64 {
	return 1 << (bits.Len64(n-1) - 1)
}

// Errors of proof verification.
var (
	ErrProofMismatch = errors.New("merkle: proof does not lead to the root")
	ErrProofShape    = errors.New("merkle: proof has the wrong length for the tree")
)

// RootFromInclusionProof computes the root a proof leads to for the leaf
// hash at index in a tree of size leaves (RFC 9162 §2.1.3.2).
func RootFromInclusionProof(index, size uint64, leaf Hash, proof []Hash) (Hash, error) {
	if index >= size {
		return Hash{}, fmt.Errorf("merkle: index %d outside a tree of %d leaves", index, size)
	}
	fn, sn := index, size-1
	r := leaf
	for _, p := range proof {
		if sn == 0 {
			return Hash{}, ErrProofShape
		}
		if fn&1 == 1 || fn == sn {
			r = NodeHash(p, r)
			for fn&1 == 0 && fn != 0 {
				fn >>= 1
				sn >>= 1
			}
		} else {
			r = NodeHash(r, p)
		}
		fn >>= 1
		sn >>= 1
	}
	if sn != 0 {
		return Hash{}, ErrProofShape
	}
	return r, nil
}

// VerifyInclusion checks that leaf is at index in the tree of size leaves
// whose root is root.
func VerifyInclusion(index, size uint64, leaf Hash, proof []Hash, root Hash) error {
	got, err := RootFromInclusionProof(index, size, leaf, proof)
	if err != nil {
		return err
	}
	if got != root {
		return ErrProofMismatch
	}
	return nil
}

// VerifyConsistency checks that the tree of size2 leaves with root2 extends
// the tree of size1 leaves with root1 (RFC 9162 §2.1.4.2).
func VerifyConsistency(size1, size2 uint64, proof []Hash, root1, root2 Hash) error {
	switch {
	case size2 < size1:
		return fmt.Errorf("merkle: size %d is smaller than %d: the log shrank", size2, size1)
	case size1 == size2:
		if len(proof) != 0 {
			return ErrProofShape
		}
		if root1 != root2 {
			return ErrProofMismatch
		}
		return nil
	case size1 == 0:
		// Every tree extends the empty one; RFC 9162 proves nothing here.
		if len(proof) != 0 {
			return ErrProofShape
		}
		return nil
	}
	if len(proof) == 0 {
		return ErrProofShape
	}
	// If size1 is a power of two, its root is the first node of the path.
	if size1&(size1-1) == 0 {
		proof = append([]Hash{root1}, proof...)
	}
	fn, sn := size1-1, size2-1
	for fn&1 == 1 {
		fn >>= 1
		sn >>= 1
	}
	fr, sr := proof[0], proof[0]
	for _, c := range proof[1:] {
		if sn == 0 {
			return ErrProofShape
		}
		if fn&1 == 1 || fn == sn {
			fr = NodeHash(c, fr)
			sr = NodeHash(c, sr)
			for fn&1 == 0 && fn != 0 {
				fn >>= 1
				sn >>= 1
			}
		} else {
			sr = NodeHash(sr, c)
		}
		fn >>= 1
		sn >>= 1
	}
	if sn != 0 {
		return ErrProofShape
	}
	if !bytes.Equal(fr[:], root1[:]) || !bytes.Equal(sr[:], root2[:]) {
		return ErrProofMismatch
	}
	return nil
}

// ConsistencyProof is PROOF(m, D[n]) for the leaves given (RFC 9162
// §2.1.4.1): what a log answers when asked whether its first m leaves are
// still the tree it once had.
func ConsistencyProof(m uint64, leaves []Hash) ([]Hash, error) {
	n := uint64(len(leaves))
	if m > n {
		return nil, fmt.Errorf("merkle: size %d beyond a tree of %d leaves", m, n)
	}
	if m == 0 || m == n {
		return nil, nil
	}
	var sub func(m uint64, d []Hash, complete bool) []Hash
	sub = func(m uint64, d []Hash, complete bool) []Hash {
		n := uint64(len(d))
		if m == n {
			if complete {
				return nil
			}
			return []Hash{Root(d)}
		}
		k := splitPoint(n)
		if m <= k {
			return append(sub(m, d[:k], complete), Root(d[k:]))
		}
		return append(sub(m-k, d[k:], false), Root(d[:k]))
	}
	return sub(m, leaves, true), nil
}

// ProofFromBytes reads a proof as logs hand it out, a list of byte
// strings, refusing any that is not a SHA-256 hash.
func ProofFromBytes(p [][]byte) ([]Hash, error) {
	out := make([]Hash, len(p))
	for i, h := range p {
		if len(h) != len(out[i]) {
			return nil, fmt.Errorf("merkle: proof hash %d has %d bytes, want %d", i, len(h), len(out[i]))
		}
		copy(out[i][:], h)
	}
	return out, nil
}

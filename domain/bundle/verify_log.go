package bundle

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/chronolog/chronolog/domain/logwire"
	"github.com/chronolog/chronolog/domain/merkle"
	"github.com/chronolog/chronolog/domain/translog"
)

// checkLog verifies log/checkpoint with the log key, and each token's
// inclusion proof: with the key, to a checkpoint that is log/checkpoint or
// that log/checkpoint provably extends, for the very bytes of its event in
// events.jsonl. Then the trailing bookkeeping.
func (v *verifier) checkLog() {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	signed, err := fs.ReadFile(v.fsys, CheckpointFile)
	if err != nil {
		v.report.add("log", "", []string{CheckpointFile + ": " + err.Error()})
		v.report.notChecked("bookkeeping", "without log/checkpoint")
		return
	}
	final, err := translog.OpenCheckpoint(signed, v.Log)
	if err != nil {
		v.report.add("log", "", []string{CheckpointFile + ": does not verify with the log key: " + err.Error()})
		v.report.notChecked("bookkeeping", "without log/checkpoint")
		return
	}
	if final.Origin != v.manifest.LogOrigin {
		add("log/checkpoint: origin %s, the manifest says %s", final.Origin, v.manifest.LogOrigin)
	}
	entries, err := fs.ReadDir(v.fsys, ProofsDir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		add("log/proofs: %v", err)
	}
	have := map[string]bool{}
	for _, e := range entries {
		serial, ok := strings.CutSuffix(e.Name(), ".json")
		if _, issued := v.issued[serial]; e.IsDir() || !ok || !issued {
			add("log/proofs/%s: not the proof of a token issued in events.jsonl", e.Name())
			continue
		}
		have[serial] = true
	}
	// Each older checkpoint's tie to log/checkpoint, checked once.
	anchored := map[string]error{} // by size and root
	direct, viaConsistency := 0, 0
	for _, serial := range sortedSerials(v.issued) {
		p := ProofPath(serial)
		iss := v.issued[serial]
		if !have[serial] {
			add("%s: missing: the token issued at position %d has no inclusion proof", p, iss.position)
			continue
		}
		raw, err := fs.ReadFile(v.fsys, p)
		if err != nil {
			add("%s: %v", p, err)
			continue
		}
		wp, err := ParseProof(raw)
		if err != nil {
			add("%s: %v", p, err)
			continue
		}
		if wp.Serial != "" && wp.Serial != serial {
			add("%s: the proof of serial %s", p, wp.Serial)
		}
		ep, err := wp.EventProof()
		if err != nil {
			add("%s: malformed: %v", p, err)
			continue
		}
		cp, err := ep.Verify(v.Log)
		if err != nil {
			add("%s: %v", p, err)
			continue
		}
		if ep.Position != iss.position {
			add("%s: proves the event at position %d, the token was issued at position %d", p, ep.Position, iss.position)
		}
		if sha256.Sum256(ep.Payload) != iss.payload {
			add("%s: the event it proves differs from the line of position %d in events.jsonl", p, iss.position)
		}
		switch {
		case cp.Size == final.Size && cp.Root == final.Root:
			direct++
		case cp.Size >= final.Size:
			add("%s: leads to a checkpoint of size %d that log/checkpoint (size %d) does not extend", p, cp.Size, final.Size)
		default:
			key := fmt.Sprintf("%d %x", cp.Size, cp.Root)
			err, done := anchored[key]
			if !done {
				err = v.checkConsistency([]byte(wp.Checkpoint), signed, cp.Size, final.Size)
				anchored[key] = err
			}
			if err != nil {
				add("%s: leads to the checkpoint of size %d: %v", p, cp.Size, err)
				continue
			}
			viaConsistency++
		}
	}
	v.report.Counts.Proofs, v.report.Counts.ViaConsistency = direct+viaConsistency, viaConsistency
	how := fmt.Sprintf("%d proofs verified with the log key, to checkpoint origin %s size %d", direct+viaConsistency, final.Origin, final.Size)
	if viaConsistency > 0 {
		how += fmt.Sprintf(" (%d through consistency proofs from older checkpoints)", viaConsistency)
	}
	v.report.add("log", how+", each proving its event byte for byte as in events.jsonl", problems)
	v.checkBookkeeping(signed, final, anchored)
}

// checkConsistency checks log/consistency/FROM-TO.json: log/checkpoint
// extends the older checkpoint.
func (v *verifier) checkConsistency(older, newer []byte, from, to uint64) error {
	p := ConsistencyPath(from, to)
	raw, err := fs.ReadFile(v.fsys, p)
	if err != nil {
		return fmt.Errorf("no proof that log/checkpoint extends it: %w", err)
	}
	wc, err := ParseConsistency(raw)
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	if wc.From != from || wc.To != to {
		return fmt.Errorf("%s: proves %d→%d", p, wc.From, wc.To)
	}
	hashes, err := logwire.DecodeHashes(wc.Proof)
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	if _, _, err := translog.VerifyConsistency(v.Log, older, newer, hashes); err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	return nil
}

// checkBookkeeping checks the trailing bookkeeping of events.jsonl
// against the log: each sealed segment's leaf proven under log/checkpoint,
// each checkpoint signed with the log key and extended by log/checkpoint.
func (v *verifier) checkBookkeeping(signed []byte, final translog.Checkpoint, anchored map[string]error) {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	entries, err := fs.ReadDir(v.fsys, SegmentsDir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		add("log/segments: %v", err)
	}
	sealed := map[string]bool{}
	for _, b := range v.tail {
		if b.Segment != nil {
			sealed[SegmentProofPath(b.Segment.Index)] = true
		}
	}
	for _, e := range entries {
		if p := SegmentsDir + "/" + e.Name(); e.IsDir() || !sealed[p] {
			add("%s: not the proof of a segment sealed after the range's last other event", p)
		}
	}
	leaves := map[uint64]*translog.SegmentLeaf{} // proven, by index; nil when not
	nSeg, nCP := 0, 0
	for _, b := range v.tail {
		if cs := b.Checkpoint; cs != nil {
			nCP++
			cp, err := translog.OpenCheckpoint([]byte(cs.Note), v.Log)
			if err != nil {
				add("position %d: the LogCheckpointSigned's note does not verify with the log key: %v", b.Position, err)
				continue
			}
			var d []string
			if cs.Origin != cp.Origin {
				d = append(d, "origin")
			}
			if cs.Size != cp.Size {
				d = append(d, "size")
			}
			if cs.Root != hex.EncodeToString(cp.Root[:]) {
				d = append(d, "root")
			}
			if len(d) > 0 {
				add("position %d: the LogCheckpointSigned differs from its note (%s)", b.Position, strings.Join(d, ", "))
			}
			switch {
			case cp.Size > final.Size:
				add("position %d: a checkpoint of size %d, larger than log/checkpoint's %d", b.Position, cp.Size, final.Size)
			case cp.Size == final.Size && cp.Root != final.Root:
				add("position %d: a checkpoint of size %d with another root than log/checkpoint's: the log forked", b.Position, cp.Size)
			case cp.Size > 0 && cp.Size < final.Size:
				key := fmt.Sprintf("%d %x", cp.Size, cp.Root)
				err, done := anchored[key]
				if !done {
					err = v.checkConsistency([]byte(cs.Note), signed, cp.Size, final.Size)
					anchored[key] = err
				}
				if err != nil {
					add("position %d: the checkpoint of size %d: %v", b.Position, cp.Size, err)
				}
			}
			continue
		}
		s := b.Segment
		nSeg++
		p := SegmentProofPath(s.Index)
		leaf, done := leaves[s.Index]
		if !done {
			l, err := v.provenLeaf(p, s.Index, final)
			switch {
			case errors.Is(err, fs.ErrNotExist):
				add("%s: missing: the segment sealed at position %d has no inclusion proof", p, b.Position)
			case err != nil:
				add("%v", err)
			default:
				leaf = &l
			}
			leaves[s.Index] = leaf
		}
		if leaf == nil {
			continue // its problem is listed
		}
		if d := SegmentDiffers(s, *leaf); d != "" {
			add("position %d: the LogSegmentSealed of segment %d differs from the log's leaf in %s (%s)", b.Position, s.Index, p, d)
		}
		if leaf.Last >= b.Position {
			add("position %d: seals segment %d, which ends at position %d, after its seal", b.Position, s.Index, leaf.Last)
		}
	}
	v.report.Counts.TailSegments, v.report.Counts.TailCheckpoints = nSeg, nCP
	if len(v.tail) == 0 {
		v.report.add("bookkeeping", "none after the range's last other event", problems)
		return
	}
	v.report.add("bookkeeping", fmt.Sprintf("%s after the range's last other event: %s proven in log/checkpoint, %s verified with the log key and consistent with it",
		v.tail.Positions(), plural(nSeg, "segment seal"), plural(nCP, "checkpoint")), problems)
}

// provenLeaf reads log/segments/INDEX.json and checks its leaf's inclusion
// in final's tree.
func (v *verifier) provenLeaf(p string, index uint64, final translog.Checkpoint) (translog.SegmentLeaf, error) {
	raw, err := fs.ReadFile(v.fsys, p)
	if err != nil {
		return translog.SegmentLeaf{}, fmt.Errorf("%s: %w", p, err)
	}
	sp, err := ParseSegmentProof(raw)
	if err != nil {
		return translog.SegmentLeaf{}, fmt.Errorf("%s: %w", p, err)
	}
	if sp.Index != index {
		return translog.SegmentLeaf{}, fmt.Errorf("%s: the proof of segment %d", p, sp.Index)
	}
	leaf, err := translog.ParseSegmentLeaf(sp.Leaf)
	if err != nil {
		return translog.SegmentLeaf{}, fmt.Errorf("%s: %w", p, err)
	}
	if sp.Size != final.Size {
		return translog.SegmentLeaf{}, fmt.Errorf("%s: proves segment %d in a tree of %d leaves, log/checkpoint has %d", p, index, sp.Size, final.Size)
	}
	path, err := logwire.DecodeHashes(sp.LogPath)
	if err != nil {
		return translog.SegmentLeaf{}, fmt.Errorf("%s: %w", p, err)
	}
	if index >= final.Size {
		return translog.SegmentLeaf{}, fmt.Errorf("%s: segment %d is beyond log/checkpoint's %d leaves", p, index, final.Size)
	}
	if err := merkle.VerifyInclusion(index, final.Size, leaf.Hash(), path, final.Root); err != nil {
		return translog.SegmentLeaf{}, fmt.Errorf("%s: segment %d does not lead to the root of log/checkpoint (size %d): %v", p, index, final.Size, err)
	}
	return leaf, nil
}

package bundlewriter

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/chronolog/chronolog/domain/bundle"
	"github.com/chronolog/chronolog/domain/logwire"
	"github.com/chronolog/chronolog/domain/translog"
)

// writeLog writes log/checkpoint, the proofs, the trailing bookkeeping's
// segment proofs and the consistency proofs. The API proves a token
// against its latest checkpoint only, so proofs fetched while the log
// grows lead to different checkpoints: the newest, fetched last, is
// log/checkpoint, and each older one gets the proof that log/checkpoint
// extends it. The checkpoint need cover the range only up to its last
// event that is not the log's bookkeeping; the bookkeeping after it gets
// evidence of its own (writeTail).
func writeLog(ctx context.Context, lg Log, cfg Config, sum *Summary) error {
	size, sealed := sum.Tail.Needs()
	first, covered, err := waitCheckpoint(ctx, lg, need{position: sum.LastSubstantive, size: size}, cfg)
	if err != nil {
		var nc *notCoveredError
		if !errors.As(err, &nc) {
			return err
		}
		if nc.covered < sum.LastSubstantive {
			return fmt.Errorf("the log's latest checkpoint (size %d) covers the events up to position %d, the range's last event that is not the log's own bookkeeping is at %d: still not covered after %s (is the log writer up? see tsad's /healthz)",
				nc.size, nc.covered, sum.LastSubstantive, cfg.Wait)
		}
		if sealed.Segment != nil {
			return fmt.Errorf("the log's latest checkpoint has %d leaves; the range records, at position %d, the sealing of segment %d: still not under a checkpoint after %s",
				nc.size, sealed.Position, sealed.Segment.Index, cfg.Wait)
		}
		return fmt.Errorf("the log's latest checkpoint has %d leaves; the range records a checkpoint of %d: still not published after %s", nc.size, size, cfg.Wait)
	}
	proofs := map[uint64]logwire.Proof{} // by the size of the checkpoint it leads to, one each
	sizes := map[string]uint64{}
	for _, serial := range sum.Serials {
		p, err := lg.WaitProof(ctx, serial, cfg.Wait)
		if err != nil {
			return err
		}
		cp, err := translog.ParseSignedCheckpoint([]byte(p.Checkpoint))
		if err != nil {
			return fmt.Errorf("the proof of token %s: %w", serial, err)
		}
		if prev, ok := proofs[cp.Size]; ok && prev.Checkpoint != p.Checkpoint {
			if pc, _ := translog.ParseSignedCheckpoint([]byte(prev.Checkpoint)); pc.Root != cp.Root {
				return fmt.Errorf("the server proved tokens against two checkpoints of size %d with different roots", cp.Size)
			}
		}
		proofs[cp.Size] = p
		sizes[serial] = cp.Size
		raw, err := bundle.MarshalFile(p)
		if err != nil {
			return err
		}
		if err := writeFile(cfg.Out, bundle.ProofPath(serial), raw); err != nil {
			return err
		}
	}
	// The newest checkpoint, fetched after every proof: it extends them all.
	signed, err := lg.Checkpoint(ctx)
	if err != nil {
		return fmt.Errorf("the log's checkpoint: %w", err)
	}
	final, err := translog.ParseSignedCheckpoint(signed)
	if err != nil {
		return fmt.Errorf("the log's checkpoint: %w", err)
	}
	if final.Size < first.Size {
		return fmt.Errorf("the log's checkpoint went from size %d back to %d", first.Size, final.Size)
	}
	if err := writeFile(cfg.Out, bundle.CheckpointFile, signed); err != nil {
		return err
	}
	// The older checkpoints log/checkpoint must be proven to extend: the
	// tail's, and those the proofs lead to.
	older, err := writeTail(ctx, lg, cfg.Out, sum.Tail, final)
	if err != nil {
		return err
	}
	for size, p := range proofs {
		switch cp, _ := translog.ParseSignedCheckpoint([]byte(p.Checkpoint)); {
		case size > final.Size:
			return fmt.Errorf("a proof leads to a checkpoint of size %d, newer than the latest one, of size %d", size, final.Size)
		case size == final.Size && cp.Root != final.Root:
			return fmt.Errorf("the server served two checkpoints of size %d with different roots", size)
		case size < final.Size:
			older[size] = true
		}
	}
	for _, size := range sortedSizes(older) {
		hashes, err := lg.Consistency(ctx, size, final.Size)
		if err != nil {
			return err
		}
		raw, err := bundle.MarshalFile(bundle.Consistency{From: size, To: final.Size, Proof: logwire.EncodeHashes(hashes)})
		if err != nil {
			return err
		}
		if err := writeFile(cfg.Out, bundle.ConsistencyPath(size, final.Size), raw); err != nil {
			return err
		}
		sum.Consistency++
	}
	for _, size := range sizes {
		if size == final.Size {
			sum.AgainstFinal++
		}
	}
	sum.Checkpoint, sum.Covered = final, covered
	if final.Size > first.Size {
		if sum.Covered, err = lastCovered(ctx, lg, final.Size); err != nil {
			return err
		}
	}
	return nil
}

// writeTail writes the evidence of the tail's sealed segments under
// final, and returns the sizes of its checkpoints that final must be
// proven to extend.
func writeTail(ctx context.Context, lg Log, out string, tail bundle.Tail, final translog.Checkpoint) (map[uint64]bool, error) {
	older := map[uint64]bool{}
	written := map[uint64]bool{}
	for _, b := range tail {
		if cs := b.Checkpoint; cs != nil {
			cp, err := translog.ParseSignedCheckpoint([]byte(cs.Note))
			switch {
			case err != nil:
				return nil, fmt.Errorf("the checkpoint recorded at position %d: %w", b.Position, err)
			case cp.Size > final.Size:
				return nil, fmt.Errorf("the checkpoint recorded at position %d has %d leaves, the log's latest %d", b.Position, cp.Size, final.Size)
			case cp.Size == final.Size && cp.Root != final.Root:
				return nil, fmt.Errorf("the checkpoint recorded at position %d and the log's latest have %d leaves and different roots", b.Position, cp.Size)
			case cp.Size > 0 && cp.Size < final.Size:
				older[cp.Size] = true
			}
			continue
		}
		s := b.Segment
		if written[s.Index] {
			continue
		}
		seg, err := lg.Segment(ctx, s.Index, false)
		if err != nil {
			return nil, fmt.Errorf("the segment sealed at position %d: %w", b.Position, err)
		}
		leaf, err := translog.ParseSegmentLeaf(seg.Leaf)
		if err != nil {
			return nil, fmt.Errorf("the log's segment %d: %w", s.Index, err)
		}
		if d := bundle.SegmentDiffers(s, leaf); d != "" {
			return nil, fmt.Errorf("the log's segment %d differs from its seal recorded at position %d (%s)", s.Index, b.Position, d)
		}
		path, err := lg.Inclusion(ctx, s.Index, final.Size)
		if err != nil {
			return nil, fmt.Errorf("the segment sealed at position %d: %w", b.Position, err)
		}
		raw, err := bundle.MarshalFile(bundle.SegmentProof{Index: s.Index, Leaf: seg.Leaf, Size: final.Size, LogPath: logwire.EncodeHashes(path)})
		if err != nil {
			return nil, err
		}
		if err := writeFile(out, bundle.SegmentProofPath(s.Index), raw); err != nil {
			return nil, err
		}
		written[s.Index] = true
	}
	return older, nil
}

// notCoveredError: no checkpoint covered the range's end in time.
type notCoveredError struct{ size, covered uint64 }

func (e *notCoveredError) Error() string {
	return fmt.Sprintf("the checkpoint of size %d covers the events up to position %d only", e.size, e.covered)
}

// need is what the export's checkpoint must hold: the events up to
// position, and at least size leaves.
type need struct{ position, size uint64 }

// waitCheckpoint waits, up to cfg.Wait, for a checkpoint meeting n, and
// returns it with the last position it covers.
func waitCheckpoint(ctx context.Context, lg Log, n need, cfg Config) (translog.Checkpoint, uint64, error) {
	deadline := time.Now().Add(cfg.Wait)
	told := false
	for {
		signed, err := lg.Checkpoint(ctx)
		if err != nil {
			return translog.Checkpoint{}, 0, fmt.Errorf("the log's checkpoint: %w", err)
		}
		cp, err := translog.ParseSignedCheckpoint(signed)
		if err != nil {
			return cp, 0, fmt.Errorf("the log's checkpoint: %w", err)
		}
		covered, err := lastCovered(ctx, lg, cp.Size)
		if err != nil {
			return cp, 0, err
		}
		if covered >= n.position && cp.Size >= n.size {
			return cp, covered, nil
		}
		left := time.Until(deadline)
		if left <= 0 {
			return cp, covered, &notCoveredError{size: cp.Size, covered: covered}
		}
		if !told && cfg.Notes != nil {
			fmt.Fprintf(cfg.Notes, "the log's checkpoint (size %d) covers the events up to position %d, the range's last event other than the log's bookkeeping is at %d; waiting up to %s\n",
				cp.Size, covered, n.position, cfg.Wait)
			told = true
		}
		select {
		case <-time.After(min(250*time.Millisecond, left)):
		case <-ctx.Done():
			return cp, covered, ctx.Err()
		}
	}
}

// lastCovered is the position of the last event in a log of size leaves:
// the end of its last segment, as the leaf encodes it.
func lastCovered(ctx context.Context, lg Log, size uint64) (uint64, error) {
	if size == 0 {
		return 0, nil
	}
	seg, err := lg.Segment(ctx, size-1, false)
	if err != nil {
		return 0, fmt.Errorf("the log's segment %d: %w", size-1, err)
	}
	leaf, err := translog.ParseSegmentLeaf(seg.Leaf)
	if err != nil {
		return 0, fmt.Errorf("the log's segment %d: %w", size-1, err)
	}
	return leaf.Last, nil
}

// sortedSizes are a set's sizes, ascending.
func sortedSizes(set map[uint64]bool) []uint64 {
	out := make([]uint64, 0, len(set))
	for s := range set {
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

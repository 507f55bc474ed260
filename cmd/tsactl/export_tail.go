package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/chronolog/chronolog/adapters/logclient"
	"github.com/chronolog/chronolog/adapters/logwire"
	"github.com/chronolog/chronolog/domain/events"
	"github.com/chronolog/chronolog/domain/merkle"
	"github.com/chronolog/chronolog/domain/translog"
)

// A range ends, as a rule, in the log writer's own bookkeeping: the seal
// of the segment holding the range's last request, the checkpoints
// published after it. The writer never cuts a segment of bookkeeping
// alone (each seal would record another one, forever), so while the TSA
// is idle no checkpoint covers those events, and any design that sealed
// them still leaves the last seal's own record uncovered.
//
// Such trailing bookkeeping, after the range's last other event, needs no
// segment: each event is evidence about the log, checked against the log
// itself. A LogSegmentSealed names a leaf (index, first, last, count,
// root, leaf hash); the bundle carries that leaf with its inclusion proof
// under log/checkpoint (log/segments/INDEX.json). A LogCheckpointSigned
// carries its signed note, which verifies with the log key and which
// log/checkpoint equals or provably extends (log/consistency/A-B.json).
// The log must then cover the range only up to its last other event.

// bookkeepingEvent is one event of a range's trailing bookkeeping,
// decoded: a segment's seal or a checkpoint.
type bookkeepingEvent struct {
	position   uint64
	segment    *events.LogSegmentSealed
	checkpoint *events.LogCheckpointSigned
}

// bookkeepingTail follows a range's events in order and keeps the
// bookkeeping after the last other one.
type bookkeepingTail []bookkeepingEvent

// add takes the next event of the range.
func (t *bookkeepingTail) add(position uint64, eventType string, payload []byte) error {
	if !bookkeeping(eventType) {
		*t = (*t)[:0]
		return nil
	}
	_, e, err := events.Decode(payload)
	if err != nil {
		return err
	}
	b := bookkeepingEvent{position: position}
	switch e := e.(type) {
	case *events.LogSegmentSealed:
		b.segment = e
	case *events.LogCheckpointSigned:
		b.checkpoint = e
	default:
		return fmt.Errorf("a %s that decodes as %T", eventType, e)
	}
	*t = append(*t, b)
	return nil
}

// needs is the smallest log size under which the tail's evidence can be
// given: every sealed segment in it, and every checkpoint no larger.
func (t bookkeepingTail) needs() (size uint64, segment bookkeepingEvent) {
	for _, b := range t {
		switch {
		case b.segment != nil && b.segment.Index+1 > size:
			size, segment = b.segment.Index+1, b
		case b.checkpoint != nil && b.checkpoint.Size > size:
			size, segment = b.checkpoint.Size, bookkeepingEvent{}
		}
	}
	return size, segment
}

// positions describes the tail's span.
func (t bookkeepingTail) positions() string {
	first, last := t[0].position, t[len(t)-1].position
	if first == last {
		return fmt.Sprintf("position %d", first)
	}
	return fmt.Sprintf("positions %d–%d", first, last)
}

// exportSegmentProof is log/segments/INDEX.json: a leaf of the log and its
// inclusion proof in the tree of log/checkpoint.
type exportSegmentProof struct {
	Index uint64 `json:"index"`
	// Leaf is the encoded leaf (schemas/translog/segment-leaf.md), base64.
	Leaf []byte `json:"leaf"`
	// Size is log/checkpoint's size; LogPath leads from the leaf's hash
	// to its root.
	Size    uint64   `json:"size"`
	LogPath []string `json:"logPath"`
}

func segmentProofPath(index uint64) string { return fmt.Sprintf("log/segments/%d.json", index) }

// exportTail writes the evidence of the tail's sealed segments under
// final, and returns the sizes of its checkpoints that final must be
// proven to extend.
func exportTail(ctx context.Context, c *logclient.Client, out string, tail bookkeepingTail, final translog.Checkpoint) (map[uint64]bool, error) {
	older := map[uint64]bool{}
	written := map[uint64]bool{}
	for _, b := range tail {
		if cs := b.checkpoint; cs != nil {
			cp, err := parseSignedCheckpoint([]byte(cs.Note))
			switch {
			case err != nil:
				return nil, fmt.Errorf("the checkpoint recorded at position %d: %w", b.position, err)
			case cp.Size > final.Size:
				return nil, fmt.Errorf("the checkpoint recorded at position %d has %d leaves, the log's latest %d", b.position, cp.Size, final.Size)
			case cp.Size == final.Size && cp.Root != final.Root:
				return nil, fmt.Errorf("the checkpoint recorded at position %d and the log's latest have %d leaves and different roots", b.position, cp.Size)
			case cp.Size > 0 && cp.Size < final.Size:
				older[cp.Size] = true
			}
			continue
		}
		s := b.segment
		if written[s.Index] {
			continue
		}
		seg, err := c.Segment(ctx, s.Index, false)
		if err != nil {
			return nil, fmt.Errorf("the segment sealed at position %d: %w", b.position, err)
		}
		leaf, err := translog.ParseSegmentLeaf(seg.Leaf)
		if err != nil {
			return nil, fmt.Errorf("the log's segment %d: %w", s.Index, err)
		}
		if d := segmentDiffers(s, leaf); d != "" {
			return nil, fmt.Errorf("the log's segment %d differs from its seal recorded at position %d (%s)", s.Index, b.position, d)
		}
		path, err := c.Inclusion(ctx, s.Index, final.Size)
		if err != nil {
			return nil, fmt.Errorf("the segment sealed at position %d: %w", b.position, err)
		}
		raw, err := json.Marshal(exportSegmentProof{Index: s.Index, Leaf: seg.Leaf, Size: final.Size, LogPath: logwire.EncodeHashes(path)})
		if err != nil {
			return nil, err
		}
		dir := filepath.Join(out, "log", "segments")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(dir, strconv.FormatUint(s.Index, 10)+".json"), append(raw, '\n'), 0o644); err != nil {
			return nil, err
		}
		written[s.Index] = true
	}
	return older, nil
}

// segmentDiffers names the fields in which a recorded seal and the log's
// leaf differ, "" when none do.
func segmentDiffers(s *events.LogSegmentSealed, leaf translog.SegmentLeaf) string {
	lh := leaf.Hash()
	var d []string
	for _, f := range []struct {
		name string
		same bool
	}{
		{"first", s.First == leaf.First},
		{"last", s.Last == leaf.Last},
		{"count", s.Count == leaf.Count},
		{"root", s.Root == hex.EncodeToString(leaf.Root[:])},
		{"leafHash", s.LeafHash == hex.EncodeToString(lh[:])},
	} {
		if !f.same {
			d = append(d, f.name)
		}
	}
	return strings.Join(d, ", ")
}

// checkBookkeeping checks the trailing bookkeeping of events.jsonl
// against the log: each sealed segment's leaf proven under log/checkpoint,
// each checkpoint signed with the log key and extended by log/checkpoint.
func (v *bundleVerifier) checkBookkeeping(signed []byte, final translog.Checkpoint, anchored map[string]error) {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	entries, err := fs.ReadDir(v.fsys, "log/segments")
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		add("log/segments: %v", err)
	}
	sealed := map[string]bool{}
	for _, b := range v.tail {
		if b.segment != nil {
			sealed[segmentProofPath(b.segment.Index)] = true
		}
	}
	for _, e := range entries {
		if p := "log/segments/" + e.Name(); e.IsDir() || !sealed[p] {
			add("%s: not the proof of a segment sealed after the range's last other event", p)
		}
	}
	leaves := map[uint64]*translog.SegmentLeaf{} // proven, by index; nil when not
	nSeg, nCP := 0, 0
	for _, b := range v.tail {
		if cs := b.checkpoint; cs != nil {
			nCP++
			cp, err := translog.OpenCheckpoint([]byte(cs.Note), v.log)
			if err != nil {
				add("position %d: the LogCheckpointSigned's note does not verify with the log key: %v", b.position, err)
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
				add("position %d: the LogCheckpointSigned differs from its note (%s)", b.position, strings.Join(d, ", "))
			}
			switch {
			case cp.Size > final.Size:
				add("position %d: a checkpoint of size %d, larger than log/checkpoint's %d", b.position, cp.Size, final.Size)
			case cp.Size == final.Size && cp.Root != final.Root:
				add("position %d: a checkpoint of size %d with another root than log/checkpoint's: the log forked", b.position, cp.Size)
			case cp.Size > 0 && cp.Size < final.Size:
				key := fmt.Sprintf("%d %x", cp.Size, cp.Root)
				err, done := anchored[key]
				if !done {
					err = v.checkConsistency([]byte(cs.Note), signed, cp.Size, final.Size)
					anchored[key] = err
				}
				if err != nil {
					add("position %d: the checkpoint of size %d: %v", b.position, cp.Size, err)
				}
			}
			continue
		}
		s := b.segment
		nSeg++
		p := segmentProofPath(s.Index)
		leaf, done := leaves[s.Index]
		if !done {
			l, err := v.provenLeaf(p, s.Index, final)
			switch {
			case errors.Is(err, fs.ErrNotExist):
				add("%s: missing: the segment sealed at position %d has no inclusion proof", p, b.position)
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
		if d := segmentDiffers(s, *leaf); d != "" {
			add("position %d: the LogSegmentSealed of segment %d differs from the log's leaf in %s (%s)", b.position, s.Index, p, d)
		}
		if leaf.Last >= b.position {
			add("position %d: seals segment %d, which ends at position %d, after its seal", b.position, s.Index, leaf.Last)
		}
	}
	if len(v.tail) == 0 {
		v.report("bookkeeping", "none after the range's last other event", problems)
		return
	}
	v.report("bookkeeping", fmt.Sprintf("%s after the range's last other event: %s proven in log/checkpoint, %s verified with the log key and consistent with it",
		v.tail.positions(), plural(nSeg, "segment seal"), plural(nCP, "checkpoint")), problems)
}

// plural counts things named by a regular noun.
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// provenLeaf reads log/segments/INDEX.json and checks its leaf's inclusion
// in final's tree.
func (v *bundleVerifier) provenLeaf(p string, index uint64, final translog.Checkpoint) (translog.SegmentLeaf, error) {
	raw, err := fs.ReadFile(v.fsys, p)
	if err != nil {
		return translog.SegmentLeaf{}, fmt.Errorf("%s: %w", p, err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var sp exportSegmentProof
	if err := dec.Decode(&sp); err != nil {
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

// sortedSizes are a set's sizes, ascending.
func sortedSizes(set map[uint64]bool) []uint64 {
	out := make([]uint64, 0, len(set))
	for s := range set {
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

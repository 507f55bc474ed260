package bundle

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"testing"
	"testing/fstest"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/chronolog/chronolog/domain/events"
	"github.com/chronolog/chronolog/domain/logwire"
	"github.com/chronolog/chronolog/domain/merkle"
	"github.com/chronolog/chronolog/domain/translog"
)

// miniLog is a transparency log of three segments of two events each,
// built with the domain's own hashing and signed with a fresh key.
type miniLog struct {
	signer   note.Signer
	verifier note.Verifier
	payloads [][]byte // by position - 1
	leaves   []translog.SegmentLeaf
	hashes   []merkle.Hash // the leaves' hashes
}

func newMiniLog(t *testing.T) *miniLog {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, "example.com/log")
	if err != nil {
		t.Fatal(err)
	}
	l := &miniLog{}
	if l.signer, err = note.NewSigner(skey); err != nil {
		t.Fatal(err)
	}
	if l.verifier, err = note.NewVerifier(vkey); err != nil {
		t.Fatal(err)
	}
	for pos := uint64(1); pos <= 6; pos++ {
		l.payloads = append(l.payloads, fmt.Appendf(nil, `{"type":"Event.v1","position":%d}`, pos))
	}
	for seg := range uint64(3) {
		first := 2*seg + 1
		eh := []merkle.Hash{merkle.LeafHash(l.payloads[first-1]), merkle.LeafHash(l.payloads[first])}
		leaf := translog.SegmentLeaf{First: first, Last: first + 1, Count: 2, Root: merkle.Root(eh)}
		l.leaves = append(l.leaves, leaf)
		l.hashes = append(l.hashes, leaf.Hash())
	}
	return l
}

func (l *miniLog) checkpoint(t *testing.T, size uint64) []byte {
	t.Helper()
	return l.sign(t, l.signer, size, merkle.Root(l.hashes[:size]))
}

func (l *miniLog) sign(t *testing.T, s note.Signer, size uint64, root merkle.Hash) []byte {
	t.Helper()
	signed, err := translog.SignCheckpoint(translog.Checkpoint{Origin: "example.com/log", Size: size, Root: root}, s)
	if err != nil {
		t.Fatal(err)
	}
	return signed
}

// proof proves the event at position 4 (the second of segment 1), the
// token a1's, against the checkpoint of size.
func (l *miniLog) proof(t *testing.T, size uint64) Proof {
	t.Helper()
	seg := l.leaves[1]
	eventPath, err := merkle.InclusionProof(1, []merkle.Hash{merkle.LeafHash(l.payloads[2]), merkle.LeafHash(l.payloads[3])})
	if err != nil {
		t.Fatal(err)
	}
	logPath, err := merkle.InclusionProof(1, l.hashes[:size])
	if err != nil {
		t.Fatal(err)
	}
	return Proof{
		Serial:     "a1",
		Event:      ProofEvent{Position: 4, Stream: "tsr-a1", Type: "TimestampIssued.v1", Payload: l.payloads[3]},
		Segment:    ProofSegment{Index: 1, Leaf: seg.Marshal(), First: seg.First, Last: seg.Last, Count: seg.Count, Root: seg.Root[:]},
		EventIndex: 1, EventPath: logwire.EncodeHashes(eventPath), LogPath: logwire.EncodeHashes(logPath),
		Checkpoint: string(l.checkpoint(t, size)),
	}
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
	cp, err := translog.ParseSignedCheckpoint(signed)
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
func (l *miniLog) miniTail(t *testing.T) Tail {
	t.Helper()
	var tail Tail
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
		if err := tail.Add(e.pos, e.typ, e.payload); err != nil {
			t.Fatal(err)
		}
	}
	return tail
}

// logFiles are the files under log/ of a bundle whose checkpoint has size
// final, the token a1's proof leading to the checkpoint of size proofAt,
// with the evidence of tail: what adapters/bundlewriter writes.
func (l *miniLog) logFiles(t *testing.T, final, proofAt uint64, tail Tail) fstest.MapFS {
	t.Helper()
	fsys := fstest.MapFS{CheckpointFile: {Data: l.checkpoint(t, final)}}
	put := func(name string, v any) {
		raw, err := MarshalFile(v)
		if err != nil {
			t.Fatal(err)
		}
		fsys[name] = &fstest.MapFile{Data: raw}
	}
	put(ProofPath("a1"), l.proof(t, proofAt))
	older := map[uint64]bool{proofAt: proofAt < final}
	for _, b := range tail {
		if b.Checkpoint != nil {
			older[b.Checkpoint.Size] = b.Checkpoint.Size < final
			continue
		}
		i := b.Segment.Index
		path, err := merkle.InclusionProof(i, l.hashes[:final])
		if err != nil {
			t.Fatal(err)
		}
		put(SegmentProofPath(i), SegmentProof{Index: i, Leaf: l.leaves[i].Marshal(), Size: final, LogPath: logwire.EncodeHashes(path)})
	}
	for size, ok := range older {
		if !ok {
			continue
		}
		p, err := merkle.ConsistencyProof(size, l.hashes[:final])
		if err != nil {
			t.Fatal(err)
		}
		put(ConsistencyPath(size, final), Consistency{From: size, To: final, Proof: logwire.EncodeHashes(p)})
	}
	return fsys
}

// checkLog runs the log's checks on fsys, the token a1 issued at position
// 4, and returns the report.
func (l *miniLog) checkLog(fsys fstest.MapFS, tail Tail) *Report {
	v := &verifier{fsys: fsys, Options: Options{Log: l.verifier},
		manifest: &Manifest{LogOrigin: "example.com/log"},
		issued:   map[string]issued{"a1": {position: 4, payload: sha256Of(l.payloads[3])}},
		tail:     tail}
	v.checkLog()
	return &v.report
}

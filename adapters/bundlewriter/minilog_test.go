package bundlewriter

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/chronolog/chronolog/adapters/logclient"
	"github.com/chronolog/chronolog/domain/bundle"
	"github.com/chronolog/chronolog/domain/events"
	"github.com/chronolog/chronolog/domain/logwire"
	"github.com/chronolog/chronolog/domain/merkle"
	"github.com/chronolog/chronolog/domain/translog"
)

// miniLog is a transparency log of segments of two events each over
// payloads (positions 1, 2, …), built with the domain's own hashing and
// signed with a fresh key: what the log API of a tsad would serve.
type miniLog struct {
	signer   note.Signer
	verifier note.Verifier
	payloads [][]byte // by position - 1
	leaves   []translog.SegmentLeaf
	hashes   []merkle.Hash // the leaves' hashes
	serials  map[string]uint64
}

// newMiniLog logs payloads, or six placeholder events; the token a1 is
// the event at position 4.
func newMiniLog(t *testing.T, payloads ...[]byte) *miniLog {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, "example.com/log")
	if err != nil {
		t.Fatal(err)
	}
	l := &miniLog{payloads: payloads, serials: map[string]uint64{"a1": 4}}
	if l.signer, err = note.NewSigner(skey); err != nil {
		t.Fatal(err)
	}
	if l.verifier, err = note.NewVerifier(vkey); err != nil {
		t.Fatal(err)
	}
	if len(l.payloads) == 0 {
		for pos := uint64(1); pos <= 6; pos++ {
			l.payloads = append(l.payloads, fmt.Appendf(nil, `{"type":"Event.v1","position":%d}`, pos))
		}
	}
	for first := uint64(1); first < uint64(len(l.payloads)); first += 2 {
		eh := []merkle.Hash{merkle.LeafHash(l.payloads[first-1]), merkle.LeafHash(l.payloads[first])}
		leaf := translog.SegmentLeaf{First: first, Last: first + 1, Count: 2, Root: merkle.Root(eh)}
		l.leaves = append(l.leaves, leaf)
		l.hashes = append(l.hashes, leaf.Hash())
	}
	return l
}

func (l *miniLog) checkpoint(t *testing.T, size uint64) []byte {
	t.Helper()
	signed, err := translog.SignCheckpoint(translog.Checkpoint{Origin: "example.com/log", Size: size, Root: merkle.Root(l.hashes[:size])}, l.signer)
	if err != nil {
		t.Fatal(err)
	}
	return signed
}

func (l *miniLog) segment(i uint64) logwire.Segment {
	leaf := l.leaves[i]
	return logwire.Segment{Index: i, Leaf: leaf.Marshal(), First: leaf.First, Last: leaf.Last, Count: leaf.Count, Root: leaf.Root[:]}
}

// proof proves the token serial's event against the checkpoint of size.
func (l *miniLog) proof(t *testing.T, serial string, size uint64) logwire.Proof {
	t.Helper()
	pos := l.serials[serial]
	seg, inSeg := (pos-1)/2, (pos-1)%2
	first := 2*seg + 1
	eventPath, err := merkle.InclusionProof(inSeg, []merkle.Hash{merkle.LeafHash(l.payloads[first-1]), merkle.LeafHash(l.payloads[first])})
	if err != nil {
		t.Fatal(err)
	}
	logPath, err := merkle.InclusionProof(seg, l.hashes[:size])
	if err != nil {
		t.Fatal(err)
	}
	return logwire.Proof{
		Serial:     serial,
		Event:      logwire.Event{Position: pos, Stream: "tsr-" + serial, Type: "TimestampIssued.v1", Payload: l.payloads[pos-1]},
		Segment:    l.segment(seg),
		EventIndex: inSeg, EventPath: logwire.EncodeHashes(eventPath), LogPath: logwire.EncodeHashes(logPath),
		Checkpoint: string(l.checkpoint(t, size)),
	}
}

// serve answers the log API for l, its latest checkpoint of size().
func (l *miniLog) serve(t *testing.T, size func() uint64) Log {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /log/v1/checkpoint", func(w http.ResponseWriter, r *http.Request) {
		w.Write(l.checkpoint(t, size()))
	})
	mux.HandleFunc("GET /log/v1/segments/{index}", func(w http.ResponseWriter, r *http.Request) {
		i, _ := strconv.Atoi(r.PathValue("index"))
		json.NewEncoder(w).Encode(l.segment(uint64(i)))
	})
	mux.HandleFunc("GET /log/v1/proof/{serial}", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(l.proof(t, r.PathValue("serial"), size()))
	})
	mux.HandleFunc("GET /log/v1/inclusion", func(w http.ResponseWriter, r *http.Request) {
		index, _ := strconv.ParseUint(r.URL.Query().Get("index"), 10, 64)
		n, _ := strconv.ParseUint(r.URL.Query().Get("size"), 10, 64)
		if index >= n || n > size() {
			http.Error(w, `{"error":"out of range"}`, http.StatusBadRequest)
			return
		}
		p, _ := merkle.InclusionProof(index, l.hashes[:n])
		json.NewEncoder(w).Encode(logwire.Inclusion{Index: index, Size: n, Proof: logwire.EncodeHashes(p)})
	})
	mux.HandleFunc("GET /log/v1/consistency", func(w http.ResponseWriter, r *http.Request) {
		from, _ := strconv.ParseUint(r.URL.Query().Get("from"), 10, 64)
		to, _ := strconv.ParseUint(r.URL.Query().Get("to"), 10, 64)
		p, _ := merkle.ConsistencyProof(from, l.hashes[:to])
		json.NewEncoder(w).Encode(logwire.Consistency{From: from, To: to, Proof: logwire.EncodeHashes(p)})
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return clientLog{logclient.New(srv.URL, nil)}
}

// clientLog is the log client as the writer asks it, without waiting for
// proofs: the mini log proves every token at once.
type clientLog struct{ *logclient.Client }

func (c clientLog) WaitProof(ctx context.Context, serial string, _ time.Duration) (logwire.Proof, error) {
	return c.Proof(ctx, serial)
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
func (l *miniLog) miniTail(t *testing.T) bundle.Tail {
	t.Helper()
	var tail bundle.Tail
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

package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"strconv"
	"strings"

	"github.com/chronolog/chronolog/domain/events"
	"github.com/chronolog/chronolog/domain/eventstore"
	"github.com/chronolog/chronolog/domain/logwire"
	"github.com/chronolog/chronolog/domain/merkle"
	"github.com/chronolog/chronolog/domain/translog"
)

// LogStore is what the auditor API reads of the event store.
type LogStore interface {
	ReadStream(ctx context.Context, stream string) ([]eventstore.RecordedEvent, error)
	ReadAll(ctx context.Context, after uint64, max int) ([]eventstore.RecordedEvent, error)
}

// LogAPI serves the transparency log to auditors, under /log/v1/. Nothing
// it serves needs trusting: every answer is checked against a checkpoint
// signed with the log's key (tsactl log verify|monitor|audit do it).
type LogAPI struct {
	Log   translog.Log
	Store LogStore
	// Key is the log's public note verifier key, served at /log/v1/key
	// for convenience; an auditor should get it out of band.
	Key string
	// Files, when set, are the log's C2SP tiles, served read-only under
	// /log/v1/tiles/ (Tessera).
	Files fs.FS
}

// maxCheckpointPage bounds a page of the checkpoint history.
const maxCheckpointPage = 1000

// routes are the API's paths (as schemas/openapi.yaml names them) and
// their handlers.
func (a *LogAPI) routes() map[string]http.HandlerFunc {
	return map[string]http.HandlerFunc{
		"/log/v1/checkpoint":       a.checkpoint,
		"/log/v1/key":              a.key,
		"/log/v1/checkpoints":      a.checkpoints,
		"/log/v1/proof/{serial}":   a.proof,
		"/log/v1/consistency":      a.consistency,
		"/log/v1/inclusion":        a.inclusion,
		"/log/v1/segments/{index}": a.segment,
	}
}

func (a *LogAPI) register(mux *http.ServeMux) {
	for path, h := range a.routes() {
		mux.HandleFunc("GET "+path, h)
	}
	if a.Files != nil {
		mux.Handle("GET /log/v1/tiles/", http.StripPrefix("/log/v1/tiles/", http.FileServerFS(a.Files)))
	}
}

func (a *LogAPI) checkpoint(w http.ResponseWriter, r *http.Request) {
	cp, err := a.Log.Checkpoint(r.Context())
	if err != nil {
		apiError(w, http.StatusServiceUnavailable, "the log is unavailable: %v", err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.Write(cp)
}

func (a *LogAPI) key(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintln(w, a.Key)
}

// checkpoints pages through the recorded checkpoints, oldest first.
func (a *LogAPI) checkpoints(w http.ResponseWriter, r *http.Request) {
	after, err := uintParam(r, "after", 0)
	if err != nil {
		apiError(w, http.StatusBadRequest, "%v", err)
		return
	}
	limit, err := uintParam(r, "limit", 100)
	if err != nil || limit == 0 || limit > maxCheckpointPage {
		apiError(w, http.StatusBadRequest, "limit must be 1–%d", maxCheckpointPage)
		return
	}
	evs, err := a.Store.ReadStream(r.Context(), events.LogCheckpointsStream)
	if err != nil && !errors.Is(err, eventstore.ErrStreamNotFound) {
		apiError(w, http.StatusInternalServerError, "read checkpoints: %v", err)
		return
	}
	out := logwire.Checkpoints{Checkpoints: []logwire.Checkpoint{}}
	for _, e := range evs {
		if e.Position <= after {
			continue
		}
		if uint64(len(out.Checkpoints)) == limit {
			out.Next = out.Checkpoints[len(out.Checkpoints)-1].Position
			break
		}
		_, ev, err := events.Decode(e.Payload)
		cp, ok := ev.(*events.LogCheckpointSigned)
		if err != nil || !ok {
			apiError(w, http.StatusInternalServerError, "checkpoint event at %d does not decode: %v", e.Position, err)
			return
		}
		parsed, err := translog.ParseSignedCheckpoint([]byte(cp.Note))
		if err != nil {
			apiError(w, http.StatusInternalServerError, "checkpoint event at %d: %v", e.Position, err)
			return
		}
		out.Checkpoints = append(out.Checkpoints, logwire.Checkpoint{Size: cp.Size, Root: parsed.Root[:], Note: cp.Note, Position: e.Position})
	}
	writeJSON(w, out)
}

// proof proves a token's TimestampIssued event against the latest
// checkpoint.
func (a *LogAPI) proof(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	serial := strings.TrimPrefix(strings.ToLower(r.PathValue("serial")), "0x")
	if serial == "" || strings.Trim(serial, "0123456789abcdef") != "" {
		apiError(w, http.StatusBadRequest, "serial must be hexadecimal")
		return
	}
	// Streams are named by the serial without leading zeros; a client may
	// have padded it to whole octets.
	if serial = strings.TrimLeft(serial, "0"); serial == "" {
		serial = "0"
	}
	evs, err := a.Store.ReadStream(ctx, events.RequestStream(serial))
	if errors.Is(err, eventstore.ErrStreamNotFound) {
		apiError(w, http.StatusNotFound, "no request with serial %s", serial)
		return
	}
	if err != nil {
		apiError(w, http.StatusInternalServerError, "read request %s: %v", serial, err)
		return
	}
	var issued *eventstore.RecordedEvent
	for i := range evs {
		if evs[i].Type == events.TypeTimestampIssued {
			issued = &evs[i]
		}
	}
	if issued == nil {
		apiError(w, http.StatusNotFound, "request %s was not granted: no token to prove", serial)
		return
	}
	signed, cp, err := a.latest(ctx)
	if err != nil {
		apiError(w, http.StatusServiceUnavailable, "%v", err)
		return
	}
	index, leaf, err := a.segmentOf(ctx, issued.Position, cp.Size)
	if err != nil {
		if errors.Is(err, errNotYet) {
			w.Header().Set("Retry-After", "1")
			apiError(w, http.StatusNotFound, "token %s is not under a checkpoint yet: %v", serial, err)
			return
		}
		apiError(w, http.StatusInternalServerError, "%v", err)
		return
	}
	seg, err := a.segmentEvents(ctx, index, leaf)
	if err != nil {
		apiError(w, http.StatusInternalServerError, "%v", err)
		return
	}
	var hashes []merkle.Hash
	eventIndex := -1
	for i, e := range seg.Events {
		hashes = append(hashes, merkle.LeafHash(e.Payload))
		if e.Position == issued.Position {
			eventIndex = i
		}
	}
	if eventIndex < 0 {
		apiError(w, http.StatusInternalServerError, "segment %d does not hold the event at %d", index, issued.Position)
		return
	}
	eventPath, err := merkle.InclusionProof(uint64(eventIndex), hashes)
	if err != nil {
		apiError(w, http.StatusInternalServerError, "%v", err)
		return
	}
	logPath, err := a.Log.InclusionProof(ctx, index, cp.Size)
	if err != nil {
		apiError(w, http.StatusServiceUnavailable, "inclusion proof of segment %d: %v", index, err)
		return
	}
	seg.Events = nil
	writeJSON(w, logwire.Proof{
		Serial:     serial,
		Event:      wireEvent(*issued),
		Segment:    seg,
		EventIndex: uint64(eventIndex),
		EventPath:  logwire.EncodeHashes(eventPath),
		LogPath:    logwire.EncodeHashes(logPath),
		Checkpoint: string(signed),
	})
}

func (a *LogAPI) consistency(w http.ResponseWriter, r *http.Request) {
	from, err1 := uintParam(r, "from", 0)
	to, err2 := uintParam(r, "to", 0)
	if err := errors.Join(err1, err2); err != nil || to < from {
		apiError(w, http.StatusBadRequest, "want 0 ≤ from ≤ to: %v", err)
		return
	}
	_, cp, err := a.latest(r.Context())
	if err != nil {
		apiError(w, http.StatusServiceUnavailable, "%v", err)
		return
	}
	if to > cp.Size {
		apiError(w, http.StatusBadRequest, "to %d is beyond the latest checkpoint's %d leaves", to, cp.Size)
		return
	}
	p, err := a.Log.ConsistencyProof(r.Context(), from, to)
	if err != nil {
		apiError(w, http.StatusServiceUnavailable, "consistency %d→%d: %v", from, to, err)
		return
	}
	writeJSON(w, logwire.Consistency{From: from, To: to, Proof: logwire.EncodeHashes(p)})
}

// inclusion proves a leaf in the tree of size leaves: what ties a
// LogSegmentSealed event, which no segment may cover yet, to a checkpoint.
func (a *LogAPI) inclusion(w http.ResponseWriter, r *http.Request) {
	index, err1 := uintParam(r, "index", 0)
	size, err2 := uintParam(r, "size", 0)
	if err := errors.Join(err1, err2); err != nil || index >= size {
		apiError(w, http.StatusBadRequest, "want 0 ≤ index < size: %v", err)
		return
	}
	_, cp, err := a.latest(r.Context())
	if err != nil {
		apiError(w, http.StatusServiceUnavailable, "%v", err)
		return
	}
	if size > cp.Size {
		apiError(w, http.StatusBadRequest, "size %d is beyond the latest checkpoint's %d leaves", size, cp.Size)
		return
	}
	p, err := a.Log.InclusionProof(r.Context(), index, size)
	if err != nil {
		apiError(w, http.StatusServiceUnavailable, "inclusion of leaf %d in %d: %v", index, size, err)
		return
	}
	writeJSON(w, logwire.Inclusion{Index: index, Size: size, Proof: logwire.EncodeHashes(p)})
}

func (a *LogAPI) segment(w http.ResponseWriter, r *http.Request) {
	index, err := strconv.ParseUint(r.PathValue("index"), 10, 64)
	if err != nil {
		apiError(w, http.StatusBadRequest, "segment index must be a number")
		return
	}
	ctx := r.Context()
	size, err := a.Log.Size(ctx)
	if err != nil {
		apiError(w, http.StatusServiceUnavailable, "%v", err)
		return
	}
	if index >= size {
		apiError(w, http.StatusNotFound, "the log has %d segments", size)
		return
	}
	leaf, err := a.leaf(ctx, index)
	if err != nil {
		apiError(w, http.StatusInternalServerError, "%v", err)
		return
	}
	seg, err := a.segmentEvents(ctx, index, leaf)
	if err != nil {
		apiError(w, http.StatusInternalServerError, "%v", err)
		return
	}
	if r.URL.Query().Get("events") == "false" {
		seg.Events = nil
	}
	writeJSON(w, seg)
}

// errNotYet: the event is newer than the latest checkpoint.
var errNotYet = errors.New("not yet in the log")

// segmentOf finds, by binary search over the first size leaves, the
// segment holding position.
func (a *LogAPI) segmentOf(ctx context.Context, position, size uint64) (uint64, translog.SegmentLeaf, error) {
	lo, hi := uint64(0), size
	for lo < hi {
		mid := lo + (hi-lo)/2
		leaf, err := a.leaf(ctx, mid)
		if err != nil {
			return 0, translog.SegmentLeaf{}, err
		}
		switch {
		case position < leaf.First:
			hi = mid
		case position > leaf.Last:
			lo = mid + 1
		default:
			return mid, leaf, nil
		}
	}
	return 0, translog.SegmentLeaf{}, fmt.Errorf("%w: position %d is after the %d segments of the latest checkpoint", errNotYet, position, size)
}

func (a *LogAPI) leaf(ctx context.Context, index uint64) (translog.SegmentLeaf, error) {
	raw, err := a.Log.Leaf(ctx, index)
	if err != nil {
		return translog.SegmentLeaf{}, fmt.Errorf("leaf %d: %w", index, err)
	}
	leaf, err := translog.ParseSegmentLeaf(raw)
	if err != nil {
		return translog.SegmentLeaf{}, fmt.Errorf("leaf %d: %w", index, err)
	}
	return leaf, nil
}

// segmentEvents reads what the store holds between the leaf's first and
// last position. It serves what it finds: if the store lost or changed an
// event, the auditor's recomputed root says so.
func (a *LogAPI) segmentEvents(ctx context.Context, index uint64, leaf translog.SegmentLeaf) (logwire.Segment, error) {
	evs, err := a.Store.ReadAll(ctx, leaf.First-1, int(leaf.Count))
	if err != nil {
		return logwire.Segment{}, fmt.Errorf("read segment %d: %w", index, err)
	}
	seg := logwire.Segment{Index: index, Leaf: leaf.Marshal(), First: leaf.First, Last: leaf.Last, Count: leaf.Count, Root: leaf.Root[:], Events: []logwire.Event{}}
	for _, e := range evs {
		if e.Position > leaf.Last {
			break
		}
		seg.Events = append(seg.Events, wireEvent(e))
	}
	return seg, nil
}

func (a *LogAPI) latest(ctx context.Context) ([]byte, translog.Checkpoint, error) {
	signed, err := a.Log.Checkpoint(ctx)
	if err != nil {
		return nil, translog.Checkpoint{}, fmt.Errorf("the log is unavailable: %w", err)
	}
	cp, err := translog.ParseSignedCheckpoint(signed)
	if err != nil {
		return nil, translog.Checkpoint{}, err
	}
	return signed, cp, nil
}

func wireEvent(e eventstore.RecordedEvent) logwire.Event {
	return logwire.Event{Position: e.Position, Stream: e.Stream, Revision: e.Revision, ID: e.ID, Type: e.Type, Payload: e.Payload}
}

func uintParam(r *http.Request, name string, def uint64) (uint64, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return def, nil
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s must be a non-negative integer", name)
	}
	return v, nil
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	if err := enc.Encode(v); err != nil {
		// The status is sent; the client sees a truncated body.
		return
	}
}

func apiError(w http.ResponseWriter, status int, format string, args ...any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(logwire.Problem{Error: fmt.Sprintf(format, args...)})
}

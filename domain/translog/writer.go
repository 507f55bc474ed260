package translog

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/chronolog/chronolog/domain/events"
	"github.com/chronolog/chronolog/domain/eventstore"
	"github.com/chronolog/chronolog/domain/latency"
	"github.com/chronolog/chronolog/domain/merkle"
)

// Log is the transparency log the writer commits segment leaves to. The
// contract suite in adapters/translog/translogtest holds every adapter to it.
type Log interface {
	// Append makes leaf the log's leaf number index and returns once it is
	// durably in the log, perhaps not yet under a published checkpoint. The
	// writer appends one leaf at a time, in index order, index being the
	// log's size as it last knew it. An Append whose outcome was lost may be
	// retried: the same leaf already at index is success; another leaf
	// there, or a gap before index, is an error.
	Append(ctx context.Context, index uint64, leaf []byte) error
	// Size is how many leaves are durably in the log.
	Size(ctx context.Context) (uint64, error)
	// Leaf returns the leaf at index, which must be below Size.
	Leaf(ctx context.Context, index uint64) ([]byte, error)
	// Checkpoint returns the latest signed checkpoint (a C2SP signed note).
	// It may lag behind Size.
	Checkpoint(ctx context.Context) ([]byte, error)
	// InclusionProof proves leaf index in the tree of size leaves.
	InclusionProof(ctx context.Context, index, size uint64) ([]merkle.Hash, error)
	// ConsistencyProof proves the tree of size2 leaves extends the one of
	// size1 leaves.
	ConsistencyProof(ctx context.Context, size1, size2 uint64) ([]merkle.Hash, error)
}

// EventStore is what the writer needs of the event store.
type EventStore interface {
	SubscribeAll(ctx context.Context, after uint64) (eventstore.Subscription, error)
	Append(ctx context.Context, stream string, expected eventstore.ExpectedState, evs ...eventstore.EventData) (eventstore.AppendResult, error)
	ReadStream(ctx context.Context, stream string) ([]eventstore.RecordedEvent, error)
}

// Clock tells the time; IDSource draws event ids.
type (
	Clock    interface{ Now() time.Time }
	IDSource interface{ NewID() string }
	Logger   interface {
		Info(msg string, args ...any)
		Error(msg string, args ...any)
	}
)

// WriterConfig configures the log writer.
type WriterConfig struct {
	// Backend names the log in LogSegmentSealed events: tessera or trillian.
	Backend string
	// MaxEvents cuts a segment at this many events; default 16384.
	MaxEvents int
	// Node is recorded in event metadata.
	Node string
}

// WriterPorts connect the writer to the world.
type WriterPorts struct {
	Store EventStore
	Log   Log
	IDs   IDSource
	Clock Clock
	// Tick paces the writer: at each tick it cuts what is pending, records
	// a new checkpoint, and retries a log that was down.
	Tick   <-chan time.Time
	Logger Logger
}

// Writer commits the event stream to the log, one segment per leaf, and
// records each sealed segment and each new checkpoint as events. It
// resumes from the log itself: the last leaf says which event it covers.
type Writer struct {
	cfg WriterConfig
	p   WriterPorts

	next uint64 // index of the next leaf

	mu     sync.Mutex
	status Status
	// awaiting holds sealed segments whose events no checkpoint covers yet,
	// oldest first, with the time their first event that is not
	// bookkeeping reached the writer.
	awaiting []sealedAt
	lags     latency.Window
}

type sealedAt struct {
	index uint64
	since time.Time
}

// Status is what /healthz and /metrics report of the writer.
type Status struct {
	// LogUp is false while appends to the log fail.
	LogUp     bool
	LastError string
	// Covered is the position of the last event in the log.
	Covered uint64
	// Seen is the position of the last event the writer received.
	Seen uint64
	// Leaves is the log's size as the writer knows it; CheckpointSize the
	// size of the last checkpoint recorded.
	Leaves, CheckpointSize uint64
	// LagP50, LagP99 and LagMax are over the recent segments: from their
	// first event that is not the writer's own bookkeeping reaching the
	// writer to a recorded checkpoint covering it.
	LagP50, LagP99, LagMax time.Duration
	// LagSamples is how many segments those figures are over.
	LagSamples int
}

// NewWriter checks its configuration.
func NewWriter(cfg WriterConfig, p WriterPorts) (*Writer, error) {
	if cfg.Backend == "" {
		return nil, errors.New("translog: writer needs the backend's name")
	}
	if p.Store == nil || p.Log == nil || p.IDs == nil || p.Clock == nil || p.Tick == nil || p.Logger == nil {
		return nil, errors.New("translog: every writer port must be set")
	}
	if cfg.MaxEvents <= 0 {
		cfg.MaxEvents = 16384
	}
	return &Writer{cfg: cfg, p: p, lags: latency.Window{Size: 1024}}, nil
}

// Status returns a snapshot of the writer's state.
func (w *Writer) Status() Status {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.status
	s.LagP50, s.LagP99, s.LagMax, s.LagSamples = w.lags.Stats()
	return s
}

// Run commits events until ctx ends. It returns only ctx's error or a
// failure that retrying cannot mend (the log holds a leaf the writer did
// not write, the event stream is out of order).
func (w *Writer) Run(ctx context.Context) error {
	for {
		err := w.run(ctx)
		if !errors.Is(err, errResync) {
			return err
		}
		w.p.Logger.Info("transparency log writer resumes from the log again", "reason", err)
	}
}

// batchReceiver is a subscription that hands out what it has read in one
// go (the embedded store's does): at tens of thousands of events a second,
// waking the writer once per event costs more than sealing it.
type batchReceiver interface {
	RecvBatch(ctx context.Context, max int) ([]eventstore.RecordedEvent, error)
}

func recvBatch(sub eventstore.Subscription) func(context.Context) ([]eventstore.RecordedEvent, error) {
	if b, ok := sub.(batchReceiver); ok {
		return func(ctx context.Context) ([]eventstore.RecordedEvent, error) { return b.RecvBatch(ctx, 1024) }
	}
	return func(ctx context.Context) ([]eventstore.RecordedEvent, error) {
		e, err := sub.Recv(ctx)
		if err != nil {
			return nil, err
		}
		return []eventstore.RecordedEvent{e}, nil
	}
}

// errResync: the log holds a leaf this writer did not know of, which an
// earlier life of it wrote just before a crash; start over from the log.
var errResync = errors.New("translog: the log holds an earlier cut of the next segment")

func (w *Writer) run(parent context.Context) error {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	after, err := w.resume(ctx)
	if err != nil {
		return err
	}
	sub, err := w.p.Store.SubscribeAll(ctx, after)
	if err != nil {
		return fmt.Errorf("translog: subscribe: %w", err)
	}
	defer sub.Close()
	feed := make(chan []eventstore.RecordedEvent, 16)
	feedErr := make(chan error, 1)
	go func() {
		recv := recvBatch(sub)
		for {
			evs, err := recv(ctx)
			if err != nil {
				feedErr <- err
				return
			}
			select {
			case feed <- evs:
			case <-ctx.Done():
				feedErr <- ctx.Err()
				return
			}
		}
	}()
	sealer := NewSealer(w.cfg.MaxEvents, after, bookkeeping...)
	// oldest is when the first pending event that is not bookkeeping
	// reached the writer; zero while none is pending. The lag is the
	// TSA's events': the writer's own bookkeeping waits, uncut, through
	// every idle spell, and timing a segment from it would count the
	// idle time as lag.
	var oldest time.Time
	for {
		select {
		case <-ctx.Done():
			return parent.Err()
		case err := <-feedErr:
			if parent.Err() != nil {
				return parent.Err()
			}
			return fmt.Errorf("translog: event feed: %w", err)
		case evs := <-feed:
			for _, e := range evs {
				if oldest.IsZero() && !slices.Contains(bookkeeping, e.Type) {
					oldest = w.p.Clock.Now()
				}
				seg, full, err := sealer.Add(Event{Position: e.Position, Type: e.Type, Payload: e.Payload})
				if err != nil {
					return err
				}
				if full {
					if err := w.publish(ctx, seg, oldest); err != nil {
						return err
					}
					oldest = time.Time{}
				}
			}
			w.mu.Lock()
			w.status.Seen = evs[len(evs)-1].Position
			w.mu.Unlock()
		case <-w.p.Tick:
			if seg, ok := sealer.Cut(); ok {
				if err := w.publish(ctx, seg, oldest); err != nil {
					return err
				}
				oldest = time.Time{}
			}
			w.recordCheckpoint(ctx)
		}
	}
}

// bookkeeping are the event types the writer records about its own work:
// alone they never make a segment worth cutting (see Sealer), nor start
// its lag.
var bookkeeping = []string{events.TypeLogSegmentSealed, events.TypeLogCheckpointSigned}

// resume finds where the log stops, records any sealed segment whose
// event was lost in a crash, and returns the position after which the
// stream is not yet in the log.
func (w *Writer) resume(ctx context.Context) (uint64, error) {
	var size uint64
	if err := w.retry(ctx, "read the log's size", func() (err error) {
		size, err = w.p.Log.Size(ctx)
		return err
	}); err != nil {
		return 0, err
	}
	w.next = size
	recorded, err := w.recordedSegments(ctx)
	if err != nil {
		return 0, err
	}
	if recorded > size {
		return 0, fmt.Errorf("%w: the log holds %d leaves but %d sealed segments are on record: it lost leaves",
			ErrConflict, size, recorded)
	}
	for i := recorded; i < size; i++ {
		leaf, err := w.leaf(ctx, i)
		if err != nil {
			return 0, err
		}
		if err := w.recordSegment(ctx, i, leaf); err != nil {
			return 0, err
		}
	}
	var after uint64
	if size > 0 {
		last, err := w.leaf(ctx, size-1)
		if err != nil {
			return 0, err
		}
		after = last.Last
	}
	w.mu.Lock()
	w.status.Leaves, w.status.Covered, w.status.Seen, w.status.LogUp = size, after, after, true
	w.mu.Unlock()
	w.p.Logger.Info("transparency log writer resumes", "leaves", size, "covered", after)
	return after, nil
}

func (w *Writer) leaf(ctx context.Context, i uint64) (SegmentLeaf, error) {
	var raw []byte
	if err := w.retry(ctx, "read a leaf", func() (err error) {
		raw, err = w.p.Log.Leaf(ctx, i)
		return err
	}); err != nil {
		return SegmentLeaf{}, err
	}
	leaf, err := ParseSegmentLeaf(raw)
	if err != nil {
		return SegmentLeaf{}, fmt.Errorf("translog: leaf %d of the log: %w", i, err)
	}
	return leaf, nil
}

// recordedSegments is how many LogSegmentSealed events exist: the
// segments stream's next revision.
func (w *Writer) recordedSegments(ctx context.Context) (uint64, error) {
	evs, err := w.p.Store.ReadStream(ctx, events.LogSegmentsStream)
	if errors.Is(err, eventstore.ErrStreamNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("translog: read %s: %w", events.LogSegmentsStream, err)
	}
	return evs[len(evs)-1].Revision + 1, nil
}

// publish appends seg's leaf, retrying while the log is down, and records
// it. oldest is when its first event that is not bookkeeping reached the
// writer; zero for a segment of bookkeeping alone (cut by size), which
// then gives no lag sample.
func (w *Writer) publish(ctx context.Context, seg Segment, oldest time.Time) error {
	index, leaf := w.next, seg.Leaf.Marshal()
	if err := w.retry(ctx, "append a segment", func() error { return w.p.Log.Append(ctx, index, leaf) }); err != nil {
		if errors.Is(err, ErrConflict) && w.earlierCut(ctx, index, seg.Leaf) {
			return fmt.Errorf("%w: leaf %d", errResync, index)
		}
		return err
	}
	w.next++
	w.mu.Lock()
	w.status.Leaves, w.status.Covered = w.next, seg.Leaf.Last
	w.awaiting = append(w.awaiting, sealedAt{index: index, since: oldest})
	w.mu.Unlock()
	return w.recordSegment(ctx, index, seg.Leaf)
}

// earlierCut reports whether the log's leaf at index is a segment starting
// where seg starts: one an earlier life of this writer appended, cut at
// another moment, which the log had not integrated when that life ended
// (Trillian keeps queued leaves out of its size). Adopting it is safe: the
// writer re-reads it, checks nothing is missing before it, and goes on
// after its last event.
func (w *Writer) earlierCut(ctx context.Context, index uint64, seg SegmentLeaf) bool {
	raw, err := w.p.Log.Leaf(ctx, index)
	if err != nil {
		return false
	}
	leaf, err := ParseSegmentLeaf(raw)
	return err == nil && leaf.First == seg.First
}

func (w *Writer) recordSegment(ctx context.Context, index uint64, leaf SegmentLeaf) error {
	expected := eventstore.NoStream
	if index > 0 {
		expected = eventstore.AtRevision(index - 1)
	}
	lh := leaf.Hash()
	e := events.LogSegmentSealed{
		Index: index, First: leaf.First, Last: leaf.Last, Count: leaf.Count,
		Root: hex.EncodeToString(leaf.Root[:]), LeafHash: hex.EncodeToString(lh[:]), Log: w.cfg.Backend,
	}
	return w.retry(ctx, "record a sealed segment", func() error {
		return w.record(ctx, events.LogSegmentsStream, expected, e)
	})
}

// recordCheckpoint records the log's latest checkpoint when it grew.
func (w *Writer) recordCheckpoint(ctx context.Context) {
	signed, err := w.p.Log.Checkpoint(ctx)
	if err != nil {
		w.down(err)
		return
	}
	if w.up() {
		w.p.Logger.Info("transparency log writer recovered", "op", "read the checkpoint")
	}
	cp, err := ParseSignedCheckpoint(signed)
	if err != nil {
		w.p.Logger.Error("the log published a checkpoint that does not parse", "err", err)
		return
	}
	w.mu.Lock()
	known := w.status.CheckpointSize
	w.mu.Unlock()
	if cp.Size <= known {
		return
	}
	e := events.LogCheckpointSigned{Origin: cp.Origin, Size: cp.Size, Root: hex.EncodeToString(cp.Root[:]), Note: string(signed)}
	if err := w.record(ctx, events.LogCheckpointsStream, eventstore.Any, e); err != nil {
		w.p.Logger.Error("checkpoint not recorded", "size", cp.Size, "err", err)
		return
	}
	now := w.p.Clock.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	w.status.CheckpointSize = cp.Size
	for len(w.awaiting) > 0 && w.awaiting[0].index < cp.Size {
		if since := w.awaiting[0].since; !since.IsZero() {
			w.lags.Add(now.Sub(since))
		}
		w.awaiting = w.awaiting[1:]
	}
}

func (w *Writer) record(ctx context.Context, stream string, expected eventstore.ExpectedState, e events.Event) error {
	rec := events.Recorder{Store: w.p.Store, Clock: w.p.Clock, IDs: w.p.IDs, Meta: events.Metadata{Node: w.cfg.Node, Service: "translog"}}
	_, err := rec.Record(ctx, stream, expected, e)
	if errors.Is(err, eventstore.ErrWrongExpectedState) && stream == events.LogSegmentsStream {
		// Recorded already, before a crash lost our knowledge of it.
		return nil
	}
	return err
}

// retry runs f until it succeeds, at each tick, while ctx lasts. The
// issuing side never waits for the log: events are durable in the store
// and the writer catches up when the log is back.
func (w *Writer) retry(ctx context.Context, what string, f func() error) error {
	failing := false
	for {
		err := f()
		if err == nil {
			if w.up() || failing {
				w.p.Logger.Info("transparency log writer recovered", "op", what)
			}
			return nil
		}
		if errors.Is(err, ErrConflict) {
			return err
		}
		if ctx.Err() != nil {
			// Stopping, not failing: the step is taken again at the
			// next start.
			return ctx.Err()
		}
		if !failing {
			w.p.Logger.Error("transparency log writer cannot "+what+"; retrying", "err", err)
			failing = true
		}
		w.down(err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-w.p.Tick:
		}
	}
}

// up marks the log up; it reports whether it was down.
func (w *Writer) up() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	wasDown := !w.status.LogUp
	w.status.LogUp, w.status.LastError = true, ""
	return wasDown
}

func (w *Writer) down(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.status.LogUp, w.status.LastError = false, err.Error()
}

// SameLeaf checks that the leaf a log holds at index is leaf: what an
// adapter's Append does when it finds the index taken (a retry is success,
// anything else a conflict).
func SameLeaf(ctx context.Context, l interface {
	Leaf(context.Context, uint64) ([]byte, error)
}, index uint64, leaf []byte) error {
	got, err := l.Leaf(ctx, index)
	if err != nil {
		return err
	}
	if !bytes.Equal(got, leaf) {
		return fmt.Errorf("%w: leaf %d holds other bytes", ErrConflict, index)
	}
	return nil
}

// ErrConflict is wrapped by Log.Append when the log holds another leaf at
// the index, or is shorter than it: retrying cannot mend that.
var ErrConflict = errors.New("translog: the log disagrees with the writer")

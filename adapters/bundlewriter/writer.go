// Package bundlewriter writes compliance bundles (domain/bundle) into a
// directory: the events of a time range as an event store holds them,
// read only; the tokens issued then; the transparency log's checkpoint and
// proofs, asked of its auditor API; the manifest, timestamped by the TSA.
// The store, the log and the TSA are ports, wired by tsactl; the one real
// system this package touches is the bundle's directory.
package bundlewriter

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/chronolog/chronolog/domain/bundle"
	"github.com/chronolog/chronolog/domain/events"
	"github.com/chronolog/chronolog/domain/eventstore"
	"github.com/chronolog/chronolog/domain/logwire"
	"github.com/chronolog/chronolog/domain/merkle"
	"github.com/chronolog/chronolog/domain/translog"
)

// Store is the event store, read only: the writer never appends.
type Store interface {
	// Head is the position of the last event committed.
	Head() uint64
	ReadAll(ctx context.Context, after uint64, max int) ([]eventstore.RecordedEvent, error)
	ReadStream(ctx context.Context, stream string) ([]eventstore.RecordedEvent, error)
}

// Log is the transparency log's auditor API (/log/v1/).
type Log interface {
	Checkpoint(ctx context.Context) ([]byte, error)
	Segment(ctx context.Context, index uint64, withEvents bool) (logwire.Segment, error)
	Inclusion(ctx context.Context, index, size uint64) ([]merkle.Hash, error)
	Consistency(ctx context.Context, from, to uint64) ([]merkle.Hash, error)
	// WaitProof returns a token's inclusion proof, waiting up to wait for
	// a checkpoint to cover it.
	WaitProof(ctx context.Context, serial string, wait time.Duration) (logwire.Proof, error)
}

// TSA answers a DER TimeStampReq with its DER TimeStampResp.
type TSA interface {
	Timestamp(ctx context.Context, query []byte) ([]byte, error)
}

// Config is one export.
type Config struct {
	// Out is the bundle directory: created, or existing and empty.
	Out string
	// From and To bound the window of recordedAt, [From, To).
	From, To time.Time
	// Wait bounds the wait for a checkpoint covering the range.
	Wait time.Duration
	// TSAName is how the manifest names the TSA (its URL).
	TSAName string
	// Notes, if set, is told when the export waits for the log.
	Notes io.Writer
}

// ErrNoEvents is returned when no event was recorded in the window.
var ErrNoEvents = errors.New("no event was recorded in the window")

// Summary is what an export found and wrote.
type Summary struct {
	// First and Last bound the range's positions; Events is how many
	// events it holds, Outside how many of those were recorded outside the
	// window (kept for contiguity).
	First, Last     uint64
	Events, Outside int
	// Serials are the tokens issued in the range, in order; RFC3161 and
	// Authenticode count them by kind.
	Serials               []string
	RFC3161, Authenticode int
	// Clock counts the range's clock events; Keys and Config the key and
	// configuration events up to Last.
	Clock, Keys, Config int
	// LastSubstantive is the range's last event that is not the log's
	// bookkeeping; Tail the bookkeeping after it, which no checkpoint need
	// cover: it is checked against the log itself.
	LastSubstantive uint64
	Tail            bundle.Tail
	// Checkpoint is log/checkpoint, Covered the last position under it.
	Checkpoint translog.Checkpoint
	Covered    uint64
	// AgainstFinal is how many proofs lead to Checkpoint itself;
	// Consistency how many consistency proofs tie older ones to it.
	AgainstFinal, Consistency int
	// Files is how many files the manifest lists; StampSerial and
	// StampGenTime say what manifest.tsr is.
	Files                     int
	StampSerial, StampGenTime string
}

// Write exports cfg's window from st into a fresh bundle, with the log's
// evidence from lg and the manifest timestamped by tsa. A failed export
// leaves no half bundle behind.
func Write(ctx context.Context, cfg Config, st Store, lg Log, tsa TSA) (sum *Summary, err error) {
	if entries, err := os.ReadDir(cfg.Out); err == nil && len(entries) > 0 {
		return nil, fmt.Errorf("%s is not empty: export writes a fresh bundle", cfg.Out)
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	// The store as it is now: events committed while the export runs are
	// not looked at.
	first, last, err := findRange(ctx, st, cfg.From, cfg.To, st.Head())
	if err != nil {
		return nil, err
	}
	if first == 0 {
		return nil, ErrNoEvents
	}

	_, statErr := os.Stat(cfg.Out)
	created := errors.Is(statErr, os.ErrNotExist)
	if err := os.MkdirAll(cfg.Out, 0o755); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			removeContents(cfg.Out, created)
		}
	}()
	for _, d := range []string{bundle.TokensDir, bundle.ProofsDir} {
		if err := os.MkdirAll(filepath.Join(cfg.Out, filepath.FromSlash(d)), 0o755); err != nil {
			return nil, err
		}
	}
	sum = &Summary{First: first, Last: last}
	if err := writeEvents(ctx, st, cfg, sum); err != nil {
		return nil, err
	}
	if sum.Keys, err = writeStream(ctx, st, events.KeyStream, last, filepath.Join(cfg.Out, bundle.KeysFile)); err != nil {
		return nil, err
	}
	if sum.Config, err = writeStream(ctx, st, events.ConfigStream, last, filepath.Join(cfg.Out, bundle.ConfigFile)); err != nil {
		return nil, err
	}
	if err := writeLog(ctx, lg, cfg, sum); err != nil {
		return nil, err
	}
	if err := writeManifest(ctx, tsa, cfg, sum); err != nil {
		return nil, err
	}
	return sum, nil
}

// removeContents empties a bundle directory a failed export wrote, and
// removes it if the export created it.
func removeContents(dir string, created bool) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		os.RemoveAll(filepath.Join(dir, e.Name()))
	}
	if created {
		os.Remove(dir)
	}
}

// findRange finds the first and the last position, up to head, of the
// events recorded in [from, to). Every event is looked at: recordedAt
// follows commit order only roughly.
func findRange(ctx context.Context, st Store, from, to time.Time, head uint64) (first, last uint64, err error) {
	var after uint64
	for after < head {
		recs, err := st.ReadAll(ctx, after, 4096)
		if err != nil {
			return 0, 0, err
		}
		if len(recs) == 0 {
			break
		}
		for _, r := range recs {
			if r.Position > head {
				return first, last, nil
			}
			after = r.Position
			t, err := recordedAt(r.Payload)
			if err != nil {
				return 0, 0, fmt.Errorf("event at position %d: %w", r.Position, err)
			}
			if !t.Before(from) && t.Before(to) {
				if first == 0 {
					first = r.Position
				}
				last = r.Position
			}
		}
	}
	return first, last, nil
}

var errFound = errors.New("found")

// recordedAt reads an envelope's recordedAt without decoding the rest.
func recordedAt(payload []byte) (time.Time, error) {
	var t time.Time
	var terr error
	err := events.ScanObject(payload, func(key string, value []byte) error {
		if key != "recordedAt" {
			return nil
		}
		t, terr = events.Time(value)
		return errFound
	})
	switch {
	case errors.Is(err, errFound) && terr == nil:
		return t, nil
	case terr != nil:
		return t, fmt.Errorf("recordedAt: %w", terr)
	case err != nil:
		return t, err
	}
	return t, errors.New("the envelope has no recordedAt")
}

// writeEvents writes events.jsonl, clock.jsonl and the token files.
func writeEvents(ctx context.Context, st Store, cfg Config, sum *Summary) error {
	evFile, err := os.Create(filepath.Join(cfg.Out, bundle.EventsFile))
	if err != nil {
		return err
	}
	defer evFile.Close()
	clockFile, err := os.Create(filepath.Join(cfg.Out, bundle.ClockFile))
	if err != nil {
		return err
	}
	defer clockFile.Close()
	evw, clockw := bufio.NewWriterSize(evFile, 1<<20), bufio.NewWriter(clockFile)
	var line []byte
	after := sum.First - 1
	for after < sum.Last {
		recs, err := st.ReadAll(ctx, after, 4096)
		if err != nil {
			return err
		}
		if len(recs) == 0 {
			return fmt.Errorf("the store ends at position %d, before %d", after, sum.Last)
		}
		// Nothing after the range's end; last being an event's position,
		// after reaches it.
		for len(recs) > 0 && recs[len(recs)-1].Position > sum.Last {
			recs = recs[:len(recs)-1]
		}
		if len(recs) == 0 {
			return fmt.Errorf("the store holds no event at position %d", sum.Last)
		}
		for _, r := range recs {
			after = r.Position
			if err := bundle.CheckPayload(r.Payload); err != nil {
				return fmt.Errorf("event at position %d cannot be exported: %w", r.Position, err)
			}
			if t, err := recordedAt(r.Payload); err != nil {
				return fmt.Errorf("event at position %d: %w", r.Position, err)
			} else if t.Before(cfg.From) || !t.Before(cfg.To) {
				sum.Outside++
			}
			line = bundle.AppendLine(line[:0], r.Position, r.Revision, r.Payload)
			if _, err := evw.Write(line); err != nil {
				return err
			}
			sum.Events++
			if !bundle.Bookkeeping(r.Type) {
				sum.LastSubstantive = r.Position
			}
			if err := sum.Tail.Add(r.Position, r.Type, r.Payload); err != nil {
				return fmt.Errorf("event at position %d: %w", r.Position, err)
			}
			if r.Stream == events.ClockStream {
				if _, err := clockw.Write(line); err != nil {
					return err
				}
				sum.Clock++
			}
			if r.Type == events.TypeTimestampIssued {
				if err := writeToken(cfg.Out, r, sum); err != nil {
					return err
				}
			}
		}
	}
	for _, c := range []struct {
		w *bufio.Writer
		f *os.File
	}{{evw, evFile}, {clockw, clockFile}} {
		if err := c.w.Flush(); err != nil {
			return err
		}
		if err := c.f.Close(); err != nil {
			return err
		}
	}
	return nil
}

// writeToken writes a TimestampIssued event's token file.
func writeToken(out string, r eventstore.RecordedEvent, sum *Summary) error {
	env, e, err := events.Decode(r.Payload)
	if err != nil {
		return fmt.Errorf("event at position %d: %w", r.Position, err)
	}
	ti, ok := e.(*events.TimestampIssued)
	if !ok {
		return fmt.Errorf("event at position %d: a %s that decodes as %T", r.Position, env.Type, e)
	}
	if !bundle.IsSerial(ti.Serial) || r.Stream != events.RequestStream(ti.Serial) {
		return fmt.Errorf("event at position %d: serial %q in stream %s", r.Position, ti.Serial, r.Stream)
	}
	name, body, err := bundle.TokenFile(ti)
	if err != nil {
		return fmt.Errorf("event at position %d: %w", r.Position, err)
	}
	if ti.Protocol == events.ProtocolAuthenticode {
		sum.Authenticode++
	} else {
		sum.RFC3161++
	}
	f, err := os.OpenFile(filepath.Join(out, filepath.FromSlash(name)), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("event at position %d: %w", r.Position, err)
	}
	if _, err := f.Write(body); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	sum.Serials = append(sum.Serials, ti.Serial)
	return nil
}

// writeStream writes a whole stream, up to position upTo, to path.
func writeStream(ctx context.Context, st Store, stream string, upTo uint64, path string) (int, error) {
	evs, err := st.ReadStream(ctx, stream)
	if err != nil && !errors.Is(err, eventstore.ErrStreamNotFound) {
		return 0, err
	}
	var b []byte
	n := 0
	for _, e := range evs {
		if e.Position > upTo {
			break
		}
		if err := bundle.CheckPayload(e.Payload); err != nil {
			return 0, fmt.Errorf("event at position %d cannot be exported: %w", e.Position, err)
		}
		b = bundle.AppendLine(b, e.Position, e.Revision, e.Payload)
		n++
	}
	return n, os.WriteFile(path, b, 0o644)
}

// writeFile writes one file of the bundle, by its slash path, creating
// its directory.
func writeFile(out, name string, data []byte) error {
	p := filepath.Join(out, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return os.WriteFile(p, data, 0o644)
}

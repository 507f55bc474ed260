package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/chronolog/chronolog/adapters/eventstore/sqlite"
	"github.com/chronolog/chronolog/adapters/logclient"
	"github.com/chronolog/chronolog/adapters/logwire"
	"github.com/chronolog/chronolog/domain/events"
	"github.com/chronolog/chronolog/domain/eventstore"
	"github.com/chronolog/chronolog/domain/rfc3161"
	"github.com/chronolog/chronolog/domain/translog"
)

const exportUsage = `usage: tsactl export --data DIR --url TSA_URL --from T1 --to T2 --out BUNDLE_DIR [flags]
       tsactl export verify BUNDLE_DIR --ca CA.pem --log-key KEY

export writes a compliance bundle: the events the TSA recorded in [T1, T2)
(DATA/events.db, read only), the tokens issued then, the clock's record,
the key and configuration history in force, the transparency log's
checkpoint and each token's inclusion proof, and manifest.json listing
every file with its SHA-256, timestamped by the TSA itself (manifest.tsr).

export verify checks a bundle offline, against the relying party's own
trust anchors: the TSA's CA (--ca) and the log's verifier key (--log-key),
neither taken from the bundle.

Bundle layout (format chronolog-export/1):
  events.jsonl            one line per event: {"position":N,"revision":R,"payload":EVENT},
                          EVENT being the stored envelope byte for byte
  clock.jsonl             the range's events of stream tsa-clock, same lines
  keys.jsonl config.jsonl the whole tsa-keys and tsa-config streams up to the range's end
  tokens/SERIAL.tsr       each RFC 3161 token issued, as a granted TimeStampResp (DER)
  tokens/SERIAL.p7        each Authenticode countersignature (PKCS#7 DER)
  log/checkpoint          the log's signed checkpoint, covering the range up to its last
                          event that is not the log's own bookkeeping (see below)
  log/proofs/SERIAL.json  each token's inclusion proof, as the server's /log/v1/proof serves it
  log/segments/I.json     each segment sealed in the trailing bookkeeping:
                          {"index":I,"leaf":LEAF,"size":N,"logPath":[...]}, the log's leaf I
                          (base64) and its inclusion proof in log/checkpoint's tree (size N)
  log/consistency/A-B.json  when a proof was made against an older checkpoint (size A), or
                          the trailing bookkeeping records one: the proof that
                          log/checkpoint (size B) extends it
  manifest.json manifest.tsr

The trailing bookkeeping: the log records its own work as events
(LogSegmentSealed, LogCheckpointSigned) and seals those only with the next
request, so on an idle TSA no checkpoint covers the range's last events.
Those after the range's last other event are covered differently: each
seal's fields must match the log's leaf it names, proven under
log/checkpoint; each checkpoint's note must verify with the log key and be
log/checkpoint or proven extended by it. export verify checks exactly that.

Run 'tsactl export -h' or 'tsactl export verify -h' for the flags.
`

func runExport(args []string) error {
	run, name := runExportCreate, "export"
	if len(args) > 0 {
		switch args[0] {
		case "verify":
			run, name, args = runExportVerify, "export verify", args[1:]
		case "help":
			fmt.Print(exportUsage)
			return nil
		}
	}
	err := run(args)
	if errors.Is(err, flag.ErrHelp) {
		return nil // -h: the flags were printed
	}
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// exportOptions are the export's flags, checked.
type exportOptions struct {
	data, tsaURL, logURL, out, bearer string
	from, to                          time.Time
	wait                              time.Duration
}

func runExportCreate(args []string) error {
	fs := flag.NewFlagSet("tsactl export", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), exportUsage+"\nflags of export:\n")
		fs.PrintDefaults()
	}
	data := fs.String("data", "data", "the server's data directory: its events.db is read, never written")
	tsaURL := fs.String("url", "", "the TSA's URL (e.g. http://127.0.0.1:3180/tsa): it timestamps manifest.json (required)")
	logURL := fs.String("log-url", "", "the server's base URL, the log's API being under /log/v1/ (default: --url's scheme://host)")
	from := fs.String("from", "", "start of the window, included: an RFC 3339 time, or a date YYYY-MM-DD (00:00 UTC) (required)")
	to := fs.String("to", "", "end of the window, excluded, not in the future: same forms (required)")
	out := fs.String("out", "", "the bundle directory to create; if it exists it must be empty (required)")
	wait := fs.Duration("wait", 10*time.Second, "how long to wait for a log checkpoint covering the range's last event")
	bearerEnv := fs.String("bearer-env", "", "send the API key held in this environment variable (Authorization: Bearer) when timestamping the manifest")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("unexpected argument %q (export verify takes the bundle: tsactl export verify BUNDLE_DIR)", fs.Arg(0))
	}
	if *tsaURL == "" || *from == "" || *to == "" || *out == "" {
		return errors.New("--url, --from, --to and --out are required")
	}
	o := exportOptions{data: *data, tsaURL: *tsaURL, logURL: *logURL, out: *out, wait: *wait}
	var err error
	if o.from, err = parseExportTime(*from); err != nil {
		return fmt.Errorf("--from: %w", err)
	}
	if o.to, err = parseExportTime(*to); err != nil {
		return fmt.Errorf("--to: %w", err)
	}
	if !o.from.Before(o.to) {
		return fmt.Errorf("--from %s is not before --to %s", fmtTime(o.from), fmtTime(o.to))
	}
	if now := time.Now(); o.to.After(now) {
		return fmt.Errorf("--to %s is in the future: export a period that is over", fmtTime(o.to))
	}
	if o.logURL == "" {
		u, err := url.Parse(o.tsaURL)
		if err != nil || u.Scheme == "" || u.Host == "" {
			return fmt.Errorf("--url %q is not an absolute URL", o.tsaURL)
		}
		o.logURL = u.Scheme + "://" + u.Host
	}
	if *bearerEnv != "" {
		if o.bearer = os.Getenv(*bearerEnv); o.bearer == "" {
			return fmt.Errorf("--bearer-env %s: the variable is empty or unset", *bearerEnv)
		}
	}
	return exportBundle(context.Background(), o)
}

// parseExportTime reads an RFC 3339 time or a date (midnight UTC).
func parseExportTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time nor a date YYYY-MM-DD", s)
}

func fmtTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// exportSummary is what the export found and wrote.
type exportSummary struct {
	first, last     uint64
	events, outside int
	rfc3161, authc  int
	clock, keys     int
	config          int
	serials         []string
	lastSubstantive uint64 // the range's last event that is not log bookkeeping
	// tail is the log's bookkeeping after lastSubstantive, which no
	// checkpoint need cover: it is checked against the log itself.
	tail bookkeepingTail
}

func exportBundle(ctx context.Context, o exportOptions) (err error) {
	// A fresh bundle directory: created here, or existing and empty.
	if entries, err := os.ReadDir(o.out); err == nil && len(entries) > 0 {
		return fmt.Errorf("%s is not empty: export writes a fresh bundle", o.out)
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	dbPath := filepath.Join(o.data, "events.db")
	if _, err := os.Stat(dbPath); err != nil {
		return fmt.Errorf("no event store in %s: %w", o.data, err)
	}
	st, err := sqlite.New(ctx, sqlite.Config{Path: dbPath, ReadOnly: true})
	if err != nil {
		return fmt.Errorf("open the event store: %w", err)
	}
	defer st.Close()
	// The store as it is now: events committed while the export runs are
	// not looked at.
	head := st.Head()
	first, last, err := exportRange(ctx, st, o.from, o.to, head)
	if err != nil {
		return err
	}
	if first == 0 {
		return fmt.Errorf("no event in %s was recorded in [%s, %s)", dbPath, fmtTime(o.from), fmtTime(o.to))
	}

	_, statErr := os.Stat(o.out)
	created := errors.Is(statErr, os.ErrNotExist)
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	// A failed export leaves no half bundle behind.
	defer func() {
		if err != nil {
			removeBundleContents(o.out, created)
		}
	}()
	for _, d := range []string{"tokens", "log/proofs"} {
		if err := os.MkdirAll(filepath.Join(o.out, d), 0o755); err != nil {
			return err
		}
	}
	sum, err := exportEvents(ctx, st, o, first, last)
	if err != nil {
		return err
	}
	if sum.keys, err = exportStream(ctx, st, events.KeyStream, last, filepath.Join(o.out, "keys.jsonl")); err != nil {
		return err
	}
	if sum.config, err = exportStream(ctx, st, events.ConfigStream, last, filepath.Join(o.out, "config.jsonl")); err != nil {
		return err
	}

	client := logclient.New(o.logURL, nil)
	lg, err := exportLog(ctx, client, o, sum)
	if err != nil {
		return err
	}

	m := &exportManifest{
		Format: exportFormat, From: o.from, To: o.to,
		FirstPosition: first, LastPosition: last,
		Events: sum.events, Tokens: len(sum.serials),
		CreatedAt: time.Now().UTC(), TSA: o.tsaURL, LogOrigin: lg.checkpoint.Origin,
	}
	raw, err := writeManifest(o.out, m)
	if err != nil {
		return err
	}
	stamp, err := timestampManifest(o.tsaURL, o.bearer, raw)
	if err != nil {
		return fmt.Errorf("timestamp manifest.json: %w", err)
	}
	if err := os.WriteFile(filepath.Join(o.out, exportManifestTSR), stamp.reply, 0o644); err != nil {
		return err
	}

	fmt.Printf("window:     [%s, %s)\n", fmtTime(o.from), fmtTime(o.to))
	fmt.Printf("positions:  %d–%d, %d events", first, last, sum.events)
	if sum.outside > 0 {
		fmt.Printf(" (%d of them recorded outside the window, kept for contiguity)", sum.outside)
	}
	fmt.Println()
	fmt.Printf("tokens:     %d (%d RFC 3161, %d Authenticode), each with its inclusion proof\n", len(sum.serials), sum.rfc3161, sum.authc)
	fmt.Printf("streams:    %d clock events in the range; %d key and %d configuration events up to position %d\n", sum.clock, sum.keys, sum.config, last)
	fmt.Printf("log:        checkpoint origin %s, size %d, covering events up to position %d\n", lg.checkpoint.Origin, lg.checkpoint.Size, lg.covered)
	if len(sum.tail) > 0 {
		fmt.Printf("bookkeeping: %s, the log's own records after the range's last other event, each with its evidence: %s, %s\n",
			sum.tail.positions(), plural(lg.tailSegments, "segment seal"), plural(len(sum.tail)-lg.tailSegments, "checkpoint"))
	}
	switch older := len(sum.serials) - lg.againstFinal; {
	case len(sum.serials) == 0:
		fmt.Println("proofs:     none (no token in the range)")
	case older == 0:
		fmt.Printf("proofs:     %d, all against that checkpoint\n", len(sum.serials))
	default:
		fmt.Printf("proofs:     %d, %d against that checkpoint, %d against older ones with %d consistency proofs to it\n",
			len(sum.serials), lg.againstFinal, older, lg.consistency)
	}
	fmt.Printf("manifest:   %d files, timestamped by %s: serial %s, genTime %s\n", len(m.Files), o.tsaURL, stamp.serial, stamp.genTime)
	fmt.Printf("bundle:     %s\n", o.out)
	return nil
}

// removeBundleContents empties a bundle directory a failed export wrote,
// and removes it if the export created it.
func removeBundleContents(dir string, created bool) {
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

// exportRange finds the first and the last position, up to head, of the
// events recorded in [from, to). Every event is looked at: recordedAt
// follows commit order only roughly.
func exportRange(ctx context.Context, st *sqlite.Store, from, to time.Time, head uint64) (first, last uint64, err error) {
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

// bookkeeping are the log writer's own events, which it seals only with
// the next event that is not one of them (export_tail.go).
func bookkeeping(eventType string) bool {
	return eventType == events.TypeLogSegmentSealed || eventType == events.TypeLogCheckpointSigned
}

// exportEvents writes events.jsonl, clock.jsonl and the token files.
func exportEvents(ctx context.Context, st *sqlite.Store, o exportOptions, first, last uint64) (*exportSummary, error) {
	sum := &exportSummary{first: first, last: last}
	evFile, err := os.Create(filepath.Join(o.out, "events.jsonl"))
	if err != nil {
		return nil, err
	}
	defer evFile.Close()
	clockFile, err := os.Create(filepath.Join(o.out, "clock.jsonl"))
	if err != nil {
		return nil, err
	}
	defer clockFile.Close()
	evw, clockw := bufio.NewWriterSize(evFile, 1<<20), bufio.NewWriter(clockFile)
	var line []byte
	after := first - 1
	for after < last {
		recs, err := st.ReadAll(ctx, after, 4096)
		if err != nil {
			return nil, err
		}
		if len(recs) == 0 {
			return nil, fmt.Errorf("the store ends at position %d, before %d", after, last)
		}
		// Nothing after the range's end; last being an event's position,
		// after reaches it.
		for len(recs) > 0 && recs[len(recs)-1].Position > last {
			recs = recs[:len(recs)-1]
		}
		if len(recs) == 0 {
			return nil, fmt.Errorf("the store holds no event at position %d", last)
		}
		for _, r := range recs {
			after = r.Position
			if err := checkStoredPayload(r.Payload); err != nil {
				return nil, fmt.Errorf("event at position %d cannot be exported: %w", r.Position, err)
			}
			if t, err := recordedAt(r.Payload); err != nil {
				return nil, fmt.Errorf("event at position %d: %w", r.Position, err)
			} else if t.Before(o.from) || !t.Before(o.to) {
				sum.outside++
			}
			line = appendExportLine(line[:0], r.Position, r.Revision, r.Payload)
			if _, err := evw.Write(line); err != nil {
				return nil, err
			}
			sum.events++
			if !bookkeeping(r.Type) {
				sum.lastSubstantive = r.Position
			}
			if err := sum.tail.add(r.Position, r.Type, r.Payload); err != nil {
				return nil, fmt.Errorf("event at position %d: %w", r.Position, err)
			}
			if r.Stream == events.ClockStream {
				if _, err := clockw.Write(line); err != nil {
					return nil, err
				}
				sum.clock++
			}
			if r.Type == events.TypeTimestampIssued {
				if err := exportToken(o.out, r, sum); err != nil {
					return nil, err
				}
			}
		}
	}
	for _, c := range []struct {
		w *bufio.Writer
		f *os.File
	}{{evw, evFile}, {clockw, clockFile}} {
		if err := c.w.Flush(); err != nil {
			return nil, err
		}
		if err := c.f.Close(); err != nil {
			return nil, err
		}
	}
	return sum, nil
}

// exportToken writes a TimestampIssued event's token file.
func exportToken(out string, r eventstore.RecordedEvent, sum *exportSummary) error {
	env, e, err := events.Decode(r.Payload)
	if err != nil {
		return fmt.Errorf("event at position %d: %w", r.Position, err)
	}
	ti, ok := e.(*events.TimestampIssued)
	if !ok {
		return fmt.Errorf("event at position %d: a %s that decodes as %T", r.Position, env.Type, e)
	}
	if !isSerialHex(ti.Serial) || r.Stream != events.RequestStream(ti.Serial) {
		return fmt.Errorf("event at position %d: serial %q in stream %s", r.Position, ti.Serial, r.Stream)
	}
	var name string
	var body []byte
	switch ti.Protocol {
	case "", "rfc3161":
		name, body = ti.Serial+".tsr", rfc3161.GrantedResponse(ti.Token)
		sum.rfc3161++
	case events.ProtocolAuthenticode:
		name, body = ti.Serial+".p7", ti.Token
		sum.authc++
	default:
		return fmt.Errorf("event at position %d: token of protocol %q", r.Position, ti.Protocol)
	}
	f, err := os.OpenFile(filepath.Join(out, "tokens", name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
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
	sum.serials = append(sum.serials, ti.Serial)
	return nil
}

// isSerialHex: a serial as streams name it, lower-case hex without
// leading zeros (and so a safe file name).
func isSerialHex(s string) bool {
	if s == "" || len(s) > 64 || (len(s) > 1 && s[0] == '0') {
		return false
	}
	return strings.Trim(s, "0123456789abcdef") == ""
}

// exportStream writes a whole stream, up to position upTo, to path.
func exportStream(ctx context.Context, st *sqlite.Store, stream string, upTo uint64, path string) (int, error) {
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
		if err := checkStoredPayload(e.Payload); err != nil {
			return 0, fmt.Errorf("event at position %d cannot be exported: %w", e.Position, err)
		}
		b = appendExportLine(b, e.Position, e.Revision, e.Payload)
		n++
	}
	return n, os.WriteFile(path, b, 0o644)
}

// exportedLog is what the export took from the log.
type exportedLog struct {
	checkpoint translog.Checkpoint
	// covered is the last position under the checkpoint.
	covered uint64
	// againstFinal is how many proofs lead to the checkpoint itself;
	// consistency how many consistency proofs tie older ones to it.
	againstFinal, consistency int
	// tailSegments is how many of the trailing bookkeeping events are
	// sealed segments.
	tailSegments int
}

// exportLog writes log/checkpoint, the proofs and the consistency proofs.
// The API proves a token against its latest checkpoint only, so proofs
// fetched while the log grows lead to different checkpoints: the newest,
// fetched last, is log/checkpoint, and each older one gets the proof that
// log/checkpoint extends it. The checkpoint need cover the range only up
// to its last event that is not the log's bookkeeping; the bookkeeping
// after it gets evidence of its own (exportTail).
func exportLog(ctx context.Context, c *logclient.Client, o exportOptions, sum *exportSummary) (exportedLog, error) {
	var lg exportedLog
	size, sealed := sum.tail.needs()
	_, first, covered, err := exportCheckpoint(ctx, c, exportNeed{position: sum.lastSubstantive, size: size}, o.wait)
	if err != nil {
		var nc *notCoveredError
		if !errors.As(err, &nc) {
			return lg, err
		}
		if nc.covered < sum.lastSubstantive {
			return lg, fmt.Errorf("the log's latest checkpoint (size %d) covers the events up to position %d, the range's last event that is not the log's own bookkeeping is at %d: still not covered after %s (is the log writer up? see tsad's /healthz)",
				nc.size, nc.covered, sum.lastSubstantive, o.wait)
		}
		if sealed.segment != nil {
			return lg, fmt.Errorf("the log's latest checkpoint has %d leaves; the range records, at position %d, the sealing of segment %d: still not under a checkpoint after %s",
				nc.size, sealed.position, sealed.segment.Index, o.wait)
		}
		return lg, fmt.Errorf("the log's latest checkpoint has %d leaves; the range records a checkpoint of %d: still not published after %s", nc.size, size, o.wait)
	}
	proofs := map[uint64]logwire.Proof{} // by the size of the checkpoint it leads to, one each
	sizes := map[string]uint64{}
	for _, serial := range sum.serials {
		p, err := fetchProof(ctx, c, serial, o.wait)
		if err != nil {
			return lg, err
		}
		cp, err := parseSignedCheckpoint([]byte(p.Checkpoint))
		if err != nil {
			return lg, fmt.Errorf("the proof of token %s: %w", serial, err)
		}
		if prev, ok := proofs[cp.Size]; ok && prev.Checkpoint != p.Checkpoint {
			if pc, _ := parseSignedCheckpoint([]byte(prev.Checkpoint)); pc.Root != cp.Root {
				return lg, fmt.Errorf("the server proved tokens against two checkpoints of size %d with different roots", cp.Size)
			}
		}
		proofs[cp.Size] = p
		sizes[serial] = cp.Size
		raw, err := json.Marshal(p)
		if err != nil {
			return lg, err
		}
		if err := os.WriteFile(filepath.Join(o.out, "log", "proofs", serial+".json"), append(raw, '\n'), 0o644); err != nil {
			return lg, err
		}
	}
	// The newest checkpoint, fetched after every proof: it extends them all.
	signed, err := c.Checkpoint(ctx)
	if err != nil {
		return lg, fmt.Errorf("the log's checkpoint: %w", err)
	}
	final, err := parseSignedCheckpoint(signed)
	if err != nil {
		return lg, fmt.Errorf("the log's checkpoint: %w", err)
	}
	if final.Size < first.Size {
		return lg, fmt.Errorf("the log's checkpoint went from size %d back to %d", first.Size, final.Size)
	}
	if err := os.WriteFile(filepath.Join(o.out, "log", "checkpoint"), signed, 0o644); err != nil {
		return lg, err
	}
	// The older checkpoints log/checkpoint must be proven to extend: the
	// tail's, and those the proofs lead to.
	older, err := exportTail(ctx, c, o.out, sum.tail, final)
	if err != nil {
		return lg, err
	}
	for _, b := range sum.tail {
		if b.segment != nil {
			lg.tailSegments++
		}
	}
	for size, p := range proofs {
		switch cp, _ := parseSignedCheckpoint([]byte(p.Checkpoint)); {
		case size > final.Size:
			return lg, fmt.Errorf("a proof leads to a checkpoint of size %d, newer than the latest one, of size %d", size, final.Size)
		case size == final.Size && cp.Root != final.Root:
			return lg, fmt.Errorf("the server served two checkpoints of size %d with different roots", size)
		case size < final.Size:
			older[size] = true
		}
	}
	for _, size := range sortedSizes(older) {
		hashes, err := c.Consistency(ctx, size, final.Size)
		if err != nil {
			return lg, err
		}
		raw, err := json.Marshal(logwire.Consistency{From: size, To: final.Size, Proof: logwire.EncodeHashes(hashes)})
		if err != nil {
			return lg, err
		}
		dir := filepath.Join(o.out, "log", "consistency")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return lg, err
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%d-%d.json", size, final.Size)), append(raw, '\n'), 0o644); err != nil {
			return lg, err
		}
		lg.consistency++
	}
	for _, size := range sizes {
		if size == final.Size {
			lg.againstFinal++
		}
	}
	lg.checkpoint = final
	lg.covered = covered
	if final.Size > first.Size {
		if lg.covered, err = lastCovered(ctx, c, final.Size); err != nil {
			return lg, err
		}
	}
	return lg, nil
}

// notCoveredError: no checkpoint covered the range's end in time.
type notCoveredError struct{ size, covered uint64 }

func (e *notCoveredError) Error() string {
	return fmt.Sprintf("the checkpoint of size %d covers the events up to position %d only", e.size, e.covered)
}

// exportNeed is what the export's checkpoint must hold: the events up to
// position, and at least size leaves.
type exportNeed struct{ position, size uint64 }

// exportCheckpoint waits, up to wait, for a checkpoint meeting need, and
// returns it with the last position it covers.
func exportCheckpoint(ctx context.Context, c *logclient.Client, need exportNeed, wait time.Duration) ([]byte, translog.Checkpoint, uint64, error) {
	deadline := time.Now().Add(wait)
	told := false
	for {
		signed, err := c.Checkpoint(ctx)
		if err != nil {
			return nil, translog.Checkpoint{}, 0, fmt.Errorf("the log's checkpoint: %w", err)
		}
		cp, err := parseSignedCheckpoint(signed)
		if err != nil {
			return nil, cp, 0, fmt.Errorf("the log's checkpoint: %w", err)
		}
		covered, err := lastCovered(ctx, c, cp.Size)
		if err != nil {
			return nil, cp, 0, err
		}
		if covered >= need.position && cp.Size >= need.size {
			return signed, cp, covered, nil
		}
		left := time.Until(deadline)
		if left <= 0 {
			return nil, cp, covered, &notCoveredError{size: cp.Size, covered: covered}
		}
		if !told {
			fmt.Fprintf(os.Stderr, "the log's checkpoint (size %d) covers the events up to position %d, the range's last event other than the log's bookkeeping is at %d; waiting up to %s\n",
				cp.Size, covered, need.position, wait)
			told = true
		}
		select {
		case <-time.After(min(250*time.Millisecond, left)):
		case <-ctx.Done():
			return nil, cp, covered, ctx.Err()
		}
	}
}

// lastCovered is the position of the last event in a log of size leaves:
// the end of its last segment, as the leaf encodes it.
func lastCovered(ctx context.Context, c *logclient.Client, size uint64) (uint64, error) {
	if size == 0 {
		return 0, nil
	}
	seg, err := c.Segment(ctx, size-1, false)
	if err != nil {
		return 0, fmt.Errorf("the log's segment %d: %w", size-1, err)
	}
	leaf, err := translog.ParseSegmentLeaf(seg.Leaf)
	if err != nil {
		return 0, fmt.Errorf("the log's segment %d: %w", size-1, err)
	}
	return leaf.Last, nil
}

// parseSignedCheckpoint reads a signed checkpoint's body without checking
// its signature: the export trusts its server; the verifier checks.
func parseSignedCheckpoint(signed []byte) (translog.Checkpoint, error) {
	s := string(signed)
	i := strings.Index(s, "\n\n")
	if i < 0 {
		return translog.Checkpoint{}, errors.New("not a signed note")
	}
	return translog.ParseCheckpoint([]byte(s[:i+1]))
}

// manifestStamp is manifest.tsr as received, and what it says.
type manifestStamp struct {
	reply           []byte
	serial, genTime string
}

// timestampManifest asks the TSA for a token over SHA-256(manifest),
// with its certificate and a nonce, and checks that the token answers
// this request and is signed by the certificate it carries; whether that
// certificate is to be trusted is the verifier's question.
func timestampManifest(tsaURL, bearer string, manifest []byte) (manifestStamp, error) {
	digest := sha256.Sum256(manifest)
	nonce, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		return manifestStamp{}, err
	}
	q, err := rfc3161.NewTimeStampReq(rfc3161.SHA256, digest[:], nonce, nil, true)
	if err != nil {
		return manifestStamp{}, err
	}
	der, err := q.Marshal()
	if err != nil {
		return manifestStamp{}, err
	}
	reply, err := post(&http.Client{Timeout: 30 * time.Second}, tsaURL, der, bearer)
	if err != nil {
		return manifestStamp{}, err
	}
	resp, err := rfc3161.ParseTimeStampResp(reply)
	if err != nil {
		return manifestStamp{}, err
	}
	if resp.Token == nil {
		return manifestStamp{}, fmt.Errorf("not granted: %s", describeStatus(resp))
	}
	embedded, err := rfc3161.TokenCertificates(resp.Token)
	if err != nil {
		return manifestStamp{}, err
	}
	self := x509.NewCertPool()
	for _, c := range embedded {
		self.AddCert(c)
	}
	v, err := rfc3161.VerifyToken(resp.Token, rfc3161.VerifyOptions{Roots: self, Request: q})
	if err != nil {
		return manifestStamp{}, fmt.Errorf("the token does not answer the request: %w", err)
	}
	return manifestStamp{reply: reply, serial: v.TSTInfo.SerialNumber.Text(16), genTime: rfc3161.FormatGeneralizedTime(v.TSTInfo.GenTime)}, nil
}

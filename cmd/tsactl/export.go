package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/chronolog/chronolog/adapters/bundlewriter"
	"github.com/chronolog/chronolog/adapters/eventstore/sqlite"
	"github.com/chronolog/chronolog/adapters/logclient"
	"github.com/chronolog/chronolog/domain/logwire"
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

// exportBundle wires the bundle writer to the data directory's store
// (read only), the server's log API and its TSA, and prints what it wrote.
func exportBundle(ctx context.Context, o exportOptions) error {
	dbPath := filepath.Join(o.data, "events.db")
	if _, err := os.Stat(dbPath); err != nil {
		return fmt.Errorf("no event store in %s: %w", o.data, err)
	}
	st, err := sqlite.New(ctx, sqlite.Config{Path: dbPath, ReadOnly: true})
	if err != nil {
		return fmt.Errorf("open the event store: %w", err)
	}
	defer st.Close()
	cfg := bundlewriter.Config{Out: o.out, From: o.from, To: o.to, Wait: o.wait, TSAName: o.tsaURL, Notes: os.Stderr}
	tsa := exportTSA{url: o.tsaURL, bearer: o.bearer}
	sum, err := bundlewriter.Write(ctx, cfg, st, exportLog{logclient.New(o.logURL, nil)}, tsa)
	if errors.Is(err, bundlewriter.ErrNoEvents) {
		return fmt.Errorf("no event in %s was recorded in [%s, %s)", dbPath, fmtTime(o.from), fmtTime(o.to))
	}
	if err != nil {
		return err
	}

	fmt.Printf("window:     [%s, %s)\n", fmtTime(o.from), fmtTime(o.to))
	fmt.Printf("positions:  %d–%d, %d events", sum.First, sum.Last, sum.Events)
	if sum.Outside > 0 {
		fmt.Printf(" (%d of them recorded outside the window, kept for contiguity)", sum.Outside)
	}
	fmt.Println()
	fmt.Printf("tokens:     %d (%d RFC 3161, %d Authenticode), each with its inclusion proof\n", len(sum.Serials), sum.RFC3161, sum.Authenticode)
	fmt.Printf("streams:    %d clock events in the range; %d key and %d configuration events up to position %d\n", sum.Clock, sum.Keys, sum.Config, sum.Last)
	fmt.Printf("log:        checkpoint origin %s, size %d, covering events up to position %d\n", sum.Checkpoint.Origin, sum.Checkpoint.Size, sum.Covered)
	if len(sum.Tail) > 0 {
		seals := sum.Tail.Segments()
		fmt.Printf("bookkeeping: %s, the log's own records after the range's last other event, each with its evidence: %s, %s\n",
			sum.Tail.Positions(), plural(seals, "segment seal"), plural(len(sum.Tail)-seals, "checkpoint"))
	}
	switch older := len(sum.Serials) - sum.AgainstFinal; {
	case len(sum.Serials) == 0:
		fmt.Println("proofs:     none (no token in the range)")
	case older == 0:
		fmt.Printf("proofs:     %d, all against that checkpoint\n", len(sum.Serials))
	default:
		fmt.Printf("proofs:     %d, %d against that checkpoint, %d against older ones with %d consistency proofs to it\n",
			len(sum.Serials), sum.AgainstFinal, older, sum.Consistency)
	}
	fmt.Printf("manifest:   %d files, timestamped by %s: serial %s, genTime %s\n", sum.Files, o.tsaURL, sum.StampSerial, sum.StampGenTime)
	fmt.Printf("bundle:     %s\n", o.out)
	return nil
}

// plural counts things named by a regular noun.
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// exportLog is the server's log API as the bundle writer asks it.
type exportLog struct{ *logclient.Client }

func (l exportLog) WaitProof(ctx context.Context, serial string, wait time.Duration) (logwire.Proof, error) {
	return fetchProof(ctx, l.Client, serial, wait)
}

// exportTSA is the TSA that timestamps the manifest, over HTTP.
type exportTSA struct{ url, bearer string }

func (t exportTSA) Timestamp(ctx context.Context, query []byte) ([]byte, error) {
	return post(&http.Client{Timeout: 30 * time.Second}, t.url, query, t.bearer)
}

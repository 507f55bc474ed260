package e2e

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/chronolog/chronolog/domain/authenticode"
	"github.com/chronolog/chronolog/domain/rfc3161"
	"github.com/chronolog/chronolog/internal/testpki"
)

// TestExportBundle exports a window of a running tsad's record with its
// tokens and log proofs, verifies the bundle offline, then tampers with
// it and hands the verifier the wrong trust anchors.
func TestExportBundle(t *testing.T) {
	data, work := t.TempDir(), t.TempDir()
	s := startServer(t, data)
	out := s.output()
	keyLine := regexp.MustCompile(`(?m)^log key: (\S+)$`).FindStringSubmatch(out)
	logLine := regexp.MustCompile(`(?m)^transparency log: tessera, origin (\S+), verifier key (\S+)$`).FindStringSubmatch(out)
	if keyLine == nil || logLine == nil || s.caFile() == "" {
		t.Fatalf("tsad did not print its log key, log and CA:\n%s", out)
	}
	vkey, origin, keyFile, ca := keyLine[1], logLine[1], logLine[2], s.caFile()

	// The window: 18 RFC 3161 tokens with the TSA's certificate, one
	// without it (certReq false), and an Authenticode countersignature.
	from := time.Now().UTC()
	serials := map[string]bool{}
	for range 18 {
		r := ask(t, s.url)
		if r.Token == nil {
			t.Fatalf("not granted: %+v", r)
		}
		serials[serialOf(t, r.Token)] = true
	}
	sum := sha256.Sum256([]byte("export e2e, no certificate"))
	q, err := rfc3161.NewTimeStampReq(rfc3161.SHA256, sum[:], big.NewInt(42), nil, false)
	if err != nil {
		t.Fatal(err)
	}
	der, err := q.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	status, _, body := post(t, s.url, "application/timestamp-query", der)
	resp, err := rfc3161.ParseTimeStampResp(body)
	if status != 200 || err != nil || resp.Token == nil {
		t.Fatalf("certReq false: HTTP %d, %v", status, err)
	}
	if certs, _ := rfc3161.TokenCertificates(resp.Token); len(certs) != 0 {
		t.Fatalf("a token requested without certReq carries %d certificates", len(certs))
	}
	noCert := serialOf(t, resp.Token)
	serials[noCert] = true
	if status, _, body := post(t, s.url, "application/octet-stream", authenticode.NewRequest([]byte("export e2e signature"))); status != 200 {
		t.Fatalf("Authenticode request: HTTP %d: %s", status, body)
	}
	time.Sleep(10 * time.Millisecond)
	to := time.Now().UTC()
	time.Sleep(10 * time.Millisecond)
	// A request after the window: with it the log seals the window's tail
	// (its own bookkeeping events, which alone it never seals); without
	// it, see TestExportIdleTSA.
	if r := ask(t, s.url); r.Token == nil {
		t.Fatal("the request after the window was not granted")
	}

	bundle := filepath.Join(work, "bundle")
	exportArgs := []string{"export", "--data", data, "--url", s.url, "--from", from.Format(time.RFC3339Nano), "--to", to.Format(time.RFC3339Nano), "--out", bundle}
	got := logOK(t, exportArgs...)
	t.Logf("tsactl export:\n%s", got)
	for _, want := range []string{
		"window:     [" + from.Format(time.RFC3339Nano) + ", " + to.Format(time.RFC3339Nano) + ")\n",
		"tokens:     20 (19 RFC 3161, 1 Authenticode), each with its inclusion proof\n",
		"log:        checkpoint origin " + origin + ", size ",
		"manifest:   ",
		"bundle:     " + bundle + "\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("export output lacks %q:\n%s", want, got)
		}
	}
	for serial := range serials {
		for _, f := range []string{"tokens/" + serial + ".tsr", "log/proofs/" + serial + ".json"} {
			if _, err := os.Stat(filepath.Join(bundle, f)); err != nil {
				t.Errorf("the bundle lacks %s: %v", f, err)
			}
		}
	}
	p7, _ := filepath.Glob(filepath.Join(bundle, "tokens", "*.p7"))
	if len(p7) != 1 {
		t.Errorf("%d Authenticode files in the bundle, want 1", len(p7))
	}
	// A bundle directory is written once.
	if got, code := logRun(t, exportArgs...); code == 0 || !strings.Contains(got, "is not empty") {
		t.Errorf("export into a written bundle: exit %d\n%s", code, got)
	}

	// verify, with the log key as the key itself and as a file.
	verify := func(dir, caFile, key string) (string, int) {
		return logRun(t, "export", "verify", dir, "--ca", caFile, "--log-key", key)
	}
	for _, key := range []string{vkey, keyFile} {
		got, code := verify(bundle, ca, key)
		if code != 0 {
			t.Fatalf("export verify: exit %d\n%s", code, got)
		}
		for _, want := range []*regexp.Regexp{
			regexp.MustCompile(`(?m)^manifest: +\d+ files listed, each present with its SHA-256 and size, none unlisted: OK$`),
			regexp.MustCompile(`(?m)^manifest\.tsr: token serial [0-9a-f]+, genTime \d{14}\.\d+Z, by .*, chain to ` + regexp.QuoteMeta(ca) + `; imprint SHA-256\(manifest\.json\): OK$`),
			regexp.MustCompile(`(?m)^events\.jsonl: \d+ events, positions \d+–\d+ contiguous, each valid against its schema, 20 tokens issued: OK$`),
			regexp.MustCompile(`(?m)^streams: +clock\.jsonl \d+ events, keys\.jsonl \d+, config\.jsonl \d+, agreeing with events\.jsonl: OK$`),
			regexp.MustCompile(`(?m)^tokens: +20 \(19 RFC 3161, 1 Authenticode\) verified against ` + regexp.QuoteMeta(ca) + `, .*: OK$`),
			regexp.MustCompile(`(?m)^log: +20 proofs verified with the log key, to checkpoint origin ` + regexp.QuoteMeta(origin) + ` size \d+.*: OK$`),
			regexp.MustCompile(`(?m)^verify: +OK$`),
		} {
			if !want.MatchString(got) {
				t.Errorf("export verify output lacks %s:\n%s", want, got)
			}
		}
		if key == vkey {
			t.Logf("tsactl export verify:\n%s", got)
		}
	}

	// Tampering, each on its own copy of the bundle.
	tokenFile := "tokens/" + noCert + ".tsr"
	cases := []tamperCase{
		{"one byte of a token file flipped", func(t *testing.T, dir string) {
			flipByte(t, filepath.Join(dir, tokenFile), func(b []byte) int { return len(b) - 5 })
		}, []string{
			tokenFile + ": sha256 ",
			tokenFile + ": differs from the token recorded in events.jsonl at position ",
			tokenFile + ": does not verify against " + ca,
		}},
		{"one byte of events.jsonl flipped", func(t *testing.T, dir string) {
			flipByte(t, filepath.Join(dir, "events.jsonl"), hashedMessageDigit(t, noCert))
		}, []string{
			"events.jsonl: sha256 ",
			tokenFile + ": does not verify against " + ca + " (imprint: the request's hashedMessage): the token's hashed message differs from the digest given",
		}},
		{"events.jsonl changed and the manifest rewritten to match", func(t *testing.T, dir string) {
			flipByte(t, filepath.Join(dir, "events.jsonl"), hashedMessageDigit(t, noCert))
			rewriteManifest(t, dir)
		}, []string{
			"manifest.tsr: does not verify against " + ca + " as a token over SHA-256(manifest.json)",
			tokenFile + ": does not verify against " + ca,
		}},
		{"a token's event changed under its log proof", func(t *testing.T, dir string) {
			flipByte(t, filepath.Join(dir, "events.jsonl"), issuedGenTimeDigit(t, noCert))
		}, []string{
			"events.jsonl: sha256 ",
			"log/proofs/" + noCert + ".json: the event it proves differs from the line of position ",
		}},
		{"an unlisted file", func(t *testing.T, dir string) {
			if err := os.WriteFile(filepath.Join(dir, "tokens", "extra.txt"), []byte("x"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, []string{"tokens/extra.txt: not listed in the manifest"}},
		{"a token file removed", func(t *testing.T, dir string) {
			if err := os.Remove(filepath.Join(dir, tokenFile)); err != nil {
				t.Fatal(err)
			}
		}, []string{
			tokenFile + ": listed in the manifest but missing",
			tokenFile + ": missing: the token issued at position ",
		}},
	}
	checkTampered(t, bundle, func(dir string) (string, int) { return verify(dir, ca, vkey) }, cases)

	// The wrong trust anchors: another CA, another log key.
	other := testpki.New(t, testpki.Subject("other", "Chronolog e2e")).CertFile(t)
	got, code := verify(bundle, other, vkey)
	if code == 0 || !strings.Contains(got, "manifest.tsr: does not verify against "+other) ||
		!regexp.MustCompile(`(?m)^tokens: +FAILED, 20 problems$`).MatchString(got) || !strings.Contains(got, "certificate signed by unknown authority") {
		t.Errorf("another CA: exit %d\n%s", code, got)
	}
	_, otherKey, err := note.GenerateKey(rand.Reader, origin)
	if err != nil {
		t.Fatal(err)
	}
	got, code = verify(bundle, ca, otherKey)
	if code == 0 || !strings.Contains(got, "log/checkpoint: does not verify with the log key") {
		t.Errorf("another log key: exit %d\n%s", code, got)
	}
}

// TestExportIdleTSA exports ranges that end after the TSA's last event,
// the TSA idle: the log writer seals its own bookkeeping (the last
// segment's seal, the checkpoints after it) only with the next request, so
// no checkpoint covers the range's last positions while the TSA is idle.
// The export must still succeed within seconds, carrying that bookkeeping
// with evidence of its own, which export verify checks.
func TestExportIdleTSA(t *testing.T) {
	data, work := t.TempDir(), t.TempDir()
	s := startServer(t, data)
	keyLine := regexp.MustCompile(`(?m)^log key: (\S+)$`).FindStringSubmatch(s.output())
	if keyLine == nil || s.caFile() == "" {
		t.Fatalf("tsad did not print its log key and CA:\n%s", s.output())
	}
	vkey, ca := keyLine[1], s.caFile()
	verify := func(dir string) (string, int) {
		return logRun(t, "export", "verify", dir, "--ca", ca, "--log-key", vkey)
	}

	from := time.Now().UTC()
	for range 3 {
		if r := ask(t, s.url); r.Token == nil {
			t.Fatalf("not granted: %+v", r)
		}
	}
	// Idle: within a writer tick (250 ms) the last request's segment is
	// sealed, within a checkpoint interval (200 ms) published; all the log
	// records after that is its own bookkeeping.
	idle := func() { time.Sleep(1500 * time.Millisecond) }
	export := func(name string, to time.Time) string {
		t.Helper()
		bundle := filepath.Join(work, name)
		start := time.Now()
		got, code := logRun(t, "export", "--data", data, "--url", s.url, "--from", from.Format(time.RFC3339Nano),
			"--to", to.Format(time.RFC3339Nano), "--out", bundle)
		took := time.Since(start)
		if code != 0 {
			t.Fatalf("export of [%s, %s) on an idle TSA: exit %d after %s\n%s", from.Format(time.RFC3339Nano), to.Format(time.RFC3339Nano), code, took, got)
		}
		if took > 5*time.Second {
			t.Errorf("export of a range ending after the last event took %s, want seconds", took)
		}
		if !regexp.MustCompile(`(?m)^bookkeeping: positions? \d+(–\d+)?, the log's own records after the range's last other event, each with its evidence: \d+ segment seals?, \d+ checkpoints?$`).MatchString(got) {
			t.Errorf("export output lacks the trailing bookkeeping:\n%s", got)
		}
		t.Logf("tsactl export (%s):\n%s", took.Round(time.Millisecond), got)
		// The premise: the range ends in bookkeeping, a seal and a
		// checkpoint at least.
		if tail := bookkeepingTail(t, bundle); tail["LogSegmentSealed.v1"] == 0 || tail["LogCheckpointSigned.v1"] == 0 {
			t.Fatalf("the range does not end in a segment's seal and a checkpoint: %v", tail)
		}
		got, code = verify(bundle)
		if code != 0 {
			t.Fatalf("export verify: exit %d\n%s", code, got)
		}
		t.Logf("tsactl export verify:\n%s", got)
		for _, want := range []*regexp.Regexp{
			regexp.MustCompile(`(?m)^bookkeeping: +positions? \d+(–\d+)? after the range's last other event: \d+ segment seals? proven in log/checkpoint, \d+ checkpoints? verified with the log key and consistent with it: OK$`),
			regexp.MustCompile(`(?m)^verify: +OK$`),
		} {
			if !want.MatchString(got) {
				t.Errorf("export verify output lacks %s:\n%s", want, got)
			}
		}
		return bundle
	}
	// A range over since a moment, ending after the last event (a day
	// that ended while the TSA was idle), then one ending now.
	idle()
	over := time.Now().UTC()
	time.Sleep(300 * time.Millisecond)
	export("over", over)
	idle()
	bundle := export("now", time.Now().UTC())

	// Tampering with the trailing bookkeeping or its evidence.
	seg := segmentProofFile(t, bundle)
	cases := []tamperCase{
		{"a trailing segment seal's root changed", func(t *testing.T, dir string) {
			flipByte(t, filepath.Join(dir, "events.jsonl"), tailDigitAfter(t, "LogSegmentSealed.v1", `"root":"`))
		}, []string{
			"events.jsonl: sha256 ",
			"the LogSegmentSealed of segment ",
			" differs from the log's leaf in " + seg + " (root)",
		}},
		{"a trailing checkpoint's note changed", func(t *testing.T, dir string) {
			flipByte(t, filepath.Join(dir, "events.jsonl"), tailDigitAfter(t, "LogCheckpointSigned.v1", `"note":"`))
		}, []string{
			"events.jsonl: sha256 ",
			": the LogCheckpointSigned's note does not verify with the log key",
		}},
		{"a trailing checkpoint's root changed beside its note", func(t *testing.T, dir string) {
			flipByte(t, filepath.Join(dir, "events.jsonl"), tailDigitAfter(t, "LogCheckpointSigned.v1", `"root":"`))
		}, []string{
			"events.jsonl: sha256 ",
			": the LogCheckpointSigned differs from its note (root)",
		}},
		{"a trailing segment's inclusion proof changed", func(t *testing.T, dir string) {
			editJSON(t, filepath.Join(dir, filepath.FromSlash(seg)), func(m map[string]any) {
				zero := base64.StdEncoding.EncodeToString(make([]byte, 32))
				if path := m["logPath"].([]any); len(path) > 0 {
					path[0] = zero
				} else {
					m["logPath"] = []any{zero}
				}
			})
		}, []string{
			seg + ": sha256 ",
			seg + ": segment ",
			" does not lead to the root of log/checkpoint",
		}},
		{"a trailing segment's inclusion proof removed", func(t *testing.T, dir string) {
			if err := os.Remove(filepath.Join(dir, filepath.FromSlash(seg))); err != nil {
				t.Fatal(err)
			}
		}, []string{
			seg + ": listed in the manifest but missing",
			seg + ": missing: the segment sealed at position ",
		}},
	}
	checkTampered(t, bundle, verify, cases)
}

// bookkeepingTail counts, by type, the events of a bundle's events.jsonl
// after its last event that is not the log's bookkeeping.
func bookkeepingTail(t *testing.T, bundle string) map[string]int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(bundle, "events.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	tail := map[string]int{}
	for _, line := range bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n")) {
		typ := lineType(line)
		if typ != "LogSegmentSealed.v1" && typ != "LogCheckpointSigned.v1" {
			clear(tail)
			continue
		}
		tail[typ]++
	}
	return tail
}

var typeField = regexp.MustCompile(`"type":"([^"]+)"`)

func lineType(line []byte) string {
	if m := typeField.FindSubmatch(line); m != nil {
		return string(m[1])
	}
	return ""
}

// tailDigitAfter picks, in events.jsonl, a digit after field in the last
// event of type typ, which must be in the trailing bookkeeping.
func tailDigitAfter(t *testing.T, typ, field string) func([]byte) int {
	return func(b []byte) int {
		t.Helper()
		at, start, substantive := -1, 0, -1
		for _, line := range bytes.SplitAfter(b, []byte("\n")) {
			switch lt := lineType(line); {
			case lt == typ:
				at = start
			case lt != "" && lt != "LogSegmentSealed.v1" && lt != "LogCheckpointSigned.v1":
				substantive = start
			}
			start += len(line)
		}
		if at < 0 || at < substantive {
			t.Fatalf("no %s after the last other event in events.jsonl", typ)
		}
		line := b[at:]
		line = line[:bytes.IndexByte(line, '\n')]
		i := bytes.Index(line, []byte(field))
		if i < 0 {
			t.Fatalf("the last %s has no %s", typ, field)
		}
		// The first digit after the field's start: of a hash, a digit of
		// it; of a note, of its size line or after.
		for j := i + len(field); j < len(line); j++ {
			if line[j] >= '0' && line[j] <= '9' {
				return at + j
			}
		}
		t.Fatalf("the last %s has no digit after %s", typ, field)
		return 0
	}
}

// segmentProofFile is the path, as the manifest names it, of the proof
// of the last segment sealed in a bundle's trailing bookkeeping.
func segmentProofFile(t *testing.T, bundle string) string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(bundle, "log", "segments", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no segment proof in the bundle: %v", err)
	}
	last := -1
	for _, f := range files {
		i, err := strconv.Atoi(strings.TrimSuffix(filepath.Base(f), ".json"))
		if err != nil {
			t.Fatalf("%s: not a segment's proof", f)
		}
		last = max(last, i)
	}
	return fmt.Sprintf("log/segments/%d.json", last)
}

// editJSON rewrites a JSON object file through edit.
func editJSON(t *testing.T, path string, edit func(map[string]any)) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, append(out, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}

// tamperCase changes a copy of a bundle; the verifier must fail, naming
// each of want.
type tamperCase struct {
	name   string
	tamper func(t *testing.T, dir string)
	want   []string
}

// checkTampered runs each case on its own copy of bundle.
func checkTampered(t *testing.T, bundle string, verify func(dir string) (string, int), cases []tamperCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "bundle")
			copyBundle(t, bundle, dir)
			c.tamper(t, dir)
			got, code := verify(dir)
			if code == 0 || !strings.Contains(got, "\nverify:       FAILED, ") {
				t.Errorf("exit %d\n%s", code, got)
			}
			for _, w := range c.want {
				if !strings.Contains(got, w) {
					t.Errorf("output lacks %q:\n%s", w, got)
				}
			}
		})
	}
}

func serialOf(t *testing.T, token []byte) string {
	t.Helper()
	info, err := rfc3161.TokenTSTInfo(token)
	if err != nil {
		t.Fatal(err)
	}
	return info.SerialNumber.Text(16)
}

// flipByte flips the low bit of the byte at the offset at picks.
func flipByte(t *testing.T, path string, at func([]byte) int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[at(b)] ^= 0x01
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// hashedMessageDigit picks, in events.jsonl, a decimal digit of the
// hashedMessage the request of serial recorded: flipped, it stays hex.
func hashedMessageDigit(t *testing.T, serial string) func([]byte) int {
	return digitAfter(t, `"type":"TimestampRequested.v1"`, serial, `"hashedMessage":"`)
}

// issuedGenTimeDigit picks a digit of the genTime of serial's
// TimestampIssued event: flipped, the event stays valid.
func issuedGenTimeDigit(t *testing.T, serial string) func([]byte) int {
	return digitAfter(t, `"type":"TimestampIssued.v1"`, serial, `"genTime":"`)
}

func digitAfter(t *testing.T, typ, serial, field string) func([]byte) int {
	return func(b []byte) int {
		t.Helper()
		start := 0
		for _, line := range bytes.SplitAfter(b, []byte("\n")) {
			if bytes.Contains(line, []byte(typ)) && bytes.Contains(line, []byte(`"serial":"`+serial+`"`)) {
				if i := bytes.Index(line, []byte(field)); i >= 0 {
					i += len(field)
					end := i + bytes.IndexByte(line[i:], '"')
					// The last digit that flips into another digit: of a
					// hash, any; of a time, its smallest unit.
					for j := end - 1; j >= i; j-- {
						if line[j] >= '0' && line[j] <= '8' {
							return start + j
						}
					}
				}
			}
			start += len(line)
		}
		t.Fatalf("no %s of serial %s with a digit in %s in events.jsonl", typ, serial, field)
		return 0
	}
}

// rewriteManifest updates manifest.json's digests and sizes to the files
// as they now are: what a forger would do, the TSA's token over the
// manifest being the one thing it cannot redo.
func rewriteManifest(t *testing.T, dir string) {
	t.Helper()
	path := filepath.Join(dir, "manifest.json")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	for _, f := range m["files"].([]any) {
		f := f.(map[string]any)
		b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(f["path"].(string))))
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		f["sha256"], f["size"] = hex.EncodeToString(sum[:]), len(b)
	}
	out, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, append(out, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}

func copyBundle(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		dst := filepath.Join(to, rel)
		if d.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/chronolog/chronolog/adapters/logclient"
	"github.com/chronolog/chronolog/adapters/logwire"
	"github.com/chronolog/chronolog/domain/merkle"
	"github.com/chronolog/chronolog/domain/translog"
)

// bundleFixture writes a small bundle's files (no manifest yet).
func bundleFixture(t *testing.T) (string, map[string][]byte) {
	t.Helper()
	dir := t.TempDir()
	files := map[string][]byte{
		"events.jsonl":           appendExportLine(nil, 7, 0, []byte(`{"type":"X.v1","id":"a"}`)),
		"clock.jsonl":            nil,
		"keys.jsonl":             []byte("{}\n"),
		"config.jsonl":           []byte("{}\n"),
		"tokens/1a2b.tsr":        {0x30, 0x03, 0x02, 0x01, 0x00},
		"tokens/ff.p7":           {0x30, 0x00},
		"log/checkpoint":         []byte("origin\n1\nroot\n\n— sig\n"),
		"log/proofs/1a2b.json":   []byte(`{"serial":"1a2b"}` + "\n"),
		"log/proofs/ff.json":     []byte(`{"serial":"ff"}` + "\n"),
		"log/consistency/1-2.js": []byte(`{}`),
	}
	for p, b := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir, files
}

func newTestManifest() *exportManifest {
	return &exportManifest{
		Format: exportFormat, From: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC),
		FirstPosition: 7, LastPosition: 7, Events: 1, Tokens: 2, CreatedAt: time.Now().UTC(),
		TSA: "http://tsa.example/tsa", LogOrigin: "origin",
	}
}

// writeTestManifest writes the manifest of dir and reads it back.
func writeTestManifest(t *testing.T, dir string) *exportManifest {
	t.Helper()
	raw, err := writeManifest(dir, newTestManifest())
	if err != nil {
		t.Fatal(err)
	}
	onDisk, err := os.ReadFile(filepath.Join(dir, exportManifestFile))
	if err != nil || !bytes.Equal(onDisk, raw) {
		t.Fatalf("manifest.json on disk differs from the bytes returned: %v", err)
	}
	m, err := readManifest(raw)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestExportManifestListsEveryFileWithItsDigest(t *testing.T) {
	dir, files := bundleFixture(t)
	// The timestamp is over the manifest: neither is listed.
	if err := os.WriteFile(filepath.Join(dir, exportManifestTSR), []byte("stamp"), 0o644); err != nil {
		t.Fatal(err)
	}
	m := writeTestManifest(t, dir)
	if len(m.Files) != len(files) {
		t.Fatalf("%d files listed, want %d: %+v", len(m.Files), len(files), m.Files)
	}
	for i, f := range m.Files {
		if i > 0 && m.Files[i-1].Path >= f.Path {
			t.Errorf("not sorted: %q after %q", f.Path, m.Files[i-1].Path)
		}
		want, ok := files[f.Path]
		if !ok {
			t.Errorf("%s listed, not in the bundle", f.Path)
			continue
		}
		sum := sha256.Sum256(want)
		if f.SHA256 != hex.EncodeToString(sum[:]) || f.Size != int64(len(want)) {
			t.Errorf("%s: listed as %s, %d bytes; want %x, %d", f.Path, f.SHA256, f.Size, sum, len(want))
		}
	}
	if p := checkBundleFiles(os.DirFS(dir), m.Files); len(p) != 0 {
		t.Errorf("an intact bundle has problems: %q", p)
	}
}

func TestExportManifestFindsAnUnlistedFile(t *testing.T) {
	dir, _ := bundleFixture(t)
	m := writeTestManifest(t, dir)
	for _, extra := range []string{"tokens/abc.tsr", "notes.txt"} {
		if err := os.WriteFile(filepath.Join(dir, filepath.FromSlash(extra)), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	p := checkBundleFiles(os.DirFS(dir), m.Files)
	if len(p) != 2 || !strings.Contains(strings.Join(p, "\n"), "tokens/abc.tsr: not listed in the manifest") ||
		!strings.Contains(strings.Join(p, "\n"), "notes.txt: not listed in the manifest") {
		t.Errorf("two unlisted files: %q", p)
	}
	// A link is refused, listed or not: a bundle holds files.
	if err := os.Symlink("/etc/passwd", filepath.Join(dir, "log", "link")); err != nil {
		t.Fatal(err)
	}
	if p := checkBundleFiles(os.DirFS(dir), m.Files); !strings.Contains(strings.Join(p, "\n"), "log/link: not a regular file") {
		t.Errorf("a symbolic link: %q", p)
	}
	if _, err := listBundleFiles(dir); err == nil || !strings.Contains(err.Error(), "log/link is not a regular file") {
		t.Errorf("listing a bundle with a link: %v", err)
	}
}

func TestExportManifestFindsATamperedFile(t *testing.T) {
	cases := []struct {
		name   string
		change func(t *testing.T, path string)
		want   []string
	}{
		{"one byte flipped", func(t *testing.T, p string) {
			b, _ := os.ReadFile(p)
			b[len(b)/2] ^= 0x01
			os.WriteFile(p, b, 0o644)
		}, []string{"tokens/1a2b.tsr: sha256 ", ", the manifest says "}},
		{"a byte appended", func(t *testing.T, p string) {
			b, _ := os.ReadFile(p)
			os.WriteFile(p, append(b, 0), 0o644)
		}, []string{"tokens/1a2b.tsr: size 6, the manifest says 5", "tokens/1a2b.tsr: sha256 "}},
		{"removed", func(t *testing.T, p string) { os.Remove(p) },
			[]string{"tokens/1a2b.tsr: listed in the manifest but missing"}},
		{"replaced by a directory", func(t *testing.T, p string) { os.Remove(p); os.Mkdir(p, 0o755) },
			[]string{"tokens/1a2b.tsr: not a regular file"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir, _ := bundleFixture(t)
			m := writeTestManifest(t, dir)
			c.change(t, filepath.Join(dir, "tokens", "1a2b.tsr"))
			p := strings.Join(checkBundleFiles(os.DirFS(dir), m.Files), "\n")
			for _, w := range c.want {
				if !strings.Contains(p, w) {
					t.Errorf("problems lack %q:\n%s", w, p)
				}
			}
			if strings.Contains(p, "events.jsonl") || strings.Contains(p, "ff.p7") {
				t.Errorf("an intact file is named:\n%s", p)
			}
		})
	}
}

func TestExportManifestIsReadStrictly(t *testing.T) {
	dir, _ := bundleFixture(t)
	good := writeTestManifest(t, dir)
	edit := func(f func(m *exportManifest)) []byte {
		m := *good
		m.Files = append([]exportFile(nil), good.Files...)
		f(&m)
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	cases := map[string][]byte{
		"another format":         edit(func(m *exportManifest) { m.Format = "chronolog-export/2" }),
		"a path out of the tree": edit(func(m *exportManifest) { m.Files[0].Path = "../outside" }),
		"an absolute path":       edit(func(m *exportManifest) { m.Files[0].Path = "/etc/passwd" }),
		"the manifest listed":    edit(func(m *exportManifest) { m.Files[0].Path = exportManifestFile }),
		"unsorted": edit(func(m *exportManifest) {
			m.Files[0], m.Files[1] = m.Files[1], m.Files[0]
		}),
		"listed twice":       edit(func(m *exportManifest) { m.Files[1] = m.Files[0] }),
		"an upper-case hash": edit(func(m *exportManifest) { m.Files[0].SHA256 = strings.ToUpper(m.Files[0].SHA256) }),
		"a short hash":       edit(func(m *exportManifest) { m.Files[0].SHA256 = m.Files[0].SHA256[:62] }),
		"an unknown field":   append(bytes.TrimSuffix(edit(func(*exportManifest) {}), []byte("}")), []byte(`,"extra":1}`)...),
		"two documents":      append(edit(func(*exportManifest) {}), []byte(`{}`)...),
	}
	for name, raw := range cases {
		if _, err := readManifest(raw); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestExportLineKeepsThePayloadByteForByte(t *testing.T) {
	payload := []byte(`{"type":"TimestampIssued.v1","id":"x","data":{"s":"a\u00e9\n\"b"},"metadata":{}}`)
	line := appendExportLine(nil, 42, 3, payload)
	if !bytes.HasSuffix(line, []byte("}\n")) || bytes.Count(line, []byte("\n")) != 1 {
		t.Fatalf("not one line: %q", line)
	}
	l, err := parseExportLine(bytes.TrimSuffix(line, []byte("\n")))
	if err != nil {
		t.Fatal(err)
	}
	if l.Position != 42 || l.Revision != 3 || !bytes.Equal(l.Payload, payload) {
		t.Errorf("read back %d, %d, %s", l.Position, l.Revision, l.Payload)
	}
	for name, bad := range map[string]string{
		"spaces":                  `{"position": 42,"revision":3,"payload":` + string(payload) + `}`,
		"fields reordered":        `{"revision":3,"position":42,"payload":` + string(payload) + `}`,
		"an extra field":          `{"position":42,"revision":3,"payload":` + string(payload) + `,"x":1}`,
		"a payload not compact":   `{"position":42,"revision":3,"payload":{"type": "X"}}`,
		"a payload not an object": `{"position":42,"revision":3,"payload":"x"}`,
		"not JSON":                `{"position":42`,
	} {
		if _, err := parseExportLine([]byte(bad)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	for name, p := range map[string]string{
		"with a newline": "{\"a\":\n1}",
		"indented":       "{ \"a\": 1 }",
		"an array":       "[1]",
		"invalid":        `{"a":`,
		"empty":          ``,
	} {
		if err := checkStoredPayload([]byte(p)); err == nil {
			t.Errorf("a payload %s: accepted", name)
		}
	}
}

func TestExportTimesAndSerials(t *testing.T) {
	for in, want := range map[string]time.Time{
		"2026-03-01":                     time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC),
		"2026-03-01T12:00:00+02:00":      time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC),
		"2026-03-01T10:00:00.000000001Z": time.Date(2026, 3, 1, 10, 0, 0, 1, time.UTC),
	} {
		got, err := parseExportTime(in)
		if err != nil || !got.Equal(want) || got.Location() != time.UTC {
			t.Errorf("%s: %v, %v", in, got, err)
		}
	}
	if _, err := parseExportTime("March 1st"); err == nil {
		t.Error("a time in words: accepted")
	}
	for s, ok := range map[string]bool{"1a2b": true, "0": true, "": false, "01": false, "1A": false, "../x": false, "1a.tsr": false} {
		if isSerialHex(s) != ok {
			t.Errorf("isSerialHex(%q) = %v", s, !ok)
		}
	}
}

// miniLog is a transparency log of three segments of two events each,
// built with the domain's own hashing and signed with a fresh key: what
// the log API of a tsad would serve.
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
	signed, err := translog.SignCheckpoint(translog.Checkpoint{Origin: "example.com/log", Size: size, Root: merkle.Root(l.hashes[:size])}, l.signer)
	if err != nil {
		t.Fatal(err)
	}
	return signed
}

// proof proves the event at position 4 (the second of segment 1) against
// the checkpoint of size.
func (l *miniLog) proof(t *testing.T, size uint64) logwire.Proof {
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
	return logwire.Proof{
		Serial:     "a1",
		Event:      logwire.Event{Position: 4, Stream: "tsr-a1", Type: "TimestampIssued.v1", Payload: l.payloads[3]},
		Segment:    logwire.Segment{Index: 1, Leaf: seg.Marshal(), First: seg.First, Last: seg.Last, Count: seg.Count, Root: seg.Root[:]},
		EventIndex: 1, EventPath: logwire.EncodeHashes(eventPath), LogPath: logwire.EncodeHashes(logPath),
		Checkpoint: string(l.checkpoint(t, size)),
	}
}

// TestExportLogTiesOlderProofsToTheCheckpoint has the log grow while the
// export fetches: the proof leads to the checkpoint of size 2, the latest
// is of size 3, and the bundle carries the consistency proof between
// them, which the verifier checks.
func TestExportLogTiesOlderProofsToTheCheckpoint(t *testing.T) {
	l := newMiniLog(t)
	var checkpoints atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("GET /log/v1/checkpoint", func(w http.ResponseWriter, r *http.Request) {
		// The first answer, before the proofs, is size 2; later ones 3.
		if checkpoints.Add(1) == 1 {
			w.Write(l.checkpoint(t, 2))
			return
		}
		w.Write(l.checkpoint(t, 3))
	})
	mux.HandleFunc("GET /log/v1/segments/{index}", func(w http.ResponseWriter, r *http.Request) {
		i, _ := strconv.Atoi(r.PathValue("index"))
		leaf := l.leaves[i]
		json.NewEncoder(w).Encode(logwire.Segment{Index: uint64(i), Leaf: leaf.Marshal(), First: leaf.First, Last: leaf.Last, Count: leaf.Count, Root: leaf.Root[:]})
	})
	mux.HandleFunc("GET /log/v1/proof/a1", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(l.proof(t, 2))
	})
	mux.HandleFunc("GET /log/v1/consistency", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("from") != "2" || r.URL.Query().Get("to") != "3" {
			http.Error(w, "unexpected "+r.URL.RawQuery, http.StatusBadRequest)
			return
		}
		p, _ := merkle.ConsistencyProof(2, l.hashes)
		json.NewEncoder(w).Encode(logwire.Consistency{From: 2, To: 3, Proof: logwire.EncodeHashes(p)})
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "log", "proofs"), 0o755); err != nil {
		t.Fatal(err)
	}
	sum := &exportSummary{first: 3, last: 4, serials: []string{"a1"}, lastSubstantive: 4}
	lg, err := exportLog(context.Background(), logclient.New(srv.URL, nil), exportOptions{out: dir, wait: time.Second}, sum)
	if err != nil {
		t.Fatal(err)
	}
	if lg.checkpoint.Size != 3 || lg.covered != 6 || lg.againstFinal != 0 || lg.consistency != 1 {
		t.Errorf("exported checkpoint size %d covering %d, %d proofs against it, %d consistency proofs; want 3, 6, 0, 1",
			lg.checkpoint.Size, lg.covered, lg.againstFinal, lg.consistency)
	}
	for _, f := range []string{"log/checkpoint", "log/proofs/a1.json", "log/consistency/2-3.json"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}

	check := func() (string, int) {
		var out bytes.Buffer
		v := &bundleVerifier{fsys: os.DirFS(dir), log: l.verifier, out: &out,
			manifest: &exportManifest{LogOrigin: "example.com/log"},
			issued:   map[string]exportIssued{"a1": {position: 4, payload: sha256.Sum256(l.payloads[3])}}}
		v.checkLog()
		return out.String(), v.problems
	}
	if got, n := check(); n != 0 || !strings.Contains(got, "1 proofs verified with the log key, to checkpoint origin example.com/log size 3 (1 through consistency proofs from older checkpoints)") {
		t.Errorf("%d problems:\n%s", n, got)
	}
	// Without the consistency proof, or with a wrong one, the proof is
	// not tied to log/checkpoint.
	cons := filepath.Join(dir, "log", "consistency", "2-3.json")
	raw, _ := os.ReadFile(cons)
	wrong, _ := json.Marshal(logwire.Consistency{From: 2, To: 3, Proof: logwire.EncodeHashes([]merkle.Hash{{1}})})
	os.WriteFile(cons, wrong, 0o644)
	if got, n := check(); n != 1 || !strings.Contains(got, "log/proofs/a1.json: leads to the checkpoint of size 2: log/consistency/2-3.json: translog: FORK") {
		t.Errorf("a wrong consistency proof: %d problems:\n%s", n, got)
	}
	os.Remove(cons)
	if got, n := check(); n != 1 || !strings.Contains(got, "no proof that log/checkpoint extends it") {
		t.Errorf("no consistency proof: %d problems:\n%s", n, got)
	}
	os.WriteFile(cons, raw, 0o644)

	// A checkpoint that never covers the range's last request: the
	// export fails, saying so.
	sum.last, sum.lastSubstantive = 9, 9
	_, err = exportLog(context.Background(), logclient.New(srv.URL, nil), exportOptions{out: t.TempDir(), wait: 300 * time.Millisecond}, sum)
	if err == nil || !strings.Contains(err.Error(), "covers the events up to position 6, the range's last event that is not the log's own bookkeeping is at 9: still not covered after 300ms") {
		t.Errorf("a range beyond the log: %v", err)
	}
}

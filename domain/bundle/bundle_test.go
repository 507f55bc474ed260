package bundle

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"maps"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/chronolog/chronolog/domain/events"
)

// fixture is a small bundle's files (no manifest yet).
func fixture() fstest.MapFS {
	files := map[string][]byte{
		"events.jsonl":           AppendLine(nil, 7, 0, []byte(`{"type":"X.v1","id":"a"}`)),
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
	m := fstest.MapFS{}
	for p, b := range files {
		m[p] = &fstest.MapFile{Data: b, Mode: 0o644}
	}
	return m
}

func testManifest() *Manifest {
	return &Manifest{
		Format: Format, From: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC),
		FirstPosition: 7, LastPosition: 7, Events: 1, Tokens: 2, CreatedAt: time.Date(2026, 2, 1, 1, 0, 0, 0, time.UTC),
		TSA: "http://tsa.example/tsa", LogOrigin: "origin",
	}
}

// withManifest lists fsys's files into a manifest, writes it there and
// reads it back.
func withManifest(t *testing.T, fsys fstest.MapFS) *Manifest {
	t.Helper()
	m := testManifest()
	files, err := ListFiles(fsys)
	if err != nil {
		t.Fatal(err)
	}
	m.Files = files
	raw, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	fsys[ManifestFile] = &fstest.MapFile{Data: raw}
	back, err := ParseManifest(raw)
	if err != nil {
		t.Fatal(err)
	}
	return back
}

func TestManifestListsEveryFileWithItsDigest(t *testing.T) {
	fsys := fixture()
	want := maps.Clone(fsys)
	// The timestamp is over the manifest: neither is listed.
	fsys[ManifestTSR] = &fstest.MapFile{Data: []byte("stamp")}
	m := withManifest(t, fsys)
	if len(m.Files) != len(want) {
		t.Fatalf("%d files listed, want %d: %+v", len(m.Files), len(want), m.Files)
	}
	for i, f := range m.Files {
		if i > 0 && m.Files[i-1].Path >= f.Path {
			t.Errorf("not sorted: %q after %q", f.Path, m.Files[i-1].Path)
		}
		w, ok := want[f.Path]
		if !ok {
			t.Errorf("%s listed, not in the bundle", f.Path)
			continue
		}
		sum := sha256.Sum256(w.Data)
		if f.SHA256 != hex.EncodeToString(sum[:]) || f.Size != int64(len(w.Data)) {
			t.Errorf("%s: listed as %s, %d bytes; want %x, %d", f.Path, f.SHA256, f.Size, sum, len(w.Data))
		}
	}
	if p := CheckFiles(fsys, m.Files); len(p) != 0 {
		t.Errorf("an intact bundle has problems: %q", p)
	}
}

func TestManifestFindsAnUnlistedFile(t *testing.T) {
	fsys := fixture()
	m := withManifest(t, fsys)
	for _, extra := range []string{"tokens/abc.tsr", "notes.txt"} {
		fsys[extra] = &fstest.MapFile{Data: []byte("x")}
	}
	p := strings.Join(CheckFiles(fsys, m.Files), "\n")
	if !strings.Contains(p, "tokens/abc.tsr: not listed in the manifest") || !strings.Contains(p, "notes.txt: not listed in the manifest") ||
		strings.Count(p, "\n") != 1 {
		t.Errorf("two unlisted files: %q", p)
	}
	// A link is refused, listed or not: a bundle holds files.
	fsys["log/link"] = &fstest.MapFile{Data: []byte("/etc/passwd"), Mode: fs.ModeSymlink}
	if p := CheckFiles(fsys, m.Files); !strings.Contains(strings.Join(p, "\n"), "log/link: not a regular file") {
		t.Errorf("a symbolic link: %q", p)
	}
	if _, err := ListFiles(fsys); err == nil || !strings.Contains(err.Error(), "log/link is not a regular file") {
		t.Errorf("listing a bundle with a link: %v", err)
	}
}

func TestManifestFindsATamperedFile(t *testing.T) {
	const token = "tokens/1a2b.tsr"
	cases := []struct {
		name   string
		change func(fsys fstest.MapFS)
		want   []string
	}{
		{"one byte flipped", func(fsys fstest.MapFS) {
			b := bytes.Clone(fsys[token].Data)
			b[len(b)/2] ^= 0x01
			fsys[token] = &fstest.MapFile{Data: b}
		}, []string{"tokens/1a2b.tsr: sha256 ", ", the manifest says "}},
		{"a byte appended", func(fsys fstest.MapFS) {
			fsys[token] = &fstest.MapFile{Data: append(bytes.Clone(fsys[token].Data), 0)}
		}, []string{"tokens/1a2b.tsr: size 6, the manifest says 5", "tokens/1a2b.tsr: sha256 "}},
		{"removed", func(fsys fstest.MapFS) { delete(fsys, token) },
			[]string{"tokens/1a2b.tsr: listed in the manifest but missing"}},
		{"replaced by a directory", func(fsys fstest.MapFS) { fsys[token] = &fstest.MapFile{Mode: fs.ModeDir | 0o755} },
			[]string{"tokens/1a2b.tsr: not a regular file"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fsys := fixture()
			m := withManifest(t, fsys)
			c.change(fsys)
			p := strings.Join(CheckFiles(fsys, m.Files), "\n")
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

func TestManifestIsReadStrictly(t *testing.T) {
	good := withManifest(t, fixture())
	edit := func(f func(m *Manifest)) []byte {
		m := *good
		m.Files = append([]File(nil), good.Files...)
		f(&m)
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if _, err := ParseManifest(edit(func(*Manifest) {})); err != nil {
		t.Fatalf("the manifest itself: %v", err)
	}
	cases := map[string][]byte{
		"another format":         edit(func(m *Manifest) { m.Format = "chronolog-export/2" }),
		"a path out of the tree": edit(func(m *Manifest) { m.Files[0].Path = "../outside" }),
		"an absolute path":       edit(func(m *Manifest) { m.Files[0].Path = "/etc/passwd" }),
		"the manifest listed":    edit(func(m *Manifest) { m.Files[0].Path = ManifestFile }),
		"unsorted": edit(func(m *Manifest) {
			m.Files[0], m.Files[1] = m.Files[1], m.Files[0]
		}),
		"listed twice":       edit(func(m *Manifest) { m.Files[1] = m.Files[0] }),
		"an upper-case hash": edit(func(m *Manifest) { m.Files[0].SHA256 = strings.ToUpper(m.Files[0].SHA256) }),
		"a short hash":       edit(func(m *Manifest) { m.Files[0].SHA256 = m.Files[0].SHA256[:62] }),
		"a negative size":    edit(func(m *Manifest) { m.Files[0].Size = -1 }),
		"an unknown field":   append(bytes.TrimSuffix(edit(func(*Manifest) {}), []byte("}")), []byte(`,"extra":1}`)...),
		"two documents":      append(edit(func(*Manifest) {}), []byte(`{}`)...),
	}
	for name, raw := range cases {
		if _, err := ParseManifest(raw); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestManifestBytesAreTheFormats holds manifest.json to the bytes bundles
// already written carry: manifest.tsr is over them, so a change in the
// encoding would be a new format.
func TestManifestBytesAreTheFormats(t *testing.T) {
	m := testManifest()
	m.Files = []File{{Path: "events.jsonl", SHA256: strings.Repeat("ab", 32), Size: 12}}
	raw, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	want := `{
  "format": "chronolog-export/1",
  "from": "2026-01-01T00:00:00Z",
  "to": "2026-02-01T00:00:00Z",
  "firstPosition": 7,
  "lastPosition": 7,
  "events": 1,
  "tokens": 2,
  "createdAt": "2026-02-01T01:00:00Z",
  "tsa": "http://tsa.example/tsa",
  "logOrigin": "origin",
  "files": [
    {
      "path": "events.jsonl",
      "sha256": "` + strings.Repeat("ab", 32) + `",
      "size": 12
    }
  ]
}
`
	if string(raw) != want {
		t.Errorf("manifest.json:\n%s\nwant:\n%s", raw, want)
	}
}

func TestLineKeepsThePayloadByteForByte(t *testing.T) {
	payload := []byte(`{"type":"TimestampIssued.v1","id":"x","data":{"s":"a\u00e9\n\"b"},"metadata":{}}`)
	line := AppendLine(nil, 42, 3, payload)
	if !bytes.HasSuffix(line, []byte("}\n")) || bytes.Count(line, []byte("\n")) != 1 {
		t.Fatalf("not one line: %q", line)
	}
	l, err := ParseLine(bytes.TrimSuffix(line, []byte("\n")))
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
		if _, err := ParseLine([]byte(bad)); err == nil {
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
		if err := CheckPayload([]byte(p)); err == nil {
			t.Errorf("a payload %s: accepted", name)
		}
	}
}

func TestSerials(t *testing.T) {
	for s, ok := range map[string]bool{"1a2b": true, "0": true, "": false, "01": false, "1A": false, "../x": false, "1a.tsr": false} {
		if IsSerial(s) != ok {
			t.Errorf("IsSerial(%q) = %v", s, !ok)
		}
	}
}

func TestTokenFileByKind(t *testing.T) {
	token := []byte{0x30, 0x03, 0x02, 0x01, 0x05}
	for _, c := range []struct {
		protocol, path string
		body           []byte
	}{
		{"", "tokens/1a.tsr", []byte{0x30, 0x0a, 0x30, 0x03, 0x02, 0x01, 0x00, 0x30, 0x03, 0x02, 0x01, 0x05}},
		{"rfc3161", "tokens/1a.tsr", []byte{0x30, 0x0a, 0x30, 0x03, 0x02, 0x01, 0x00, 0x30, 0x03, 0x02, 0x01, 0x05}},
		{events.ProtocolAuthenticode, "tokens/1a.p7", token},
	} {
		p, body, err := TokenFile(&events.TimestampIssued{Serial: "1a", Protocol: c.protocol, Token: token})
		if err != nil || p != c.path || !bytes.Equal(body, c.body) {
			t.Errorf("protocol %q: %s %x, %v; want %s %x", c.protocol, p, body, err, c.path, c.body)
		}
	}
	for name, ti := range map[string]events.TimestampIssued{
		"an unknown protocol":   {Serial: "1a", Protocol: "x"},
		"a serial with a path":  {Serial: "../1a"},
		"a serial with leading": {Serial: "01a"},
	} {
		if p, _, err := TokenFile(&ti); err == nil {
			t.Errorf("%s: %s", name, p)
		}
	}
}

package main

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"
)

// exportFormat names the bundle layout; a verifier refuses any other.
const exportFormat = "chronolog-export/1"

// The bundle's files that the manifest does not list: itself, and its
// timestamp, which is over it.
const (
	exportManifestFile = "manifest.json"
	exportManifestTSR  = "manifest.tsr"
)

// exportManifest is manifest.json: what the bundle holds and claims.
type exportManifest struct {
	Format string `json:"format"`
	// From and To bound the export's recordedAt window [From, To).
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	// FirstPosition and LastPosition bound events.jsonl, both included.
	FirstPosition uint64 `json:"firstPosition"`
	LastPosition  uint64 `json:"lastPosition"`
	// Events is the number of lines of events.jsonl, Tokens the number of
	// TimestampIssued among them (each with its token file and proof).
	Events    int       `json:"events"`
	Tokens    int       `json:"tokens"`
	CreatedAt time.Time `json:"createdAt"`
	// TSA is the URL manifest.tsr was requested from; LogOrigin the origin
	// of log/checkpoint.
	TSA       string `json:"tsa"`
	LogOrigin string `json:"logOrigin"`
	// Files lists every other file of the bundle, sorted by path.
	Files []exportFile `json:"files"`
}

// exportFile is one file of the bundle: its slash-separated path under
// the bundle directory, its hex SHA-256 and its size.
type exportFile struct {
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
}

// listBundleFiles walks dir and describes every regular file but the
// manifest and its timestamp, sorted by path. Anything else than
// directories and regular files is refused: a bundle holds no links.
func listBundleFiles(dir string) ([]exportFile, error) {
	var files []exportFile
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			return nil
		}
		if !d.Type().IsRegular() {
			return fmt.Errorf("%s is not a regular file", rel)
		}
		if rel == exportManifestFile || rel == exportManifestTSR {
			return nil
		}
		sum, size, err := hashBundleFile(p)
		if err != nil {
			return err
		}
		files = append(files, exportFile{Path: rel, SHA256: sum, Size: size})
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(files, func(a, b exportFile) int { return cmp.Compare(a.Path, b.Path) })
	return files, nil
}

func hashBundleFile(p string) (string, int64, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, fmt.Errorf("read %s: %w", p, err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// writeManifest lists the bundle's files into m and writes manifest.json;
// it returns the bytes written, which manifest.tsr is over.
func writeManifest(dir string, m *exportManifest) ([]byte, error) {
	files, err := listBundleFiles(dir)
	if err != nil {
		return nil, err
	}
	m.Files = files
	raw, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	raw = append(raw, '\n')
	if err := os.WriteFile(filepath.Join(dir, exportManifestFile), raw, 0o644); err != nil {
		return nil, err
	}
	return raw, nil
}

// readManifest parses manifest.json strictly: known fields only, the
// format this build reads, and sane paths listed once each in order.
func readManifest(raw []byte) (*exportManifest, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var m exportManifest
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("manifest.json: %w", err)
	}
	if dec.More() {
		return nil, errors.New("manifest.json: data after the manifest")
	}
	if m.Format != exportFormat {
		return nil, fmt.Errorf("manifest.json: format %q, this build reads %q", m.Format, exportFormat)
	}
	for i, f := range m.Files {
		if !fs.ValidPath(f.Path) || f.Path == "." || f.Path == exportManifestFile || f.Path == exportManifestTSR {
			return nil, fmt.Errorf("manifest.json: file %d has the path %q", i, f.Path)
		}
		if i > 0 && m.Files[i-1].Path >= f.Path {
			return nil, fmt.Errorf("manifest.json: files not sorted by path, or listed twice: %q after %q", f.Path, m.Files[i-1].Path)
		}
		if d, err := hex.DecodeString(f.SHA256); err != nil || len(d) != sha256.Size || hex.EncodeToString(d) != f.SHA256 {
			return nil, fmt.Errorf("manifest.json: %s: sha256 %q is not 64 lower-case hex digits", f.Path, f.SHA256)
		}
		if f.Size < 0 {
			return nil, fmt.Errorf("manifest.json: %s: size %d", f.Path, f.Size)
		}
	}
	return &m, nil
}

// checkBundleFiles compares the bundle under root with the manifest's
// list: every listed file there with its size and SHA-256, no file there
// unlisted. It returns the problems found.
func checkBundleFiles(root fs.FS, files []exportFile) []string {
	var problems []string
	listed := map[string]bool{}
	for _, f := range files {
		listed[f.Path] = true
		info, err := fs.Stat(root, f.Path)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: listed in the manifest but missing: %v", f.Path, err))
			continue
		}
		if !info.Mode().IsRegular() {
			problems = append(problems, fmt.Sprintf("%s: not a regular file", f.Path))
			continue
		}
		sum, size, err := hashFSFile(root, f.Path)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", f.Path, err))
			continue
		}
		if size != f.Size {
			problems = append(problems, fmt.Sprintf("%s: size %d, the manifest says %d", f.Path, size, f.Size))
		}
		if sum != f.SHA256 {
			problems = append(problems, fmt.Sprintf("%s: sha256 %s, the manifest says %s", f.Path, sum, f.SHA256))
		}
	}
	err := fs.WalkDir(root, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", p, err))
			return nil
		}
		if d.IsDir() || p == exportManifestFile || p == exportManifestTSR || listed[p] {
			return nil
		}
		if !d.Type().IsRegular() {
			problems = append(problems, fmt.Sprintf("%s: not a regular file, and not listed in the manifest", p))
			return nil
		}
		problems = append(problems, fmt.Sprintf("%s: not listed in the manifest", p))
		return nil
	})
	if err != nil {
		problems = append(problems, err.Error())
	}
	return problems
}

func hashFSFile(root fs.FS, p string) (string, int64, error) {
	f, err := root.Open(p)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// Lines of events.jsonl, clock.jsonl, keys.jsonl and config.jsonl are
//
//	{"position":N,"revision":R,"payload":PAYLOAD}
//
// PAYLOAD being the event's stored envelope, byte for byte: the bytes the
// transparency log hashed. Position is its place in the store's global
// order, Revision its index in its stream.

// exportLine is one such line, parsed.
type exportLine struct {
	Position uint64          `json:"position"`
	Revision uint64          `json:"revision"`
	Payload  json.RawMessage `json:"payload"`
}

// appendExportLine appends the line of an event, newline included.
func appendExportLine(b []byte, position, revision uint64, payload []byte) []byte {
	b = append(b, `{"position":`...)
	b = strconv.AppendUint(b, position, 10)
	b = append(b, `,"revision":`...)
	b = strconv.AppendUint(b, revision, 10)
	b = append(b, `,"payload":`...)
	b = append(b, payload...)
	return append(b, "}\n"...)
}

// parseExportLine reads a line (without its newline) and insists that it
// is exactly as appendExportLine writes it, so that its payload is the
// bytes between the prefix and the final brace.
func parseExportLine(line []byte) (exportLine, error) {
	var l exportLine
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&l); err != nil {
		return l, fmt.Errorf("not a line of the export: %w", err)
	}
	if err := checkStoredPayload(l.Payload); err != nil {
		return l, err
	}
	if !bytes.Equal(appendExportLine(nil, l.Position, l.Revision, l.Payload), append(line, '\n')) {
		return l, errors.New(`not a line as the export writes it: {"position":N,"revision":R,"payload":EVENT}`)
	}
	return l, nil
}

// checkStoredPayload checks that an event's payload can be one line of
// the export: a JSON object, compact, so without a newline.
func checkStoredPayload(p []byte) error {
	if len(p) == 0 || p[0] != '{' || !json.Valid(p) {
		return errors.New("the payload is not a JSON object")
	}
	var c bytes.Buffer
	if err := json.Compact(&c, p); err != nil {
		return err
	}
	if !bytes.Equal(c.Bytes(), p) || bytes.ContainsAny(p, "\r\n") {
		return errors.New("the payload is not compact JSON on one line")
	}
	return nil
}

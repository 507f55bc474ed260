// Package bundle is the compliance bundle: the format `tsactl export`
// writes (format chronolog-export/1) and the rules `tsactl export verify`
// checks a bundle by, offline, against the relying party's own trust
// anchors.
//
// A bundle is a directory:
//
//	events.jsonl            the range's events, one line each (Line)
//	clock.jsonl             the range's events of stream tsa-clock, same lines
//	keys.jsonl config.jsonl the whole tsa-keys and tsa-config streams up to the range's end
//	tokens/SERIAL.tsr       each RFC 3161 token issued, as a granted TimeStampResp (DER)
//	tokens/SERIAL.p7        each Authenticode countersignature (PKCS#7 DER)
//	log/checkpoint          the log's signed checkpoint
//	log/proofs/SERIAL.json  each token's inclusion proof (Proof)
//	log/segments/I.json     each segment sealed in the trailing bookkeeping (SegmentProof)
//	log/consistency/A-B.json  the proof that log/checkpoint (size B) extends an older one (Consistency)
//	manifest.json manifest.tsr
//
// The package is pure: it reads a bundle through the fs.FS it is handed
// and takes its trust anchors as arguments; writing bundles is the work
// of adapters/bundlewriter.
package bundle

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"time"
)

// Format names the bundle layout; a verifier refuses any other.
const Format = "chronolog-export/1"

// The bundle's files. The manifest lists every other file; it does not
// list itself, nor its timestamp, which is over it.
const (
	ManifestFile   = "manifest.json"
	ManifestTSR    = "manifest.tsr"
	EventsFile     = "events.jsonl"
	ClockFile      = "clock.jsonl"
	KeysFile       = "keys.jsonl"
	ConfigFile     = "config.jsonl"
	CheckpointFile = "log/checkpoint"
	TokensDir      = "tokens"
	ProofsDir      = "log/proofs"
	SegmentsDir    = "log/segments"
	ConsistencyDir = "log/consistency"
)

// RequiredFiles are in every bundle, listed in its manifest.
var RequiredFiles = []string{EventsFile, ClockFile, KeysFile, ConfigFile, CheckpointFile}

// ProofPath is the file of a token's inclusion proof.
func ProofPath(serial string) string { return ProofsDir + "/" + serial + ".json" }

// SegmentProofPath is the file of a sealed segment's inclusion proof.
func SegmentProofPath(index uint64) string {
	return SegmentsDir + "/" + strconv.FormatUint(index, 10) + ".json"
}

// ConsistencyPath is the file of the proof that the tree of size to
// extends that of size from.
func ConsistencyPath(from, to uint64) string {
	return fmt.Sprintf("%s/%d-%d.json", ConsistencyDir, from, to)
}

// Manifest is manifest.json: what the bundle holds and claims.
type Manifest struct {
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
	Files []File `json:"files"`
}

// File is one file of the bundle: its slash-separated path under the
// bundle directory, its hex SHA-256 and its size.
type File struct {
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
}

// Marshal encodes manifest.json as the export writes it: indented, with a
// final newline. manifest.tsr is over these bytes.
func (m *Manifest) Marshal() ([]byte, error) {
	raw, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(raw, '\n'), nil
}

// ParseManifest parses manifest.json strictly: known fields only, the
// format this build reads, and sane paths listed once each in order.
func ParseManifest(raw []byte) (*Manifest, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var m Manifest
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("manifest.json: %w", err)
	}
	if dec.More() {
		return nil, errors.New("manifest.json: data after the manifest")
	}
	if m.Format != Format {
		return nil, fmt.Errorf("manifest.json: format %q, this build reads %q", m.Format, Format)
	}
	for i, f := range m.Files {
		if !fs.ValidPath(f.Path) || f.Path == "." || f.Path == ManifestFile || f.Path == ManifestTSR {
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

package bundle

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/chronolog/chronolog/domain/merkle"
	"github.com/chronolog/chronolog/domain/translog"
)

// The files under log/ are JSON, hashes and bytes in standard base64 as in
// C2SP checkpoints. A token's proof is the auditor API's /log/v1/proof
// answer as served (schemas/openapi.yaml); the bundle keeps its own copy
// of that shape so that reading a bundle needs nothing of the API's code,
// and adapters/bundlewriter holds the two to the same bytes.

// Proof is log/proofs/SERIAL.json: a token's TimestampIssued event, byte
// for byte, proven in the log.
type Proof struct {
	Serial     string       `json:"serial,omitempty"`
	Event      ProofEvent   `json:"event"`
	Segment    ProofSegment `json:"segment"`
	EventIndex uint64       `json:"eventIndex"`
	EventPath  []string     `json:"eventPath"`
	LogPath    []string     `json:"logPath"`
	// Checkpoint is the signed note the proof leads to.
	Checkpoint string `json:"checkpoint"`
}

// ProofEvent is a stored event, its payload exactly as stored.
type ProofEvent struct {
	Position uint64 `json:"position"`
	Stream   string `json:"stream"`
	Revision uint64 `json:"revision"`
	ID       string `json:"id"`
	Type     string `json:"type"`
	Payload  []byte `json:"payload"`
}

// ProofSegment is the log's leaf holding the event.
type ProofSegment struct {
	Index uint64 `json:"index"`
	// Leaf is the encoded leaf (schemas/translog/segment-leaf.md).
	Leaf   []byte       `json:"leaf"`
	First  uint64       `json:"first"`
	Last   uint64       `json:"last"`
	Count  uint64       `json:"count"`
	Root   []byte       `json:"root"`
	Events []ProofEvent `json:"events,omitempty"`
}

// Consistency is log/consistency/A-B.json: the tree of size To extends
// that of From.
type Consistency struct {
	From  uint64   `json:"from"`
	To    uint64   `json:"to"`
	Proof []string `json:"proof"`
}

// SegmentProof is log/segments/INDEX.json: a leaf of the log and its
// inclusion proof in the tree of log/checkpoint.
type SegmentProof struct {
	Index uint64 `json:"index"`
	// Leaf is the encoded leaf (schemas/translog/segment-leaf.md), base64.
	Leaf []byte `json:"leaf"`
	// Size is log/checkpoint's size; LogPath leads from the leaf's hash
	// to its root.
	Size    uint64   `json:"size"`
	LogPath []string `json:"logPath"`
}

// MarshalFile encodes one of the log's files as the export writes it:
// compact JSON and a newline.
func MarshalFile(v any) ([]byte, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(raw, '\n'), nil
}

// ParseProof reads a token's proof file.
func ParseProof(raw []byte) (Proof, error) {
	var p Proof
	err := json.Unmarshal(raw, &p)
	return p, err
}

// ParseConsistency reads a consistency proof file.
func ParseConsistency(raw []byte) (Consistency, error) {
	var c Consistency
	err := json.Unmarshal(raw, &c)
	return c, err
}

// ParseSegmentProof reads a segment's proof file strictly: its fields
// only, one document.
func ParseSegmentProof(raw []byte) (SegmentProof, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var sp SegmentProof
	err := dec.Decode(&sp)
	return sp, err
}

// EncodeHashes writes proof hashes as base64.
func EncodeHashes(hs []merkle.Hash) []string {
	out := make([]string, len(hs))
	for i := range hs {
		out[i] = base64.StdEncoding.EncodeToString(hs[i][:])
	}
	return out
}

// DecodeHashes reads base64 proof hashes.
func DecodeHashes(in []string) ([]merkle.Hash, error) {
	out := make([]merkle.Hash, len(in))
	for i, s := range in {
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil || len(b) != len(out[i]) {
			return nil, fmt.Errorf("proof hash %d is not 32 base64 bytes", i)
		}
		copy(out[i][:], b)
	}
	return out, nil
}

// EventProof is the proof for verification. The segment's fields are
// taken from its encoded leaf, not from the JSON copies beside it, so a
// proof cannot disagree with itself.
func (p Proof) EventProof() (translog.EventProof, error) {
	leaf, err := translog.ParseSegmentLeaf(p.Segment.Leaf)
	if err != nil {
		return translog.EventProof{}, err
	}
	ep, err := DecodeHashes(p.EventPath)
	if err != nil {
		return translog.EventProof{}, fmt.Errorf("event path: %w", err)
	}
	lp, err := DecodeHashes(p.LogPath)
	if err != nil {
		return translog.EventProof{}, fmt.Errorf("log path: %w", err)
	}
	if p.Checkpoint == "" {
		return translog.EventProof{}, errors.New("the proof carries no checkpoint")
	}
	return translog.EventProof{
		Position: p.Event.Position, Payload: p.Event.Payload,
		Segment: leaf, SegmentIndex: p.Segment.Index,
		EventIndex: p.EventIndex, EventPath: ep, LogPath: lp,
		Checkpoint: []byte(p.Checkpoint),
	}, nil
}

package bundle

import (
	"bytes"
	"encoding/json"

	"github.com/chronolog/chronolog/domain/logwire"
)

// The files under log/ are JSON, hashes and bytes in standard base64 as in
// C2SP checkpoints. A token's proof is the auditor API's /log/v1/proof
// answer as served (schemas/openapi.yaml, domain/logwire).

// Proof is log/proofs/SERIAL.json: a token's TimestampIssued event, byte
// for byte, proven in the log: the auditor API's answer as served.
type Proof = logwire.Proof

// ProofEvent is a stored event, its payload exactly as stored.
type ProofEvent = logwire.Event

// ProofSegment is the log's leaf holding the event.
type ProofSegment = logwire.Segment

// Consistency is log/consistency/A-B.json: the tree of size To extends
// that of From.
type Consistency = logwire.Consistency

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

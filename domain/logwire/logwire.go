// Package logwire is the JSON of Chronolog's auditor API (/log/v1/,
// described in schemas/openapi.yaml), shared by the server that speaks it
// (adapters/httpapi) and the clients that read it (adapters/logclient,
// tsactl), so that an auditor's client links nothing of the server.
package logwire

import (
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/chronolog/chronolog/domain/merkle"
	"github.com/chronolog/chronolog/domain/translog"
)

// The JSON the auditor API speaks, described in schemas/openapi.yaml.
// Hashes and bytes are standard base64, as in C2SP checkpoints.

// Event is a stored event, its payload exactly as stored.
type Event struct {
	Position uint64 `json:"position"`
	Stream   string `json:"stream"`
	Revision uint64 `json:"revision"`
	ID       string `json:"id"`
	Type     string `json:"type"`
	Payload  []byte `json:"payload"`
}

// Segment is one leaf of the log and the events it commits to.
type Segment struct {
	Index uint64 `json:"index"`
	// Leaf is the encoded leaf (schemas/translog/segment-leaf.md).
	Leaf   []byte  `json:"leaf"`
	First  uint64  `json:"first"`
	Last   uint64  `json:"last"`
	Count  uint64  `json:"count"`
	Root   []byte  `json:"root"`
	Events []Event `json:"events,omitempty"`
}

// Proof proves one event, a token's TimestampIssued, in the log.
type Proof struct {
	Serial     string   `json:"serial,omitempty"`
	Event      Event    `json:"event"`
	Segment    Segment  `json:"segment"`
	EventIndex uint64   `json:"eventIndex"`
	EventPath  []string `json:"eventPath"`
	LogPath    []string `json:"logPath"`
	// Checkpoint is the signed note the proof leads to.
	Checkpoint string `json:"checkpoint"`
}

// Consistency proves that the tree of size To extends that of From.
type Consistency struct {
	From  uint64   `json:"from"`
	To    uint64   `json:"to"`
	Proof []string `json:"proof"`
}

// Inclusion proves leaf Index in the tree of Size leaves.
type Inclusion struct {
	Index uint64   `json:"index"`
	Size  uint64   `json:"size"`
	Proof []string `json:"proof"`
}

// Checkpoint is a recorded checkpoint.
type Checkpoint struct {
	Size uint64 `json:"size"`
	Root []byte `json:"root"`
	Note string `json:"note"`
	// Position is the LogCheckpointSigned event's position in the store.
	Position uint64 `json:"position"`
}

// Checkpoints is a page of the checkpoint history, oldest first.
type Checkpoints struct {
	Checkpoints []Checkpoint `json:"checkpoints"`
	// Next is the position to ask for the next page after, 0 at the end.
	Next uint64 `json:"next,omitempty"`
}

// Problem is the body of every auditor API error.
type Problem struct {
	Error string `json:"error"`
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

// EventProof turns the wire proof into the domain's, for verification. The
// segment's fields are taken from its encoded leaf, not from the JSON
// copies beside it, so a served leaf cannot disagree with itself.
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

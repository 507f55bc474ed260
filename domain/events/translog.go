package events

// Wire names of the transparency log's bookkeeping events.
const (
	TypeLogSegmentSealed    = "LogSegmentSealed.v1"
	TypeLogCheckpointSigned = "LogCheckpointSigned.v1"
)

// Streams of the log writer. A segment's event is appended at the revision
// equal to the segment's index in the log, so the store itself refuses a
// second record of the same segment.
const (
	LogSegmentsStream    = "translog-segments"
	LogCheckpointsStream = "translog-checkpoints"
)

// LogSegmentSealed records a segment of the event stream committed to the
// transparency log as one leaf.
type LogSegmentSealed struct {
	// Index is the leaf's index in the log.
	Index uint64 `json:"index"`
	// First and Last are the positions of the segment's first and last
	// event, Count how many events it holds.
	First uint64 `json:"first"`
	Last  uint64 `json:"last"`
	Count uint64 `json:"count"`
	// Root is the hex RFC 9162 root over the events' leaf hashes.
	Root string `json:"root"`
	// LeafHash is the hex RFC 9162 leaf hash of the encoded leaf.
	LeafHash string `json:"leafHash"`
	// Log names the log backend (tessera, trillian).
	Log string `json:"log"`
}

func (LogSegmentSealed) EventType() string { return TypeLogSegmentSealed }

// LogCheckpointSigned records a checkpoint the log published: a signed
// note an auditor can check the log's history against.
type LogCheckpointSigned struct {
	Origin string `json:"origin"`
	Size   uint64 `json:"size"`
	// Root is the hex root hash at Size.
	Root string `json:"root"`
	// Note is the signed checkpoint, exactly as published.
	Note string `json:"note"`
}

func (LogCheckpointSigned) EventType() string { return TypeLogCheckpointSigned }

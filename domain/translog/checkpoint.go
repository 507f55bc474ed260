package translog

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"

	"github.com/chronolog/chronolog/domain/merkle"
)

// Checkpoint is the body of a C2SP tlog-checkpoint
// (https://c2sp.org/tlog-checkpoint): the log's origin, its size and root,
// and optional extension lines. Signed, it is a signed note.
type Checkpoint struct {
	Origin     string
	Size       uint64
	Root       merkle.Hash
	Extensions []string
}

// Marshal encodes the body: one line each for origin, size and base64 root,
// then the extension lines.
func (c Checkpoint) Marshal() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s\n%d\n%s\n", c.Origin, c.Size, base64.StdEncoding.EncodeToString(c.Root[:]))
	for _, e := range c.Extensions {
		b.WriteString(e)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// ErrBadCheckpoint is returned for a body that is not a checkpoint.
var ErrBadCheckpoint = errors.New("translog: malformed checkpoint")

// ParseCheckpoint decodes a checkpoint body strictly: every line ends in a
// newline, the size is decimal without leading zeros, the root is 32 bytes.
func ParseCheckpoint(body []byte) (Checkpoint, error) {
	text := string(body)
	if !strings.HasSuffix(text, "\n") {
		return Checkpoint{}, fmt.Errorf("%w: no final newline", ErrBadCheckpoint)
	}
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if len(lines) < 3 {
		return Checkpoint{}, fmt.Errorf("%w: %d lines", ErrBadCheckpoint, len(lines))
	}
	var c Checkpoint
	c.Origin = lines[0]
	if c.Origin == "" {
		return Checkpoint{}, fmt.Errorf("%w: empty origin", ErrBadCheckpoint)
	}
	size, err := strconv.ParseUint(lines[1], 10, 64)
	if err != nil || strconv.FormatUint(size, 10) != lines[1] {
		return Checkpoint{}, fmt.Errorf("%w: size %q", ErrBadCheckpoint, lines[1])
	}
	c.Size = size
	// Go's decoder skips \r and \n inside the input: insist on the
	// canonical encoding instead.
	root, err := base64.StdEncoding.Strict().DecodeString(lines[2])
	if err != nil || len(root) != len(c.Root) || base64.StdEncoding.EncodeToString(root) != lines[2] {
		return Checkpoint{}, fmt.Errorf("%w: root %q", ErrBadCheckpoint, lines[2])
	}
	copy(c.Root[:], root)
	for _, e := range lines[3:] {
		if e == "" {
			return Checkpoint{}, fmt.Errorf("%w: empty extension line", ErrBadCheckpoint)
		}
		c.Extensions = append(c.Extensions, e)
	}
	return c, nil
}

// SignCheckpoint signs c as a note with signer, whose name must be c's
// origin (C2SP: the key name is the log's origin).
func SignCheckpoint(c Checkpoint, signer note.Signer) ([]byte, error) {
	if signer.Name() != c.Origin {
		return nil, fmt.Errorf("translog: key %q cannot sign for origin %q", signer.Name(), c.Origin)
	}
	return note.Sign(&note.Note{Text: string(c.Marshal())}, signer)
}

// OpenCheckpoint verifies a signed checkpoint with the log's verifier and
// returns it. Signatures by other keys are allowed (witnesses cosign) but
// the log's own must be there and valid.
func OpenCheckpoint(signed []byte, log note.Verifier) (Checkpoint, error) {
	n, err := note.Open(signed, note.VerifierList(log))
	if err != nil {
		return Checkpoint{}, fmt.Errorf("translog: checkpoint signature: %w", err)
	}
	c, err := ParseCheckpoint([]byte(n.Text))
	if err != nil {
		return Checkpoint{}, err
	}
	if c.Origin != log.Name() {
		return Checkpoint{}, fmt.Errorf("%w: origin %q, log key %q", ErrBadCheckpoint, c.Origin, log.Name())
	}
	return c, nil
}

// ParseSignedCheckpoint reads a signed checkpoint's body without checking
// its signature: for those who trust the log they read (its own writer, an
// exporter), never for an auditor, who opens it with OpenCheckpoint.
func ParseSignedCheckpoint(signed []byte) (Checkpoint, error) {
	i := bytes.Index(signed, []byte("\n\n"))
	if i < 0 {
		return Checkpoint{}, fmt.Errorf("%w: not a signed note", ErrBadCheckpoint)
	}
	return ParseCheckpoint(signed[:i+1])
}

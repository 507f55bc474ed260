package logkey

import (
	"crypto"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

// algEd25519 is the signature-type octet C2SP signed notes give Ed25519.
const algEd25519 = 0x01

// External is a note signer whose Ed25519 key lives elsewhere — in an HSM,
// where CKM_EDDSA signs the note text itself — so that the log's key
// never exists in a file.
type External struct {
	name string
	hash uint32
	key  crypto.Signer
}

var _ note.Signer = (*External)(nil)

// NewExternal names key origin; key must hold an Ed25519 public key. It
// returns the signer and the verifier key auditors are given.
func NewExternal(origin string, key crypto.Signer) (*External, string, error) {
	if strings.ContainsAny(origin, "+ \n") || origin == "" {
		return nil, "", fmt.Errorf("logkey: origin %q may not be empty or hold '+', spaces or newlines", origin)
	}
	pub, ok := key.Public().(ed25519.PublicKey)
	if !ok {
		return nil, "", fmt.Errorf("logkey: the log's key must be Ed25519 (C2SP signed notes), not %T", key.Public())
	}
	enc := append([]byte{algEd25519}, pub...)
	h := sha256.New()
	h.Write([]byte(origin + "\n"))
	h.Write(enc)
	hash := binary.BigEndian.Uint32(h.Sum(nil))
	vkey := fmt.Sprintf("%s+%08x+%s", origin, hash, base64.StdEncoding.EncodeToString(enc))
	return &External{name: origin, hash: hash, key: key}, vkey, nil
}

func (e *External) Name() string    { return e.name }
func (e *External) KeyHash() uint32 { return e.hash }

// Sign signs msg with pure Ed25519 (no pre-hash), as notes require.
func (e *External) Sign(msg []byte) ([]byte, error) {
	sig, err := e.key.Sign(nil, msg, crypto.Hash(0))
	if err != nil {
		return nil, fmt.Errorf("logkey: sign with %s's key: %w", e.name, err)
	}
	return sig, nil
}

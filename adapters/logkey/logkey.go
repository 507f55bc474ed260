// Package logkey keeps the transparency log's Ed25519 note key in files:
// the private key (note's "PRIVATE+KEY+…" form, mode 0600) and the public
// verifier key an auditor is given (note's "<origin>+<hash>+<key>" form).
// The key's name is the log's origin, the first line of every checkpoint.
package logkey

import (
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

// Files names a key pair.
type Files struct {
	Private, Public string
}

// InDir names the key pair development servers keep in dir.
func InDir(dir string) Files {
	return Files{Private: filepath.Join(dir, "log.key"), Public: filepath.Join(dir, "log.pub")}
}

// Ensure loads the key pair, or creates one named origin when neither file
// exists. It refuses a key whose name is not origin: the origin may not
// change under a log.
func Ensure(f Files, origin string) (note.Signer, bool, error) {
	if _, err := os.Stat(f.Private); err == nil {
		s, err := Load(f.Private)
		if err != nil {
			return nil, false, err
		}
		if s.Name() != origin {
			return nil, false, fmt.Errorf("logkey: %s is the key of %q, not of %q", f.Private, s.Name(), origin)
		}
		return s, false, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, false, err
	}
	if strings.ContainsAny(origin, "+ \n") || origin == "" {
		return nil, false, fmt.Errorf("logkey: origin %q may not be empty or hold '+', spaces or newlines", origin)
	}
	skey, vkey, err := note.GenerateKey(rand.Reader, origin)
	if err != nil {
		return nil, false, fmt.Errorf("logkey: generate: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(f.Private), 0o700); err != nil {
		return nil, false, err
	}
	if err := writeNew(f.Private, skey+"\n", 0o600); err != nil {
		return nil, false, err
	}
	if err := writeNew(f.Public, vkey+"\n", 0o644); err != nil {
		return nil, false, err
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		return nil, false, err
	}
	return s, true, nil
}

// Load reads a private key file.
func Load(path string) (note.Signer, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("logkey: %w", err)
	}
	s, err := note.NewSigner(strings.TrimSpace(string(raw)))
	if err != nil {
		return nil, fmt.Errorf("logkey: %s: %w", path, err)
	}
	return s, nil
}

// LoadVerifier reads a public verifier key file (or takes the key itself
// when arg is not a file).
func LoadVerifier(arg string) (note.Verifier, error) {
	key := arg
	if raw, err := os.ReadFile(arg); err == nil {
		key = strings.TrimSpace(string(raw))
	}
	v, err := note.NewVerifier(key)
	if err != nil {
		return nil, fmt.Errorf("logkey: verifier key %q: %w", arg, err)
	}
	return v, nil
}

func writeNew(path, content string, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return fmt.Errorf("logkey: %w", err)
	}
	if _, err := f.WriteString(content); err != nil {
		f.Close()
		return fmt.Errorf("logkey: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("logkey: %w", err)
	}
	return f.Close()
}

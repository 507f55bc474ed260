package logkey

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/mod/sumdb/note"
)

func TestEnsureCreatesThenReuses(t *testing.T) {
	f := InDir(filepath.Join(t.TempDir(), "log"))
	s, created, err := Ensure(f, "tsa.example/log")
	if err != nil || !created || s.Name() != "tsa.example/log" {
		t.Fatalf("first Ensure: %v %v", created, err)
	}
	if st, _ := os.Stat(f.Private); st.Mode().Perm() != 0o600 {
		t.Errorf("private key mode %v", st.Mode().Perm())
	}
	v, err := LoadVerifier(f.Public)
	if err != nil || v.KeyHash() != s.KeyHash() {
		t.Fatalf("verifier: %v", err)
	}
	msg, _ := note.Sign(&note.Note{Text: "hello\n"}, s)
	if _, err := note.Open(msg, note.VerifierList(v)); err != nil {
		t.Fatalf("the public key does not verify the private key's note: %v", err)
	}
	again, created, err := Ensure(f, "tsa.example/log")
	if err != nil || created || again.KeyHash() != s.KeyHash() {
		t.Fatalf("second Ensure: %v %v", created, err)
	}
	if _, _, err := Ensure(f, "other.example/log"); err == nil {
		t.Error("the origin changed under an existing key")
	}
	if _, _, err := Ensure(InDir(t.TempDir()), "bad origin"); err == nil {
		t.Error("an origin with a space was taken")
	}
	if _, err := LoadVerifier("not a key"); err == nil {
		t.Error("garbage taken as a verifier key")
	}
}

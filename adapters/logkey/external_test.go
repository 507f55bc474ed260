package logkey

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"testing"

	"golang.org/x/mod/sumdb/note"
)

// TestExternalMatchesNote: a note signed through External verifies with
// the verifier key it hands out, under x/mod's own note implementation.
func TestExternalMatchesNote(t *testing.T) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, vkey, err := NewExternal("chronolog.example/log", priv)
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatalf("verifier key %q: %v", vkey, err)
	}
	if v.KeyHash() != s.KeyHash() || v.Name() != s.Name() {
		t.Fatal("signer and verifier disagree on the key's name or hash")
	}
	msg, err := note.Sign(&note.Note{Text: "chronolog.example/log\n7\nAAAA\n"}, s)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := note.Open(msg, note.VerifierList(v)); err != nil {
		t.Fatalf("the signed note does not verify: %v", err)
	}
	_, wrongPriv, _ := ed25519.GenerateKey(rand.Reader)
	s2, _, _ := NewExternal("chronolog.example/log", wrongPriv)
	forged, _ := note.Sign(&note.Note{Text: "chronolog.example/log\n7\nAAAA\n"}, s2)
	if _, err := note.Open(forged, note.VerifierList(v)); err == nil {
		t.Fatal("a note signed by another key verifies")
	}
}

func TestExternalRefusals(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	if _, _, err := NewExternal("bad origin", priv); err == nil {
		t.Fatal("an origin with a space was accepted")
	}
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := NewExternal("o", rk); err == nil {
		t.Fatal("an RSA key was accepted for notes")
	}
}

package bundle

import (
	"bytes"
	"crypto/ed25519"
	"reflect"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"github.com/chronolog/chronolog/domain/logwire"
)

// The bundle's JSON files come from whoever handed the bundle over: their
// parsers must refuse, never panic.

func FuzzParseManifest(f *testing.F) {
	m := testManifest()
	m.Files = []File{{Path: "events.jsonl", SHA256: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", Size: 0}}
	raw, err := m.Marshal()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(raw)
	f.Add([]byte(`{"format":"chronolog-export/1","files":[{"path":"a/../b","sha256":"","size":-1}]}`))
	f.Add([]byte(`{"format":"chronolog-export/1"}{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseManifest(b)
		if err != nil {
			return
		}
		// What was accepted is written again as a manifest that reads the
		// same.
		again, err := m.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		m2, err := ParseManifest(again)
		if err != nil {
			t.Fatalf("%q accepted, its encoding %q refused: %v", b, again, err)
		}
		if !reflect.DeepEqual(m.Files, m2.Files) || !m.From.Equal(m2.From) || !m.To.Equal(m2.To) || m.FirstPosition != m2.FirstPosition {
			t.Fatalf("%+v read back as %+v", m, m2)
		}
	})
}

func FuzzParseLine(f *testing.F) {
	f.Add(bytes.TrimSuffix(AppendLine(nil, 42, 3, []byte(`{"type":"X.v1","data":{"s":"\u00e9"}}`)), []byte("\n")))
	f.Add([]byte(`{"position":1,"revision":0,"payload":{}}`))
	f.Add([]byte(`{"position":1,"revision":0,"payload":{} }`))
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := ParseLine(b)
		if err != nil {
			return
		}
		if got := AppendLine(nil, l.Position, l.Revision, l.Payload); !bytes.Equal(got, append(b, '\n')) {
			t.Fatalf("%q accepted, written back as %q", b, got)
		}
	})
}

// FuzzParseLogFiles feeds the same bytes to the parsers of every file
// under log/, and what they accept to the verification they lead to.
func FuzzParseLogFiles(f *testing.F) {
	pub := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize)).Public().(ed25519.PublicKey)
	vkey, err := note.NewEd25519VerifierKey("example.com/log", pub)
	if err != nil {
		f.Fatal(err)
	}
	verifier, err := note.NewVerifier(vkey)
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte(`{"serial":"a1","event":{"position":4,"payload":"e30="},"segment":{"index":1,"leaf":"AAE="},"eventIndex":1,"eventPath":["AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="],"logPath":[],"checkpoint":"example.com/log\n3\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n— x\n"}`))
	f.Add([]byte(`{"from":2,"to":3,"proof":["AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="]}`))
	f.Add([]byte(`{"index":2,"leaf":"AAE=","size":3,"logPath":["!"]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if p, err := ParseProof(b); err == nil {
			if ep, err := p.EventProof(); err == nil {
				_, _ = ep.Verify(verifier)
			}
		}
		if c, err := ParseConsistency(b); err == nil {
			_, _ = logwire.DecodeHashes(c.Proof)
		}
		if sp, err := ParseSegmentProof(b); err == nil {
			_, _ = logwire.DecodeHashes(sp.LogPath)
		}
	})
}

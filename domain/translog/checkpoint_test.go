package translog

import (
	"errors"
	"testing"

	"github.com/chronolog/chronolog/domain/merkle"
)

func TestParseSignedCheckpointReadsTheBodyOnly(t *testing.T) {
	signer, _ := keys(t, origin)
	c := Checkpoint{Origin: origin, Size: 5, Root: merkle.EmptyRoot, Extensions: []string{"ext"}}
	signed, err := SignCheckpoint(c, signer)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseSignedCheckpoint(signed)
	if err != nil || got.Origin != origin || got.Size != 5 || got.Root != c.Root || len(got.Extensions) != 1 {
		t.Errorf("parsed %+v, %v", got, err)
	}
	for name, b := range map[string][]byte{
		"a body without signatures": c.Marshal(),
		"a malformed body":          []byte(origin + "\nfive\nroot\n\n— sig\n"),
	} {
		if _, err := ParseSignedCheckpoint(b); !errors.Is(err, ErrBadCheckpoint) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

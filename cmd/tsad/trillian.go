package main

import (
	"context"
	"errors"

	"golang.org/x/mod/sumdb/note"

	"github.com/chronolog/chronolog/domain/translog"
)

// openTrillian opens the Trillian adapter.
func openTrillian(ctx context.Context, f *logFlags, signer note.Signer) (translog.Log, error) {
	return nil, errors.New("--log trillian: not wired yet")
}

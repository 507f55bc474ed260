package main

import (
	"context"
	"errors"

	"golang.org/x/mod/sumdb/note"

	"github.com/chronolog/chronolog/adapters/translog/trillian"
	"github.com/chronolog/chronolog/domain/translog"
)

// openTrillian connects to a Trillian log server holding the log in a
// PREORDERED_LOG tree.
func openTrillian(ctx context.Context, f *logFlags, signer note.Signer) (translog.Log, error) {
	if f.trillianAddr == "" || f.trillianTree == 0 {
		return nil, errors.New("--log trillian needs --trillian-addr and --trillian-tree")
	}
	return trillian.New(ctx, trillian.Config{Addr: f.trillianAddr, TreeID: f.trillianTree, Signer: signer})
}

package e2e

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/chronolog/chronolog/adapters/eventstore/sqlite"
	"github.com/chronolog/chronolog/adapters/logkey"
	"github.com/chronolog/chronolog/adapters/translog/tessera"
	"github.com/chronolog/chronolog/domain/events"
	"github.com/chronolog/chronolog/domain/eventstore"
	"github.com/chronolog/chronolog/domain/merkle"
	"github.com/chronolog/chronolog/domain/translog"
)

// checkTesseraLog opens a stopped server's store and Tessera log and holds
// one to the other: the leaves cover positions 1… with no gap and no
// repeat, each leaf's root is over the stored bytes of its events, and
// there is one LogSegmentSealed event per leaf, at its index. It returns
// the last position covered and each issued token's position by serial.
func checkTesseraLog(t *testing.T, data string) (covered uint64, issuedAt map[string]uint64) {
	t.Helper()
	signer, err := logkey.Load(filepath.Join(data, "log.key"))
	if err != nil {
		t.Fatal(err)
	}
	l, err := tessera.New(context.Background(), tessera.Config{Dir: filepath.Join(data, "log"), Signer: signer})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return checkLog(t, data, l)
}

// checkLog holds a stopped server's store to its log, whichever backend.
func checkLog(t *testing.T, data string, l translog.Log) (covered uint64, issuedAt map[string]uint64) {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.New(ctx, sqlite.Config{Path: filepath.Join(data, "events.db"), ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()

	var all []eventstore.RecordedEvent
	issuedAt = map[string]uint64{}
	for after := uint64(0); ; {
		page, err := st.ReadAll(ctx, after, 4096)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		for _, e := range page {
			if e.Position != uint64(len(all))+1 {
				t.Fatalf("store position %d after %d", e.Position, len(all))
			}
			all = append(all, e)
			if e.Type == events.TypeTimestampIssued {
				_, ev, err := events.Decode(e.Payload)
				if err != nil {
					t.Fatal(err)
				}
				issuedAt[ev.(*events.TimestampIssued).Serial] = e.Position
			}
		}
		after = page[len(page)-1].Position
	}
	size, err := l.Size(ctx)
	if err != nil {
		t.Fatal(err)
	}
	next := uint64(1)
	for i := range size {
		raw, err := l.Leaf(ctx, i)
		if err != nil {
			t.Fatal(err)
		}
		leaf, err := translog.ParseSegmentLeaf(raw)
		if err != nil {
			t.Fatalf("leaf %d: %v", i, err)
		}
		if leaf.First != next {
			t.Fatalf("leaf %d starts at position %d, want %d: a gap or a repeat", i, leaf.First, next)
		}
		if leaf.Last > uint64(len(all)) {
			t.Fatalf("leaf %d covers position %d beyond the store's %d", i, leaf.Last, len(all))
		}
		var hs []merkle.Hash
		for _, e := range all[leaf.First-1 : leaf.Last] {
			hs = append(hs, merkle.LeafHash(e.Payload))
		}
		if uint64(len(hs)) != leaf.Count || merkle.Root(hs) != leaf.Root {
			t.Fatalf("leaf %d does not commit to the stored events %d–%d", i, leaf.First, leaf.Last)
		}
		next = leaf.Last + 1
	}
	sealed, err := st.ReadStream(ctx, events.LogSegmentsStream)
	if err != nil && size > 0 {
		t.Fatal(err)
	}
	if uint64(len(sealed)) != size {
		t.Fatalf("%d LogSegmentSealed events for %d leaves", len(sealed), size)
	}
	return next - 1, issuedAt
}

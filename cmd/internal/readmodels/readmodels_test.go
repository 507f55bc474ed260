package readmodels

import (
	"context"
	"crypto/sha256"
	"os"
	"path/filepath"
	"testing"

	readstore "github.com/chronolog/chronolog/adapters/readstore/sqlite"
)

func sumFile(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// TestOpenLiveWritesNothing: tsactl replay --verify opens the running
// server's read stores; it must not create, migrate or write them.
func TestOpenLiveWritesNothing(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	ps, err := Select("billing")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "billing.db")
	_, stores, err := Open(ctx, dir, ps, readstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	CloseAll(stores)
	before := sumFile(t, path)
	live, err := OpenLive(ctx, dir, ps)
	if err != nil {
		t.Fatal(err)
	}
	CloseAll(live)
	if sumFile(t, path) != before {
		t.Error("OpenLive changed a live read store")
	}
	if _, err := OpenLive(ctx, dir, All()); err == nil {
		t.Error("OpenLive opened read stores that do not exist")
	}
	if _, err := os.Stat(filepath.Join(dir, "archive.db")); err == nil {
		t.Error("OpenLive created a read store")
	}
}

package tessera

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/mod/sumdb/note"

	"github.com/chronolog/chronolog/adapters/translog/translogtest"
	"github.com/chronolog/chronolog/domain/translog"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// Tessera's goroutines end when Close cancels their context, a
		// moment after Close returns.
		goleak.IgnoreTopFunction("time.Sleep"))
}

func open(t *testing.T, dir string, signer note.Signer) *Log {
	t.Helper()
	l, err := New(context.Background(), Config{Dir: dir, Signer: signer, CheckpointInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestContract(t *testing.T) {
	translogtest.Run(t, translogtest.Harness{
		Open: func(t *testing.T, signer note.Signer) (translog.Log, func() translog.Log) {
			dir := filepath.Join(t.TempDir(), "log")
			l := open(t, dir, signer)
			return l, func() translog.Log {
				if err := l.Close(); err != nil {
					t.Fatal(err)
				}
				return open(t, dir, signer)
			}
		},
		CheckpointWithin: 5 * time.Second,
	})
}

func TestAnotherKeyIsRefused(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "log")
	mine, _ := translogtest.Keys(t, translogtest.Origin)
	l := open(t, dir, mine)
	if err := l.Append(context.Background(), 0, translog.SegmentLeaf{First: 1, Last: 1, Count: 1}.Marshal()); err != nil {
		t.Fatal(err)
	}
	l.Close()
	theirs, _ := translogtest.Keys(t, translogtest.Origin)
	if l, err := New(context.Background(), Config{Dir: dir, Signer: theirs}); err == nil {
		l.Close()
		t.Fatal("a log signed with another key was opened")
	}
}

func TestFilesServesOnlyTheTiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "log")
	signer, _ := translogtest.Keys(t, translogtest.Origin)
	l := open(t, dir, signer)
	defer l.Close()
	ctx := context.Background()
	for i := range 300 {
		if err := l.Append(ctx, uint64(i), translog.SegmentLeaf{First: uint64(i + 1), Last: uint64(i + 1), Count: 1}.Marshal()); err != nil {
			t.Fatal(err)
		}
	}
	// A stray temporary file, as a crash leaves them.
	os.WriteFile(filepath.Join(dir, "tile", "entries", "0481089113025"), []byte("x"), 0o644)
	files := l.Files()
	for _, name := range []string{"checkpoint", "tile/entries/000", "tile/0/000"} {
		if _, err := fs.Stat(files, name); err != nil {
			t.Errorf("%s not served: %v", name, err)
		}
	}
	var partial string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if rel, _ := filepath.Rel(dir, p); strings.Contains(rel, ".p/") && !d.IsDir() {
			partial = rel
		}
		return nil
	})
	if partial == "" {
		t.Fatal("no partial tile on disk after 300 leaves")
	}
	if _, err := fs.Stat(files, partial); err != nil {
		t.Errorf("partial %s not served: %v", partial, err)
	}
	for _, name := range []string{".state/treeState", ".state/version", "tile/entries/0481089113025", "../etc/passwd", "tile"} {
		if _, err := files.Open(name); err == nil {
			t.Errorf("%s is served", name)
		}
	}
}

package sqlite

import (
	"bufio"
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/chronolog/chronolog/domain/eventstore"
)

// envWriterChild makes the test binary a writer process on the store it
// names: it reads commands from standard input ("append N", "close") and
// answers each with a line.
const envWriterChild = "SQLITE_TEST_WRITER"

func maybeWriterChild() {
	path := os.Getenv(envWriterChild)
	if path == "" {
		return
	}
	ctx := context.Background()
	s, err := New(ctx, Config{Path: path})
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(2)
	}
	fmt.Println("open")
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		cmd := in.Text()
		if cmd == "close" {
			if err := s.Close(); err != nil {
				fmt.Println("error:", err)
				os.Exit(2)
			}
			fmt.Println("closed")
			os.Exit(0)
		}
		n, err := strconv.Atoi(strings.TrimPrefix(cmd, "append "))
		if err != nil {
			fmt.Println("error: bad command", cmd)
			os.Exit(2)
		}
		for range n {
			if _, err := s.Append(ctx, "w", eventstore.Any, ev("T.v1", `{"w":1}`)); err != nil {
				fmt.Println("error:", err)
				os.Exit(2)
			}
		}
		fmt.Println("head", s.Head())
	}
	os.Exit(0) // standard input closed: the store is left open, as by a crash
}

// writerProcess is another process writing a store.
type writerProcess struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Reader
}

func startWriter(t *testing.T, path string) *writerProcess {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envWriterChild+"="+path)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w := &writerProcess{cmd: cmd, in: in, out: bufio.NewReader(out)}
	t.Cleanup(func() { in.Close(); cmd.Process.Kill(); cmd.Wait() })
	w.expect(t, "open")
	return w
}

func (w *writerProcess) expect(t *testing.T, want string) {
	t.Helper()
	line, err := w.out.ReadString('\n')
	if strings.TrimSpace(line) != want {
		t.Fatalf("writer process says %q (%v), want %q", line, err, want)
	}
}

func (w *writerProcess) do(t *testing.T, cmd, want string) {
	t.Helper()
	if _, err := io.WriteString(w.in, cmd+"\n"); err != nil {
		t.Fatal(err)
	}
	w.expect(t, want)
}

func openReadOnly(t *testing.T, path string) *Store {
	t.Helper()
	s, err := New(context.Background(), Config{Path: path, ReadOnly: true})
	if err != nil {
		t.Fatalf("open read-only: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func readCount(t *testing.T, s *Store, after uint64) int {
	t.Helper()
	evs, err := s.ReadAll(context.Background(), after, 10000)
	if err != nil {
		t.Fatal(err)
	}
	return len(evs)
}

func fileSum(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// TestReadOnlyBesideWriterProcess: a store opened read-only reads what a
// writer in another process committed, before and after the store was
// opened, refuses to write, and does not disturb the writer.
func TestReadOnlyBesideWriterProcess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.db")
	w := startWriter(t, path)
	w.do(t, "append 100", "head 100")

	r := openReadOnly(t, path)
	if r.Head() != 100 || readCount(t, r, 0) != 100 {
		t.Fatalf("read-only beside the writer: head %d, %d events; want 100", r.Head(), readCount(t, r, 0))
	}
	if evs, err := r.ReadStream(context.Background(), "w"); err != nil || len(evs) != 100 {
		t.Fatalf("ReadStream: %d events, %v", len(evs), err)
	}
	ctx := context.Background()
	if _, err := r.Append(ctx, "x", eventstore.NoStream, ev("T.v1", "{}")); !errors.Is(err, ErrReadOnly) {
		t.Errorf("Append on a read-only store: %v, want ErrReadOnly", err)
	}
	if _, err := r.SubscribeAll(ctx, 0); !errors.Is(err, ErrReadOnly) {
		t.Errorf("SubscribeAll on a read-only store: %v, want ErrReadOnly", err)
	}
	// The writer goes on while the reader is open; the reader sees it.
	w.do(t, "append 50", "head 150")
	if n := readCount(t, r, 100); n != 50 {
		t.Errorf("read-only store sees %d of the 50 events committed after it opened", n)
	}
	if r.Head() != 100 {
		t.Errorf("Head moved to %d: it is the head at open", r.Head())
	}
	w.do(t, "close", "closed")
	if err := w.cmd.Wait(); err != nil {
		t.Fatalf("writer process: %v", err)
	}
	if n := readCount(t, r, 0); n != 150 {
		t.Errorf("after the writer closed: %d events, want 150", n)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
}

// TestReadOnlyStoppedAndCrashedWriter: a read-only store opens a store
// whose writer stopped cleanly (no WAL file left) and one whose writer was
// killed with SIGKILL (its WAL not checkpointed), and writes neither.
func TestReadOnlyStoppedAndCrashedWriter(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.db")
	w := startWriter(t, path)
	w.do(t, "append 20", "head 20")
	w.do(t, "close", "closed")
	w.cmd.Wait()
	if _, err := os.Stat(path + "-wal"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a cleanly stopped writer left its WAL (%v): the case is not tested", err)
	}
	before := fileSum(t, path)
	r := openReadOnly(t, path)
	if r.Head() != 20 || readCount(t, r, 0) != 20 {
		t.Fatalf("stopped writer: head %d, %d events; want 20", r.Head(), readCount(t, r, 0))
	}
	r.Close()
	if fileSum(t, path) != before {
		t.Error("opening read-only changed the database file")
	}

	w = startWriter(t, path)
	w.do(t, "append 30", "head 50")
	w.cmd.Process.Signal(syscall.SIGKILL)
	w.cmd.Wait()
	if st, err := os.Stat(path + "-wal"); err != nil || st.Size() == 0 {
		t.Fatalf("the killed writer left no WAL (%v): the case is not tested", err)
	}
	before = fileSum(t, path)
	r = openReadOnly(t, path)
	if r.Head() != 50 || readCount(t, r, 0) != 50 {
		t.Fatalf("killed writer: head %d, %d events; want 50", r.Head(), readCount(t, r, 0))
	}
	r.Close()
	if fileSum(t, path) != before {
		t.Error("opening read-only changed the database file (a checkpoint?)")
	}
	// The next writer still finds everything.
	s := newStore(t, Config{Path: path})
	if s.Head() != 50 {
		t.Errorf("writer after the read-only store: head %d, want 50", s.Head())
	}
}

// TestReadOnlyRefusals: a read-only open creates nothing and migrates
// nothing.
func TestReadOnlyRefusals(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.db")
	if s, err := New(context.Background(), Config{Path: missing, ReadOnly: true}); err == nil {
		s.Close()
		t.Error("opened a missing store read-only")
	} else if !strings.Contains(err.Error(), missing) {
		t.Errorf("the error does not name the file: %v", err)
	}
	if _, err := os.Stat(missing); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a read-only open created %s", missing)
	}

	for _, c := range []struct {
		version int
		want    string
	}{{0, "a writer (tsad) migrates it"}, {1, "a writer (tsad) migrates it"}, {99, "newer than this build"}} {
		path := filepath.Join(dir, fmt.Sprintf("v%d.db", c.version))
		db, err := sql.Open("sqlite3", "file:"+path)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(fmt.Sprintf("PRAGMA journal_mode=WAL; CREATE TABLE t (x); PRAGMA user_version = %d", c.version)); err != nil {
			t.Fatal(err)
		}
		db.Close()
		before := fileSum(t, path)
		s, err := New(context.Background(), Config{Path: path, ReadOnly: true})
		if err == nil {
			s.Close()
			t.Errorf("schema version %d opened read-only", c.version)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("schema version %d: %v, want %q", c.version, err, c.want)
		}
		if fileSum(t, path) != before {
			t.Errorf("schema version %d: the read-only open changed the file", c.version)
		}
	}

	// A fresh store, empty: head 0.
	path := filepath.Join(dir, "empty.db")
	newStore(t, Config{Path: path}).Close()
	r := openReadOnly(t, path)
	if r.Head() != 0 || readCount(t, r, 0) != 0 {
		t.Errorf("empty store: head %d", r.Head())
	}
	if err := r.Close(); err != nil || r.Close() != nil {
		t.Errorf("close twice: %v", err)
	}
	if _, err := r.ReadAll(context.Background(), 0, 1); !errors.Is(err, eventstore.ErrClosed) {
		t.Errorf("ReadAll after Close: %v", err)
	}
}

// TestWriterNeedsWritableFile: SQLite opens a file it may not write
// read-only without a word; the writer finds out at open, not at its first
// append (tsactl hsm opens the store before it changes a token).
func TestWriterNeedsWritableFile(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("as root every file is writable")
	}
	path := filepath.Join(t.TempDir(), "events.db")
	newStore(t, Config{Path: path}).Close()
	if err := os.Chmod(path, 0o444); err != nil {
		t.Fatal(err)
	}
	s, err := New(context.Background(), Config{Path: path})
	if err == nil {
		s.Close()
		t.Fatal("a writer opened a file it may not write")
	}
	if !strings.Contains(err.Error(), path) {
		t.Errorf("the error does not name the file: %v", err)
	}
	openReadOnly(t, path) // reading it is fine
}

// TestReadOnlyUnwritableDirectory: beside a running writer a reader needs
// no write access at all; once the writer stopped, SQLite must make the
// -shm and -wal files again, and a reader who may not is told so.
func TestReadOnlyUnwritableDirectory(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("as root every directory is writable")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "events.db")
	w := startWriter(t, path)
	w.do(t, "append 5", "head 5")
	t.Cleanup(func() { os.Chmod(dir, 0o755) })
	if err := os.Chmod(dir, 0o555); err != nil {
		t.Fatal(err)
	}
	r := openReadOnly(t, path)
	if readCount(t, r, 0) != 5 {
		t.Fatal("beside the writer: not every event read")
	}
	r.Close()
	// The writer removes its -shm and -wal files as it closes.
	os.Chmod(dir, 0o755)
	w.do(t, "close", "closed")
	w.cmd.Wait()
	os.Chmod(dir, 0o555)
	s, err := New(context.Background(), Config{Path: path, ReadOnly: true})
	if err == nil {
		s.Close()
		t.Fatal("opened a WAL store without its -shm file in a directory it may not write: the case is not tested")
	}
	if !strings.Contains(err.Error(), "the directory must be writable") {
		t.Errorf("the error does not say why: %v", err)
	}
}

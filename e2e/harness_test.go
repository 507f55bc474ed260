// Package e2e runs the built tsad and tsactl binaries against real clients
// (openssl ts, the digitorus parser) and real faults (kill -9, SIGTERM).
//
// A test that needs a tool this machine lacks skips with the tool's name,
// except under CI=true, where the skip is a failure: CI must never pass by
// skipping.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chronolog/chronolog/adapters/eventstore/sqlite"
	"github.com/chronolog/chronolog/domain/events"
	"github.com/chronolog/chronolog/domain/eventstore"
	"github.com/chronolog/chronolog/schemas"
)

var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "chronolog-e2e-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	build := exec.Command("go", "build", "-o", dir+"/", "./cmd/tsad", "./cmd/tsactl")
	build.Dir = ".."
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build binaries:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// requireTool returns the path of a tool, skipping without it (failing under CI=true).
func requireTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not installed, and CI must not skip: install it in .ci/run", name)
		}
		t.Skipf("%s is not installed (apt-get install %s)", name, name)
	}
	return p
}

// server is a running tsad.
type server struct {
	cmd    *exec.Cmd
	url    string
	base   string
	ca     string
	pkiDir string
	data   string
	mu     sync.Mutex
	out    bytes.Buffer
	done   chan error
	// endpoint is the URL tsad printed, sent on once its report is done.
	endpoint string
}

// startServer runs `tsad dev` on a free port in data and waits until it
// printed its whole start-up report (the endpoint first, the transparency
// log's lines last).
func startServer(t testing.TB, data string, args ...string) *server {
	t.Helper()
	s := &server{data: data, done: make(chan error, 1)}
	all := append([]string{"dev", "--addr", "127.0.0.1:0", "--data", data}, args...)
	s.cmd = exec.Command(filepath.Join(binDir, "tsad"), all...)
	stdout, err := s.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	s.cmd.Stderr = &lockedWriter{s: s}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	endpoint := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			s.mu.Lock()
			s.out.WriteString(line + "\n")
			s.mu.Unlock()
			if v, ok := strings.CutPrefix(line, "endpoint: "); ok {
				s.mu.Lock()
				s.endpoint = v
				s.mu.Unlock()
			}
			// The start-up report ends with the transparency log's lines.
			if strings.HasPrefix(line, "log key: ") || strings.HasPrefix(line, "transparency log: OFF") {
				s.mu.Lock()
				ep := s.endpoint
				s.mu.Unlock()
				endpoint <- ep
			}
			if v, ok := strings.CutPrefix(line, "verify against CA: "); ok {
				s.mu.Lock()
				s.ca = v
				s.mu.Unlock()
			}
		}
		io.Copy(io.Discard, stdout)
	}()
	go func() { s.done <- s.cmd.Wait() }()
	select {
	case s.url = <-endpoint:
	case err := <-s.done:
		t.Fatalf("tsad exited before serving: %v\n%s", err, s.output())
	case <-time.After(30 * time.Second):
		s.cmd.Process.Kill()
		t.Fatalf("tsad did not print its start-up report in 30 s\n%s", s.output())
	}
	s.base = strings.TrimSuffix(s.url, "/tsa")
	s.pkiDir = filepath.Join(data, "pki")
	t.Cleanup(func() { s.stop(t) })
	return s
}

func (s *server) caFile() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ca
}

func (s *server) output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.out.String()
}

type lockedWriter struct{ s *server }

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	return w.s.out.Write(p)
}

// stop sends SIGTERM and waits for a clean exit; it is a no-op when the
// process has already exited.
func (s *server) stop(t testing.TB) error {
	if s.cmd.ProcessState != nil {
		return nil
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.done:
		s.done <- err
		return err
	case <-time.After(40 * time.Second):
		s.cmd.Process.Kill()
		t.Errorf("tsad did not stop within 40 s of SIGTERM\n%s", s.output())
		return fmt.Errorf("timeout")
	}
}

// kill sends SIGKILL and waits.
func (s *server) kill() {
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	err := <-s.done
	s.done <- err
}

// post sends body with a content type and returns the HTTP answer.
func post(t *testing.T, url, contentType string, body []byte) (int, http.Header, []byte) {
	t.Helper()
	res, err := http.Post(url, contentType, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, res.Header, b
}

// run executes a command and returns its combined output, failing the test
// when it exits non-zero.
func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// readStore opens a server's event store read-only (the server stopped or
// running) and returns every event, decoded, by stream.
func readStore(t *testing.T, data string) map[string][]events.Event {
	t.Helper()
	st, err := sqlite.New(context.Background(), sqlite.Config{Path: filepath.Join(data, "events.db"), ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	out := map[string][]events.Event{}
	var after uint64
	for {
		batch, err := st.ReadAll(context.Background(), after, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(batch) == 0 {
			return out
		}
		for _, r := range batch {
			if r.Position <= after {
				t.Fatalf("position %d after %d: commit order broken", r.Position, after)
			}
			after = r.Position
			if err := schemas.ValidateEvent(r.Payload); err != nil {
				t.Fatalf("event %d does not match its schema: %v\n%s", r.Position, err, r.Payload)
			}
			_, e, err := events.Decode(r.Payload)
			if err != nil {
				t.Fatalf("event %d: %v", r.Position, err)
			}
			out[r.Stream] = append(out[r.Stream], e)
		}
	}
}

var _ eventstore.Store = (*sqlite.Store)(nil)

// execOutput runs a command that may fail and returns its output and error.
func execOutput(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	return string(out), err
}

// httpClient is a plain client for tests that need no TLS.
var httpClient = http.Client{Timeout: 15 * time.Second}

// lockedBuffer collects a process's output while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

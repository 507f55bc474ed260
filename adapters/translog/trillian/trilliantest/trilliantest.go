// Package trilliantest runs real Trillian v1.8.0 servers for tests: a
// trillian_log_server and a trillian_log_signer on free loopback ports,
// over a fresh database on a MariaDB/MySQL server, dropped afterwards.
//
// It needs the server's URI in CHRONOLOG_TEST_MYSQL_URI (a go-sql-driver
// DSN without a database, such as root@tcp(127.0.0.1:3306)/), the mysql
// client, and the two binaries at v1.8.0 in $TRILLIAN_BIN, else in
// GOPATH's bin or on PATH:
//
//	go install github.com/google/trillian/cmd/trillian_log_server@v1.8.0 github.com/google/trillian/cmd/trillian_log_signer@v1.8.0
//
// Without them a test skips, saying what is missing; under CI=true it
// fails instead, because CI must never pass by skipping (.ci/run provides
// them).
package trilliantest

import (
	"bytes"
	"context"
	"crypto/rand"
	"debug/buildinfo"
	"encoding/hex"
	"errors"
	"fmt"
	"go/build"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/trillian"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Version is the Trillian release the adapter is written against.
const Version = "v1.8.0"

// URIEnv names the environment variable holding the database server's URI.
const URIEnv = "CHRONOLOG_TEST_MYSQL_URI"

// Server is a running Trillian log server and signer over their own
// database.
type Server struct {
	// Addr is trillian_log_server's gRPC address (log and admin APIs).
	Addr string
	// TreeID is a PREORDERED_LOG tree created at Start.
	TreeID int64

	db     dsn
	dbName string
	bin    map[string]string // binary name → path
	rpc    [2]string         // server, signer gRPC addresses
	http   [2]string         // server, signer HTTP (healthz) addresses
	logs   *tail
	mu     sync.Mutex
	procs  map[string]*proc // running processes by binary name
}

type proc struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when Wait returns
}

const (
	logServer = "trillian_log_server"
	logSigner = "trillian_log_signer"
)

// unavailable skips t because something the test needs is missing, or
// fails it under CI=true.
func unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s, and CI must not skip: .ci/run provides it", msg)
	}
	t.Skip(msg)
}

// Start brings up Trillian for t, with one tree, and tears it down (killing
// the processes and dropping the database) when t ends.
func Start(t testing.TB) *Server {
	t.Helper()
	uri := os.Getenv(URIEnv)
	if uri == "" {
		unavailable(t, "%s is not set: these tests need a MariaDB or MySQL server, e.g. %s='root@tcp(127.0.0.1:3306)/'", URIEnv, URIEnv)
	}
	db, err := parseDSN(uri)
	if err != nil {
		t.Fatalf("%s: %v", URIEnv, err)
	}
	bins := map[string]string{}
	for _, name := range []string{logServer, logSigner} {
		p, err := findBinary(name)
		if err != nil {
			unavailable(t, "%v; install it with: go install github.com/google/trillian/cmd/%s@%s", err, name, Version)
		}
		bins[name] = p
	}
	mysql, err := exec.LookPath("mysql")
	if err != nil {
		if mysql, err = exec.LookPath("mariadb"); err != nil {
			unavailable(t, "the mysql client is not installed (apt-get install mariadb-client)")
		}
	}
	db.client = mysql
	schema := schemaPath(t)

	s := &Server{db: db, bin: bins, logs: &tail{max: 256 << 10}, procs: map[string]*proc{}}
	s.dbName = "chronolog_trillian_" + randomHex(6)
	if out, err := db.exec("", nil, "CREATE DATABASE "+s.dbName); err != nil {
		t.Fatalf("create database %s at %s=%s (is the server running?): %v\n%s", s.dbName, URIEnv, uri, err, out)
	}
	t.Cleanup(func() {
		if out, err := db.exec("", nil, "DROP DATABASE IF EXISTS "+s.dbName); err != nil {
			t.Errorf("drop database %s: %v\n%s", s.dbName, err, out)
		}
	})
	f, err := os.Open(schema)
	if err != nil {
		t.Fatal(err)
	}
	out, err := db.exec(s.dbName, f, "")
	f.Close()
	if err != nil {
		t.Fatalf("load %s into %s: %v\n%s", schema, s.dbName, err, out)
	}

	ports := freePorts(t, 4)
	s.rpc = [2]string{ports[0], ports[2]}
	s.http = [2]string{ports[1], ports[3]}
	s.Addr = s.rpc[0]
	// Registered before the processes start, so it runs after their kill
	// (cleanups run last in, first out) and still sees their last words.
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("Trillian's output (last %d KiB):\n%s", s.logs.max>>10, s.logs.String())
		}
	})
	t.Cleanup(s.Stop)
	s.start(t)
	s.TreeID = s.NewTree(t)
	return s
}

// NewTree creates and initialises another PREORDERED_LOG tree.
func (s *Server) NewTree(t testing.TB) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := grpc.NewClient(s.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	tree, err := trillian.NewTrillianAdminClient(conn).CreateTree(ctx, &trillian.CreateTreeRequest{Tree: &trillian.Tree{
		TreeState: trillian.TreeState_ACTIVE,
		TreeType:  trillian.TreeType_PREORDERED_LOG,
		// Zero: no new root for an unchanged tree, so roots change only
		// when leaves are integrated.
		MaxRootDuration: durationpb.New(0),
		DisplayName:     "chronolog test",
	}})
	if err != nil {
		t.Fatalf("create tree: %v", err)
	}
	logc := trillian.NewTrillianLogClient(conn)
	if _, err := logc.InitLog(ctx, &trillian.InitLogRequest{LogId: tree.TreeId}); err != nil {
		t.Fatalf("init tree %d: %v", tree.TreeId, err)
	}
	// InitLog commits the empty root; wait until the server serves it.
	for {
		_, err := logc.GetLatestSignedLogRoot(ctx, &trillian.GetLatestSignedLogRootRequest{LogId: tree.TreeId})
		if err == nil {
			return tree.TreeId
		}
		if ctx.Err() != nil {
			t.Fatalf("tree %d has no root: %v", tree.TreeId, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop kills both processes and waits for them. SIGKILL, because each
// sleeps for seconds on SIGTERM, and Trillian keeps its state in database
// transactions, so a kill loses nothing acknowledged.
func (s *Server) Stop() {
	s.kill(logServer, logSigner)
}

// StopSigner kills only the signer: leaves are still queued but no longer
// integrated.
func (s *Server) StopSigner() {
	s.kill(logSigner)
}

func (s *Server) kill(names ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, name := range names {
		p := s.procs[name]
		if p == nil {
			continue
		}
		p.cmd.Process.Kill()
		<-p.done
		delete(s.procs, name)
	}
}

// Restart starts whichever of the two processes is stopped, on the same
// database and ports, and waits until both are healthy.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.start(t)
}

func (s *Server) start(t testing.TB) {
	t.Helper()
	uri := s.db.uriFor(s.dbName)
	args := map[string][]string{
		logServer: {
			"--mysql_uri=" + uri, "--rpc_endpoint=" + s.rpc[0], "--http_endpoint=" + s.http[0],
			"--quota_system=noop",
		},
		logSigner: {
			"--mysql_uri=" + uri, "--rpc_endpoint=" + s.rpc[1], "--http_endpoint=" + s.http[1],
			"--quota_system=noop",
			// One signer: no election. Short pauses and a 20 ms sequencer
			// interval keep the lag of an append to tens of milliseconds.
			"--force_master", "--pre_election_pause=10ms", "--sequencer_interval=20ms", "--batch_size=1000",
		},
	}
	s.mu.Lock()
	for _, name := range []string{logServer, logSigner} {
		if s.procs[name] != nil {
			continue
		}
		cmd := exec.Command(s.bin[name], args[name]...)
		w := s.logs.prefixed(name)
		cmd.Stdout, cmd.Stderr = w, w
		setDeathSignal(cmd)
		if err := cmd.Start(); err != nil {
			s.mu.Unlock()
			t.Fatalf("start %s: %v", name, err)
		}
		p := &proc{cmd: cmd, done: make(chan struct{})}
		go func() {
			err := cmd.Wait()
			s.logs.Write(fmt.Appendf(nil, "--- %s exited: %v\n", name, err))
			close(p.done)
		}()
		s.procs[name] = p
	}
	s.mu.Unlock()
	s.awaitHealthy(t)
}

// awaitHealthy polls both /healthz endpoints; the log server's answers ok
// once its database is reachable, which is when its gRPC API is too.
func (s *Server) awaitHealthy(t testing.TB) {
	t.Helper()
	// No keep-alive: an idle connection's goroutines would outlive the
	// test and trip goleak.
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := time.Now().Add(30 * time.Second)
	for i, addr := range s.http {
		name := []string{logServer, logSigner}[i]
		for {
			resp, err := client.Get("http://" + addr + "/healthz")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
				err = errors.New(resp.Status)
			}
			s.mu.Lock()
			p := s.procs[name]
			s.mu.Unlock()
			select {
			case <-p.done:
				t.Fatalf("%s exited while starting:\n%s", name, s.logs.String())
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s not healthy at %s after 30 s: %v\n%s", name, addr, err, s.logs.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// Logs returns the tail of the processes' output.
func (s *Server) Logs() string { return s.logs.String() }

// findBinary looks in $TRILLIAN_BIN when set, else in GOPATH's bin
// directories and then PATH, and checks the version the binary was built
// from: the adapter relies on v1.8.0's behaviour.
func findBinary(name string) (string, error) {
	var path string
	if dir := os.Getenv("TRILLIAN_BIN"); dir != "" {
		path = filepath.Join(dir, name)
		if _, err := os.Stat(path); err != nil {
			return "", fmt.Errorf("%s is not in TRILLIAN_BIN=%s", name, dir)
		}
	} else {
		for _, dir := range filepath.SplitList(build.Default.GOPATH) {
			if p := filepath.Join(dir, "bin", name); fileExists(p) {
				path = p
				break
			}
		}
		if path == "" {
			p, err := exec.LookPath(name)
			if err != nil {
				return "", fmt.Errorf("%s is neither in GOPATH's bin nor on PATH (or set TRILLIAN_BIN)", name)
			}
			path = p
		}
	}
	info, err := buildinfo.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%s: not a Go binary with build information: %v", path, err)
	}
	if info.Main.Path != "github.com/google/trillian" || info.Main.Version != Version {
		return "", fmt.Errorf("%s is %s %s, want github.com/google/trillian %s", path, info.Main.Path, info.Main.Version, Version)
	}
	return path, nil
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// schemaPath is Trillian's MySQL schema, from the module this repository
// requires, so that it matches the binaries' version.
func schemaPath(t testing.TB) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/google/trillian").Output()
	dir := strings.TrimSpace(string(out))
	if err != nil || dir == "" {
		t.Fatalf("locate the github.com/google/trillian module (go mod download github.com/google/trillian): %v", err)
	}
	p := filepath.Join(dir, "storage", "mysql", "schema", "storage.sql")
	if !fileExists(p) {
		t.Fatalf("Trillian's schema is not at %s", p)
	}
	return p
}

// freePorts reserves n loopback ports by listening on them all at once
// (so that they differ), then frees them for the servers. Another process
// could take one in between; on loopback in a test run that is rare.
func freePorts(t testing.TB, n int) []string {
	t.Helper()
	var addrs []string
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		addrs = append(addrs, l.Addr().String())
	}
	return addrs
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// dsn is the part of a go-sql-driver/mysql DSN the tests use:
// user[:password]@tcp(host[:port])/[?params].
type dsn struct {
	user, password, host, port, params string
	client                             string // the mysql CLI
}

var dsnPattern = regexp.MustCompile(`^([^:@/]*)(?::([^@/]*))?@tcp\(([^)]*)\)/([^?]*)(\?.*)?$`)

func parseDSN(s string) (dsn, error) {
	m := dsnPattern.FindStringSubmatch(s)
	if m == nil {
		return dsn{}, fmt.Errorf("%q is not of the form user[:password]@tcp(host:port)/", s)
	}
	if m[4] != "" {
		return dsn{}, fmt.Errorf("%q names database %q: leave it out, each test creates its own", s, m[4])
	}
	d := dsn{user: m[1], password: m[2], params: m[5]}
	host, port, err := net.SplitHostPort(m[3])
	if err != nil {
		host, port = m[3], "3306"
	}
	d.host, d.port = host, port
	if d.user == "" {
		return dsn{}, fmt.Errorf("%q has no user", s)
	}
	return d, nil
}

// uriFor is the DSN of database db, for Trillian's --mysql_uri.
func (d dsn) uriFor(db string) string {
	cred := d.user
	if d.password != "" {
		cred += ":" + d.password
	}
	return fmt.Sprintf("%s@tcp(%s)/%s%s", cred, net.JoinHostPort(d.host, d.port), db, d.params)
}

// exec runs the mysql client on database db (none if empty), with stdin
// as its script or else the statement stmt.
func (d dsn) exec(db string, stdin *os.File, stmt string) ([]byte, error) {
	args := []string{"--protocol=TCP", "-h", d.host, "-P", d.port, "-u", d.user}
	if stmt != "" {
		args = append(args, "-e", stmt)
	}
	if db != "" {
		args = append(args, db)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, d.client, args...)
	// The password goes through the environment, not the command line
	// that ps shows.
	if d.password != "" {
		cmd.Env = append(os.Environ(), "MYSQL_PWD="+d.password)
	}
	if stdin != nil {
		cmd.Stdin = stdin
	}
	return cmd.CombinedOutput()
}

// tail keeps the last max bytes written to it, for a failing test's log.
type tail struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}

// prefixed writes whole lines to t, each prefixed with name.
func (t *tail) prefixed(name string) *lineWriter {
	return &lineWriter{to: t, prefix: []byte(name + ": ")}
}

type lineWriter struct {
	to      *tail
	prefix  []byte
	partial []byte
}

// Write needs no lock for partial: given the same comparable writer as
// Stdout and Stderr, os/exec copies both pipes in one goroutine.
func (w *lineWriter) Write(p []byte) (int, error) {
	w.partial = append(w.partial, p...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			break
		}
		line := append(append([]byte{}, w.prefix...), w.partial[:i+1]...)
		w.to.Write(line)
		w.partial = w.partial[i+1:]
	}
	return len(p), nil
}

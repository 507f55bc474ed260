package eventstoretest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chronolog/chronolog/domain/eventstore"
)

// OpenFunc opens the store at path (a file path for SQLite; whatever
// string the adapter reads as a location), in the parent and in the child.
type OpenFunc func(path string) (eventstore.Store, error)

// RunCrash runs the kill -9 durability test twice on one fresh store under
// t.TempDir(): a child process (this test binary re-executed with
// -test.run=^$ and CHRONOLOG_CRASH_CHILD=path) appends from 8 goroutines
// and prints each event ID once Append acknowledged it; after ~700 ms the
// parent SIGKILLs it, reopens the store with open and checks that every
// acknowledged event is there, positions strictly increase and every
// stream's revisions are gap-free. The adapter's TestMain must call
// MaybeCrashChild(open) first.
func RunCrash(t *testing.T, open OpenFunc) {
	t.Helper()
	runCrash(t, CrashHarness{
		NewLocation: func(t *testing.T) string { return filepath.Join(t.TempDir(), "crash.db") },
		Open:        open,
	})
}

// CrashHarness runs the kill -9 durability test: a child process (the test
// binary itself, re-executed) appends as fast as it can and prints each
// event id once Append acknowledged it; the parent kills it with SIGKILL,
// reopens the store and checks every acknowledged event is there and the
// store is consistent. The adapter's TestMain must call
// MaybeCrashChild(Open) before m.Run. RunCrash is the usual entry point.
type CrashHarness struct {
	// NewLocation returns a fresh, empty location for a store, reachable
	// from a child process.
	NewLocation func(t *testing.T) string
	// Open opens the store at a location, in the parent and in the child.
	Open OpenFunc
	// Rounds is how many times a child is killed, on the same location.
	// Default 2, at least 2.
	Rounds int
	// Writers is how many goroutines append in the child. Default 8.
	Writers int
	// KillAfter is how long a child appends before it is killed in the
	// first round; later rounds vary it. Default 700 ms.
	KillAfter time.Duration
}

const (
	envLocation = "CHRONOLOG_CRASH_CHILD" // the store's path
	envRound    = "CHRONOLOG_EVENTSTORETEST_CRASH_ROUND"
	envWriters  = "CHRONOLOG_EVENTSTORETEST_CRASH_WRITERS"

	childLifetime = time.Minute // a child outliving its parent gives up
)

// MaybeCrashChild turns this process into a crash-test child when the
// parent asked for one (CHRONOLOG_CRASH_CHILD=path is set): it opens the
// store at path, appends from 8 goroutines until killed, printing each
// acknowledged append (stream, revision, position, event IDs) on stdout,
// one write(2) per line, after Append returned; it never returns then.
// Otherwise it returns at once. Call it first thing in TestMain.
func MaybeCrashChild(open OpenFunc) {
	loc := os.Getenv(envLocation)
	if loc == "" {
		return
	}
	round, _ := strconv.Atoi(os.Getenv(envRound))
	writers, _ := strconv.Atoi(os.Getenv(envWriters))
	os.Exit(runChild(open, loc, round, max(writers, 1)))
}

func runChild(open OpenFunc, loc string, round, writers int) int {
	ctx, cancel := context.WithTimeout(context.Background(), childLifetime)
	defer cancel()
	s, err := open(loc)
	if err != nil {
		fmt.Fprintf(os.Stderr, "crash child: open %s: %v\n", loc, err)
		return 2
	}
	var mu sync.Mutex
	emit := func(line string) error {
		mu.Lock()
		defer mu.Unlock()
		_, err := io.WriteString(os.Stdout, line) // unbuffered: one write(2) per line
		return err
	}
	if err := emit("ready\n"); err != nil {
		return 2
	}
	errc := make(chan error, writers)
	for w := range writers {
		go func() {
			long := fmt.Sprintf("crash-r%d-w%d", round, w)
			longExp := eventstore.NoStream
			for i := 0; ; i++ {
				var stream string
				var exp eventstore.ExpectedState
				var evs []eventstore.EventData
				if i%2 == 0 {
					// A TSA-like request stream: created once, three events.
					stream, exp = fmt.Sprintf("crash-r%d-w%d-n%d", round, w, i), eventstore.NoStream
					evs = []eventstore.EventData{
						NewEvent("Requested.v1", bytes.Repeat([]byte("r"), 400)),
						NewEvent("Signed.v1", bytes.Repeat([]byte("s"), 400)),
						NewEvent("Issued.v1", bytes.Repeat([]byte("i"), 1200)),
					}
				} else {
					// A long stream grown at an exact revision.
					stream, exp = long, longExp
					evs = []eventstore.EventData{NewEvent("Tick.v1", fmt.Appendf(nil, `{"i":%d}`, i))}
				}
				res, err := s.Append(ctx, stream, exp, evs...)
				if err != nil {
					errc <- fmt.Errorf("append %s: %w", stream, err)
					return
				}
				if stream == long {
					longExp = eventstore.AtRevision(res.NextExpected)
				}
				ids := make([]string, len(evs))
				for j, e := range evs {
					ids[j] = e.ID
				}
				if err := emit(fmt.Sprintf("ack %s %d %d %s\n", stream, res.NextExpected, res.Position, strings.Join(ids, ","))); err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	err = <-errc
	fmt.Fprintf(os.Stderr, "crash child: %v\n", err)
	return 3
}

type ackLine struct {
	stream string
	next   uint64
	pos    uint64
	ids    []string
}

func parseAck(line string) (ackLine, error) {
	f := strings.Fields(line)
	if len(f) != 5 || f[0] != "ack" {
		return ackLine{}, fmt.Errorf("bad line %q", line)
	}
	next, err1 := strconv.ParseUint(f[2], 10, 64)
	pos, err2 := strconv.ParseUint(f[3], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return ackLine{}, fmt.Errorf("bad line %q: %w", line, err)
	}
	return ackLine{stream: f[1], next: next, pos: pos, ids: strings.Split(f[4], ",")}, nil
}

func runCrash(t *testing.T, c CrashHarness) {
	if c.NewLocation == nil || c.Open == nil {
		t.Fatal("eventstoretest: CrashHarness needs NewLocation and Open")
	}
	rounds := max(c.Rounds, 2)
	writers := c.Writers
	if writers <= 0 {
		writers = 8
	}
	killAfter := c.KillAfter
	if killAfter <= 0 {
		killAfter = 700 * time.Millisecond
	}
	loc := c.NewLocation(t)
	var acks []ackLine
	for round := range rounds {
		// Kill at different moments: 1×, 0.35×, 1.7×, … of KillAfter.
		d := killAfter * time.Duration([]int{20, 7, 34}[round%3]) / 20
		got := crashRound(t, loc, round, writers, d)
		t.Logf("round %d: child killed after %v with %d acknowledged appends", round, d, len(got))
		acks = append(acks, got...)
		verifyCrash(t, c.Open, loc, acks, round == rounds-1)
		if t.Failed() {
			return
		}
	}
}

// crashRound runs one child, kills it d after it is ready and returns the
// appends it acknowledged.
func crashRound(t *testing.T, loc string, round, writers int, d time.Duration) []ackLine {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(),
		envLocation+"="+loc,
		envRound+"="+strconv.Itoa(round),
		envWriters+"="+strconv.Itoa(writers),
	)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start child: %v", err)
	}
	var (
		mu      sync.Mutex
		acks    []ackLine
		readErr error
		ready   = make(chan struct{})
		eof     = make(chan struct{})
	)
	go func() {
		defer close(eof)
		r := bufio.NewReader(out)
		first := true
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				// A line cut short by the kill was never acknowledged whole.
				return
			}
			line = strings.TrimSuffix(line, "\n")
			if first {
				first = false
				if line != "ready" {
					mu.Lock()
					readErr = fmt.Errorf("child's first line = %q, want ready", line)
					mu.Unlock()
					return
				}
				close(ready)
				continue
			}
			a, err := parseAck(line)
			mu.Lock()
			if err != nil {
				readErr = err
			} else {
				acks = append(acks, a)
			}
			mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	kill := func() {
		_ = cmd.Process.Kill() // SIGKILL
		<-eof
		_ = cmd.Wait()
	}
	select {
	case <-ready:
	case <-eof:
		kill()
		t.Fatalf("crash child exited before it was ready (does TestMain call eventstoretest.MaybeCrashChild?): %v\nstderr:\n%s", readErr, stderr.String())
	case <-time.After(30 * time.Second):
		kill()
		t.Fatalf("crash child not ready after 30s\nstderr:\n%s", stderr.String())
	}
	select {
	case <-time.After(d):
	case <-eof:
	}
	// Make sure something was acknowledged before the kill.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		mu.Lock()
		n := len(acks)
		mu.Unlock()
		if n > 0 || time.Now().After(deadline) {
			break
		}
	}
	select {
	case <-eof:
		kill()
		t.Fatalf("crash child died before it was killed: %v\nstderr:\n%s", readErr, stderr.String())
	default:
	}
	_ = cmd.Process.Kill()
	<-eof
	err = cmd.Wait()
	mu.Lock()
	defer mu.Unlock()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != -1 { // -1: killed by a signal
		t.Errorf("child did not die of the kill: %v\nstderr:\n%s", err, stderr.String())
	}
	if readErr != nil {
		t.Fatalf("reading the child: %v", readErr)
	}
	if len(acks) == 0 {
		t.Fatalf("child acknowledged no append\nstderr:\n%s", stderr.String())
	}
	return acks
}

// verifyCrash reopens the store and checks every acknowledged append is
// there, where it was acknowledged, and the store is consistent.
func verifyCrash(t *testing.T, open OpenFunc, loc string, acks []ackLine, appendAfter bool) {
	t.Helper()
	ctx := ctxT(t)
	s, err := open(loc)
	if err != nil {
		t.Fatalf("reopen after kill: %v", err)
	}
	defer func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}()
	all := readAllEvents(t, s, 1000)
	checkStore(t, all)
	byID := make(map[string]eventstore.RecordedEvent, len(all))
	for _, e := range all {
		byID[e.ID] = e
	}
	missing := 0
	for _, a := range acks {
		for i, id := range a.ids {
			e, ok := byID[id]
			if !ok {
				if missing++; missing <= 10 {
					t.Errorf("acknowledged event %s (%s@%d) lost in the crash", id, a.stream, a.next-uint64(len(a.ids)-1-i))
				}
				continue
			}
			if rev := a.next - uint64(len(a.ids)-1-i); e.Stream != a.stream || e.Revision != rev {
				t.Errorf("event %s at %s@%d, acknowledged at %s@%d", id, e.Stream, e.Revision, a.stream, rev)
			}
			if i == len(a.ids)-1 && e.Position != a.pos {
				t.Errorf("event %s at position %d, acknowledged at %d", id, e.Position, a.pos)
			}
		}
	}
	if missing > 0 {
		t.Fatalf("%d acknowledged events lost", missing)
	}
	// Streams read back whole.
	for _, a := range acks[:min(len(acks), 20)] {
		evs, err := s.ReadStream(ctx, a.stream)
		if err != nil {
			t.Fatalf("ReadStream(%q): %v", a.stream, err)
		}
		for i, e := range evs {
			if e.Revision != uint64(i) {
				t.Fatalf("ReadStream(%q): event %d has revision %d", a.stream, i, e.Revision)
			}
		}
	}
	if !appendAfter {
		return
	}
	// The reopened store goes on after the last position.
	var head uint64
	if len(all) > 0 {
		head = all[len(all)-1].Position
	}
	res, err := s.Append(ctx, "after-crash", eventstore.NoStream, jsonEvent(0))
	if err != nil {
		t.Fatalf("append after crash: %v", err)
	}
	if res.Position <= head {
		t.Errorf("append after crash at position %d, head was %d", res.Position, head)
	}
}

package datadir

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The test binary re-executed as another process: it holds a directory
// until its standard input closes, or tries to take one and says how it went.
const (
	envHold = "DATADIR_TEST_HOLD"
	envTry  = "DATADIR_TEST_TRY"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(envHold); dir != "" {
		l, err := Acquire(dir)
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(3)
		}
		fmt.Println("held")
		bufio.NewReader(os.Stdin).ReadString('\n')
		l.Release()
		os.Exit(0)
	}
	if dir := os.Getenv(envTry); dir != "" {
		l, err := Acquire(dir)
		if err != nil {
			fmt.Println(err)
			os.Exit(3)
		}
		l.Release()
		fmt.Println("acquired")
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// hold starts another process that holds dir until the test ends.
func hold(t *testing.T, dir string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envHold+"="+dir)
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
	t.Cleanup(func() {
		in.Close()
		cmd.Process.Kill()
		cmd.Wait()
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "held\n" {
		t.Fatalf("the holding process says %q, %v", line, err)
	}
	return cmd
}

// try runs another process that tries to take dir, and returns what it printed.
func try(t *testing.T, dir string) (string, int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envTry+"="+dir)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("the second process took %v: it must not wait for the lock", d)
	}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return string(out), exit.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(out), 0
}

// TestSecondProcessRefused: while one process holds the directory, another
// process (and this one) is refused at once with the directory and the
// holder's PID; after the holder is killed with SIGKILL the lock is free.
func TestSecondProcessRefused(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	h := hold(t, dir)
	pid := h.Process.Pid

	out, code := try(t, dir)
	if code != 3 || !strings.Contains(out, "data directory "+dir+" is in use by process "+strconv.Itoa(pid)) {
		t.Fatalf("a second process: exit %d, %q; want a refusal naming %s and PID %d", code, out, dir, pid)
	}
	_, err := Acquire(dir)
	var held *HeldError
	if !errors.As(err, &held) || held.PID != pid || held.Dir != dir {
		t.Fatalf("Acquire beside the holder: %v; want a HeldError for %s, PID %d", err, dir, pid)
	}

	if err := h.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	h.Wait()
	l, err := Acquire(dir)
	if err != nil {
		t.Fatalf("after the holder's SIGKILL: %v", err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, FileName))
	if got := strings.TrimSpace(string(b)); got != strconv.Itoa(os.Getpid()) {
		t.Errorf("the lock file holds %q, want this process's PID %d", got, os.Getpid())
	}
	out, code = try(t, dir)
	if code != 3 || !strings.Contains(out, "process "+strconv.Itoa(os.Getpid())) {
		t.Errorf("a second process beside this one: exit %d, %q", code, out)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	if out, code := try(t, dir); code != 0 {
		t.Errorf("after Release: exit %d, %q", code, out)
	}
}

// TestOneHolderInProcess: a second Acquire in the same process is refused
// too (flock locks belong to the open file), and Release frees the lock.
func TestOneHolderInProcess(t *testing.T) {
	dir := t.TempDir()
	l, err := Acquire(dir)
	if err != nil {
		t.Fatal(err)
	}
	if l2, err := Acquire(dir); err == nil {
		l2.Release()
		t.Fatal("a second Acquire in the same process succeeded")
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	if err := l.Release(); err != nil {
		t.Errorf("a second Release: %v", err)
	}
	l, err = Acquire(dir)
	if err != nil {
		t.Fatalf("after Release: %v", err)
	}
	l.Release()
}

// TestCreatesDirectory: a new data directory is made, private, with its
// parents.
func TestCreatesDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	l, err := Acquire(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	st, err := os.Stat(dir)
	if err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("the new directory: %v, mode %v; want 0700", err, st.Mode())
	}
	if l.Dir() != dir {
		t.Errorf("Dir() = %s, want %s", l.Dir(), dir)
	}
}

func TestUnusableDirectory(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{file, filepath.Join(file, "below")} {
		if l, err := Acquire(dir); err == nil {
			l.Release()
			t.Errorf("Acquire(%s) succeeded", dir)
		}
	}
}

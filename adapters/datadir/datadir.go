// Package datadir gives one process at a time a data directory to write:
// an exclusive flock(2) on DIR/lock, which holds the holder's PID. Two
// processes writing one event store and one set of read stores corrupt
// the read models (both project every event, both issue), so a second
// writer refuses at once, naming the directory and the process in the way.
//
// The kernel drops the lock when the holder exits, however it exits (kill
// -9, a crash, a power cut): a lock file left behind is never stale, and a
// PID in it is only ever read while its process holds the lock.
package datadir

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// FileName is the lock file's name inside the data directory.
const FileName = "lock"

// Lock is a data directory held by this process.
type Lock struct {
	dir string
	f   *os.File
}

// HeldError says that another process holds the directory.
type HeldError struct {
	// Dir is the data directory, made absolute.
	Dir string
	// PID is the holder's process id, 0 when it could not be read.
	PID int
}

func (e *HeldError) Error() string {
	holder := "another process"
	if e.PID > 0 {
		holder = "process " + strconv.Itoa(e.PID)
	}
	return fmt.Sprintf("data directory %s is in use by %s (it holds %s): one process writes a data directory at a time",
		e.Dir, holder, filepath.Join(e.Dir, FileName))
}

// Acquire creates dir (mode 0700) if it is missing and takes its lock,
// without waiting: if another process holds it, the error is a *HeldError.
// The lock is held until Release or the process's end.
func Acquire(dir string) (*Lock, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("data directory %s: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	path := filepath.Join(abs, FileName)
	// O_CLOEXEC (Go's default): a child process never inherits the lock.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("data directory %s: open its lock: %w", abs, err)
	}
	if err := flock(f); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, &HeldError{Dir: abs, PID: holderPID(path)}
		}
		return nil, fmt.Errorf("data directory %s: lock %s: %w", abs, path, err)
	}
	if err := writePID(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("data directory %s: write %s: %w", abs, path, err)
	}
	return &Lock{dir: abs, f: f}, nil
}

func flock(f *os.File) error {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}

func writePID(f *os.File) error {
	if err := f.Truncate(0); err != nil {
		return err
	}
	_, err := f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return err
}

// holderPID reads the holder's PID. The holder writes it just after taking
// the lock, so a file found empty is read again for a moment.
func holderPID(path string) int {
	for range 20 {
		b, err := os.ReadFile(path)
		if err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 {
				return pid
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	return 0
}

// Dir is the locked directory, absolute.
func (l *Lock) Dir() string { return l.dir }

// Release lets the directory go. The lock file stays: removing it would
// let a process that opened it just before hold a lock on a file no longer
// in the directory while a third one locks a new one.
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}

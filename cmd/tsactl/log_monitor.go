package main

import (
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/chronolog/chronolog/adapters/logclient"
	"github.com/chronolog/chronolog/domain/merkle"
	"github.com/chronolog/chronolog/domain/translog"
)

func runLogMonitor(args []string) error {
	fset := flag.NewFlagSet("tsactl log monitor", flag.ContinueOnError)
	var lf logFlags
	lf.register(fset)
	state := fset.String("state", "", "file keeping the last checkpoint trusted (a signed note); created on first use")
	interval := fset.Duration("interval", 10*time.Second, "how often to fetch the latest checkpoint")
	once := fset.Bool("once", false, "check once and exit")
	if err := fset.Parse(args); err != nil {
		return err
	}
	if fset.NArg() != 0 {
		return fmt.Errorf("unexpected argument %q", fset.Arg(0))
	}
	if *state == "" {
		return errors.New("--state is required")
	}
	if *interval <= 0 {
		return errors.New("--interval must be positive")
	}
	client, verifier, err := lf.open()
	if err != nil {
		return err
	}
	m := &monitor{client: client, log: verifier, state: *state, url: lf.url, out: os.Stdout, alarms: os.Stderr}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *once {
		return m.round(ctx)
	}
	tick := time.NewTicker(*interval)
	defer tick.Stop()
	for {
		if err := m.round(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ee *exitError
			if errors.As(err, &ee) {
				return err
			}
			// The server or the network failing is no evidence against
			// the log: say so and try again at the next round.
			fmt.Fprintf(m.alarms, "%s round failed, retrying in %s: %v\n", now(), *interval, err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// monitor checks each checkpoint the log serves against the last one it
// trusted, kept in a file.
type monitor struct {
	client *logclient.Client
	log    note.Verifier
	state  string
	url    string
	out    io.Writer
	alarms io.Writer
}

// round fetches the latest checkpoint and, if it extends the trusted one,
// trusts it instead. A checkpoint that does not verify is an *exitError
// (code 1), a rollback or fork an *exitError with exitForkOrRollback;
// other errors are the server's or the network's.
func (m *monitor) round(ctx context.Context) error {
	trusted, err := os.ReadFile(m.state)
	first := errors.Is(err, fs.ErrNotExist)
	if err != nil && !first {
		return &exitError{1, fmt.Errorf("state: %w", err)}
	}
	var old translog.Checkpoint
	if !first {
		if old, err = translog.OpenCheckpoint(trusted, m.log); err != nil {
			m.alarm("STATE DOES NOT VERIFY",
				fmt.Sprintf("the checkpoint in %s does not verify with the log's key %s: %v", m.state, m.log.Name(), err),
				"Nothing was checked. Restore the state file, or remove it to trust the log anew.")
			return &exitError{1, fmt.Errorf("state %s: %w", m.state, err)}
		}
	}
	served, err := m.client.Checkpoint(ctx)
	if err != nil {
		return err
	}
	cp, err := translog.OpenCheckpoint(served, m.log)
	if err != nil {
		m.alarm("CHECKPOINT DOES NOT VERIFY",
			fmt.Sprintf("the checkpoint %s serves does not verify with the log's key %s: %v", m.url, m.log.Name(), err),
			"served checkpoint:\n"+string(served),
			fmt.Sprintf("The trusted checkpoint stays in %s.", m.state))
		return &exitError{1, fmt.Errorf("the checkpoint served: %w", err)}
	}
	if first {
		if err := writeFileAtomic(m.state, served); err != nil {
			return &exitError{1, err}
		}
		fmt.Fprintf(m.out, "%s size %d root %s: first checkpoint, signature verified, trusted from now on\n", now(), cp.Size, b64root(cp.Root))
		return nil
	}
	var proof []merkle.Hash
	if cp.Size > old.Size && old.Size > 0 {
		if proof, err = m.client.Consistency(ctx, old.Size, cp.Size); err != nil {
			return fmt.Errorf("consistency %d→%d: %w", old.Size, cp.Size, err)
		}
	}
	// Same size, another root; smaller; or a proof that does not lead
	// from the old root to the new: VerifyConsistency names each.
	if _, _, err := translog.VerifyConsistency(m.log, trusted, served, proof); err != nil {
		what := "FORK"
		if cp.Size < old.Size {
			what = "ROLLBACK"
		}
		m.alarm(what+" DETECTED",
			fmt.Sprintf("trusted (%s): size %d, root %s", m.state, old.Size, b64root(old.Root)),
			fmt.Sprintf("served (%s): size %d, root %s", m.url, cp.Size, b64root(cp.Root)),
			err.Error(),
			"Both checkpoints are signed with the log's key: keep them, they are evidence.",
			"served checkpoint:\n"+string(served),
			fmt.Sprintf("The trusted checkpoint stays in %s.", m.state))
		return &exitError{exitForkOrRollback, fmt.Errorf("%s: %w", what, err)}
	}
	if cp.Size == old.Size {
		fmt.Fprintf(m.out, "%s size %d root %s: unchanged\n", now(), cp.Size, b64root(cp.Root))
		return nil
	}
	if err := writeFileAtomic(m.state, served); err != nil {
		return &exitError{1, err}
	}
	fmt.Fprintf(m.out, "%s size %d root %s: consistent with size %d, trusted\n", now(), cp.Size, b64root(cp.Root), old.Size)
	return nil
}

// alarm prints a message no one reading the output can miss.
func (m *monitor) alarm(title string, lines ...string) {
	fmt.Fprintf(m.alarms, "\n!!! %s !!! %s\n", title, now())
	for _, l := range lines {
		fmt.Fprintf(m.alarms, "    %s\n", l)
	}
	fmt.Fprintln(m.alarms)
}

// writeFileAtomic replaces path with data: a crash leaves the old state or
// the new, never half of one, which would lose the monitor its anchor.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("state: %w", err)
	}
	tmp := f.Name()
	fail := func(err error) error {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("state %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		return fail(err)
	}
	if err := f.Chmod(0o644); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("state %s: %w", path, err)
	}
	// The rename is durable once the directory is.
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("state %s: %w", path, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("state %s: the rename may not survive a crash: %w", path, err)
	}
	return nil
}

func b64root(h merkle.Hash) string { return base64.StdEncoding.EncodeToString(h[:]) }

func now() string { return time.Now().UTC().Format(time.RFC3339) }

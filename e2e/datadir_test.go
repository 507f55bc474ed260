package e2e

import (
	"errors"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chronolog/chronolog/domain/events"
)

// inUse is the start of the refusal naming a data directory's holder.
func inUse(data string, pid int) string {
	return "data directory " + data + " is in use by process " + strconv.Itoa(pid)
}

// TestDataDirOneWriter: a second tsad on a running server's data directory
// exits at once, naming the directory and the holder's PID, before it
// writes anything there; replay --verify and export, which only read, work
// beside the server; once the server is killed with SIGKILL the directory
// is free again.
func TestDataDirOneWriter(t *testing.T) {
	data, work := t.TempDir(), t.TempDir()
	srv := startServer(t, data)
	pid := srv.cmd.Process.Pid
	from := time.Now().UTC()
	for range 5 {
		if r := ask(t, srv.url); r.Token == nil {
			t.Fatalf("not granted: %+v", r)
		}
	}

	for _, mode := range [][]string{
		{"dev", "--addr", "127.0.0.1:0", "--data", data},
		{"serve", "--addr", "127.0.0.1:0", "--data", data, "--key", filepath.Join(data, "pki", "tsa.key"), "--cert", filepath.Join(data, "pki", "tsa.pem")},
	} {
		start := time.Now()
		out, err := tsadOnce(t, mode...)
		if err == nil || strings.Contains(out, "endpoint: ") {
			t.Fatalf("a second tsad %s on a running server's data directory started (%v):\n%s", mode[0], err, out)
		}
		if !strings.Contains(out, inUse(data, pid)) {
			t.Errorf("the second tsad %s does not name the directory and PID %d:\n%s", mode[0], pid, out)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("the second tsad %s took %v to give up: it must not wait", mode[0], d)
		}
	}

	// The read-only tools, beside the running server (whose live read
	// models have applied something: replay --verify compares with them).
	waitReadModels(t, srv)
	tsactl := filepath.Join(binDir, "tsactl")
	out := run(t, tsactl, "replay", "--data", data, "--verify", "--quiet", "--out", filepath.Join(work, "replay"))
	if !strings.Contains(out, "verified:   OK") {
		t.Fatalf("replay --verify beside the running server:\n%s", out)
	}
	time.Sleep(10 * time.Millisecond)
	to := time.Now().UTC()
	time.Sleep(10 * time.Millisecond)
	// A request after the window has the log seal the window's tail.
	if r := ask(t, srv.url); r.Token == nil {
		t.Fatal("the request after the window was not granted")
	}
	bundle := filepath.Join(work, "bundle")
	out = logOK(t, "export", "--data", data, "--url", srv.url, "--from", from.Format(time.RFC3339Nano), "--to", to.Format(time.RFC3339Nano), "--out", bundle)
	if !strings.Contains(out, "tokens:     5 ") {
		t.Fatalf("export beside the running server:\n%s", out)
	}
	if r := ask(t, srv.url); r.Token == nil {
		t.Fatal("the server does not issue after the tools ran beside it")
	}

	// kill -9: the kernel drops the lock with the process.
	srv.kill()
	again := startServer(t, data)
	if r := ask(t, again.url); r.Token == nil {
		t.Fatal("the server started after the kill -9 does not issue")
	}
	if err := again.stop(t); err != nil {
		t.Fatalf("the second server did not stop cleanly: %v\n%s", err, again.output())
	}
}

// TestHSMStepsAndTheDataDirectory: tsactl hsm keygen on a data directory
// that does not exist yet makes it and records the key; beside a running
// server it refuses before it touches the token, naming the directory and
// the server's PID; once the server stopped, the step goes through.
func TestHSMStepsAndTheDataDirectory(t *testing.T) {
	tok := newHSMToken(t, "chronolog-datadir")
	fresh := filepath.Join(t.TempDir(), "new", "data")
	tok.tsactl(t, "keygen", "--label", "first", "--data", fresh, "--operator", "e2e")
	if !recordsKey(t, fresh, "first") {
		t.Fatalf("keygen on a new data directory did not record the key")
	}

	data := t.TempDir()
	srv := startServer(t, data, "--log", "off")
	pid := srv.cmd.Process.Pid
	tsactl := filepath.Join(binDir, "tsactl")
	base := []string{"hsm", "", "--module", tok.module, "--token", tok.label, "--pin-env", hsmPINEnv, "--data", data}
	for _, step := range [][]string{
		{"keygen", "--label", "blocked"},
		{"retire", "--key", "first", "--reason", "e2e"},
	} {
		args := append(append([]string{}, base...), step[1:]...)
		args[1] = step[0]
		start := time.Now()
		out, err := exec.Command(tsactl, args...).CombinedOutput()
		var exit *exec.ExitError
		if !errors.As(err, &exit) {
			t.Fatalf("hsm %s beside a running server: %v\n%s", step[0], err, out)
		}
		if !strings.Contains(string(out), inUse(data, pid)) || !strings.Contains(string(out), "The token is unchanged") {
			t.Errorf("hsm %s beside a running server does not name the directory and PID %d:\n%s", step[0], pid, out)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("hsm %s took %v to give up", step[0], d)
		}
	}
	if list := tok.tsactl(t, "list"); strings.Contains(list, `"blocked"`) {
		t.Fatalf("the refused keygen made a key in the token:\n%s", list)
	}
	if err := srv.stop(t); err != nil {
		t.Fatal(err)
	}
	tok.tsactl(t, "keygen", "--label", "after", "--data", data, "--operator", "e2e")
	if !recordsKey(t, data, "after") {
		t.Fatal("keygen after the server stopped did not record the key")
	}
}

// waitReadModels waits until every live projection of srv has caught up
// with its store.
func waitReadModels(t *testing.T, srv *server) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, _, body := apiGet(t, srv.base+"/metrics", "")
		lagging := false
		for _, p := range []string{"archive", "billing", "clock", "renewal-due"} {
			lagging = lagging || !strings.Contains(string(body), `chronolog_projection_lag_events{projection="`+p+`"} 0`+"\n")
		}
		if !lagging {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the read models did not catch up in 10 s:\n%s", body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// recordsKey says whether the store under data records a key generated
// under label.
func recordsKey(t *testing.T, data, label string) bool {
	t.Helper()
	for _, e := range readStore(t, data)[events.KeyStream] {
		if g, ok := e.(*events.SigningKeyGenerated); ok && g.KeyLabel == label {
			return true
		}
	}
	return false
}

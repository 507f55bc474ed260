package e2e

import (
	"bytes"
	"encoding/asn1"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/chronolog/chronolog/domain/events"
)

// Helpers shared by the tests of real signing clients (jarsigner, Bouncy
// Castle, osslsigncode).

// jvmFlags make a short-lived JVM start faster (C1 only, serial GC) and
// speak English, whose messages the tests read; the JDK tools take them
// behind -J.
var jvmFlags = []string{"-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Duser.language=en", "-Duser.country=US"}

func jFlags() []string {
	out := make([]string, len(jvmFlags))
	for i, f := range jvmFlags {
		out[i] = "-J" + f
	}
	return out
}

// requireFiles skips when a file a test needs is missing (failing under
// CI=true, like requireTool); pkg names the Debian package providing it.
func requireFiles(t *testing.T, pkg string, paths ...string) {
	t.Helper()
	for _, p := range paths {
		if _, err := os.Stat(p); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is missing, and CI must not skip: install %s in .ci/run", p, pkg)
			}
			t.Skipf("%s is missing (apt-get install %s)", p, pkg)
		}
	}
}

// exchange is one request's recorded events.
type exchange struct {
	req      *events.TimestampRequested
	issued   *events.TimestampIssued
	rejected *events.TimestampRejected
	all      []events.Event
}

// exchanges returns every request recorded in a stopped server's store, in
// no particular order.
func exchanges(t *testing.T, data string) []exchange {
	t.Helper()
	var out []exchange
	for stream, evs := range readStore(t, data) {
		req, ok := evs[0].(*events.TimestampRequested)
		if !ok {
			continue
		}
		x := exchange{req: req, all: evs}
		for _, e := range evs[1:] {
			switch e := e.(type) {
			case *events.TimestampIssued:
				x.issued = e
			case *events.TimestampRejected:
				x.rejected = e
			}
		}
		if (x.issued == nil) == (x.rejected == nil) {
			t.Fatalf("stream %s: want exactly one of TimestampIssued and TimestampRejected, got %#v", stream, evs)
		}
		out = append(out, x)
	}
	return out
}

// tokenPolicy reads the policy of a recorded token (a DER ContentInfo)
// with the strict decoder.
func tokenPolicy(t *testing.T, token []byte) string {
	t.Helper()
	info, err := tryTSTInfo(timeStampResp{Token: asn1.RawValue{FullBytes: token}})
	if err != nil {
		t.Fatal(err)
	}
	return info.Policy.String()
}

// onceFile builds a file once per test binary (in binDir, removed by
// TestMain) and remembers the outcome, so every test that needs it reports
// the same error.
type onceFile struct {
	once sync.Once
	path string
	err  error
}

func (o *onceFile) get(t *testing.T, build func() (string, error)) string {
	t.Helper()
	o.build(build)
	if o.err != nil {
		t.Fatal(o.err)
	}
	return o.path
}

// build runs build unless it ran already; a caller that starts it in a
// goroutine overlaps it with other work, and get then waits for it.
func (o *onceFile) build(build func() (string, error)) {
	o.once.Do(func() { o.path, o.err = build() })
}

var windowsExe onceFile

// tinyWindowsExe cross-compiles an empty Go program for windows/amd64: a
// real PE for the Authenticode signers.
func tinyWindowsExe(t *testing.T) string {
	t.Helper()
	return windowsExe.get(t, func() (string, error) {
		dir, err := os.MkdirTemp(binDir, "winexe")
		if err != nil {
			return "", err
		}
		if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte("package main\n\nfunc main() {}\n"), 0o644); err != nil {
			return "", err
		}
		if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module app\n\ngo 1.21\n"), 0o644); err != nil {
			return "", err
		}
		exe := filepath.Join(dir, "app.exe")
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", exe, ".")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOOS=windows", "GOARCH=amd64", "CGO_ENABLED=0", "GOWORK=off", "GOFLAGS=")
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("build the Windows test program: %v\n%s", err, out)
		}
		return exe, nil
	})
}

// hasLine reports whether out has a line equal to want once trimmed.
func hasLine(out, want string) bool {
	for _, l := range strings.Split(out, "\n") {
		if strings.TrimSpace(l) == want {
			return true
		}
	}
	return false
}

// containsToken reports whether a client's output file embeds a recorded
// token byte-exact.
func containsToken(file string, token []byte) (bool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return false, err
	}
	return len(token) > 0 && bytes.Contains(b, token), nil
}

// firstLine is the first line of an error, for logs.
func firstLine(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}

package e2e

import (
	"bytes"
	"cmp"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"github.com/chronolog/chronolog/adapters/logkey"
	"github.com/chronolog/chronolog/domain/authenticode"
	"github.com/chronolog/chronolog/domain/events"
	"github.com/chronolog/chronolog/domain/rfc3161"
	"github.com/chronolog/chronolog/domain/translog"
)

// logRun runs tsactl and returns its combined output and exit code.
func logRun(t *testing.T, args ...string) (string, int) {
	t.Helper()
	out, err := exec.Command(filepath.Join(binDir, "tsactl"), args...).CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &ee):
		return string(out), ee.ExitCode()
	}
	t.Fatalf("tsactl %s: %v", strings.Join(args, " "), err)
	return "", -1
}

// logOK runs tsactl and fails the test unless it exits 0.
func logOK(t *testing.T, args ...string) string {
	t.Helper()
	out, code := logRun(t, args...)
	if code != 0 {
		t.Fatalf("tsactl %s: exit %d\n%s", strings.Join(args, " "), code, out)
	}
	return out
}

// issueTokens timestamps n files with tsactl request and returns the
// replies' paths and the tokens' serials (lower-case hex, as the API names
// them).
func issueTokens(t *testing.T, s *server, dir, prefix string, n int) (replies, serials []string) {
	t.Helper()
	for i := range n {
		doc := filepath.Join(dir, fmt.Sprintf("%s-%d.txt", prefix, i))
		if err := os.WriteFile(doc, []byte("log e2e "+doc), 0o644); err != nil {
			t.Fatal(err)
		}
		logOK(t, "request", "--url", s.url, doc)
		token := tokenOf(t, doc+".tsr")
		info, err := rfc3161.TokenTSTInfo(token)
		if err != nil {
			t.Fatal(err)
		}
		replies = append(replies, doc+".tsr")
		serials = append(serials, info.SerialNumber.Text(16))
	}
	return replies, serials
}

func tokenOf(t *testing.T, tsr string) []byte {
	t.Helper()
	raw, err := os.ReadFile(tsr)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := rfc3161.ParseTimeStampResp(raw)
	if err != nil || resp.Token == nil {
		t.Fatalf("%s: not a granted reply: %v", tsr, err)
	}
	return resp.Token
}

// TestLogAuditorCommands runs tsactl log verify, monitor and audit against
// a tsad with its default Tessera log, then hands the monitor forged state.
func TestLogAuditorCommands(t *testing.T) {
	data := t.TempDir()
	work := t.TempDir()
	s := startServer(t, data)
	out := s.output()
	keyLine := regexp.MustCompile(`(?m)^log key: (\S+)$`).FindStringSubmatch(out)
	logLine := regexp.MustCompile(`(?m)^transparency log: tessera, origin (\S+), verifier key (\S+)$`).FindStringSubmatch(out)
	if keyLine == nil || logLine == nil || s.caFile() == "" {
		t.Fatalf("tsad did not print its log key, log and CA:\n%s", out)
	}
	vkey, origin, keyFile, ca := keyLine[1], logLine[1], logLine[2], s.caFile()
	base := s.base

	// verify: every token, as a reply and as a bare token, proven in the
	// log; the key given as a file and as the key itself.
	replies, serials := issueTokens(t, s, work, "first", 3)
	bare := filepath.Join(work, "first-0.token")
	if err := os.WriteFile(bare, tokenOf(t, replies[0]), 0o644); err != nil {
		t.Fatal(err)
	}
	for i, file := range append(replies, bare) {
		key := keyFile
		if i%2 == 1 {
			key = vkey
		}
		serial := serials[i%len(serials)]
		got := logOK(t, "log", "verify", file, "--url", base, "--log-key", key, "--ca", ca, "--wait", "10s")
		for _, want := range []string{
			"serial:     " + serial + "\n",
			"token:      signature and chain verified against " + ca,
			"TimestampIssued.v1 in stream tsr-" + serial + ", holding the token byte for byte",
			"checkpoint: origin " + origin + ", size ",
			"\nOK\n",
		} {
			if !strings.Contains(got, want) {
				t.Errorf("log verify %s: output lacks %q:\n%s", file, want, got)
			}
		}
	}

	// A token whose signature bytes were changed: same serial, so the log
	// proves its record, which does not hold these bytes.
	forged := tokenOf(t, replies[1])
	forged[len(forged)-1] ^= 0x01
	forgedFile := filepath.Join(work, "forged.token")
	if err := os.WriteFile(forgedFile, forged, 0o644); err != nil {
		t.Fatal(err)
	}
	got, code := logRun(t, "log", "verify", forgedFile, "--url", base, "--log-key", keyFile)
	if code == 0 || !strings.Contains(got, "the token it records differs from this one") || strings.Contains(got, "\nOK\n") {
		t.Errorf("a changed token: exit %d\n%s", code, got)
	}
	got, code = logRun(t, "log", "verify", forgedFile, "--url", base, "--log-key", keyFile, "--ca", ca)
	if code == 0 || !strings.Contains(got, "does not verify against "+ca) {
		t.Errorf("a changed token with --ca: exit %d\n%s", code, got)
	}
	// The right token against another log's key.
	_, otherKey, err := note.GenerateKey(rand.Reader, origin)
	if err != nil {
		t.Fatal(err)
	}
	got, code = logRun(t, "log", "verify", replies[0], "--url", base, "--log-key", otherKey)
	if code == 0 || !strings.Contains(got, "checkpoint signature") {
		t.Errorf("another log key: exit %d\n%s", code, got)
	}

	// monitor: trusts the first checkpoint, then one that extends it.
	state := filepath.Join(work, "monitor.note")
	got = logOK(t, "log", "monitor", "--url", base, "--log-key", keyFile, "--state", state, "--once")
	if !strings.Contains(got, "first checkpoint, signature verified") {
		t.Errorf("first monitor round:\n%s", got)
	}
	first := openState(t, state, keyFile)
	more, moreSerials := issueTokens(t, s, work, "second", 2)
	// Once the last token is proven, the checkpoint has grown past the
	// first one.
	if got := logOK(t, "log", "verify", more[1], "--url", base, "--log-key", keyFile, "--wait", "10s"); !strings.Contains(got, "serial:     "+moreSerials[1]+"\n") {
		t.Errorf("log verify %s:\n%s", more[1], got)
	}
	got = logOK(t, "log", "monitor", "--url", base, "--log-key", keyFile, "--state", state, "--once")
	second := openState(t, state, keyFile)
	if second.Size <= first.Size || !strings.Contains(got, fmt.Sprintf("size %d root", second.Size)) ||
		!strings.Contains(got, fmt.Sprintf("consistent with size %d, trusted", first.Size)) {
		t.Errorf("second monitor round: state went from size %d to %d\n%s", first.Size, second.Size, got)
	}

	// audit: every segment, event and token, tokens against the CA.
	got = logOK(t, "log", "audit", "--url", base, "--log-key", vkey, "--ca", ca)
	if !strings.Contains(got, "audit: OK\n") || !regexp.MustCompile(`audited: +\d+ segments, \d+ events, 5 tokens \(5 RFC 3161, 0 Authenticode\) verified against `+regexp.QuoteMeta(ca)).MatchString(got) {
		t.Errorf("audit:\n%s", got)
	}
	if strings.Contains(got, "FAIL") || strings.Contains(got, "FLAG") {
		t.Errorf("audit of a clean log has findings:\n%s", got)
	}
	got = logOK(t, "log", "audit", "--url", base, "--log-key", keyFile)
	if !strings.Contains(got, "5 tokens (5 RFC 3161, 0 Authenticode) verified against each token's embedded certificate only") {
		t.Errorf("audit without --ca:\n%s", got)
	}

	// The monitor handed forged state: each must fail loudly and leave
	// the state as it was.
	realSigner, err := logkey.Load(filepath.Join(data, "log.key"))
	if err != nil {
		t.Fatal(err)
	}
	strangerKey, _, err := note.GenerateKey(rand.Reader, origin)
	if err != nil {
		t.Fatal(err)
	}
	stranger, err := note.NewSigner(strangerKey)
	if err != nil {
		t.Fatal(err)
	}
	otherRoot := second.Root
	otherRoot[0] ^= 0xff
	cases := []struct {
		name   string
		cp     translog.Checkpoint
		signer note.Signer
		code   int
		want   []string
	}{
		{"signed by another key with the same origin", second, stranger, 1,
			[]string{"STATE DOES NOT VERIFY", "checkpoint signature"}},
		{"larger than the log: the log rolled back", translog.Checkpoint{Origin: origin, Size: second.Size + 5, Root: second.Root}, realSigner, 3,
			[]string{"ROLLBACK DETECTED", fmt.Sprintf("trusted ({state}): size %d", second.Size+5), "ROLLBACK: the log went from"}},
		{"the same size, another root: a fork", translog.Checkpoint{Origin: origin, Size: second.Size, Root: otherRoot}, realSigner, 3,
			[]string{"FORK DETECTED", "FORK: the checkpoint at size"}},
		// The log's consistency proof from this smaller tree cannot lead
		// to a root the log never had.
		{"a smaller size, another root: a fork", translog.Checkpoint{Origin: origin, Size: second.Size - 1, Root: otherRoot}, realSigner, 3,
			[]string{"FORK DETECTED", fmt.Sprintf("does not extend the one at size %d", second.Size-1)}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			forgedState := filepath.Join(t.TempDir(), "state.note")
			signed, err := translog.SignCheckpoint(c.cp, c.signer)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(forgedState, signed, 0o644); err != nil {
				t.Fatal(err)
			}
			got, code := logRun(t, "log", "monitor", "--url", base, "--log-key", keyFile, "--state", forgedState, "--once")
			if code != c.code {
				t.Errorf("exit %d, want %d\n%s", code, c.code, got)
			}
			for _, w := range c.want {
				if !strings.Contains(got, strings.ReplaceAll(w, "{state}", forgedState)) {
					t.Errorf("output lacks %q:\n%s", w, got)
				}
			}
			if after, err := os.ReadFile(forgedState); err != nil || !bytes.Equal(after, signed) {
				t.Errorf("the state file changed: %v\n%s", err, after)
			}
		})
	}
}

// TestLogAuditsEveryKindOfToken issues an RFC 3161 token over HTTP, one
// over the socket protocol (RFC 3161 §3.3) and an Authenticode
// countersignature, then proves the RFC 3161 tokens in the log and audits
// the log, against the CA and without it: every token verifies as what its
// event says it is.
func TestLogAuditsEveryKindOfToken(t *testing.T) {
	data, work := t.TempDir(), t.TempDir()
	cfg := filepath.Join(work, "tsad.yaml")
	if err := os.WriteFile(cfg, []byte(`
services:
  - name: qualified
    paths: [/tsa]
    tcp: 127.0.0.1:0
    policy: 1.3.6.1.4.1.32473.3161.1
    authenticode: true
`), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, data, "--config", cfg)
	out := s.output()
	logLine := regexp.MustCompile(`(?m)^transparency log: tessera, origin \S+, verifier key (\S+)$`).FindStringSubmatch(out)
	tcpLine := regexp.MustCompile(`(?m)^tcp: (\S+) \(service qualified`).FindStringSubmatch(out)
	if logLine == nil || tcpLine == nil || s.caFile() == "" {
		t.Fatalf("tsad did not print its log, socket and CA:\n%s", out)
	}
	keyFile, tcpAddr, ca := logLine[1], tcpLine[1], s.caFile()

	status, _, body := post(t, s.url, "application/octet-stream", authenticode.NewRequest([]byte("log e2e code signature")))
	if status != 200 {
		t.Fatalf("Authenticode request: HTTP %d: %s", status, body)
	}
	der, err := base64.StdEncoding.DecodeString(string(body))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := authenticode.Verify(der); err != nil {
		t.Fatalf("the Authenticode answer: %v", err)
	}
	replies := map[string]string{}
	for _, transport := range []string{"http", "tcp"} {
		doc := filepath.Join(work, transport+".txt")
		if err := os.WriteFile(doc, []byte("log e2e over "+transport), 0o644); err != nil {
			t.Fatal(err)
		}
		args := []string{"request", "--url", s.url, doc}
		if transport == "tcp" {
			args = []string{"request", "--tcp", tcpAddr, doc}
		}
		logOK(t, args...)
		replies[transport] = doc + ".tsr"
	}
	// log verify, for the tokens it can name: an RFC 3161 token carries
	// its serial, an Authenticode countersignature does not. The TCP token
	// is the last issued: once it is under a checkpoint, all are.
	for _, transport := range []string{"http", "tcp"} {
		got := logOK(t, "log", "verify", replies[transport], "--url", s.base, "--log-key", keyFile, "--ca", ca, "--wait", "10s")
		if !strings.Contains(got, "token:      signature and chain verified against "+ca) || !strings.HasSuffix(got, "\nOK\n") {
			t.Errorf("log verify of the %s token:\n%s", transport, got)
		}
	}

	for _, c := range []struct {
		args  []string
		trust string
	}{
		{[]string{"--ca", ca}, "against " + ca},
		{nil, "against each token's embedded certificate only"},
	} {
		got := logOK(t, append([]string{"log", "audit", "--url", s.base, "--log-key", keyFile}, c.args...)...)
		if !strings.Contains(got, "3 tokens (2 RFC 3161, 1 Authenticode) verified "+c.trust) || !strings.HasSuffix(got, "audit: OK\n") ||
			strings.Contains(got, "FAIL") || strings.Contains(got, "FLAG") {
			t.Errorf("log audit %v:\n%s", c.args, got)
		}
	}

	// The three requests were what the test meant them to be.
	if err := s.stop(t); err != nil {
		t.Fatalf("tsad did not stop cleanly: %v\n%s", err, s.output())
	}
	var kinds []string
	for _, evs := range readStore(t, data) {
		for _, e := range evs {
			if r, ok := e.(*events.TimestampRequested); ok {
				kinds = append(kinds, r.Transport+"/"+cmp.Or(r.Protocol, "rfc3161"))
			}
		}
	}
	slices.Sort(kinds)
	if want := []string{"http/authenticode", "http/rfc3161", "tcp/rfc3161"}; !slices.Equal(kinds, want) {
		t.Errorf("requests recorded as %v, want %v", kinds, want)
	}
}

// openState reads and verifies the monitor's state file.
func openState(t *testing.T, state, keyFile string) translog.Checkpoint {
	t.Helper()
	raw, err := os.ReadFile(state)
	if err != nil {
		t.Fatal(err)
	}
	v, err := logkey.LoadVerifier(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	cp, err := translog.OpenCheckpoint(raw, v)
	if err != nil {
		t.Fatalf("state %s: %v\n%s", state, err, raw)
	}
	return cp
}

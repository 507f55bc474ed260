package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/chronolog/chronolog/domain/events"
)

// TestBenchCountsOnlyCheckedTokens runs tsactl bench against a real server
// and holds its report to what the server recorded: every token it counts
// was granted and stored, and a query the server refuses is counted as an
// error, never as a token.
func TestBenchCountsOnlyCheckedTokens(t *testing.T) {
	data := t.TempDir()
	srv := startServer(t, data, "--hashes", "sha256,sha512")
	tsactl := filepath.Join(binDir, "tsactl")
	pid := strconv.Itoa(srv.cmd.Process.Pid)

	out := run(t, tsactl, "bench", "--url", srv.url, "--workers", "4", "--duration", "1s", "--warmup", "200ms", "--hash", "sha512", "--server-pid", pid)
	granted := benchField(t, out, `tokens:\s+(\d+) granted, (\d+) errors`)
	if granted[0] == 0 || granted[1] != 0 {
		t.Fatalf("bench against a healthy server:\n%s", out)
	}
	for _, want := range []string{"throughput:", "p50", "p90", "p99", "p999", "client:", "server:", "µs CPU per token", "VmHWM"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}

	// A hash the service refuses: every reply is a rejection, the run
	// fails, and the errors name the reason.
	res, err := execOutput(tsactl, "bench", "--url", srv.url, "--workers", "2", "--duration", "500ms", "--warmup", "0s", "--hash", "sha384")
	if err == nil {
		t.Fatalf("bench with only rejections succeeded:\n%s", res)
	}
	rejected := benchField(t, res, `tokens:\s+(\d+) granted, (\d+) errors`)
	if rejected[0] != 0 || rejected[1] == 0 || !strings.Contains(res, "not granted: rejection") || !strings.Contains(res, "badAlg") {
		t.Fatalf("bench with only rejections:\n%s", res)
	}

	// A fixed query file is sent as it is.
	work := t.TempDir()
	doc := filepath.Join(work, "doc.txt")
	os.WriteFile(doc, []byte("bench with a fixed query"), 0o644)
	run(t, tsactl, "request", "--url", srv.url, doc)
	fixed := run(t, tsactl, "bench", "--url", srv.url, "--workers", "2", "--duration", "500ms", "--warmup", "0s", "--tsq", doc+".tsq")
	if n := benchField(t, fixed, `tokens:\s+(\d+) granted, (\d+) errors`); n[0] == 0 || n[1] != 0 {
		t.Fatalf("bench with --tsq:\n%s", fixed)
	}

	// Every token the first run counted is on the record.
	srv.stop(t)
	issued := 0
	for stream, evs := range readStore(t, data) {
		if strings.HasPrefix(stream, "tsr-") && len(evs) > 0 && evs[len(evs)-1].EventType() == events.TypeTimestampIssued {
			issued++
		}
	}
	if issued < granted[0] {
		t.Fatalf("bench counted %d tokens, the store holds %d issued", granted[0], issued)
	}
}

func benchField(t *testing.T, out, pattern string) [2]int {
	t.Helper()
	m := regexp.MustCompile(pattern).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no %q in:\n%s", pattern, out)
	}
	a, _ := strconv.Atoi(m[1])
	b, _ := strconv.Atoi(m[2])
	return [2]int{a, b}
}

package e2e

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chronolog/chronolog/adapters/translog/trillian/trilliantest"
)

// BenchmarkLogLag runs tsactl bench (64 workers, 10 s) against tsad with
// each log backend, and with none, and reports issuance throughput and the
// log's lag: from an event reaching the log writer to a signed checkpoint
// covering it, p50 and p99 over the run's segments. One iteration is one
// whole run; -benchtime=1x is the way to call it:
//
//	CHRONOLOG_TEST_MYSQL_URI='root@tcp(127.0.0.1:3306)/' go test -run '^$' -bench LogLag -benchtime 1x ./e2e/
func BenchmarkLogLag(b *testing.B) {
	for _, backend := range []string{"off", "tessera", "trillian"} {
		b.Run(backend, func(b *testing.B) {
			args := []string{"--log", backend}
			if backend == "trillian" {
				tr := trilliantest.Start(b)
				args = append(args, "--trillian-addr", tr.Addr, "--trillian-tree", fmt.Sprint(tr.TreeID))
			}
			for range b.N {
				srv := startServer(b, b.TempDir(), args...)
				out, err := exec.Command(filepath.Join(binDir, "tsactl"), "bench", "--url", srv.url, "--workers", "64",
					"--duration", "10s", "--server-pid", strconv.Itoa(srv.cmd.Process.Pid), "--log-wait", "10s").CombinedOutput()
				if err != nil {
					b.Fatalf("tsactl bench: %v\n%s", err, out)
				}
				b.Logf("\n%s", out)
				report(b, string(out), `throughput: (\d+) tokens/s`, 1, "tokens/s")
				if backend != "off" {
					report(b, string(out), `log lag:\s+p50 (\S+)`, 1e3, "lag-p50-ms")
					report(b, string(out), `log lag:.*p99 (\S+)`, 1e3, "lag-p99-ms")
				} else if strings.Contains(string(out), "log lag:") {
					b.Fatal("a server without a log reports a log lag")
				}
				srv.stop(b)
			}
		})
	}
}

// report parses a figure out of tsactl bench's output, a plain number or
// a Go duration (in seconds, times scale), and reports it.
func report(b *testing.B, out, pattern string, scale float64, unit string) {
	b.Helper()
	m := regexp.MustCompile(pattern).FindStringSubmatch(out)
	if m == nil {
		b.Fatalf("no %q in:\n%s", pattern, out)
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		d, derr := time.ParseDuration(m[1])
		if derr != nil {
			b.Fatalf("%q is neither a number nor a duration", m[1])
		}
		v = d.Seconds() * scale
	}
	b.ReportMetric(v, unit)
}

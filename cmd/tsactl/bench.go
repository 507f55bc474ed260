package main

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/chronolog/chronolog/domain/rfc3161"
)

// runBench loads a TSA from many workers, each on its own keep-alive
// connection, and prints throughput, latency percentiles, errors, and the
// CPU and memory each side used. Every reply is checked: HTTP 200 with
// application/timestamp-reply, status granted, and a token that echoes the
// query's nonce and digest; anything else is counted as an error by kind.
func runBench(args []string) error {
	fs := flag.NewFlagSet("tsactl bench", flag.ContinueOnError)
	target := fs.String("url", "http://127.0.0.1:3180/tsa", "TSA URL (http or https)")
	workers := fs.Int("workers", 64, "concurrent clients, one connection each")
	duration := fs.Duration("duration", 10*time.Second, "how long to measure")
	warmup := fs.Duration("warmup", time.Second, "load before measuring starts")
	timeout := fs.Duration("timeout", 30*time.Second, "per-request timeout")
	tsq := fs.String("tsq", "", "send this query file every time (default: a fresh digest and nonce per request)")
	certReq := fs.Bool("cert", false, "generated queries ask for certificates")
	bearerEnv := fs.String("bearer-env", "", "send the API key held in this environment variable (Authorization: Bearer), for services with an api-key filter")
	hash := fs.String("hash", "sha256", "hash of generated queries")
	serverPID := fs.Int("server-pid", 0, "also report this local process's CPU time and peak memory (Linux /proc)")
	logWait := fs.Duration("log-wait", 5*time.Second, "after the run, wait this long at most for the transparency log to catch up, then report its lag from the server's /metrics")
	if err := fs.Parse(args); err != nil {
		return err
	}
	// The key comes from the environment, never the command line, where
	// ps would show it.
	bearer := ""
	if *bearerEnv != "" {
		if bearer = os.Getenv(*bearerEnv); bearer == "" {
			return fmt.Errorf("--bearer-env %s: the variable is empty or unset", *bearerEnv)
		}
	}
	if *workers < 1 || *duration <= 0 {
		return fmt.Errorf("need at least one worker and a positive duration")
	}
	u, err := url.Parse(*target)
	if err != nil {
		return fmt.Errorf("url: %w", err)
	}
	dial, err := newBenchDialer(u, *timeout)
	if err != nil {
		return err
	}
	alg, ok := rfc3161.HashByName(*hash)
	if !ok {
		return fmt.Errorf("unknown hash %q", *hash)
	}
	var fixed []byte
	if *tsq != "" {
		if fixed, err = os.ReadFile(*tsq); err != nil {
			return err
		}
	}

	results := make([]benchResult, *workers)
	makers := make([]*queryMaker, *workers)
	for w := range makers {
		var seed [32]byte
		crand.Read(seed[:])
		if makers[w], err = newQueryMaker(alg, *certReq, seed); err != nil {
			return err
		}
		makers[w].fixed = fixed
		results[w].lat = make([]time.Duration, 0, 1<<14)
		results[w].errs = map[string]int{}
	}
	start := time.Now()
	measureFrom := start.Add(*warmup)
	ctx, cancel := context.WithDeadline(context.Background(), measureFrom.Add(*duration))
	defer cancel()

	// The CPU figures cover the measured window only.
	var clientCPU, serverCPU cpuWindow
	go func() {
		time.Sleep(time.Until(measureFrom))
		clientCPU.begin(selfCPU())
		serverCPU.begin(procCPU(*serverPID))
	}()

	var wg sync.WaitGroup
	for w := range *workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			benchWorker(ctx, newBenchConn(u, dial, bearer), makers[w], &results[w], measureFrom, *timeout)
		}()
	}
	<-ctx.Done()
	clientCPU.end(selfCPU())
	serverCPU.end(procCPU(*serverPID))
	wg.Wait()

	var lat []time.Duration
	granted := 0
	errs := map[string]int{}
	for _, r := range results {
		lat = append(lat, r.lat...)
		granted += len(r.lat)
		for k, v := range r.errs {
			errs[k] += v
		}
	}
	slices.Sort(lat)
	nerr := 0
	for _, v := range errs {
		nerr += v
	}
	secs := duration.Seconds()
	fmt.Printf("url:        %s\nworkers:    %d (one keep-alive connection each)\nduration:   %s (after %s warm-up)\n", *target, *workers, *duration, *warmup)
	fmt.Printf("tokens:     %d granted, %d errors\n", granted, nerr)
	fmt.Printf("throughput: %.0f tokens/s\n", float64(granted)/secs)
	fmt.Printf("latency:    p50 %s  p90 %s  p99 %s  p999 %s  max %s\n",
		pct(lat, 0.50), pct(lat, 0.90), pct(lat, 0.99), pct(lat, 0.999), pct(lat, 1))
	keys := make([]string, 0, len(errs))
	for k := range errs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Printf("error:      %d × %s\n", errs[k], k)
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fmt.Printf("client:     %s, %.1f MiB heap in use, %.1f MiB from the OS\n",
		clientCPU.describe(secs, granted), float64(ms.HeapInuse)/(1<<20), float64(ms.Sys)/(1<<20))
	if *serverPID > 0 {
		fmt.Printf("server:     %s, %s\n", serverCPU.describe(secs, granted), procMemory(*serverPID))
	}
	if line := logLag(u, *logWait); line != "" {
		fmt.Printf("log lag:    %s\n", line)
	}
	if granted == 0 {
		return fmt.Errorf("no token was granted")
	}
	return nil
}

type benchResult struct {
	lat  []time.Duration // of granted replies in the measured window
	errs map[string]int
}

func benchWorker(ctx context.Context, c *benchConn, m *queryMaker, r *benchResult, measureFrom time.Time, timeout time.Duration) {
	defer c.close()
	var want []byte
	for ctx.Err() == nil {
		query, digest, nonce := m.next()
		start := time.Now()
		body, err := c.roundTrip(query, start.Add(timeout))
		lat := time.Since(start)
		if ctx.Err() != nil {
			return // the reply may have been cut off by the end of the run
		}
		if start.Before(measureFrom) {
			continue
		}
		if err != nil {
			r.errs[shortErr(err)]++
			if c.conn == nil {
				time.Sleep(10 * time.Millisecond) // do not spin on a refused dial
			}
			continue
		}
		resp, err := rfc3161.ParseTimeStampResp(body)
		if nonce != nil {
			want = append(append(want[:0], 0x02, benchNonceLen), nonce...)
		}
		switch {
		case err != nil:
			r.errs["bad reply: "+err.Error()]++
		case resp.Token == nil:
			r.errs["not granted: "+resp.Describe()]++
		case nonce != nil && !bytes.Contains(resp.Token, want):
			r.errs["token does not echo the nonce"]++
		case digest != nil && !bytes.Contains(resp.Token, digest):
			r.errs["token does not carry the digest"]++
		default:
			r.lat = append(r.lat, lat)
		}
	}
}

// cpuWindow measures CPU time between two readings.
type cpuWindow struct {
	mu        sync.Mutex
	from, to  time.Duration
	began, ok bool
}

func (w *cpuWindow) begin(d time.Duration, ok bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.from, w.began, w.ok = d, true, ok
}

func (w *cpuWindow) end(d time.Duration, ok bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.to = d
	w.ok = w.ok && ok && w.began
}

func (w *cpuWindow) describe(secs float64, tokens int) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.ok {
		return "CPU unknown"
	}
	used := w.to - w.from
	s := fmt.Sprintf("%.2f cores", used.Seconds()/secs)
	if tokens > 0 {
		s += fmt.Sprintf(" (%.0f µs CPU per token)", float64(used.Microseconds())/float64(tokens))
	}
	return s
}

func selfCPU() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}

// procCPU reads a process's user+system time from /proc/PID/stat.
func procCPU(pid int) (time.Duration, bool) {
	if pid <= 0 {
		return 0, false
	}
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	// The command name may hold spaces: fields start after its ')'.
	i := bytes.LastIndexByte(raw, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(raw[i+1:]))
	if len(f) < 13 {
		return 0, false
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	// USER_HZ is 100 on every Linux the Go runtime supports.
	return time.Duration(ut+st) * 10 * time.Millisecond, true
}

func pct(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)-1) * p)
	return sorted[i].Round(10 * time.Microsecond)
}

func shortErr(err error) string {
	s := err.Error()
	if len(s) > 120 {
		s = s[:120]
	}
	return s
}

// procMemory reads VmRSS and VmHWM (peak) of a Linux process.
func procMemory(pid int) string {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return err.Error()
	}
	var out []string
	for _, line := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(line, "VmRSS:") || strings.HasPrefix(line, "VmHWM:") {
			out = append(out, strings.Join(strings.Fields(line), " "))
		}
	}
	return strings.Join(out, ", ")
}

// logLag reads the server's transparency-log metrics once the log has
// caught up (or wait passed): the lag from an event reaching the log writer
// to a signed checkpoint covering it, over the recent segments. It returns
// "" when the server has no log metrics.
func logLag(target *url.URL, wait time.Duration) string {
	metricsURL := target.Scheme + "://" + target.Host + "/metrics"
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(wait)
	for {
		res, err := client.Get(metricsURL)
		if err != nil {
			return ""
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		m := map[string]float64{}
		for _, line := range strings.Split(string(body), "\n") {
			name, value, ok := strings.Cut(line, " ")
			if !ok || strings.HasPrefix(name, "#") {
				continue
			}
			if v, err := strconv.ParseFloat(strings.TrimSpace(value), 64); err == nil {
				m[name] = v
			}
		}
		behind, ok := m["chronolog_log_lag_events"]
		if !ok {
			return ""
		}
		// A few bookkeeping events trail the last real one until the
		// next arrives: they are not lag.
		if behind <= 8 || time.Now().After(deadline) {
			sec := func(q string) time.Duration {
				return time.Duration(m[`chronolog_log_lag_seconds{quantile="`+q+`"}`] * float64(time.Second)).Round(time.Millisecond)
			}
			return fmt.Sprintf("p50 %s  p99 %s  max %s over %.0f segments (event reaching the log writer → signed checkpoint); %.0f events not yet in the log",
				sec("0.5"), sec("0.99"), sec("1"), m["chronolog_log_lag_seconds_count"], behind)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

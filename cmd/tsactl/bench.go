package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"flag"
	"fmt"
	"math/big"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/chronolog/chronolog/domain/rfc3161"
)

// runBench loads a TSA from many workers over keep-alive connections and
// prints throughput, latency percentiles, errors and memory. Every reply is
// parsed: only a granted TimeStampResp counts as a token.
func runBench(args []string) error {
	fs := flag.NewFlagSet("tsactl bench", flag.ContinueOnError)
	url := fs.String("url", "http://127.0.0.1:3180/tsa", "TSA URL")
	workers := fs.Int("workers", 64, "concurrent clients")
	duration := fs.Duration("duration", 10*time.Second, "how long to load")
	warmup := fs.Duration("warmup", time.Second, "load before measuring starts")
	tsq := fs.String("tsq", "", "send this query file every time (default: a fresh query with a nonce per request)")
	certReq := fs.Bool("cert", false, "generated queries ask for certificates")
	hash := fs.String("hash", "sha256", "hash of generated queries")
	serverPID := fs.Int("server-pid", 0, "report this process's peak resident memory (Linux /proc)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var fixed []byte
	if *tsq != "" {
		var err error
		if fixed, err = os.ReadFile(*tsq); err != nil {
			return err
		}
	}
	alg, ok := rfc3161.HashByName(*hash)
	if !ok {
		return fmt.Errorf("unknown hash %q", *hash)
	}
	client := &http.Client{
		Transport: &http.Transport{MaxIdleConns: *workers, MaxIdleConnsPerHost: *workers, MaxConnsPerHost: *workers},
		Timeout:   30 * time.Second,
	}
	query := func(i int) ([]byte, error) {
		if fixed != nil {
			return fixed, nil
		}
		sum := sha256.Sum256(fmt.Appendf(nil, "chronolog bench %d", i))
		digest := make([]byte, alg.Size)
		copy(digest, sum[:])
		nonce, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
		if err != nil {
			return nil, err
		}
		q, err := rfc3161.NewTimeStampReq(alg, digest, nonce, nil, *certReq)
		if err != nil {
			return nil, err
		}
		return q.Marshal()
	}

	type result struct {
		lat     []time.Duration
		granted int
		errs    map[string]int
	}
	results := make([]result, *workers)
	ctx, cancel := context.WithTimeout(context.Background(), *warmup+*duration)
	defer cancel()
	measureFrom := time.Now().Add(*warmup)
	var wg sync.WaitGroup
	for w := 0; w < *workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			r := &results[w]
			r.errs = map[string]int{}
			for i := w; ctx.Err() == nil; i += *workers {
				der, err := query(i)
				if err != nil {
					r.errs["query: "+err.Error()]++
					return
				}
				start := time.Now()
				body, err := post(client, *url, der)
				lat := time.Since(start)
				if ctx.Err() != nil {
					return
				}
				if start.Before(measureFrom) {
					continue
				}
				if err != nil {
					r.errs[shortErr(err)]++
					continue
				}
				resp, err := rfc3161.ParseTimeStampResp(body)
				switch {
				case err != nil:
					r.errs["bad reply: "+err.Error()]++
				case resp.Token == nil:
					r.errs["not granted: "+describeStatus(resp)]++
				default:
					r.granted++
					r.lat = append(r.lat, lat)
				}
			}
		}(w)
	}
	wg.Wait()
	elapsed := *duration

	var lat []time.Duration
	granted := 0
	errs := map[string]int{}
	for _, r := range results {
		lat = append(lat, r.lat...)
		granted += r.granted
		for k, v := range r.errs {
			errs[k] += v
		}
	}
	slices.Sort(lat)
	nerr := 0
	for _, v := range errs {
		nerr += v
	}
	fmt.Printf("url:        %s\nworkers:    %d\nduration:   %s (after %s warm-up)\n", *url, *workers, elapsed, *warmup)
	fmt.Printf("tokens:     %d granted, %d errors\n", granted, nerr)
	fmt.Printf("throughput: %.0f tokens/s\n", float64(granted)/elapsed.Seconds())
	fmt.Printf("latency:    p50 %s  p90 %s  p99 %s  p999 %s  max %s\n",
		pct(lat, 0.50), pct(lat, 0.90), pct(lat, 0.99), pct(lat, 0.999), pct(lat, 1))
	for k, v := range errs {
		fmt.Printf("error:      %d × %s\n", v, k)
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fmt.Printf("client mem: %.1f MiB heap in use, %.1f MiB from the OS\n", float64(ms.HeapInuse)/(1<<20), float64(ms.Sys)/(1<<20))
	if *serverPID > 0 {
		fmt.Printf("server mem: %s\n", procMemory(*serverPID))
	}
	if granted == 0 {
		return fmt.Errorf("no token was granted")
	}
	return nil
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

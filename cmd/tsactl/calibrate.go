package main

import (
	"bytes"
	"crypto/rand"
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/big"
	"net/http"
	"net/http/httptrace"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/chronolog/chronolog/domain/rfc3161"
)

// runCalibrate measures a TSA's clock from the client side, as the CESNET
// TSA paper does: N queries one after another, each bracketed by Tq (the
// local time just before the request is written on the connection) and Tr
// (the local time the whole reply has arrived), against the token's
// genTime Ts. With the two clocks in step, Ts lies in [Tq, Tr]; an
// auditor holds it to [Tq − accuracy, Tr + accuracy], accuracy being what
// the token declares.
//
// The tokens' signatures are not verified here (tsactl verify does that):
// each reply is checked for status granted, the nonce echoed and the
// imprint carried, which is enough to tie genTime to its query.
func runCalibrate(args []string) error {
	fs := flag.NewFlagSet("tsactl calibrate", flag.ContinueOnError)
	n := fs.Int("n", 100, "number of queries, sent one after another")
	interval := fs.Duration("interval", 0, "pause between two queries")
	hash := fs.String("hash", "sha256", "message-imprint hash of the random data queried: sha256, sha384, sha512, sha3-256, sha3-384, sha3-512, sha1")
	timeout := fs.Duration("timeout", 30*time.Second, "per-request timeout")
	csvOut := fs.String("csv", "", "write one row per query to this CSV file")
	pngOut := fs.String("png", "", "plot Ts − Tq and Tr − Tq per query to this PNG file")
	xAxis := fs.String("x", "index", "x axis of the plot: index (query number) or time (Tq, seconds since the first query)")
	bearerEnv := fs.String("bearer-env", "", "send the API key held in this environment variable (Authorization: Bearer), for services with an api-key filter")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: tsactl calibrate [flags] URL\n\nflags may also follow URL.\n\n")
		fs.PrintDefaults()
	}
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("calibrate needs one TSA URL")
	}
	target := pos[0]
	if *n < 1 {
		return fmt.Errorf("--n must be at least 1")
	}
	if *xAxis != "index" && *xAxis != "time" {
		return fmt.Errorf("--x %q: want index or time", *xAxis)
	}
	alg, ok := rfc3161.HashByName(*hash)
	if !ok {
		return fmt.Errorf("unknown hash %q", *hash)
	}
	bearer := ""
	if *bearerEnv != "" {
		if bearer = os.Getenv(*bearerEnv); bearer == "" {
			return fmt.Errorf("--bearer-env %s: the variable is empty or unset", *bearerEnv)
		}
	}

	stamps := &stampTransport{base: http.DefaultTransport.(*http.Transport).Clone()}
	client := &http.Client{Transport: stamps, Timeout: *timeout}
	samples := make([]calSample, 0, *n)
	for i := range *n {
		if i > 0 && *interval > 0 {
			time.Sleep(*interval)
		}
		samples = append(samples, calibrateOnce(client, stamps, target, alg, bearer, i+1))
	}
	client.CloseIdleConnections()

	// The report first: a file that cannot be written loses no measurement.
	printCalibrationReport(os.Stdout, target, samples)
	if *csvOut != "" {
		if err := writeFile(*csvOut, func(w io.Writer) error { return writeCalibrationCSV(w, samples) }); err != nil {
			return fmt.Errorf("--csv: %w", err)
		}
	}
	if firstGranted(samples) < 0 {
		return fmt.Errorf("no query was granted")
	}
	if *pngOut != "" {
		title := fmt.Sprintf("tsactl calibrate %s, %s", target, samples[0].Tq.UTC().Format("2006-01-02 15:04 MST"))
		if err := writeFile(*pngOut, func(w io.Writer) error {
			return writeCalibrationPNG(w, samples, title, *xAxis == "time")
		}); err != nil {
			return fmt.Errorf("--png: %w", err)
		}
	}
	return nil
}

// calSample is one query's measurement.
type calSample struct {
	Index int
	// Tq is the local time just before the request was written, Tr the
	// local time the whole reply had arrived.
	Tq, Tr time.Time
	// Ts is the token's genTime, zero unless the reply passed its checks.
	Ts time.Time
	// Accuracy is the token's declared accuracy, nil when it has none.
	Accuracy *rfc3161.Accuracy
	Status   string // the TimeStampResp's status, "" without one
	Serial   string
	Err      string // why the query failed, "" when it did not
}

func (s calSample) ok() bool { return s.Err == "" }

// Ts − Tq and Tr − Ts compare the TSA's wall clock with ours; Tr − Tq
// is the round trip, on the monotonic clock while both readings carry it.
func (s calSample) tsMinusTq() time.Duration { return s.Ts.Sub(s.Tq) }
func (s calSample) trMinusTq() time.Duration { return s.Tr.Sub(s.Tq) }
func (s calSample) trMinusTs() time.Duration { return s.Tr.Sub(s.Ts) }

// withinAccuracy reports whether Ts lies in [Tq − accuracy, Tr + accuracy],
// accuracy 0 when the token declares none.
func (s calSample) withinAccuracy() bool {
	acc := s.Accuracy.Duration()
	return !s.Ts.Before(s.Tq.Add(-acc)) && !s.Ts.After(s.Tr.Add(acc))
}

// stampTransport notes when each request gets its connection, which is
// the moment just before the request is written on it: Tq, without the
// time a new connection takes to set up.
type stampTransport struct {
	base http.RoundTripper
	mu   sync.Mutex
	got  time.Time
}

func (t *stampTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	trace := &httptrace.ClientTrace{GotConn: func(httptrace.GotConnInfo) {
		now := time.Now()
		t.mu.Lock()
		t.got = now
		t.mu.Unlock()
	}}
	return t.base.RoundTrip(r.WithContext(httptrace.WithClientTrace(r.Context(), trace)))
}

// take returns the time noted since the last call, zero if none was.
func (t *stampTransport) take() time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	got := t.got
	t.got = time.Time{}
	return got
}

// calibrateOnce sends one query for a fresh random imprint and nonce and
// checks the reply.
func calibrateOnce(c *http.Client, stamps *stampTransport, url string, alg rfc3161.HashAlgorithm, bearer string, index int) calSample {
	s := calSample{Index: index}
	data := make([]byte, 32)
	rand.Read(data)
	h := alg.Hash.New()
	h.Write(data)
	nonce, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		s.Err = "draw nonce: " + err.Error()
		return s
	}
	q, err := rfc3161.NewTimeStampReq(alg, h.Sum(nil), nonce, nil, false)
	if err != nil {
		s.Err = err.Error()
		return s
	}
	stamps.take()
	before := time.Now()
	body, err := post(c, url, q.Raw, bearer)
	s.Tr = time.Now()
	if s.Tq = stamps.take(); s.Tq.IsZero() {
		s.Tq = before // no connection was had: the time of asking
	}
	if err != nil {
		s.Err = err.Error()
		return s
	}
	resp, err := rfc3161.ParseTimeStampResp(body)
	if err != nil {
		s.Err = "bad reply: " + err.Error()
		return s
	}
	s.Status = resp.Describe()
	if resp.Token == nil {
		s.Err = "not granted: " + s.Status
		return s
	}
	info, err := rfc3161.TokenTSTInfo(resp.Token)
	if err != nil {
		s.Err = "bad token: " + err.Error()
		return s
	}
	s.Serial = info.SerialNumber.String()
	mi, err := rfc3161.ParseMessageImprint(info.MessageImprint)
	switch {
	case err != nil:
		s.Err = "bad token imprint: " + err.Error()
	case !bytes.Equal(info.Nonce, q.Nonce):
		s.Err = "token does not echo the nonce"
	case !mi.Algorithm.OID.Equal(alg.OID) || !bytes.Equal(mi.HashedMessage, q.MessageImprint.HashedMessage):
		s.Err = "token does not carry the query's imprint"
	default:
		s.Ts, s.Accuracy = info.GenTime, info.Accuracy
	}
	return s
}

// summary describes a sample of values.
type summary struct {
	N                          int
	Mean, SD, Min, Max, Median float64
}

// summarize returns the mean, sample standard deviation (n − 1; 0 for
// fewer than two values), min, max and median of xs; all zero when xs is
// empty. xs is not modified.
func summarize(xs []float64) summary {
	if len(xs) == 0 {
		return summary{}
	}
	s := summary{N: len(xs), Min: math.Inf(1), Max: math.Inf(-1)}
	var sum float64
	for _, x := range xs {
		sum += x
		s.Min = math.Min(s.Min, x)
		s.Max = math.Max(s.Max, x)
	}
	s.Mean = sum / float64(len(xs))
	if len(xs) > 1 {
		var ss float64
		for _, x := range xs {
			ss += (x - s.Mean) * (x - s.Mean)
		}
		s.SD = math.Sqrt(ss / float64(len(xs)-1))
	}
	sorted := slices.Clone(xs)
	slices.Sort(sorted)
	if m := len(sorted) / 2; len(sorted)%2 == 1 {
		s.Median = sorted[m]
	} else {
		s.Median = (sorted[m-1] + sorted[m]) / 2
	}
	return s
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// calibrationSeries returns, in milliseconds, Ts − Tq, Tr − Tq and Tr − Ts
// of the queries that were granted.
func calibrationSeries(samples []calSample) (tsq, trq, trs []float64) {
	for _, s := range samples {
		if s.ok() {
			tsq = append(tsq, ms(s.tsMinusTq()))
			trq = append(trq, ms(s.trMinusTq()))
			trs = append(trs, ms(s.trMinusTs()))
		}
	}
	return tsq, trq, trs
}

// printCalibrationReport writes the summary: counts, failures by kind, the
// three differences' statistics and the accuracy check.
func printCalibrationReport(w io.Writer, url string, samples []calSample) {
	granted, outside, withAcc, digits := 0, 0, 0, 0
	errs := map[string]int{}
	accs := map[time.Duration]bool{}
	firstOutside := -1
	for _, s := range samples {
		if !s.ok() {
			errs[shortErr(errors.New(s.Err))]++
			continue
		}
		granted++
		if s.Accuracy != nil {
			withAcc++
			accs[s.Accuracy.Duration()] = true
		}
		if !s.withinAccuracy() {
			outside++
			if firstOutside < 0 {
				firstOutside = s.Index
			}
		}
		g := rfc3161.FormatGeneralizedTime(s.Ts)
		if _, frac, ok := strings.Cut(strings.TrimSuffix(g, "Z"), "."); ok {
			digits = max(digits, len(frac))
		}
	}
	fmt.Fprintf(w, "url:        %s\n", url)
	fmt.Fprintf(w, "queries:    %d sent, %d granted, %d failed\n", len(samples), granted, len(samples)-granted)
	keys := make([]string, 0, len(errs))
	for k := range errs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "error:      %d × %s\n", errs[k], k)
	}
	if granted == 0 {
		return
	}
	fmt.Fprintf(w, "genTime:    %d fractional digits at most (resolution %s)\n", digits, time.Duration(math.Pow10(9-digits)))
	switch {
	case withAcc == 0:
		fmt.Fprintf(w, "accuracy:   none declared\n")
	case len(accs) == 1 && withAcc == granted:
		fmt.Fprintf(w, "accuracy:   %s declared in every token\n", samples[firstGranted(samples)].Accuracy.Duration())
	default:
		fmt.Fprintf(w, "accuracy:   declared in %d of %d tokens, %d different values\n", withAcc, granted, len(accs))
	}
	tsq, trq, trs := calibrationSeries(samples)
	for _, row := range []struct {
		name string
		xs   []float64
	}{{"Ts - Tq", tsq}, {"Tr - Tq", trq}, {"Tr - Ts", trs}} {
		st := summarize(row.xs)
		fmt.Fprintf(w, "%-11s mean %8.3f  sd %7.3f  min %8.3f  max %8.3f  median %8.3f  ms\n",
			row.name+":", st.Mean, st.SD, st.Min, st.Max, st.Median)
	}
	bounds := "[Tq - accuracy, Tr + accuracy]"
	if withAcc == 0 {
		bounds = "[Tq, Tr] (no accuracy declared)"
	}
	if outside == 0 {
		fmt.Fprintf(w, "check:      yes, every genTime lies in %s: 0 of %d outside\n", bounds, granted)
	} else {
		fmt.Fprintf(w, "check:      NO, %d of %d genTimes lie outside %s (first: query %d)\n", outside, granted, bounds, firstOutside)
	}
}

func firstGranted(samples []calSample) int {
	for i, s := range samples {
		if s.ok() {
			return i
		}
	}
	return -1
}

// rfc3339Nano is RFC 3339 with all nine fractional digits, so that the
// column lines up.
const rfc3339Nano = "2006-01-02T15:04:05.000000000Z07:00"

// writeCalibrationCSV writes a header and one row per query; ts and
// ts_minus_tq_ms are empty for a failed query.
func writeCalibrationCSV(w io.Writer, samples []calSample) error {
	cw := csv.NewWriter(w)
	if err := cw.Write([]string{"index", "tq", "tr", "ts", "ts_minus_tq_ms", "tr_minus_tq_ms", "status", "serial", "error"}); err != nil {
		return err
	}
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', 3, 64) }
	for _, s := range samples {
		ts, tsq := "", ""
		if s.ok() {
			ts, tsq = s.Ts.UTC().Format(rfc3339Nano), f(ms(s.tsMinusTq()))
		}
		if err := cw.Write([]string{strconv.Itoa(s.Index), s.Tq.UTC().Format(rfc3339Nano), s.Tr.UTC().Format(rfc3339Nano),
			ts, tsq, f(ms(s.trMinusTq())), s.Status, s.Serial, s.Err}); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// writeFile creates path and fills it with write, removing it on failure.
func writeFile(path string, write func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	err = write(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
	}
	return err
}

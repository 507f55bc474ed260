package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chronolog/chronolog/domain/events"
)

// hangUp is one way a client leaves: each writes some of a request on a
// raw connection and closes it at its own moment.
type hangUp struct {
	name string
	// send is what the client writes before it closes; wait how long it
	// waits after, reading, before it closes (0: at once).
	send func(req []byte) []byte
	wait time.Duration
	// read, when set, reads up to that many bytes of the answer first.
	read int
}

func httpRequest(body []byte, contentType string) []byte {
	return fmt.Appendf(nil, "POST /tsa HTTP/1.1\r\nHost: tsa\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n%s", contentType, len(body), body)
}

var hangUps = []hangUp{
	{name: "mid-headers", send: func(req []byte) []byte { return httpRequest(req, "application/timestamp-query")[:20] }},
	{name: "mid-body", send: func(req []byte) []byte {
		full := httpRequest(req, "application/timestamp-query")
		return full[:len(full)-len(req)/2]
	}},
	{name: "after the request", send: func(req []byte) []byte { return httpRequest(req, "application/timestamp-query") }},
	{name: "after the request, a moment later", send: func(req []byte) []byte { return httpRequest(req, "application/timestamp-query") }, wait: 300 * time.Microsecond},
	{name: "while the answer arrives", send: func(req []byte) []byte { return httpRequest(req, "application/timestamp-query") }, read: 12},
	{name: "garbage, then gone", send: func([]byte) []byte { return httpRequest([]byte("not a TimeStampReq"), "application/timestamp-query") }},
	{name: "refused type, then gone", send: func(req []byte) []byte { return httpRequest(req, "application/json") }},
}

// TestHangUpsUnderLoad loads tsad with well-behaved clients and clients
// that hang up at every point of an exchange, then holds every account of
// what happened to the record: /metrics, the event store, billing and the
// transparency log agree exactly, every request the server logged is on
// the record, and every token a client received is on it too.
func TestHangUpsUnderLoad(t *testing.T) {
	const biller = "chl_e2e-hangup-billing"
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "tsad.yaml")
	cfg := fmt.Sprintf(`server:
  api:
    tokens:
      - {name: money, sha256: %q, roles: [billing, operator]}
services:
  - name: default
    paths: [/tsa]
    policy: 1.3.6.1.4.1.32473.3161.1
`, digestLine(biller))
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	data := t.TempDir()
	srv := startServer(t, data, "--config", cfgFile)
	addr := strings.TrimPrefix(strings.TrimSuffix(srv.url, "/tsa"), "http://")

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var received sync.Map // serial → token, for the well-behaved clients
	var left, seq atomic.Uint64
	for w := range 24 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			client := &http.Client{Timeout: 10 * time.Second}
			for {
				select {
				case <-stop:
					return
				default:
				}
				der, err := marshalQuiet(sha256Query(fmt.Sprintf("hang-up %d", seq.Add(1))))
				if err != nil {
					t.Error(err)
					return
				}
				if rng.IntN(3) == 0 {
					res, err := client.Post(srv.url, "application/timestamp-query", strings.NewReader(string(der)))
					if err != nil {
						continue
					}
					body, _ := io.ReadAll(res.Body)
					res.Body.Close()
					if r, err := tryParseResp(body); err == nil && r.Status.Status == 0 {
						if info, err := tryTSTInfo(r); err == nil {
							received.Store(info.SerialNumber.Text(16), true)
						}
					}
					continue
				}
				h := hangUps[rng.IntN(len(hangUps))]
				c, err := net.Dial("tcp", addr)
				if err != nil {
					continue
				}
				c.Write(h.send(der))
				if h.read > 0 {
					c.SetReadDeadline(time.Now().Add(2 * time.Second))
					io.ReadFull(c, make([]byte, h.read))
				}
				if h.wait > 0 {
					time.Sleep(time.Duration(rng.Int64N(int64(h.wait))))
				}
				// A reset rather than a FIN, as a killed client leaves.
				if tc, ok := c.(*net.TCPConn); ok && rng.IntN(2) == 0 {
					tc.SetLinger(0)
				}
				c.Close()
				left.Add(1)
			}
		}()
	}
	time.Sleep(3 * time.Second)
	close(stop)
	wg.Wait()
	t.Logf("%d clients hung up", left.Load())

	// The server finishes what is in flight, and the read side and the
	// log catch up with the record.
	metrics := settledMetrics(t, srv.base)
	billed := waitBilling(t, srv.base+"/api/v1", biller, metrics["store_head"])
	waitLogSettled(t, srv.base)
	if err := srv.stop(t); err != nil {
		t.Fatalf("tsad stop: %v\n%s", err, srv.output())
	}

	store := readStore(t, data)
	var issued, rejected, refused, undelivered int
	for stream, evs := range store {
		if !strings.HasPrefix(stream, "tsr-") {
			continue
		}
		if _, ok := evs[0].(*events.TimestampRequested); !ok {
			t.Errorf("%s starts with %T", stream, evs[0])
		}
		outcomes := 0
		for _, e := range evs {
			switch e := e.(type) {
			case *events.TimestampIssued:
				issued++
				outcomes++
			case *events.TimestampRejected:
				outcomes++
				if e.Status == "refused" {
					refused++
				} else {
					rejected++
				}
			case *events.TimestampUndelivered:
				undelivered++
				if outcomes != 1 {
					t.Errorf("%s: undelivered before its outcome", stream)
				}
			}
		}
		if outcomes != 1 {
			t.Errorf("%s: %d outcomes: %v", stream, outcomes, evs)
		}
	}
	t.Logf("record: %d issued, %d rejected, %d refused, %d undelivered; metrics %v; billing %v", issued, rejected, refused, undelivered, metrics, billed)
	for _, c := range []struct {
		what           string
		record, metric int
		billing        bool
	}{
		{"granted", issued, metrics["granted"], true},
		{"rejected", rejected, metrics["rejected"], true},
		{"refused", refused, metrics["refused"], true},
		{"undelivered", undelivered, metrics["undelivered"], false},
	} {
		if c.record != c.metric {
			t.Errorf("%s: %d on the record, %d in /metrics", c.what, c.record, c.metric)
		}
		if c.billing && billed[c.what] != c.record {
			t.Errorf("%s: %d on the record, %d billed", c.what, c.record, billed[c.what])
		}
	}
	if metrics["unrecorded"] != 0 {
		t.Errorf("%d answers unrecorded", metrics["unrecorded"])
	}
	if undelivered == 0 || issued == 0 {
		t.Errorf("the load did not exercise hang-ups after issuance: %d issued, %d undelivered", issued, undelivered)
	}
	covered, issuedAt := checkTesseraLog(t, data)
	inLog := 0
	for _, pos := range issuedAt {
		if pos <= covered {
			inLog++
		}
	}
	if inLog != issued {
		t.Errorf("%d tokens in the log (up to position %d), %d on the record", inLog, covered, issued)
	}
	received.Range(func(k, _ any) bool {
		if _, ok := issuedAt[k.(string)]; !ok {
			t.Errorf("token %s was received but is not on the record", k)
		}
		return true
	})
	// Every request the server wrote about is on the record.
	for _, m := range regexp.MustCompile(`serial=([0-9a-f]+)`).FindAllStringSubmatch(srv.output(), -1) {
		if _, ok := store["tsr-"+m[1]]; !ok {
			t.Errorf("the server logged serial %s, which is not on the record", m[1])
		}
	}
}

// settledMetrics reads /metrics until two reads a second apart agree: the
// requests in flight have been answered.
func settledMetrics(t *testing.T, base string) map[string]int {
	t.Helper()
	var last map[string]int
	for range 30 {
		m := readMetrics(t, base)
		if last != nil && fmt.Sprint(m) == fmt.Sprint(last) {
			return m
		}
		last = m
		time.Sleep(time.Second)
	}
	t.Fatalf("/metrics did not settle: %v", last)
	return nil
}

func readMetrics(t *testing.T, base string) map[string]int {
	t.Helper()
	res, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	m := map[string]int{}
	names := map[string]string{
		`chronolog_timestamps_total{outcome="granted"}`:  "granted",
		`chronolog_timestamps_total{outcome="rejected"}`: "rejected",
		`chronolog_timestamps_total{outcome="refused"}`:  "refused",
		"chronolog_unrecorded_total":                     "unrecorded",
		"chronolog_undelivered_total":                    "undelivered",
		"chronolog_store_head_position":                  "store_head",
		"chronolog_log_covered_position":                 "log_covered",
	}
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		name, v, ok := strings.Cut(sc.Text(), " ")
		if key, known := names[name]; ok && known {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatalf("%s: %v", sc.Text(), err)
			}
			m[key] = n
		}
	}
	return m
}

// waitBilling waits for the read models to reach the store's head and
// sums billing's counts.
func waitBilling(t *testing.T, api, token string, head int) map[string]int {
	t.Helper()
	waitProjections(t, api, token, 10*time.Second, func(p projectionStatus) bool { return p.Checkpoint >= uint64(head) })
	_, _, body := apiGet(t, api+"/billing", token)
	var billed struct {
		Rows []struct{ Issued, Rejected, Refused int }
	}
	if err := json.Unmarshal(body, &billed); err != nil {
		t.Fatalf("billing: %v: %s", err, body)
	}
	sum := map[string]int{}
	for _, r := range billed.Rows {
		sum["granted"] += r.Issued
		sum["rejected"] += r.Rejected
		sum["refused"] += r.Refused
	}
	return sum
}

// waitLogSettled waits until the transparency log stops growing: it has
// sealed every request's events (what follows them is the log's own
// bookkeeping, sealed with the next request).
func waitLogSettled(t *testing.T, base string) {
	t.Helper()
	last := -1
	for range 40 {
		m := readMetrics(t, base)
		if m["log_covered"] == last {
			return
		}
		last = m["log_covered"]
		time.Sleep(time.Second)
	}
	t.Fatalf("the log did not settle: it covers position %d", last)
}

package e2e

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/asn1"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chronolog/chronolog/adapters/devpki"
	"github.com/chronolog/chronolog/domain/events"
	"github.com/chronolog/chronolog/domain/rfc3161"
)

const (
	policyQualified = "1.3.6.1.4.1.32473.3161.1"
	policyInternal  = "1.3.6.1.4.1.32473.3161.2"
	policyInternal2 = "1.3.6.1.4.1.32473.3161.3"
	policyKeyed     = "1.3.6.1.4.1.32473.3161.4"
	testAPIKey      = "chl_e2e-build-farm-key-0123456789abcdef"
)

// tsReq is a request the test makes, and what it expects.
type tsReq struct {
	name     string
	path     string
	alg      rfc3161.HashAlgorithm
	nonce    []byte
	policy   string
	certReq  bool
	bearer   string
	granted  bool
	failInfo rfc3161.FailInfo
	// reason must appear in the recorded denial.
	reason string
	body   []byte
}

// der makes the request with a digest unique to the case, so the record
// can be found by the body's hash.
func (c *tsReq) der(t *testing.T) []byte {
	t.Helper()
	if c.body != nil {
		return c.body
	}
	digest := make([]byte, c.alg.Size)
	sum := sha256.Sum256([]byte(c.name + time.Now().String()))
	copy(digest, sum[:])
	var nonce *big.Int
	if c.nonce != nil {
		nonce = new(big.Int).SetBytes(c.nonce)
	}
	var pol asn1.ObjectIdentifier
	if c.policy != "" {
		pol = mustOID(t, c.policy)
	}
	q, err := rfc3161.NewTimeStampReq(c.alg, digest, nonce, pol, c.certReq)
	if err != nil {
		t.Fatal(err)
	}
	if c.body, err = q.Marshal(); err != nil {
		t.Fatal(err)
	}
	return c.body
}

// send posts the request and checks the answer against the expectation.
func (c *tsReq) send(t *testing.T, client *http.Client, base string) *rfc3161.TimeStampResp {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+c.path, bytes.NewReader(c.der(t)))
	req.Header.Set("Content-Type", "application/timestamp-query")
	if c.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+c.bearer)
	}
	res, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s: %v", c.name, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 {
		t.Fatalf("%s: HTTP %d %s", c.name, res.StatusCode, b)
	}
	resp, err := rfc3161.ParseTimeStampResp(b)
	if err != nil {
		t.Fatalf("%s: %v", c.name, err)
	}
	c.check(t, resp)
	return resp
}

func (c *tsReq) check(t *testing.T, resp *rfc3161.TimeStampResp) {
	t.Helper()
	switch {
	case c.granted && resp.Token == nil:
		t.Errorf("%s: want a token, got status %d failInfo %v %q", c.name, resp.Status, resp.FailInfo, resp.StatusString)
	case !c.granted && (resp.Token != nil || resp.FailInfo == nil || *resp.FailInfo != c.failInfo):
		t.Errorf("%s: want rejection %s, got status %d failInfo %v", c.name, c.failInfo, resp.Status, resp.FailInfo)
	}
}

// checkRecorded finds the case's request in the record and checks its
// outcome and the reason recorded.
func (c *tsReq) checkRecorded(t *testing.T, byHash map[string][]events.Event) []events.Event {
	t.Helper()
	evs := byHash[hashHex(c.body)]
	if len(evs) == 0 {
		t.Errorf("%s: not recorded", c.name)
		return nil
	}
	last := evs[len(evs)-1]
	if c.granted {
		if _, ok := last.(*events.TimestampIssued); !ok {
			t.Errorf("%s: last event %T, want TimestampIssued", c.name, last)
		}
		return evs
	}
	rej, ok := last.(*events.TimestampRejected)
	if !ok || rej.FailInfo != c.failInfo.String() || !strings.Contains(rej.Reason, c.reason) {
		t.Errorf("%s: recorded %+v, want failInfo %s and a reason with %q", c.name, last, c.failInfo, c.reason)
	}
	chain, ok := evs[len(evs)-2].(*events.FilterChainDecided)
	if !ok || len(chain.Decisions) == 0 {
		t.Errorf("%s: the chain's decisions are not recorded before the rejection: %+v", c.name, evs[len(evs)-2])
		return evs
	}
	if d := chain.Decisions[len(chain.Decisions)-1]; d.Verdict != events.VerdictRejected || d.Reason != rej.Reason || d.FailInfo != rej.FailInfo {
		t.Errorf("%s: the chain does not end in the denial that was answered: %+v", c.name, chain)
	}
	return evs
}

// TestServicesPoliciesAndFilters runs three services from one file: a
// qualified one with a five-filter chain, an internal one with its own
// key and policy (checked with openssl and over the RFC 3161 socket), and
// one whose policy map routes paths to API-key, IP and rate-limit chains.
// Every denial is the right failInfo, recorded with its reason, while a
// well-behaved client keeps getting tokens.
func TestServicesPoliciesAndFilters(t *testing.T) {
	openssl := requireTool(t, "openssl")
	data, work := t.TempDir(), t.TempDir()
	second, err := devpki.Ensure(devpki.Options{Dir: filepath.Join(work, "pki2"), KeyType: "rsa-2048", Organization: "Chronolog e2e internal", Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	keyDigest := sha256.Sum256([]byte(testAPIKey))
	cfg := fmt.Sprintf(`
services:
  - name: qualified
    paths: [/tsa]
    policy: %s
    chains:
      default:
        - {type: request-size, max: 100}
        - {type: nonce-required, minBytes: 8}
        - {type: cert-req}
  - name: internal
    paths: [/internal]
    tcp: 127.0.0.1:0
    policy: %s
    acceptedPolicies: [%s]
    hashes: [sha256, sha512]
    signer: {key: %s, cert: %s, chain: %s}
  - name: keyed
    paths: [/keyed, /blocked, /limited, /unrouted]
    policy: %s
    chains:
      keyed: [{type: api-key, keys: [{name: build-farm, sha256: "sha256:%x"}]}]
      blocked: [{type: client-ip, deny: [127.0.0.0/8]}]
      limited: [{type: rate-limit, rate: 0.001, burst: 2}]
    policyMap:
      - {name: keyed, path: /keyed, chain: keyed}
      - {name: blocked, path: /blocked, chain: blocked}
      - {name: limited, path: /limited, chain: limited}
`, policyQualified, policyInternal, policyInternal2, second.TSAKey, second.TSACert, second.Chain, policyKeyed, keyDigest)
	cfgFile := filepath.Join(work, "tsad.yaml")
	os.WriteFile(cfgFile, []byte(cfg), 0o600)
	srv := startServer(t, data, "--config", cfgFile, "--log", "off")
	tcpAddr := regexp.MustCompile(`tcp: (\S+) \(service internal`).FindStringSubmatch(srv.output())
	if tcpAddr == nil {
		t.Fatalf("no tcp line in the start-up report:\n%s", srv.output())
	}
	client := &http.Client{}
	nonce8 := []byte{1, 2, 3, 4, 5, 6, 7, 8}

	// A well-behaved client, all along.
	stopGood := make(chan struct{})
	var goodWG sync.WaitGroup
	var goodMu sync.Mutex
	goodErrs, goodN := []string{}, 0
	goodWG.Add(1)
	go func() {
		defer goodWG.Done()
		for i := 0; ; i++ {
			select {
			case <-stopGood:
				return
			default:
			}
			c := tsReq{name: fmt.Sprintf("good-%d", i), path: "/tsa", alg: rfc3161.SHA256, nonce: nonce8, granted: true}
			req, _ := http.NewRequest(http.MethodPost, srv.base+c.path, bytes.NewReader(c.der(t)))
			req.Header.Set("Content-Type", "application/timestamp-query")
			res, err := client.Do(req)
			goodMu.Lock()
			goodN++
			if err != nil {
				goodErrs = append(goodErrs, err.Error())
			} else {
				b, _ := io.ReadAll(res.Body)
				res.Body.Close()
				if r, err := rfc3161.ParseTimeStampResp(b); err != nil || r.Token == nil {
					goodErrs = append(goodErrs, fmt.Sprintf("request %d not granted", i))
				}
			}
			goodMu.Unlock()
		}
	}()

	long := make([]byte, 40)
	long[0] = 1
	cases := []*tsReq{
		{name: "qualified: granted, certificate forced", path: "/tsa", alg: rfc3161.SHA256, nonce: nonce8, granted: true},
		{name: "qualified: no nonce", path: "/tsa", alg: rfc3161.SHA256, failInfo: rfc3161.BadRequest, reason: "nonce"},
		{name: "qualified: short nonce", path: "/tsa", alg: rfc3161.SHA256, nonce: []byte{7}, failInfo: rfc3161.BadRequest, reason: "nonce"},
		{name: "qualified: too large", path: "/tsa", alg: rfc3161.SHA512, nonce: long, failInfo: rfc3161.BadRequest, reason: "100"},
		{name: "qualified: sha1", path: "/tsa", alg: rfc3161.SHA1, nonce: nonce8, failInfo: rfc3161.BadAlg, reason: "sha1 is not allowed"},
		{name: "internal: sha384 not listed", path: "/internal", alg: rfc3161.SHA384, failInfo: rfc3161.BadAlg, reason: "not allowed"},
		{name: "internal: policy not accepted", path: "/internal", alg: rfc3161.SHA256, policy: policyQualified, failInfo: rfc3161.UnacceptedPolicy, reason: policyQualified},
		{name: "keyed: no key", path: "/keyed", alg: rfc3161.SHA256, failInfo: rfc3161.BadRequest, reason: "no API key"},
		{name: "keyed: wrong key", path: "/keyed", alg: rfc3161.SHA256, bearer: "chl_guess", failInfo: rfc3161.BadRequest, reason: "not recognised"},
		{name: "keyed: right key", path: "/keyed", alg: rfc3161.SHA256, bearer: testAPIKey, granted: true},
		{name: "blocked: loopback denied", path: "/blocked", alg: rfc3161.SHA256, failInfo: rfc3161.BadRequest, reason: "127.0.0.0/8"},
		{name: "limited: 1", path: "/limited", alg: rfc3161.SHA256, granted: true},
		{name: "limited: 2", path: "/limited", alg: rfc3161.SHA256, granted: true},
		{name: "limited: 3 over the limit", path: "/limited", alg: rfc3161.SHA256, failInfo: rfc3161.BadRequest, reason: "rate limit"},
		{name: "unrouted: no rule", path: "/unrouted", alg: rfc3161.SHA256, failInfo: rfc3161.BadRequest, reason: "no policy-map rule"},
	}
	for _, c := range cases {
		resp := c.send(t, client, srv.base)
		if c.name == "qualified: granted, certificate forced" {
			if certs, err := rfc3161.TokenCertificates(resp.Token); err != nil || len(certs) == 0 {
				t.Errorf("cert-req filter: the token carries no certificate (%v)", err)
			}
		}
	}

	// openssl against the second service: its own key, CA and policy.
	doc := filepath.Join(work, "doc.txt")
	os.WriteFile(doc, []byte("internal document\n"), 0o600)
	tsq, tsr := filepath.Join(work, "internal.tsq"), filepath.Join(work, "internal.tsr")
	run(t, openssl, "ts", "-query", "-data", doc, "-sha512", "-tspolicy", policyInternal2, "-cert", "-out", tsq)
	q, _ := os.ReadFile(tsq)
	status, _, body := post(t, srv.base+"/internal", "application/timestamp-query", q)
	if status != 200 {
		t.Fatalf("internal: HTTP %d", status)
	}
	os.WriteFile(tsr, body, 0o600)
	out := run(t, openssl, "ts", "-reply", "-in", tsr, "-text")
	if !strings.Contains(out, "Policy OID: "+policyInternal2) {
		t.Errorf("internal token policy:\n%s", out)
	}
	run(t, openssl, "ts", "-verify", "-in", tsr, "-queryfile", tsq, "-CAfile", second.CACert)
	if out, err := execOutput(openssl, "ts", "-verify", "-in", tsr, "-queryfile", tsq, "-CAfile", srv.caFile()); err == nil {
		t.Errorf("the internal service's token verifies against the qualified service's CA:\n%s", out)
	}
	// The default policy when none is asked, over the RFC 3161 socket.
	tcpCase := &tsReq{name: "internal over tcp", alg: rfc3161.SHA256, granted: true}
	tcpResp := tcpExchange(t, tcpAddr[1], tcpCase.der(t))
	tcpCase.check(t, tcpResp)
	if info, err := rfc3161.TokenTSTInfo(tcpResp.Token); err != nil || info.Policy.String() != policyInternal {
		t.Errorf("tcp token policy: %v %v", info, err)
	}

	close(stopGood)
	goodWG.Wait()
	if len(goodErrs) > 0 || goodN < 5 {
		t.Errorf("the well-behaved client was disturbed (%d requests): %v", goodN, goodErrs)
	}
	if err := srv.stop(t); err != nil {
		t.Fatal(err)
	}

	streams := readStore(t, data)
	byHash := byBodyHash(streams)
	for _, c := range append(cases, tcpCase) {
		evs := c.checkRecorded(t, byHash)
		if c.name == "keyed: right key" && len(evs) > 0 {
			issued := evs[len(evs)-1].(*events.TimestampIssued)
			if issued.Client != "build-farm" || issued.ClientAuth != "api-key" {
				t.Errorf("API-key client not on the token's event: %+v", issued)
			}
		}
	}
	if req := byHash[hashHex(tcpCase.body)][0].(*events.TimestampRequested); req.Transport != "tcp" {
		t.Errorf("tcp request recorded with transport %q", req.Transport)
	}
	for stream, evs := range streams {
		for _, e := range evs {
			if b, _ := events.Encode("00000000-0000-7000-8000-000000000001", stream, time.Now(), events.Metadata{}, e); bytes.Contains(b.Payload, []byte(testAPIKey)) {
				t.Fatalf("the API key reached the record in %s", stream)
			}
		}
	}
	configured := map[string]bool{}
	for _, e := range streams[events.ConfigStream] {
		if c, ok := e.(*events.ServiceConfigured); ok {
			configured[c.Service] = true
			if c.Source != cfgFile || len(c.FileSHA256) != 64 || len(c.Certificate) != 64 {
				t.Errorf("ServiceConfigured %+v", c)
			}
		}
	}
	if len(configured) != 3 {
		t.Errorf("services configured on the record: %v", configured)
	}
}

// tcpExchange sends one RFC 3161 §3.3 tsaMsg and reads the answer.
func tcpExchange(t *testing.T, addr string, der []byte) *rfc3161.TimeStampResp {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	frame := binary.BigEndian.AppendUint32(nil, uint32(len(der)+1))
	frame = append(append(frame, 0x00), der...)
	if _, err := c.Write(frame); err != nil {
		t.Fatal(err)
	}
	var hdr [5]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		t.Fatal(err)
	}
	if hdr[4] != 0x05 {
		t.Fatalf("flag %#x, want finalMsgRep", hdr[4])
	}
	body := make([]byte, binary.BigEndian.Uint32(hdr[:4])-1)
	if _, err := io.ReadFull(c, body); err != nil {
		t.Fatal(err)
	}
	resp, err := rfc3161.ParseTimeStampResp(body)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// tlsClient trusts ca and presents the given certificate, if any.
func tlsClient(t *testing.T, caFile, certFile, keyFile string) *http.Client {
	t.Helper()
	pem, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	tc := &tls.Config{RootCAs: pool}
	if certFile != "" {
		kp, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			t.Fatal(err)
		}
		tc.Certificates = []tls.Certificate{kp}
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: tc}, Timeout: 10 * time.Second}
}

var _ = hex.EncodeToString

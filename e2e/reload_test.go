package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chronolog/chronolog/adapters/devpki"
	"github.com/chronolog/chronolog/domain/events"
	"github.com/chronolog/chronolog/domain/rfc3161"
	"github.com/chronolog/chronolog/internal/testpki"
)

const reloadBase = `
services:
  - name: first
    paths: [/tsa]
    policy: 1.3.6.1.4.1.32473.3161.1
    hashes: [sha256, sha1]
`

// TestReloadOnSIGHUP: a good file applies its changes, each recorded; a bad
// file is refused with every problem recorded, and the running services
// answer as before.
func TestReloadOnSIGHUP(t *testing.T) {
	data, work := t.TempDir(), t.TempDir()
	cfgFile := filepath.Join(work, "tsad.yaml")
	os.WriteFile(cfgFile, []byte(reloadBase), 0o600)
	srv := startServer(t, data, "--config", cfgFile, "--log", "off")
	get := func(path string) int {
		c := &tsReq{name: path + time.Now().String(), path: path, alg: rfc3161.SHA256}
		status, _, _ := post(t, srv.base+path, "application/timestamp-query", c.der(t))
		return status
	}
	if get("/second") != 404 {
		t.Fatal("/second answers before it is configured")
	}
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if ok() {
				return
			}
		}
		t.Fatalf("%s within 10 s\n%s", what, srv.output())
	}

	// A good change: a second service appears, the first one changes policy.
	good := strings.Replace(reloadBase, "3161.1\n", "3161.5\n", 1) + `
  - name: second
    paths: [/second]
    policy: 1.3.6.1.4.1.32473.3161.2
    hashes: [sha1, sha256]
`
	os.WriteFile(cfgFile, []byte(good), 0o600)
	srv.cmd.Process.Signal(syscall.SIGHUP)
	waitFor("the second service answers", func() bool { return get("/second") == 200 })

	// A bad change: refused, the running configuration stays.
	bad := strings.Replace(good, "[sha1, sha256]", "[md5]", 1) + "    chains: {default: [{type: rate-limit}]}\n"
	os.WriteFile(cfgFile, []byte(bad), 0o600)
	srv.cmd.Process.Signal(syscall.SIGHUP)
	waitFor("the refusal is logged", func() bool { return strings.Contains(srv.output(), "configuration reload refused") })
	if get("/second") != 200 || get("/tsa") != 200 {
		t.Fatal("a refused reload disturbed the running services")
	}
	// A change that needs a restart: refused too.
	os.WriteFile(cfgFile, []byte("server: {maxBody: 1000}\n"+good), 0o600)
	srv.cmd.Process.Signal(syscall.SIGHUP)
	waitFor("the second refusal is logged", func() bool {
		return strings.Count(srv.output(), "configuration reload refused") == 2
	})
	c := &tsReq{name: "after reloads", path: "/tsa", alg: rfc3161.SHA256, granted: true}
	resp := c.send(t, &httpClient, srv.base)
	if info, _ := rfc3161.TokenTSTInfo(resp.Token); info == nil || info.Policy.String() != "1.3.6.1.4.1.32473.3161.5" {
		t.Errorf("the first service's new policy is not in force: %+v", info)
	}
	if err := srv.stop(t); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(srv.output(), "algorithm=sha1") {
		t.Errorf("no warning of SHA-1 at start:\n%s", srv.output())
	}

	var kinds []string
	for _, e := range readStore(t, data)[events.ConfigStream] {
		switch e := e.(type) {
		case *events.ServiceConfigured:
			kinds = append(kinds, "configured "+e.Service)
		case *events.ServiceConfigChanged:
			kinds = append(kinds, e.Change+" "+e.Service)
			if e.Change == events.ConfigModified && (e.PreviousSHA256 == "" || e.PreviousSHA256 == e.ConfigSHA256) {
				t.Errorf("modification does not name what it replaced: %+v", e)
			}
		case *events.ServiceAlgorithmEnded:
			// SHA-1 ended on 2012-07-31.
			kinds = append(kinds, fmt.Sprintf("ended %s %s %s %s", e.Service, e.Use, e.Algorithm, e.LastValid.Format(time.DateOnly)))
		case *events.ServiceConfigRefused:
			all := strings.Join(e.Problems, "\n")
			kinds = append(kinds, "refused")
			if !(strings.Contains(all, `unknown hash "md5"`) && strings.Contains(all, "rate (requests per second) must be positive")) &&
				!strings.Contains(all, "change only on a restart") {
				t.Errorf("refusal without its reasons: %v", e.Problems)
			}
		}
	}
	want := "configured first, ended first hash sha1 2012-07-31, modified first, ended first hash sha1 2012-07-31, " +
		"added second, ended second hash sha1 2012-07-31, refused, refused"
	if got := strings.Join(kinds, ", "); got != want {
		t.Errorf("configuration record: %s", got)
	}
}

// TestProxyForwardsToUpstream: a service in proxy mode passes requests to
// another TSA; the answer (the upstream's token, under its key) is sent on
// unchanged and recorded on both sides.
func TestProxyForwardsToUpstream(t *testing.T) {
	openssl := requireTool(t, "openssl")
	upData, proxyData, work := t.TempDir(), t.TempDir(), t.TempDir()
	up := startServer(t, upData, "--log", "off")
	cfg := fmt.Sprintf(`
services:
  - name: proxy
    paths: [/tsa]
    policy: 1.3.6.1.4.1.32473.3161.9
    chains:
      default:
        - {type: nonce-required}
        - {type: forward, url: %q, timeout: 5s}
`, up.url)
	cfgFile := filepath.Join(work, "proxy.yaml")
	os.WriteFile(cfgFile, []byte(cfg), 0o600)
	proxy := startServer(t, proxyData, "--config", cfgFile, "--log", "off")

	doc := filepath.Join(work, "doc.txt")
	os.WriteFile(doc, []byte("forwarded\n"), 0o600)
	tsq, tsr := filepath.Join(work, "q.tsq"), filepath.Join(work, "r.tsr")
	run(t, openssl, "ts", "-query", "-data", doc, "-sha256", "-cert", "-out", tsq)
	q, _ := os.ReadFile(tsq)
	status, _, body := post(t, proxy.url, "application/timestamp-query", q)
	if status != 200 {
		t.Fatalf("HTTP %d", status)
	}
	os.WriteFile(tsr, body, 0o600)
	run(t, openssl, "ts", "-verify", "-in", tsr, "-queryfile", tsq, "-CAfile", up.caFile())
	// Without a nonce the proxy's own filter refuses before forwarding.
	noNonce := &tsReq{name: "no nonce via proxy", path: "/tsa", alg: rfc3161.SHA256, failInfo: rfc3161.BadRequest, reason: "nonce"}
	noNonce.send(t, &httpClient, proxy.base)

	// The upstream goes away: systemFailure, recorded.
	if err := up.stop(t); err != nil {
		t.Fatal(err)
	}
	down := &tsReq{name: "upstream down", path: "/tsa", alg: rfc3161.SHA256, nonce: []byte{9, 9, 9, 9, 9, 9, 9, 9}, failInfo: rfc3161.SystemFailure, reason: "forward to upstream"}
	down.send(t, &httpClient, proxy.base)
	if err := proxy.stop(t); err != nil {
		t.Fatal(err)
	}

	byHash := byBodyHash(readStore(t, proxyData))
	evs := byHash[hashHex(q)]
	if len(evs) == 0 {
		t.Fatal("the forwarded request is not in the proxy's record")
	}
	fwd, ok := evs[len(evs)-1].(*events.TimestampForwarded)
	if !ok || fwd.Status != "granted" || string(fwd.Response) != string(body) || fwd.Upstream != up.url {
		t.Fatalf("proxy record: %+v", evs[len(evs)-1])
	}
	noNonce.checkRecorded(t, byHash)
	down.body = down.der(t)
	if evs := byHash[hashHex(down.body)]; len(evs) == 0 {
		t.Error("the failed forward is not recorded")
	} else if rej, ok := evs[len(evs)-1].(*events.TimestampRejected); !ok || rej.FailInfo != "systemFailure" {
		t.Errorf("failed forward recorded as %+v", evs[len(evs)-1])
	}
	if up := byBodyHash(readStore(t, upData))[hashHex(q)]; len(up) == 0 {
		t.Error("the upstream has no record of the forwarded request")
	}
}

// TestStartupRefusesBadTSACertificates: tsad does not start with a TSA
// certificate whose timeStamping EKU is not critical, not the only one, or
// missing, or that does not match the key; nor with a configuration file
// holding mistakes, all of which it lists.
func TestStartupRefusesBadTSACertificates(t *testing.T) {
	work := t.TempDir()
	ca := testpki.New(t, testpki.Subject("tsa-ca", "Chronolog e2e"))
	caFile := ca.CertFile(t)
	goodCert, goodKey := ca.TSA(t).Files(t)
	_, otherKey := ca.TSA(t).Files(t)
	notCritCert, notCritKey := ca.TSA(t, testpki.EKU(false, testpki.OIDTimeStamping)).Files(t)
	twoCert, twoKey := ca.TSA(t, testpki.EKU(true, testpki.OIDTimeStamping, testpki.OIDCodeSigning)).Files(t)
	noneCert, noneKey := ca.TSA(t, testpki.NoEKU()).Files(t)
	cases := []struct {
		name, cert, key, says string
	}{
		{"EKU not critical", notCritCert, notCritKey, "critical"},
		{"EKU not sole", twoCert, twoKey, "only"},
		{"EKU missing", noneCert, noneKey, "timeStamping"},
		{"key does not match", goodCert, otherKey, "match"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, err := tsadOnce(t, "serve", "--addr", "127.0.0.1:0", "--data", t.TempDir(), "--log", "off",
				"--key", c.key, "--cert", c.cert, "--chain", caFile)
			if err == nil || !strings.Contains(out, c.says) {
				t.Fatalf("tsad started or said the wrong thing (%v):\n%s", err, out)
			}
		})
	}
	t.Run("sanity: the good certificate starts", func(t *testing.T) {
		out, err := tsadOnce(t, "serve", "--addr", "127.0.0.1:0", "--data", t.TempDir(), "--log", "off",
			"--key", goodKey, "--cert", goodCert, "--chain", caFile)
		if !strings.Contains(out, "endpoint: ") {
			t.Fatalf("%v\n%s", err, out)
		}
	})
	t.Run("chain of another CA", func(t *testing.T) {
		other := testpki.New(t, testpki.Subject("other-ca", "Chronolog e2e"))
		out, err := tsadOnce(t, "serve", "--addr", "127.0.0.1:0", "--data", t.TempDir(), "--log", "off",
			"--key", goodKey, "--cert", goodCert, "--chain", other.CertFile(t))
		if err == nil || !strings.Contains(out, "chain") {
			t.Fatalf("tsad started with a chain that does not issue its certificate (%v):\n%s", err, out)
		}
	})
	t.Run("certificate close to its end: warned and recorded", func(t *testing.T) {
		soonCert, soonKey := ca.TSA(t, testpki.Valid(time.Now().Add(-time.Hour), time.Now().Add(5*24*time.Hour+time.Hour))).Files(t)
		data := t.TempDir()
		out, err := tsadOnce(t, "serve", "--addr", "127.0.0.1:0", "--data", data, "--log", "off",
			"--key", soonKey, "--cert", soonCert, "--chain", caFile)
		if !strings.Contains(out, "endpoint: ") || !strings.Contains(out, "TSA certificate expires soon") {
			t.Fatalf("no start with a warning (%v):\n%s", err, out)
		}
		var warned *events.SigningCertificateExpiring
		for _, e := range readStore(t, data)[events.KeyStream] {
			if w, ok := e.(*events.SigningCertificateExpiring); ok {
				warned = w
			}
		}
		if warned == nil || warned.DaysLeft != 5 || warned.WarnDays != 30 {
			t.Fatalf("the warning is not recorded as 5 days left of 30: %+v", warned)
		}
	})
	t.Run("bad configuration file", func(t *testing.T) {
		pki, err := devpki.Ensure(devpki.Options{Dir: filepath.Join(work, "pki"), Now: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		cfg := fmt.Sprintf(`
services:
  - name: a
    paths: [/tsa]
    policy: 1.2.3
    signer: {key: %s, cert: %s}
    hashes: [md5]
  - name: b
    paths: [/b]
    policy: 1.2.4
    signer: {key: %s, cert: %s}
    chains: {default: [{type: authorize-by-authentication}]}
`, pki.TSAKey, pki.TSACert, notCritKey, notCritCert)
		f := filepath.Join(work, "bad.yaml")
		os.WriteFile(f, []byte(cfg), 0o600)
		out, err := tsadOnce(t, "serve", "--addr", "127.0.0.1:0", "--data", t.TempDir(), "--log", "off", "--config", f)
		if err == nil || !strings.Contains(out, `unknown hash "md5"`) || !strings.Contains(out, "needs an authentication filter") {
			t.Fatalf("tsad started or did not list every problem (%v):\n%s", err, out)
		}
	})
}

// tsadOnce runs tsad and returns what it printed once it exits, or once it
// printed its endpoint (then it is stopped).
func tsadOnce(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "tsad"), args...)
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case err := <-done:
			return out.String(), err
		case <-deadline:
			cmd.Process.Kill()
			return out.String(), fmt.Errorf("tsad neither served nor exited in 20 s")
		case <-time.After(50 * time.Millisecond):
			if strings.Contains(out.String(), "endpoint: ") {
				cmd.Process.Signal(syscall.SIGTERM)
				<-done
				return out.String(), nil
			}
		}
	}
}

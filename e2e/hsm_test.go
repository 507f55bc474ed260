package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chronolog/chronolog/adapters/signer/pkcs11/softhsmtest"
	"github.com/chronolog/chronolog/domain/events"
	"github.com/chronolog/chronolog/domain/rfc3161"
	"github.com/chronolog/chronolog/internal/testpki"
)

// hsmToken is a SoftHSM2 token of the test's own, with the PINs tsactl and
// tsad read from the environment.
type hsmToken struct {
	module, tokenDir, label string
}

const (
	hsmPINEnv = "CHRONOLOG_E2E_HSM_PIN"
	hsmSOEnv  = "CHRONOLOG_E2E_HSM_SO_PIN"
)

// newHSMToken makes a private SoftHSM2 token (SOFTHSM2_CONF is set for this
// test and the processes it starts) and initialises it with tsactl.
func newHSMToken(t *testing.T, label string) *hsmToken {
	t.Helper()
	module, tokenDir, _ := softhsmtest.Setup(t)
	t.Setenv(hsmPINEnv, "e2e-user-pin-4711")
	t.Setenv(hsmSOEnv, "e2e-so-pin-0815")
	tok := &hsmToken{module: module, tokenDir: tokenDir, label: label}
	tok.tsactl(t, "init-token", "--so-pin-env", hsmSOEnv)
	return tok
}

// tsactl runs `tsactl hsm STEP` on the token with the PIN from the
// environment.
func (tok *hsmToken) tsactl(t *testing.T, step string, args ...string) string {
	t.Helper()
	all := append([]string{"hsm", step, "--module", tok.module, "--token", tok.label, "--pin-env", hsmPINEnv}, args...)
	return run(t, filepath.Join(binDir, "tsactl"), all...)
}

// keyWithCertificate makes a key in the token, has ca certify it from the
// key's own CSR, and stores the certificate beside it.
func (tok *hsmToken) keyWithCertificate(t *testing.T, ca *testpki.CA, dir, data, label, keyType string) (*x509.Certificate, string) {
	t.Helper()
	out := tok.tsactl(t, "keygen", "--label", label, "--type", keyType, "--data", data, "--operator", "e2e")
	if !strings.Contains(out, "extractable=false") || !strings.Contains(out, "sensitive=true") {
		t.Fatalf("keygen does not report a sensitive, non-extractable key:\n%s", out)
	}
	csrFile := filepath.Join(dir, label+".csr")
	tok.tsactl(t, "csr", "--key", label, "--cn", "Chronolog e2e HSM "+label, "--o", "Chronolog e2e", "--out", csrFile)
	raw, _ := os.ReadFile(csrFile)
	block, _ := pem.Decode(raw)
	if block == nil {
		t.Fatalf("csr wrote no PEM:\n%s", raw)
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if err := csr.CheckSignature(); err != nil {
		t.Fatalf("the CSR's signature (made in the token) does not verify: %v", err)
	}
	var askedEKU bool
	for _, e := range csr.Extensions {
		askedEKU = askedEKU || (e.Id.Equal(testpki.OIDExtKeyUsage) && e.Critical)
	}
	if !askedEKU {
		t.Fatal("the CSR does not ask for a critical extendedKeyUsage")
	}
	// The key stays in the token: the CA certifies the CSR's public key.
	leaf := ca.TSA(t, testpki.PublicKey(csr.PublicKey), testpki.Template(func(c *x509.Certificate) { c.Subject = csr.Subject }))
	certFile := leaf.CertFile(t)
	tok.tsactl(t, "import-cert", "--key", label, "--cert", certFile, "--data", data, "--operator", "e2e")
	return leaf.Cert, certFile
}

// hsmServiceConfig is a configuration file with one service whose key is
// in the token; its certificate is read from the token.
func hsmServiceConfig(t *testing.T, dir string, tok *hsmToken, key, chainFile string) string {
	t.Helper()
	cfg := fmt.Sprintf(`services:
  - name: hsm
    paths: [/tsa]
    policy: 1.3.6.1.4.1.32473.3161.5
    signer:
      pkcs11:
        module: %s
        token: %s
        key: %s
        pin: {env: %s}
        sessions: 4
        wait: 1s
      chain: %s
`, tok.module, tok.label, key, hsmPINEnv, chainFile)
	file := filepath.Join(dir, "hsm.yaml")
	if err := os.WriteFile(file, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

// TestHSMKeyLifecycleAndTokens: a key made in SoftHSM2 by tsactl, certified
// from its own CSR, signs tokens that openssl ts and Bouncy Castle verify;
// pkcs11-tool shows it cannot leave the token; each lifecycle step and the
// activation are on the record; the log's checkpoint key lives in the
// token too.
func TestHSMKeyLifecycleAndTokens(t *testing.T) {
	openssl := requireTool(t, "openssl")
	pkcs11Tool := requireTool(t, "pkcs11-tool")
	requireTool(t, "java")
	requireFiles(t, "libbcpkix-java", bcJars...)
	go bcClasses.build(compileBCValidate(requireTool(t, "javac")))
	dir, data := t.TempDir(), t.TempDir()
	tok := newHSMToken(t, "chronolog-e2e")
	ca := testpki.New(t, testpki.Subject("hsm-root", "Chronolog e2e"))
	caFile := ca.CertFile(t)
	_, tsaCertFile := tok.keyWithCertificate(t, ca, dir, data, "tsa-p256", "ecdsa-p256")
	logOut := tok.tsactl(t, "keygen", "--label", "log-key", "--type", "ed25519", "--data", data)
	if !strings.Contains(logOut, "ed25519") {
		t.Fatalf("keygen ed25519:\n%s", logOut)
	}

	// The token's own account of the key, from OpenSC rather than from us.
	objs := run(t, pkcs11Tool, "--module", tok.module, "--token-label", tok.label, "--login", "--pin", os.Getenv(hsmPINEnv), "--list-objects", "--type", "privkey")
	priv := objectBlock(objs, "tsa-p256")
	if priv == "" {
		t.Fatalf("pkcs11-tool lists no private key tsa-p256:\n%s", objs)
	}
	for _, want := range []string{"sensitive", "always sensitive", "never extractable", "Usage:", "sign"} {
		if !strings.Contains(priv, want) {
			t.Errorf("pkcs11-tool does not show %q for the key:\n%s", want, priv)
		}
	}
	for _, unwanted := range []string{"decrypt", "unwrap", "derive"} {
		if usage := lineWith(priv, "Usage:"); strings.Contains(usage, unwanted) {
			t.Errorf("the key may %s: %s", unwanted, usage)
		}
	}
	cfgFile := hsmServiceConfig(t, dir, tok, "tsa-p256", caFile)
	logURI := fmt.Sprintf("pkcs11:token=%s;object=log-key?module-path=%s&pin-source=env:%s", tok.label, tok.module, hsmPINEnv)
	srv := startServer(t, data, "--config", cfgFile, "--log-key", logURI, "--log-origin", "chronolog.example/e2e-hsm")
	if out := srv.output(); !strings.Contains(out, "PKCS#11 token") || !strings.Contains(out, "key in an HSM") {
		t.Fatalf("the start-up report does not say the keys are in the HSM:\n%s", out)
	}
	_, tsr := opensslQuery(t, openssl, srv.url, "signed in the token", "-sha256")
	reply := run(t, openssl, "ts", "-reply", "-in", tsr, "-text")
	if !strings.Contains(reply, "Status: Granted") || !strings.Contains(reply, "1.3.6.1.4.1.32473.3161.5") {
		t.Fatalf("not granted under the service's policy:\n%s", reply)
	}
	doc := filepath.Join(t.TempDir(), "doc.txt")
	os.WriteFile(doc, []byte("signed in the token"), 0o644)
	if out := run(t, openssl, "ts", "-verify", "-data", doc, "-in", tsr, "-CAfile", caFile); !strings.Contains(out, "Verification: OK") {
		t.Fatalf("openssl ts -verify:\n%s", out)
	}
	bcValidateHSMToken(t, srv.url, caFile, tsaCertFile)
	if err := srv.stop(t); err != nil {
		t.Fatalf("tsad did not stop cleanly: %v\n%s", err, srv.output())
	}

	byStream := readStore(t, data)
	var generated, imported, activated []events.Event
	for _, e := range byStream[events.KeyStream] {
		switch e.(type) {
		case *events.SigningKeyGenerated:
			generated = append(generated, e)
		case *events.CertificateImported:
			imported = append(imported, e)
		case *events.SigningKeyActivated:
			activated = append(activated, e)
		}
	}
	if len(generated) != 2 || len(imported) != 1 || len(activated) != 2 {
		t.Fatalf("key record: %d generated (want 2), %d imported (want 1), %d activated (want 2: the service's and the log's)", len(generated), len(imported), len(activated))
	}
	g := generated[0].(*events.SigningKeyGenerated)
	if g.Attributes.Extractable || !g.Attributes.Sensitive || !g.Attributes.Sign || g.Attributes.Decrypt || g.Attributes.Unwrap || g.Attributes.Derive {
		t.Fatalf("recorded attributes are not those of a sign-only, non-extractable key: %+v", g.Attributes)
	}
	a := activated[0].(*events.SigningKeyActivated)
	if a.PublicKeySHA256 != g.PublicKeySHA256 || a.Token != tok.label || a.CertificateSHA256 == "" {
		t.Fatalf("activation %+v does not name the generated key %s", a, g.PublicKeySHA256)
	}
	for _, e := range byStream[events.KeyStream] {
		if raw := fmt.Sprintf("%+v", e); strings.Contains(raw, os.Getenv(hsmPINEnv)) {
			t.Fatalf("the PIN is on the record: %s", raw)
		}
	}
	if strings.Contains(srv.output(), os.Getenv(hsmPINEnv)) {
		t.Fatal("tsad printed the PIN")
	}

	// A retired key signs no more, whatever the configuration says.
	tok.tsactl(t, "retire", "--key", "tsa-p256", "--reason", "superseded by tsa-2027", "--data", data)
	out, err := tsadOnce(t, "serve", "--addr", "127.0.0.1:0", "--data", data, "--log", "off", "--config", cfgFile)
	if err == nil || !strings.Contains(out, "was retired (superseded by tsa-2027)") {
		t.Fatalf("tsad started with a retired key (%v):\n%s", err, out)
	}
}

// objectBlock is pkcs11-tool's description of the object labelled label.
func objectBlock(list, label string) string {
	for _, block := range strings.Split(list, "Private Key Object") {
		if strings.Contains(block, `label:      `+label+"\n") || strings.Contains(block, "label:      "+label) {
			return block
		}
	}
	return ""
}

func lineWith(text, prefix string) string {
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, prefix) {
			return l
		}
	}
	return ""
}

// bcValidateHSMToken has Bouncy Castle validate a token the HSM signed,
// and refuse the same token with its signature flipped.
func bcValidateHSMToken(t *testing.T, url, caFile, tsaFile string) {
	t.Helper()
	java := requireTool(t, "java")
	classes := bcClasses.get(t, compileBCValidate(requireTool(t, "javac")))
	work := t.TempDir()
	digest := sha256.Sum256([]byte("Bouncy Castle checks the HSM's token"))
	nonce := big.NewInt(time.Now().UnixNano())
	req := bcRequest(t, rfc3161.SHA256, digest[:], nonce, nil, true)
	status, _, resp := post(t, url, "application/timestamp-query", req)
	if status != 200 {
		t.Fatalf("HTTP %d", status)
	}
	reqFile, respFile := writeFile(t, work, "q.tsq", req), writeFile(t, work, "r.tsr", resp)
	bad := writeFile(t, work, "flipped.tsr", flipSignature(t, resp))
	list := bcCase{name: "hsm", ca: caFile, tsa: tsaFile, req: reqFile, resp: respFile}.line() +
		bcCase{name: "hsm-flipped", ca: caFile, tsa: tsaFile, req: reqFile, resp: bad}.line()
	args := append(append([]string{}, jvmFlags...), "-cp", strings.Join(append([]string{classes}, bcJars...), ":"), "BCValidate", writeFile(t, work, "cases.txt", []byte(list)))
	out, _ := exec.Command(java, args...).CombinedOutput()
	if !strings.Contains(string(out), "OK hsm ") || !strings.Contains(string(out), "nonce="+nonce.Text(16)) {
		t.Fatalf("Bouncy Castle does not validate the HSM's token:\n%s", out)
	}
	t.Logf("BCValidate:\n%s", out)
	if !strings.Contains(string(out), "FAIL hsm-flipped") {
		t.Fatalf("Bouncy Castle accepts the HSM's token with a flipped signature:\n%s", out)
	}
}

// TestHSMOutageFailsClosed: the token is taken away while tsad runs (its
// directory moved out of SoftHSM2's token directory, as a pulled device or
// a lost volume would). Every request meanwhile gets systemFailure and is
// recorded as such, no token is issued, the outage is recorded; once the
// token is back, tsad signs again without a restart.
func TestHSMOutageFailsClosed(t *testing.T) {
	dir, data := t.TempDir(), t.TempDir()
	tok := newHSMToken(t, "chronolog-outage")
	ca := testpki.New(t, testpki.Subject("outage-root", "Chronolog e2e"))
	tok.keyWithCertificate(t, ca, dir, data, "tsa", "ecdsa-p256")
	srv := startServer(t, data, "--config", hsmServiceConfig(t, dir, tok, "tsa", ca.CertFile(t)), "--log", "off")

	ask := func(label string) *rfc3161.TimeStampResp {
		t.Helper()
		digest := sha256.Sum256([]byte(label))
		status, _, body := post(t, srv.url, "application/timestamp-query", bcRequest(t, rfc3161.SHA256, digest[:], big.NewInt(time.Now().UnixNano()), nil, false))
		if status != 200 {
			t.Fatalf("%s: HTTP %d", label, status)
		}
		resp, err := rfc3161.ParseTimeStampResp(body)
		if err != nil {
			t.Fatalf("%s: %v", label, err)
		}
		return resp
	}
	granted := func(r *rfc3161.TimeStampResp) bool { return r.Status == rfc3161.Granted && r.Token != nil }
	if r := ask("before"); !granted(r) {
		t.Fatalf("no token before the outage: %+v", r)
	}

	restore := softhsmtest.RemoveToken(t, softhsmtest.TokenDir(t, tok.tokenDir, tok.label))
	const during = 20
	for i := range during {
		r := ask(fmt.Sprintf("during %d", i))
		if granted(r) || r.Token != nil {
			t.Fatalf("a token was issued while the HSM was away: %+v", r)
		}
		if r.FailInfo == nil || *r.FailInfo != rfc3161.SystemFailure {
			t.Fatalf("request %d during the outage: %+v, want rejection/systemFailure", i, r)
		}
	}
	restore()
	deadline := time.Now().Add(30 * time.Second)
	for !granted(ask("after")) {
		if time.Now().After(deadline) {
			t.Fatalf("tsad did not sign again within 30 s of the token's return\n%s", srv.output())
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err := srv.stop(t); err != nil {
		t.Fatalf("tsad did not stop cleanly: %v", err)
	}

	var issued, failed, unavailable, restored int
	for stream, evs := range readStore(t, data) {
		for _, e := range evs {
			switch e := e.(type) {
			case *events.TimestampIssued:
				issued++
			case *events.TimestampRejected:
				if e.FailInfo == "systemFailure" {
					failed++
				}
			case *events.SigningKeyUnavailable:
				unavailable++
				if stream != events.KeyStream || e.Service != "hsm" || e.Cause == "" {
					t.Errorf("outage recorded as %+v on %s", e, stream)
				}
			case *events.SigningKeyRestored:
				restored++
			}
		}
	}
	// Issued: the one before, and the ones after until the first grant
	// (one, but a retry loop may have found the key back on its first try).
	if failed < during || unavailable != 1 || restored != 1 {
		t.Fatalf("record: %d systemFailure rejections (want ≥ %d), %d outages (want 1), %d restorations (want 1)", failed, during, unavailable, restored)
	}
	if issued < 2 {
		t.Fatalf("record: %d tokens issued, want the one before and the one after", issued)
	}
}

// TestHSMSpeed: tsactl hsm speed reports how fast a key in the token signs
// with nothing around it, and a software key of the same type measured the
// same way, each with its CPU time per signature.
func TestHSMSpeed(t *testing.T) {
	tok := newHSMToken(t, "chronolog-e2e-speed")
	tok.tsactl(t, "keygen", "--label", "tsa", "--type", "ecdsa-p256", "--data", t.TempDir())
	soft, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(soft)
	softFile := filepath.Join(t.TempDir(), "soft.key")
	if err := os.WriteFile(softFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	out := tok.tsactl(t, "speed", "--key", "tsa", "--sessions", "2", "--duration", "200ms", "--soft-key", softFile)
	figures := regexp.MustCompile(`(?m)^(token|software) ecdsa-p256: [^\n]*: ([0-9]+) signatures/s, [0-9.]+ cores, ([0-9.]+) µs CPU per signature$`)
	found := figures.FindAllStringSubmatch(out, -1)
	if len(found) != 2 || found[0][1] != "token" || found[1][1] != "software" {
		t.Fatalf("want a token line and a software line with signatures/s and CPU per signature:\n%s", out)
	}
	for _, f := range found {
		rate, _ := strconv.ParseFloat(f[2], 64)
		cpu, _ := strconv.ParseFloat(f[3], 64)
		// A P-256 signature costs microseconds to milliseconds of CPU,
		// whatever the machine; zero or seconds would be a broken count.
		if rate <= 0 || cpu < 1 || cpu > 100_000 {
			t.Errorf("%s: %s signatures/s at %s µs CPU each:\n%s", f[1], f[2], f[3], out)
		}
	}
	if !strings.Contains(out, "2 sessions") {
		t.Errorf("--sessions 2 not honoured:\n%s", out)
	}
}

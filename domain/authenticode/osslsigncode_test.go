package authenticode

import (
	"crypto/rand"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chronolog/chronolog/internal/testpki"
)

var update = flag.Bool("update", false, "rewrite testdata/osslsigncode-2.9.req from a live osslsigncode")

// TestOsslsigncodeEndToEnd runs the real client: osslsigncode signs a
// script, fetches a legacy timestamp from a server built on this package,
// grafts it into the signature and verifies the result with OpenSSL's CMS
// code. Ed25519 is left out: that code cannot verify it (see
// TestOpenSSLVerifies).
func TestOsslsigncodeEndToEnd(t *testing.T) {
	bin := tool(t, "osslsigncode")
	for _, tc := range []struct {
		kind keyKind
		// tamper countersigns other bytes than those sent: a control that
		// osslsigncode's verification does look at what we return.
		tamper bool
	}{{p256, false}, {p384, false}, {rsa2048, false}, {p256, true}} {
		kind := tc.kind
		name := string(kind)
		if tc.tamper {
			name += "-tampered"
		}
		t.Run(name, func(t *testing.T) {
			p := newTestPKI(t, kind)
			s := p.signer(t)
			var mu sync.Mutex
			var bodies [][]byte
			var problems []string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(io.LimitReader(r.Body, MaxBodySize+1))
				mu.Lock()
				defer mu.Unlock()
				bodies = append(bodies, body)
				if ct := r.Header.Get("Content-Type"); r.Method != http.MethodPost || ct != "application/octet-stream" {
					problems = append(problems, r.Method+" "+ct)
				}
				req, err := ParseRequest(body)
				if err != nil {
					problems = append(problems, err.Error())
					http.Error(w, err.Error(), http.StatusBadRequest)
					return
				}
				content := req.Content
				if tc.tamper {
					content = append([]byte{0}, content...)
				}
				der, err := s.Sign(content, time.Now(), rand.Reader)
				if err != nil {
					problems = append(problems, err.Error())
					http.Error(w, err.Error(), http.StatusInternalServerError)
					return
				}
				w.Header().Set("Content-Type", "application/octet-stream")
				w.Write(EncodeResponse(der))
			}))
			defer srv.Close()

			dir := t.TempDir()
			// The file signer's own certificate, RSA, from the same root.
			codeCert, codeKey := p.ca.CodeSigning(t, rsa2048, testpki.Subject("test code signer")).Files(t)
			in := writeFile(t, dir, "in.ps1", []byte("Write-Output 'chronolog'\r\n"))
			out := filepath.Join(dir, "out.ps1")
			run(t, bin, "sign", "-certs", codeCert, "-key", codeKey,
				"-h", "sha256", "-t", srv.URL, "-in", in, "-out", out)
			mu.Lock()
			if len(problems) > 0 || len(bodies) != 1 {
				t.Fatalf("the server saw %d requests and %q", len(bodies), problems)
			}
			if *update && kind == rsa2048 && !tc.tamper {
				writeFile(t, "testdata", "osslsigncode-2.9.req", bodies[0])
			}
			mu.Unlock()

			ca := writeFile(t, dir, "ca.pem", certPEM(p.root))
			report, err := runErr(bin, "verify", "-in", out, "-CAfile", ca, "-TSA-CAfile", ca)
			if tc.tamper {
				// It still exits 0, verifying the file signature at the
				// current time instead: only its report tells.
				if !strings.Contains(report, "Timestamp Server Signature verification: failed") {
					t.Fatalf("osslsigncode accepts a countersignature over other bytes (%v):\n%s", err, report)
				}
				return
			}
			if err != nil {
				t.Fatalf("osslsigncode verify: %v\n%s", err, report)
			}
			for _, want := range []string{"Timestamp Server Signature verification: ok", "Signature verification: ok", "test TSA " + string(kind)} {
				if !strings.Contains(report, want) {
					t.Fatalf("osslsigncode verify lacks %q:\n%s", want, report)
				}
			}
		})
	}
}

// run runs osslsigncode without proxies, which would not reach the test
// server on loopback.
func run(t *testing.T, bin string, args ...string) string {
	t.Helper()
	out, err := runErr(bin, args...)
	if err != nil {
		t.Fatalf("osslsigncode %s: %v\n%s", args[0], err, out)
	}
	return out
}

func runErr(bin string, args ...string) (string, error) {
	cmd := exec.Command(bin, args...)
	for _, kv := range os.Environ() {
		if !strings.Contains(strings.ToLower(strings.SplitN(kv, "=", 2)[0]), "proxy") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

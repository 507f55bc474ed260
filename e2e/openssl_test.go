package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestOpenSSLQueryAndVerify has openssl make the queries and verify the
// replies, with and without certificates in the token, against the query
// file and against the data.
func TestOpenSSLQueryAndVerify(t *testing.T) {
	openssl := requireTool(t, "openssl")
	data := t.TempDir()
	srv := startServer(t, data, verifiedClock(t)...)
	work := t.TempDir()
	doc := filepath.Join(work, "doc.txt")
	if err := os.WriteFile(doc, []byte("a document that existed at this time\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tsaCert := filepath.Join(srv.pkiDir, "tsa.pem")

	for _, hash := range []string{"sha256", "sha384", "sha512", "sha3-256", "sha3-512"} {
		for _, withCert := range []bool{true, false} {
			name := hash
			if !withCert {
				name += "-no-cert"
			}
			t.Run(name, func(t *testing.T) {
				tsq := filepath.Join(work, name+".tsq")
				tsr := filepath.Join(work, name+".tsr")
				args := []string{"ts", "-query", "-data", doc, "-" + hash, "-out", tsq}
				if withCert {
					args = append(args, "-cert")
				}
				run(t, openssl, args...)
				q, err := os.ReadFile(tsq)
				if err != nil {
					t.Fatal(err)
				}
				status, hdr, body := post(t, srv.url, "application/timestamp-query", q)
				if status != 200 || hdr.Get("Content-Type") != "application/timestamp-reply" {
					t.Fatalf("HTTP %d %q", status, hdr.Get("Content-Type"))
				}
				if hdr.Get("Content-Length") == "" {
					t.Fatal("no Content-Length")
				}
				if err := os.WriteFile(tsr, body, 0o644); err != nil {
					t.Fatal(err)
				}
				text := run(t, openssl, "ts", "-reply", "-in", tsr, "-text")
				for _, want := range []string{"Status: Granted.", "Policy OID: 1.3.6.1.4.1.32473.3161.1", "Accuracy: 0x01 seconds"} {
					if !strings.Contains(text, want) {
						t.Errorf("openssl ts -reply -text lacks %q:\n%s", want, text)
					}
				}
				verify := []string{"ts", "-verify", "-in", tsr, "-CAfile", srv.caFile()}
				if !withCert {
					verify = append(verify, "-untrusted", tsaCert)
				}
				for _, against := range [][]string{{"-queryfile", tsq}, {"-data", doc}} {
					out := run(t, openssl, append(verify, against...)...)
					if !strings.Contains(out, "Verification: OK") {
						t.Fatalf("openssl ts -verify %v:\n%s", against, out)
					}
				}
			})
		}
	}
}

// TestOpenSSLRejectsAForeignCA makes sure the verification above can fail:
// the same reply does not verify against another CA.
func TestOpenSSLRejectsAForeignCA(t *testing.T) {
	openssl := requireTool(t, "openssl")
	srv := startServer(t, t.TempDir())
	other := startServer(t, t.TempDir())
	tsq, tsr := opensslQuery(t, openssl, srv.url, "x", "-sha256")
	out, err := execOutput(openssl, "ts", "-verify", "-in", tsr, "-queryfile", tsq, "-CAfile", other.caFile())
	if err == nil || strings.Contains(out, "Verification: OK") {
		t.Fatalf("a token verified against a foreign CA:\n%s", out)
	}
}

// TestOpenSSLWithRSAKeyAndTSAName runs servers with an RSA-2048 key that
// names itself in TSTInfo.tsa, signing once with OpenSSL's libcrypto and
// once with Go's crypto, and has openssl verify their tokens.
func TestOpenSSLWithRSAKeyAndTSAName(t *testing.T) {
	openssl := requireTool(t, "openssl")
	for crypto, says := range map[string]string{"openssl": "signing: OpenSSL 3 libcrypto", "go": "signing: Go crypto"} {
		t.Run(crypto, func(t *testing.T) {
			srv := startServer(t, t.TempDir(), "--key-type", "rsa-2048", "--tsa-name", "--crypto", crypto)
			if !strings.Contains(srv.output(), says) {
				t.Fatalf("server does not say %q:\n%s", says, srv.output())
			}
			tsq, tsr := opensslQuery(t, openssl, srv.url, "signed with RSA", "-sha384")
			text := run(t, openssl, "ts", "-reply", "-in", tsr, "-text")
			if !strings.Contains(text, "TSA: DirName:") || !strings.Contains(text, "Chronolog DEVELOPMENT TSA") {
				t.Fatalf("TSA name missing:\n%s", text)
			}
			out := run(t, openssl, "ts", "-verify", "-in", tsr, "-queryfile", tsq, "-CAfile", srv.caFile())
			if !strings.Contains(out, "Verification: OK") {
				t.Fatalf("openssl ts -verify:\n%s", out)
			}
		})
	}
}

// opensslQuery has openssl make a query (with -cert) for text, posts it to
// url and returns the query and reply files.
func opensslQuery(t *testing.T, openssl, url, text, hashFlag string) (tsq, tsr string) {
	t.Helper()
	work := t.TempDir()
	doc := filepath.Join(work, "doc.txt")
	os.WriteFile(doc, []byte(text), 0o644)
	tsq, tsr = filepath.Join(work, "q.tsq"), filepath.Join(work, "r.tsr")
	run(t, openssl, "ts", "-query", "-data", doc, hashFlag, "-cert", "-out", tsq)
	q, _ := os.ReadFile(tsq)
	_, _, body := post(t, url, "application/timestamp-query", q)
	os.WriteFile(tsr, body, 0o644)
	return tsq, tsr
}

package e2e

import (
	"archive/zip"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

const (
	// jarAcceptedPolicy is a further policy the server is started with.
	jarAcceptedPolicy = "1.3.6.1.4.1.32473.3161.2"
	// jarRefusedPolicy is a policy it does not accept.
	jarRefusedPolicy = "1.3.6.1.4.1.32473.3161.99"
	jarStorePass     = "chronolog"
)

// TestJarsigner has the JDK's jarsigner timestamp a jar through tsad (RFC
// 3161 over HTTP) and verify it with -strict against a keystore that trusts
// the development CA. jarsigner itself checks the reply: status, nonce,
// imprint, the requested policy, the TSA certificate's timeStamping EKU.
func TestJarsigner(t *testing.T) {
	jarsigner := requireTool(t, "jarsigner")
	keytool := requireTool(t, "keytool")
	data := t.TempDir()
	srv := startServer(t, data, "--log", "off", "--accept-policies", jarAcceptedPolicy)
	work := t.TempDir()
	jar := filepath.Join(work, "app.jar")
	writeJar(t, jar)
	ks, ksNoTSA := jarKeystores(t, keytool, work, srv.caFile())

	sign := func(t *testing.T, out string, extra ...string) (string, error) {
		args := append(jFlags(), "-keystore", ks, "-storetype", "PKCS12", "-storepass", jarStorePass, "-signedjar", out)
		args = append(append(args, extra...), jar, "signer")
		b, err := exec.Command(jarsigner, args...).CombinedOutput()
		return string(b), err
	}
	verify := func(keystore, signed string) (string, error) {
		args := append(jFlags(), "-verify", "-strict", "-verbose", "-certs", "-keystore", keystore, "-storetype", "PKCS12", "-storepass", jarStorePass, signed)
		b, err := exec.Command(jarsigner, args...).CombinedOutput()
		return string(b), err
	}

	policyJar := filepath.Join(work, "policy.jar")
	sha512Jar := filepath.Join(work, "sha512.jar")
	t.Run("accepted policy", func(t *testing.T) {
		if out, err := sign(t, policyJar, "-tsa", srv.url, "-tsapolicyid", jarAcceptedPolicy); err != nil {
			t.Fatalf("jarsigner -tsapolicyid %s: %v\n%s", jarAcceptedPolicy, err, out)
		}
		out, err := verify(ks, policyJar)
		if err := jarTimestampVerified(out, err, "SHA-256"); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("refused policy", func(t *testing.T) {
		refusedJar := filepath.Join(work, "refused.jar")
		out, err := sign(t, refusedJar, "-tsa", srv.url, "-tsapolicyid", jarRefusedPolicy)
		if err == nil {
			t.Fatalf("jarsigner signed with a policy the TSA does not accept:\n%s", out)
		}
		if _, err := os.Stat(refusedJar); err == nil {
			t.Fatalf("jarsigner failed but wrote %s:\n%s", refusedJar, out)
		}
		t.Logf("jarsigner, as expected: %s", strings.TrimSpace(out))
	})
	t.Run("SHA-512 imprint", func(t *testing.T) {
		if out, err := sign(t, sha512Jar, "-tsa", srv.url, "-tsadigestalg", "SHA-512"); err != nil {
			t.Fatalf("jarsigner -tsadigestalg SHA-512: %v\n%s", err, out)
		}
		out, err := verify(ks, sha512Jar)
		if err := jarTimestampVerified(out, err, "SHA-512"); err != nil {
			t.Fatal(err)
		}
	})
	// Negative controls: the check above fails for a timestamp whose CA
	// the verifier does not trust, and for a jar without a timestamp.
	t.Run("untrusted TSA fails", func(t *testing.T) {
		out, err := verify(ksNoTSA, policyJar)
		check := jarTimestampVerified(out, err, "SHA-256")
		if check == nil {
			t.Fatalf("a timestamp verified without its CA in the keystore:\n%s", out)
		}
		t.Logf("refused as expected: %s", firstLine(check))
		if err == nil {
			t.Fatalf("jarsigner -verify -strict exited 0 for an untrusted TSA chain:\n%s", out)
		}
	})
	t.Run("no timestamp fails", func(t *testing.T) {
		plain := filepath.Join(work, "plain.jar")
		if out, err := sign(t, plain); err != nil {
			t.Fatalf("jarsigner without -tsa: %v\n%s", err, out)
		}
		out, err := verify(ks, plain)
		check := jarTimestampVerified(out, err, "SHA-256")
		if check == nil {
			t.Fatalf("a jar without a timestamp passed the check:\n%s", out)
		}
		t.Logf("refused as expected: %s", firstLine(check))
	})

	if err := srv.stop(t); err != nil {
		t.Fatalf("tsad did not stop cleanly: %v\n%s", err, srv.output())
	}
	// Exactly the three signings with -tsa reached the TSA and were recorded.
	xs := exchanges(t, data)
	if len(xs) != 3 {
		t.Fatalf("%d requests recorded, want 3 (accepted policy, refused policy, SHA-512)", len(xs))
	}
	var accepted, refused, sha512 int
	for _, x := range xs {
		switch {
		case x.req.ReqPolicy == jarAcceptedPolicy:
			accepted++
			if x.issued == nil {
				t.Fatalf("the request for policy %s was not granted: %#v", jarAcceptedPolicy, x.all)
			}
			if x.issued.Policy != jarAcceptedPolicy || tokenPolicy(t, x.issued.Token) != jarAcceptedPolicy {
				t.Errorf("token policy %s (event) / %s (token), want %s", x.issued.Policy, tokenPolicy(t, x.issued.Token), jarAcceptedPolicy)
			}
			requireJarToken(t, policyJar, x.issued.Token)
		case x.req.ReqPolicy == jarRefusedPolicy:
			refused++
			if x.rejected == nil || x.rejected.FailInfo != "unacceptedPolicy" || x.rejected.Status != "rejection" {
				t.Errorf("the request for policy %s: %#v, want TimestampRejected unacceptedPolicy", jarRefusedPolicy, x.all)
			}
		case x.req.HashAlgorithm == "sha512":
			sha512++
			if x.issued == nil {
				t.Fatalf("the SHA-512 request was not granted: %#v", x.all)
			}
			if x.req.ReqPolicy != "" || x.issued.Policy != "1.3.6.1.4.1.32473.3161.1" {
				t.Errorf("SHA-512 request: reqPolicy %q, token policy %s, want none and the default", x.req.ReqPolicy, x.issued.Policy)
			}
			requireJarToken(t, sha512Jar, x.issued.Token)
		default:
			t.Errorf("unexpected request recorded: %+v", *x.req)
		}
		if x.req.Nonce == "" || !x.req.CertReq {
			t.Errorf("jarsigner request without nonce or certReq: %+v", *x.req)
		}
		if x.req.ReqPolicy != "" && x.req.HashAlgorithm != "sha256" {
			t.Errorf("policy request with hash %s, want sha256 (jarsigner's default)", x.req.HashAlgorithm)
		}
	}
	if accepted != 1 || refused != 1 || sha512 != 1 {
		t.Errorf("recorded %d accepted-policy, %d refused-policy, %d SHA-512 requests, want one each", accepted, refused, sha512)
	}
}

var tsaTrusted = regexp.MustCompile(`>>> TSA\n(?:[ \t]+[^>\n]*\n)*?[ \t]+\[trusted certificate\]`)

// jarTimestampVerified checks the output of jarsigner -verify -strict
// -verbose -certs: exit 0, "jar verified." without signer errors or
// warnings, a timestamp by the development TSA with the expected imprint
// hash, and a TSA chain that ends in a trusted certificate.
func jarTimestampVerified(out string, err error, digest string) error {
	switch {
	case err != nil:
		return fmt.Errorf("jarsigner -verify -strict: %v\n%s", err, out)
	case !hasLine(out, "jar verified."):
		return fmt.Errorf("no plain %q line:\n%s", "jar verified.", out)
	case strings.Contains(out, "Warning:") || strings.Contains(out, "Error:") || strings.Contains(out, "Invalid TSA certificate chain"):
		return fmt.Errorf("jarsigner warns:\n%s", out)
	case !regexp.MustCompile(`(?m)^\s*Timestamped by "CN=Chronolog DEVELOPMENT TSA, O=Chronolog development" on `).MatchString(out):
		return fmt.Errorf("no %q line:\n%s", `Timestamped by "CN=Chronolog DEVELOPMENT TSA, ..."`, out)
	case !hasLine(out, "Timestamp digest algorithm: "+digest):
		return fmt.Errorf("no %q line:\n%s", "Timestamp digest algorithm: "+digest, out)
	case !tsaTrusted.MatchString(out):
		return fmt.Errorf("the TSA chain does not end in a [trusted certificate]:\n%s", out)
	}
	return nil
}

// writeJar writes a minimal jar: a manifest and one file.
func writeJar(t *testing.T, path string) {
	t.Helper()
	var buf bytes.Buffer
	z := zip.NewWriter(&buf)
	for _, f := range []struct{ name, body string }{
		{"META-INF/MANIFEST.MF", "Manifest-Version: 1.0\r\nCreated-By: chronolog e2e\r\n\r\n"},
		{"hello.txt", "a file that existed at this time\n"},
	} {
		w, err := z.Create(f.name)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, f.body)
	}
	if err := z.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// jarKeystores makes a PKCS12 keystore holding a code-signing CA (a
// self-signed key entry, which jarsigner takes as a trust anchor), the
// signer's key with the chain that CA issued (codeSigning EKU), and the TSA
// CA as a trusted certificate entry; and a copy without the TSA CA.
// jarsigner -verify takes its trust anchors from cacerts and from the
// keystore given with -keystore: trusted certificate entries and
// self-signed key entries.
func jarKeystores(t *testing.T, keytool, dir, tsaCA string) (ks, ksNoTSA string) {
	t.Helper()
	ks = filepath.Join(dir, "keystore.p12")
	ksNoTSA = filepath.Join(dir, "keystore-no-tsa.p12")
	csr, cert := filepath.Join(dir, "signer.csr"), filepath.Join(dir, "signer.pem")
	kt := func(args ...string) {
		t.Helper()
		run(t, keytool, append(append(jFlags(), args...), "-keystore", ks, "-storetype", "PKCS12", "-storepass", jarStorePass)...)
	}
	ec := []string{"-keyalg", "EC", "-groupname", "secp256r1", "-validity", "30"}
	kt(append([]string{"-genkeypair", "-alias", "ca", "-dname", "CN=chronolog e2e code-signing CA", "-ext", "bc:c"}, ec...)...)
	kt(append([]string{"-genkeypair", "-alias", "signer", "-dname", "CN=chronolog e2e code signer"}, ec...)...)
	kt("-certreq", "-alias", "signer", "-file", csr)
	kt("-gencert", "-alias", "ca", "-infile", csr, "-outfile", cert, "-rfc", "-validity", "30", "-ext", "ku:c=dig", "-ext", "eku=codeSigning")
	kt("-importcert", "-alias", "signer", "-file", cert, "-noprompt")
	b, err := os.ReadFile(ks)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ksNoTSA, b, 0o600); err != nil {
		t.Fatal(err)
	}
	kt("-importcert", "-alias", "tsa-ca", "-file", tsaCA, "-noprompt")
	return ks, ksNoTSA
}

// requireJarToken checks that the signed jar's signature block embeds the
// token the server recorded.
func requireJarToken(t *testing.T, jar string, token []byte) {
	t.Helper()
	z, err := zip.OpenReader(jar)
	if err != nil {
		t.Fatal(err)
	}
	defer z.Close()
	for _, f := range z.File {
		ext := filepath.Ext(f.Name)
		if !strings.HasPrefix(f.Name, "META-INF/") || (ext != ".EC" && ext != ".RSA" && ext != ".DSA") {
			continue
		}
		r, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		block, err := io.ReadAll(r)
		r.Close()
		if err != nil {
			t.Fatal(err)
		}
		if len(token) > 0 && bytes.Contains(block, token) {
			return
		}
		t.Fatalf("%s in %s does not embed the recorded token", f.Name, filepath.Base(jar))
	}
	t.Fatalf("%s has no signature block", filepath.Base(jar))
}

package e2e

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chronolog/chronolog/internal/testpki"
)

// osslsigncode verify exits 0 even when the timestamp does not verify, so
// the tests read its report: these lines, each alone on its line.
const (
	osslTimestampOK     = "Timestamp Server Signature verification: ok"
	osslTimestampFailed = "Timestamp Server Signature verification: failed"
	osslNoTimestamp     = "Timestamp is not available"
)

// TestOsslsigncode signs a Windows PE with osslsigncode, timestamped by
// tsad over RFC 3161 (-ts), and has osslsigncode verify the timestamp
// against the development CA.
func TestOsslsigncode(t *testing.T) { osslsigncodeTimestamp(t, "-ts") }

// TestOsslsigncodeAuthenticode is the same with a legacy Authenticode
// timestamp (-t): a base64 TimeStampRequest posted as
// application/octet-stream, answered with a base64 PKCS #7 SignedData.
func TestOsslsigncodeAuthenticode(t *testing.T) { osslsigncodeTimestamp(t, "-t") }

func osslsigncodeTimestamp(t *testing.T, tsFlag string) {
	oss := requireTool(t, "osslsigncode")
	exe := tinyWindowsExe(t)
	work := t.TempDir()
	codeCA := testpki.New(t, testpki.Subject("chronolog e2e code-signing CA"))
	codeCAFile := codeCA.CertFile(t)
	codeCert, codeKey := codeCA.CodeSigning(t, testpki.Subject("chronolog e2e code signer")).Files(t)
	data := t.TempDir()
	srv := startServer(t, data, "--log", "off")

	signed := filepath.Join(work, "signed.exe")
	out := run(t, oss, "sign", "-certs", codeCert, "-key", codeKey, tsFlag, srv.url, "-in", exe, "-out", signed)
	if !hasLine(out, "Succeeded") {
		t.Fatalf("osslsigncode sign %s:\n%s", tsFlag, out)
	}
	verify := func(file, tsaCA string) (string, error) {
		return execOutput(oss, "verify", "-in", file, "-CAfile", codeCAFile, "-TSA-CAfile", tsaCA)
	}

	t.Run("verifies", func(t *testing.T) {
		out, err := verify(signed, srv.caFile())
		if err := osslTimestampVerified(out, err); err != nil {
			t.Fatal(err)
		}
	})
	// Negative controls: the same check fails when the TSA CA given is
	// another one (here the code-signing CA), and for a file signed without
	// a timestamp.
	t.Run("foreign TSA CA fails", func(t *testing.T) {
		out, err := verify(signed, codeCAFile)
		check := osslTimestampVerified(out, err)
		if check == nil || hasLine(out, osslTimestampOK) {
			t.Fatalf("the timestamp verified against a foreign TSA CA:\n%s", out)
		}
		if !hasLine(out, osslTimestampFailed) {
			t.Fatalf("no %q line:\n%s", osslTimestampFailed, out)
		}
		t.Logf("refused as expected: %s", firstLine(check))
	})
	t.Run("no timestamp fails", func(t *testing.T) {
		plain := filepath.Join(work, "plain.exe")
		run(t, oss, "sign", "-certs", codeCert, "-key", codeKey, "-in", exe, "-out", plain)
		out, err := verify(plain, srv.caFile())
		check := osslTimestampVerified(out, err)
		if check == nil || !hasLine(out, osslNoTimestamp) {
			t.Fatalf("a file without a timestamp passed the check:\n%s", out)
		}
		t.Logf("refused as expected: %s", firstLine(check))
	})

	if err := srv.stop(t); err != nil {
		t.Fatalf("tsad did not stop cleanly: %v\n%s", err, srv.output())
	}
	xs := exchanges(t, data)
	if len(xs) != 1 {
		t.Fatalf("%d requests recorded, want 1", len(xs))
	}
	x := xs[0]
	if x.issued == nil {
		t.Fatalf("the request was not granted: %#v", x.all)
	}
	if tsFlag == "-ts" {
		if x.req.ContentType != "application/timestamp-query" || x.req.HashAlgorithm != "sha256" {
			t.Errorf("recorded as %+v, want an RFC 3161 query with a SHA-256 imprint", *x.req)
		}
		// The RFC 3161 token goes into the signature as it was sent.
		if ok, err := containsToken(signed, x.issued.Token); err != nil || !ok {
			t.Errorf("the signed file does not embed the recorded token (%v)", err)
		}
	} else {
		if x.req.ContentType != "application/octet-stream" {
			t.Errorf("recorded as %+v, want an Authenticode request (application/octet-stream)", *x.req)
		}
		// osslsigncode keeps the countersignature's SignerInfo, not the
		// SignedData around it: look for its signature.
		sig := signerSignature(t, x.issued.Token)
		if ok, err := containsToken(signed, sig); err != nil || !ok {
			t.Errorf("the signed file does not embed the recorded countersignature (%v)", err)
		}
	}
}

// osslTimestampVerified checks the report of osslsigncode verify: exit 0,
// the timestamp's signature and chain verified with the development TSA's
// certificate, the file's signature verified, and nothing failed.
func osslTimestampVerified(out string, err error) error {
	switch {
	case err != nil:
		return fmt.Errorf("osslsigncode verify: %v\n%s", err, out)
	case !hasLine(out, osslTimestampOK):
		return fmt.Errorf("no %q line:\n%s", osslTimestampOK, out)
	case !hasLine(out, "Signature verification: ok"):
		return fmt.Errorf("no %q line:\n%s", "Signature verification: ok", out)
	case !hasLine(out, "Number of verified signatures: 1") || !hasLine(out, "Succeeded"):
		return fmt.Errorf("no %q and %q lines:\n%s", "Number of verified signatures: 1", "Succeeded", out)
	case !hasLine(out, "Subject: /O=Chronolog development/CN=Chronolog DEVELOPMENT TSA"):
		return fmt.Errorf("the timestamp was not verified with the development TSA's certificate:\n%s", out)
	case strings.Contains(strings.ToLower(out), "failed"):
		return fmt.Errorf("something failed:\n%s", out)
	}
	return nil
}

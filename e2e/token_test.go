package e2e

import (
	"bytes"
	"encoding/asn1"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/digitorus/timestamp"
)

// TestTokenFields checks each granted token with two decoders that share no
// code with ours: the pinned digitorus parser, and Go's strict encoding/asn1
// (which, unlike real clients, refuses a malformed genTime). Nonces of any
// size and sign come back byte-exact.
func TestTokenFields(t *testing.T) {
	srv := startServer(t, t.TempDir(), verifiedClock(t)...)
	big256, _ := new(big.Int).SetString("f00dfacecafebabe0123456789abcdef00112233445566778899aabbccddeeff", 16)
	cases := []struct {
		name  string
		nonce []byte // INTEGER content octets
	}{
		{"no nonce", nil},
		{"64-bit nonce", []byte{0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0}},
		{"256-bit nonce", append([]byte{0x00}, big256.Bytes()...)},
		{"negative nonce", []byte{0xff, 0x7f}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			q := sha256Query("token fields " + c.name)
			if c.nonce != nil {
				q.Nonce = rawInteger(c.nonce)
			}
			status, _, body := post(t, srv.url, "application/timestamp-query", mustMarshal(t, q))
			if status != 200 {
				t.Fatalf("HTTP %d", status)
			}
			r := parseResp(t, body)
			if r.Status.Status != 0 || r.Status.FailInfo.BitLength != 0 {
				t.Fatalf("status %d failInfo %v: want granted without failInfo", r.Status.Status, r.Status.FailInfo)
			}
			info := tokenTSTInfo(t, r)
			if c.nonce == nil && len(info.Nonce.FullBytes) != 0 {
				t.Fatal("a nonce was invented")
			}
			if c.nonce != nil && !bytes.Equal(info.Nonce.Bytes, c.nonce) {
				t.Fatalf("nonce %x, want %x byte-exact", info.Nonce.Bytes, c.nonce)
			}
			if !bytes.Equal(info.MessageImprint.HashedMessage, q.MessageImprint.HashedMessage) {
				t.Fatal("imprint not copied")
			}
			if info.SerialNumber.Sign() <= 0 || len(info.SerialNumber.Bytes()) > 20 {
				t.Fatalf("serial %x is not positive and at most 20 octets", info.SerialNumber)
			}
			if info.Ordering {
				t.Fatal("ordering present")
			}

			ts, err := timestamp.ParseResponse(body)
			if err != nil {
				t.Fatalf("digitorus: %v", err)
			}
			if ts.SerialNumber.Cmp(info.SerialNumber) != 0 || !ts.Time.Equal(info.GenTime) || !ts.Policy.Equal(asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 32473, 3161, 1}) {
				t.Fatalf("digitorus reads serial %x time %s policy %s", ts.SerialNumber, ts.Time, ts.Policy)
			}
			if !bytes.Equal(ts.HashedMessage, q.MessageImprint.HashedMessage) {
				t.Fatal("digitorus reads another imprint")
			}
			if ts.Accuracy.Seconds() != 1 {
				t.Fatalf("digitorus reads accuracy %s, want 1s", ts.Accuracy)
			}
			if len(ts.Certificates) == 0 {
				t.Fatal("certReq was true but the token carries no certificate")
			}
		})
	}
}

// TestTsactlRequestAndVerify runs the project's own client end to end.
func TestTsactlRequestAndVerify(t *testing.T) {
	srv := startServer(t, t.TempDir(), verifiedClock(t)...)
	work := t.TempDir()
	doc := filepath.Join(work, "doc.bin")
	os.WriteFile(doc, []byte("tsactl end to end"), 0o644)
	tsactl := filepath.Join(binDir, "tsactl")
	for _, args := range [][]string{
		{"--hash", "sha512", "--nonce-bits", "256"},
		{"--hash", "sha3-256", "--cert=false"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			out := run(t, tsactl, append([]string{"request", "--url", srv.url}, append(args, doc)...)...)
			if !strings.Contains(out, "status: granted") {
				t.Fatalf("tsactl request:\n%s", out)
			}
			verify := []string{"verify", "--in", doc + ".tsr", "--ca", srv.caFile()}
			if strings.Contains(strings.Join(args, " "), "--cert=false") {
				verify = append(verify, "--untrusted", filepath.Join(srv.pkiDir, "tsa.pem"))
			}
			for _, against := range [][]string{{"--data", doc}, {"--queryfile", doc + ".tsq"}} {
				out := run(t, tsactl, append(verify, against...)...)
				for _, re := range []string{`serial:\s+\d+`, `genTime:\s+\d{14}(\.\d*[1-9])?Z`, `policy:\s+1\.3\.6\.1\.4\.1\.32473\.3161\.1`, `accuracy:\s+1s`, `signer:\s+CN=Chronolog DEVELOPMENT TSA`, `Verification: OK`} {
					if !regexp.MustCompile(re).MatchString(out) {
						t.Errorf("tsactl verify %v lacks %s:\n%s", against, re, out)
					}
				}
			}
			// Verification must fail for other data.
			other := filepath.Join(work, "other.bin")
			os.WriteFile(other, []byte("something else"), 0o644)
			if out, err := exec.Command(tsactl, append(verify, "--data", other)...).CombinedOutput(); err == nil {
				t.Fatalf("tsactl verify accepted other data:\n%s", out)
			}
		})
	}
}

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chronolog/chronolog/domain/events"
	"github.com/chronolog/chronolog/domain/rfc3161"
	"github.com/chronolog/chronolog/internal/testpki"
)

// TestTLSClientCertificates: HTTPS with client certificates judged by the
// service's filters (authentication, then authorization by name), each
// verdict recorded; and a listener that requires a certificate refuses a
// client without one in the handshake.
func TestTLSClientCertificates(t *testing.T) {
	data, work := t.TempDir(), t.TempDir()
	serverCA := testpki.New(t, testpki.Subject("server", "Chronolog e2e"))
	clientCA := testpki.New(t, testpki.Subject("clients", "Chronolog e2e"))
	otherCA := testpki.New(t, testpki.Subject("other", "Chronolog e2e"))
	serverCAFile, clientCAFile := serverCA.CertFile(t), clientCA.CertFile(t)
	srvCert, srvKey := serverCA.TLSServer(t).Files(t)
	aliceCert, aliceKey := clientCA.TLSClient(t, testpki.Subject("alice", "Partner")).Files(t)
	bobCert, bobKey := clientCA.TLSClient(t, testpki.Subject("bob", "Stranger")).Files(t)
	malloryCert, malloryKey := otherCA.TLSClient(t, testpki.Subject("alice", "Partner")).Files(t)

	cfg := fmt.Sprintf(`
server:
  tls: {cert: %s, key: %s, clientAuth: request}
services:
  - name: partners
    paths: [/tsa]
    policy: %s
    chains:
      default:
        - {type: tls-client-cert, caFile: %s}
        - type: authorize-by-name
          names: [{subject: 'CN=alice,O=Partner'}]
`, srvCert, srvKey, policyQualified, clientCAFile)
	cfgFile := filepath.Join(work, "tsad.yaml")
	os.WriteFile(cfgFile, []byte(cfg), 0o600)
	srv := startServer(t, data, "--config", cfgFile, "--log", "off")
	if !strings.HasPrefix(srv.url, "https://") {
		t.Fatalf("endpoint %s is not HTTPS", srv.url)
	}
	cases := []struct {
		c          *tsReq
		cert, key  string
		wantClient string
	}{
		{&tsReq{name: "no client certificate", failInfo: rfc3161.BadRequest, reason: "no TLS client certificate"}, "", "", ""},
		{&tsReq{name: "certificate of another CA", failInfo: rfc3161.BadRequest, reason: "CN=alice,O=Partner"}, malloryCert, malloryKey, ""},
		{&tsReq{name: "authenticated, not authorized", failInfo: rfc3161.BadRequest, reason: "CN=bob,O=Stranger"}, bobCert, bobKey, ""},
		{&tsReq{name: "authenticated and authorized", granted: true}, aliceCert, aliceKey, "CN=alice,O=Partner"},
	}
	for _, tc := range cases {
		tc.c.path, tc.c.alg = "/tsa", rfc3161.SHA256
		tc.c.send(t, tlsClient(t, serverCAFile, tc.cert, tc.key), srv.base)
	}
	if err := srv.stop(t); err != nil {
		t.Fatal(err)
	}
	byHash := byBodyHash(readStore(t, data))
	for _, tc := range cases {
		evs := tc.c.checkRecorded(t, byHash)
		if len(evs) == 0 {
			continue
		}
		req := evs[0].(*events.TimestampRequested)
		if req.Transport != "https" {
			t.Errorf("%s: transport %q", tc.c.name, req.Transport)
		}
		if tc.cert != "" && req.TLSClient == "" {
			t.Errorf("%s: the presented certificate's subject is not recorded", tc.c.name)
		}
		if issued, ok := evs[len(evs)-1].(*events.TimestampIssued); ok && (issued.Client != tc.wantClient || issued.ClientAuth != "tls-client-cert") {
			t.Errorf("%s: issued to %q by %q", tc.c.name, issued.Client, issued.ClientAuth)
		}
	}

	// clientAuth require: the handshake refuses a client without a
	// certificate; one with a good certificate gets its token.
	data2 := t.TempDir()
	cfg2 := strings.Replace(cfg, "clientAuth: request}", "clientAuth: require, clientCAs: "+clientCAFile+"}", 1)
	os.WriteFile(cfgFile, []byte(cfg2), 0o600)
	srv2 := startServer(t, data2, "--config", cfgFile, "--log", "off")
	c := &tsReq{name: "require: alice", path: "/tsa", alg: rfc3161.SHA256, granted: true}
	c.send(t, tlsClient(t, serverCAFile, aliceCert, aliceKey), srv2.base)
	anon := &tsReq{name: "require: anonymous", path: "/tsa", alg: rfc3161.SHA256}
	if _, err := tlsClient(t, serverCAFile, "", "").Post(srv2.base+"/tsa", "application/timestamp-query", strings.NewReader(string(anon.der(t)))); err == nil {
		t.Error("a client without a certificate got through a listener that requires one")
	} else if !strings.Contains(err.Error(), "certificate") {
		t.Errorf("refusal %v does not say the certificate was the problem", err)
	}
}

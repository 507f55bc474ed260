package filter

import (
	"crypto/x509"
	"regexp"
	"testing"

	"github.com/chronolog/chronolog/domain/rfc3161"
)

// TestChainHandsIdentityToAuthorization shows that authorization filters
// judge the identity an authentication filter earlier in the chain
// established, and that the chain reports it.
func TestChainHandsIdentityToAuthorization(t *testing.T) {
	p := newTestPKI(t)
	keys, err := NewAPIKeys([]APIKey{apiKey("billing", billingToken), apiKey("audit", auditToken)})
	if err != nil {
		t.Fatal(err)
	}
	tlsAuth := NewTLSClientCert(p.roots, []*x509.Certificate{p.inter.Cert})
	byName := NewAuthorizeByName([]NameRule{
		{Subject: regexp.MustCompile(`^CN=billing,O=Example$`)},
		{Subject: regexp.MustCompile(`^billing$`)},
	})
	byAuth := NewAuthorizeByAuthentication()
	tests := []struct {
		name     string
		chain    Chain
		r        Request
		denied   string // the filter that denies, "" when none does
		failInfo rfc3161.FailInfo
		client   string
		method   string
	}{
		{"certificate, by name", Chain{tlsAuth, byName}, Request{PeerCertificates: []*x509.Certificate{p.client}, At: epoch}, "", 0, "CN=billing,O=Example", AuthTLSClientCert},
		{"certificate, by authentication", Chain{tlsAuth, byAuth}, Request{PeerCertificates: []*x509.Certificate{p.direct}, At: epoch}, "", 0, "CN=direct,O=Example", AuthTLSClientCert},
		{"certificate, not named", Chain{tlsAuth, byAuth, byName}, Request{PeerCertificates: []*x509.Certificate{p.direct}, At: epoch}, "authorize-by-name", rfc3161.BadRequest, "CN=direct,O=Example", AuthTLSClientCert},
		{"API key, by name", Chain{keys, byName}, Request{Bearer: billingToken}, "", 0, "billing", AuthAPIKey},
		{"API key, by authentication", Chain{keys, byAuth}, Request{Bearer: auditToken}, "", 0, "audit", AuthAPIKey},
		{"API key, not named", Chain{keys, byAuth, byName}, Request{Bearer: auditToken}, "authorize-by-name", rfc3161.BadRequest, "audit", AuthAPIKey},
		{"authorization before authentication", Chain{byAuth, keys}, Request{Bearer: billingToken}, "authorize-by-authentication", rfc3161.BadRequest, "", ""},
		{"no credential", Chain{keys, byAuth}, Request{}, "api-key", rfc3161.BadRequest, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := tt.chain.Run(tt.r)
			switch {
			case tt.denied == "" && res.Denied != nil:
				t.Fatalf("denied by %s: %s", res.Denied.Filter, res.Denied.Reason)
			case tt.denied != "" && (res.Denied == nil || res.Denied.Filter != tt.denied || res.Denied.FailInfo != tt.failInfo):
				t.Fatalf("denial %+v, want %s by %s", res.Denied, tt.failInfo, tt.denied)
			}
			if tt.denied == "" && len(res.Outcomes) != len(tt.chain) {
				t.Fatalf("%d outcomes for %d filters", len(res.Outcomes), len(tt.chain))
			}
			for _, o := range res.Outcomes {
				if o.Reason == "" {
					t.Fatalf("%s gave no reason", o.Filter)
				}
			}
			switch {
			case tt.client == "" && res.Client != nil:
				t.Fatalf("client %+v, want none", res.Client)
			case tt.client != "" && (res.Client == nil || res.Client.Name != tt.client || res.Client.Method != tt.method):
				t.Fatalf("client %+v, want %s by %s", res.Client, tt.client, tt.method)
			}
		})
	}
}

package filter

import (
	"regexp"
	"testing"

	"github.com/chronolog/chronolog/domain/rfc3161"
)

func TestAuthorizeByName(t *testing.T) {
	p := newTestPKI(t)
	re := regexp.MustCompile
	billing := &Identity{Name: p.client.Subject.String(), Method: AuthTLSClientCert, Certificate: p.client}
	stranger := &Identity{Name: p.otherClient.Subject.String(), Method: AuthTLSClientCert, Certificate: p.otherClient}
	keyClient := &Identity{Name: "billing", Method: AuthAPIKey}
	rules := []NameRule{
		{Subject: re(`^CN=audit,`)},
		{Subject: re(`,O=Example$`), SAN: re(`^billing\.clients\.example$`)},
		{SAN: re(`^spiffe://example\.org/tsa/stranger$`)},
		{Subject: re(`^billing$`)},
	}
	tests := []struct {
		name   string
		rules  []NameRule
		client *Identity
		want   verdict
	}{
		{"subject and DNS SAN", rules, billing, accepts(`"CN=billing,O=Example" matches authorization rule 1`)},
		{"URI SAN only", rules, stranger, accepts("rule 2")},
		{"e-mail SAN", []NameRule{{SAN: re(`^billing@example\.org$`)}}, billing, accepts("rule 0")},
		{"IP SAN", []NameRule{{SAN: re(`^192\.0\.2\.7$`)}}, billing, accepts("rule 0")},
		{"subject matches, SAN does not", []NameRule{{Subject: re(`CN=billing`), SAN: re(`nowhere`)}}, billing, denies(rfc3161.BadRequest, `"CN=billing,O=Example" matches no authorization rule`)},
		{"no rule matches", rules[:1], billing, denies(rfc3161.BadRequest, `"CN=billing,O=Example" matches no authorization rule`)},
		{"no rules", nil, billing, denies(rfc3161.BadRequest, "matches no authorization rule")},
		{"empty rule admits", []NameRule{{}}, billing, accepts("rule 0")},
		{"API key by name", rules, keyClient, accepts(`API key client "billing" matches authorization rule 3`)},
		{"API key, SAN rules skipped", rules[1:3], keyClient, denies(rfc3161.BadRequest, `API key client "billing" matches no authorization rule`)},
		{"no client", rules, nil, denies(rfc3161.BadRequest, "authorization by name needs a client authenticated by certificate")},
		{"certificate method without certificate", rules, &Identity{Name: "billing", Method: AuthTLSClientCert}, denies(rfc3161.BadRequest, "needs a client authenticated by certificate")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := NewAuthorizeByName(tt.rules)
			if f.Name() != "authorize-by-name" {
				t.Fatal(f.Name())
			}
			d := f.Decide(Request{Client: tt.client})
			check(t, d, tt.want)
			if d.Identity != nil {
				t.Fatal("authorization established an identity")
			}
		})
	}
}

func TestAuthorizeByAuthentication(t *testing.T) {
	tests := []struct {
		name   string
		client *Identity
		want   verdict
	}{
		{"API key", &Identity{Name: "billing", Method: AuthAPIKey}, accepts(`client "billing" authenticated by api-key`)},
		{"certificate", &Identity{Name: "CN=billing", Method: AuthTLSClientCert}, accepts("authenticated by tls-client-cert")},
		{"nobody", nil, denies(rfc3161.BadRequest, "no authenticated client")},
	}
	f := NewAuthorizeByAuthentication()
	if f.Name() != "authorize-by-authentication" {
		t.Fatal(f.Name())
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			check(t, f.Decide(Request{Client: tt.client}), tt.want)
		})
	}
}

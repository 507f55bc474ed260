package config

import (
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/chronolog/chronolog/domain/filter"
)

// Validation reads every value once, into what the service is built from:
// building it needs no second parse, and finds no new mistake.
func TestParsedIsWhatTheFileSays(t *testing.T) {
	f, err := Parse([]byte(good + `    acceptedPolicies: [1.2.3.5]
    hashes: [sha256, sha3-512]
    chains:
      partners:
        - {type: client-ip, allow: [192.0.2.0/24, 2001:db8::1], deny: [192.0.2.7]}
        - {type: api-key, keys: [{name: acme, sha256: "sha256:915bf2de9564108eec841c5c923dd21ac3d039c10de821c8cf572dce155fcba7"}]}
        - {type: authorize-by-name, names: [{subject: "CN=acme,.*"}]}
        - {type: rate-limit, rate: 5, burst: 10}
        - {type: forward, url: "https://upstream.example/tsa", timeout: 3s}
      default: [{type: nonce-required, minBytes: 8}, {type: request-size, max: 4096}, {type: cert-req}]
    policyMap:
      - {name: p, path: /partners, chain: partners}
      - {name: rest, chain: default}
`))
	if err != nil {
		t.Fatal(err)
	}
	p := f.Services[0].Parsed()
	if p == nil {
		t.Fatal("a valid service has nothing parsed")
	}
	if p.Policy.String() != "1.2.3.4" || len(p.AcceptedPolicies) != 1 || p.AcceptedPolicies[0].String() != "1.2.3.5" ||
		len(p.Hashes) != 2 || p.Hashes[1].Name != "sha3-512" {
		t.Fatalf("policies and hashes: %+v", p)
	}
	if len(p.Rules) != 2 || p.Rules[0].Name != "p" || p.Rules[0].Chain != "partners" || !p.Rules[0].Path.MatchString("/partners") ||
		p.Rules[0].Path.MatchString("/partners/x") || p.Rules[1].Path != nil {
		t.Fatalf("rules: %+v", p.Rules)
	}
	partners := p.Chains["partners"]
	if partners.Forward == nil || partners.Forward.URL != "https://upstream.example/tsa" || partners.Forward.Timeout != 3*time.Second {
		t.Fatalf("forward: %+v", partners.Forward)
	}
	ip := partners.Filters[0].(filter.ClientIPSpec)
	want := filter.ClientIPSpec{
		Allow: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("2001:db8::1/128")},
		Deny:  []netip.Prefix{netip.MustParsePrefix("192.0.2.7/32")},
	}
	if !reflect.DeepEqual(ip, want) {
		t.Errorf("client-ip: %+v", ip)
	}
	if k := partners.Filters[1].(filter.APIKeysSpec); len(k.Keys) != 1 || k.Keys[0].Name != "acme" || k.Keys[0].SHA256[0] != 0x91 {
		t.Errorf("api-key: %+v", k)
	}
	if n := partners.Filters[2].(filter.AuthorizeByNameSpec); len(n.Rules) != 1 || !n.Rules[0].Subject.MatchString("CN=acme,O=x") || n.Rules[0].SAN != nil {
		t.Errorf("authorize-by-name: %+v", n)
	}
	if r := partners.Filters[3].(filter.RateLimitSpec); r != (filter.RateLimitSpec{Rate: 5, Burst: 10}) {
		t.Errorf("rate-limit: %+v", r)
	}
	if got := p.Chains["default"].Filters; !reflect.DeepEqual(got, []filter.Spec{filter.NonceRequiredSpec{MinBytes: 8}, filter.RequestSizeSpec{Max: 4096}, filter.CertReqSpec{}}) {
		t.Errorf("default chain: %+v", got)
	}
	for name, c := range p.Chains {
		for i, s := range c.Filters {
			if _, err := filter.New(s, nil); err != nil {
				t.Errorf("chains.%s[%d]: %v", name, i, err)
			}
		}
	}
}

// A file with problems has nothing parsed: nothing half-read is built.
func TestNothingParsedWithProblems(t *testing.T) {
	f, err := Parse([]byte(good + "    chains: {default: [{type: rate-limit, rate: 0, burst: 1}]}\n"))
	if err == nil {
		t.Fatal("a rate of 0 validated")
	}
	if f != nil && f.Services[0].Parsed() != nil {
		t.Error("a service with problems has a parsed form")
	}
}

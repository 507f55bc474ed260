package config

import (
	"encoding/asn1"
	"regexp"
	"time"

	"github.com/chronolog/chronolog/domain/filter"
	"github.com/chronolog/chronolog/domain/rfc3161"
)

// Parsed is a service as validation read it: every value parsed once
// (OIDs, hashes, compiled patterns, prefixes, digests), so that building
// the service fails only on what the files it names hold.
type Parsed struct {
	Policy           asn1.ObjectIdentifier
	AcceptedPolicies []asn1.ObjectIdentifier
	Hashes           []rfc3161.HashAlgorithm
	// Rules are the policy map in order; a service without one has the
	// rule "default" sending everything to chain "default", when that
	// chain exists.
	Rules  []ParsedRule
	Chains map[string]ParsedChain
}

// ParsedRule is a policy-map rule with its patterns compiled (nil matches
// anything).
type ParsedRule struct {
	Name, Chain                            string
	Path, Policy, Client, Source, Protocol *regexp.Regexp
}

// ParsedChain is a chain's filters, and the upstream TSA it forwards to
// when it ends in forward.
type ParsedChain struct {
	Filters []filter.Spec
	Forward *Forward
}

// Forward is a forward filter: the upstream TSA requests are passed to.
type Forward struct {
	URL     string
	Timeout time.Duration
	CAFile  string
}

// Parsed returns what validation read of the service; nil before the
// file was checked, or when it has problems.
func (s *Service) Parsed() *Parsed { return s.parsed }

// filterKind is how one filter type's options are checked and read into
// the domain's spec. parse reports problems through p; its spec is used
// only when there are none.
type filterKind struct {
	options []string
	parse   func(f *FilterSpec, p *problems, at string) filter.Spec
}

// filterKinds are the filter types a chain may list (forward aside, which
// ends a chain and is no filter of the domain's).
var filterKinds = map[string]filterKind{
	FilterNonceRequired: {[]string{"minBytes"}, func(f *FilterSpec, p *problems, at string) filter.Spec {
		if f.MinBytes < 0 || f.MinBytes > 64 {
			p.add("%s: minBytes must be between 0 and 64", at)
		}
		return filter.NonceRequiredSpec{MinBytes: f.MinBytes}
	}},
	FilterCertReq: {nil, func(*FilterSpec, *problems, string) filter.Spec { return filter.CertReqSpec{} }},
	FilterRequestSize: {[]string{"max"}, func(f *FilterSpec, p *problems, at string) filter.Spec {
		if f.Max <= 0 {
			p.add("%s: max must be a positive number of bytes", at)
		}
		return filter.RequestSizeSpec{Max: f.Max}
	}},
	FilterClientIP: {[]string{"allow", "deny"}, func(f *FilterSpec, p *problems, at string) filter.Spec {
		if len(f.Allow) == 0 && len(f.Deny) == 0 {
			p.add("%s: needs allow or deny (CIDR prefixes)", at)
		}
		var s filter.ClientIPSpec
		for _, c := range f.Allow {
			if pfx, err := ParsePrefix(c); err != nil {
				p.add("%s: %v", at, err)
			} else {
				s.Allow = append(s.Allow, pfx)
			}
		}
		for _, c := range f.Deny {
			if pfx, err := ParsePrefix(c); err != nil {
				p.add("%s: %v", at, err)
			} else {
				s.Deny = append(s.Deny, pfx)
			}
		}
		return s
	}},
	FilterTLSClientCert: {[]string{"caFile", "intermediatesFile"}, func(f *FilterSpec, p *problems, at string) filter.Spec {
		if f.CAFile == "" {
			p.add("%s: caFile (the CA certificates client certificates must chain to) is needed", at)
		}
		return filter.TLSClientCertSpec{CAFile: f.CAFile, IntermediatesFile: f.IntermediatesFile}
	}},
	FilterAuthorizeByName: {[]string{"names"}, func(f *FilterSpec, p *problems, at string) filter.Spec {
		if len(f.Names) == 0 {
			p.add("%s: names: at least one rule is needed", at)
		}
		var s filter.AuthorizeByNameSpec
		for j, r := range f.Names {
			if r.Subject == "" && r.SAN == "" {
				p.add("%s: names[%d]: needs subject or san", at, j)
			}
			subject, err := CompilePattern(r.Subject)
			if err != nil {
				p.add("%s: names[%d]: subject: %v", at, j, err)
			}
			san, err := CompilePattern(r.SAN)
			if err != nil {
				p.add("%s: names[%d]: san: %v", at, j, err)
			}
			s.Rules = append(s.Rules, filter.NameRule{Subject: subject, SAN: san})
		}
		return s
	}},
	FilterAuthorizeByAuthn: {nil, func(*FilterSpec, *problems, string) filter.Spec { return filter.AuthorizeByAuthenticationSpec{} }},
	FilterAPIKey: {[]string{"keys"}, func(f *FilterSpec, p *problems, at string) filter.Spec {
		if len(f.Keys) == 0 {
			p.add("%s: keys: at least one key is needed", at)
		}
		var s filter.APIKeysSpec
		names := map[string]bool{}
		for j, k := range f.Keys {
			if k.Name == "" {
				p.add("%s: keys[%d]: name is empty", at, j)
			} else if names[k.Name] {
				p.add("%s: keys[%d]: name %q is listed twice", at, j, k.Name)
			}
			names[k.Name] = true
			sum, err := filter.ParseAPIKeyHash(k.SHA256)
			if err != nil {
				p.add("%s: keys[%d] %s: sha256: %v (store the key's digest, never the key: tsactl apikey)", at, j, k.Name, err)
			}
			s.Keys = append(s.Keys, filter.APIKey{Name: k.Name, SHA256: sum})
		}
		return s
	}},
	FilterRateLimit: {[]string{"rate", "burst", "maxClients"}, func(f *FilterSpec, p *problems, at string) filter.Spec {
		if f.Rate <= 0 {
			p.add("%s: rate (requests per second) must be positive", at)
		}
		if f.Burst < 1 {
			p.add("%s: burst must be at least 1", at)
		}
		if f.MaxClients < 0 {
			p.add("%s: maxClients must not be negative", at)
		}
		return filter.RateLimitSpec{Rate: f.Rate, Burst: f.Burst, MaxClients: f.MaxClients}
	}},
}

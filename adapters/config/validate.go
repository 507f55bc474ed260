package config

import (
	"encoding/asn1"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/chronolog/chronolog/domain/rfc3161"
)

var serviceName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)

// Validate returns every problem in f, each naming its place.
func (f *File) Validate() []string {
	var p problems
	f.Server.validate(&p)
	if len(f.Services) == 0 {
		p.add("services: at least one timestamp service is needed")
	}
	names := map[string]int{}
	paths := map[string]string{}
	tcp := map[string]string{}
	for i := range f.Services {
		s := &f.Services[i]
		at := fmt.Sprintf("services[%d] %s", i, s.Name)
		if !serviceName.MatchString(s.Name) {
			p.add("%s: name %q must be 1-63 of a-z, 0-9, '.', '_', '-', starting with a letter or digit", at, s.Name)
		} else if j, dup := names[s.Name]; dup {
			p.add("%s: name %q is also the name of services[%d]", at, s.Name, j)
		}
		names[s.Name] = i
		if len(s.Paths) == 0 {
			p.add("%s: paths: at least one URL path is needed", at)
		}
		for _, path := range s.Paths {
			switch {
			case !strings.HasPrefix(path, "/"):
				p.add("%s: path %q must start with /", at, path)
			case path == "/" || strings.HasPrefix(path, "/log/") || path == "/healthz" || path == "/metrics" || strings.HasPrefix(path, "/api/"):
				p.add("%s: path %q is reserved for the server's own endpoints", at, path)
			case paths[path] != "":
				p.add("%s: path %q is already served by %s", at, path, paths[path])
			default:
				paths[path] = s.Name
			}
		}
		if s.TCP != "" {
			// Port 0 asks the system for a free port: never a clash.
			_, port, err := net.SplitHostPort(s.TCP)
			switch other, dup := tcp[s.TCP]; {
			case err != nil:
				p.add("%s: tcp %q is not host:port: %v", at, s.TCP, err)
			case port == "0":
			case dup:
				p.add("%s: tcp %s is already the socket of %s", at, s.TCP, other)
			case s.TCP == f.Server.Listen:
				p.add("%s: tcp %s is also the HTTP listen address", at, s.TCP)
			}
			tcp[s.TCP] = s.Name
		}
		s.validate(&p, at)
	}
	return p.list
}

func (s *Server) validate(p *problems) {
	if _, _, err := net.SplitHostPort(s.Listen); err != nil {
		p.add("server: listen %q is not host:port: %v", s.Listen, err)
	}
	if s.MaxBody < 0 {
		p.add("server: maxBody must not be negative")
	}
	if s.RequestTimeout < 0 {
		p.add("server: requestTimeout must not be negative")
	}
	if s.CertificateWarningDays < 0 {
		p.add("server: certificateWarningDays must not be negative")
	}
	if s.Clock != nil {
		s.Clock.validate(p)
	}
	if s.API != nil {
		s.API.validate(p)
	}
	if t := s.TLS; t != nil {
		if t.Cert == "" || t.Key == "" {
			p.add("server: tls needs cert and key")
		}
		switch t.ClientAuth {
		case ClientAuthNone, ClientAuthRequest:
		case ClientAuthVerifyIfGiven, ClientAuthRequire:
			if t.ClientCAs == "" {
				p.add("server: tls clientAuth %s needs clientCAs", t.ClientAuth)
			}
		default:
			p.add("server: tls clientAuth %q is not one of none, request, verify-if-given, require", t.ClientAuth)
		}
	}
}

func (s *Service) validate(p *problems, at string) {
	before := len(p.list)
	parsed := &Parsed{Chains: map[string]ParsedChain{}}
	policy, err := ParseOID(s.Policy)
	if err != nil {
		p.add("%s: policy: %v", at, err)
	}
	parsed.Policy = policy
	seen := map[string]bool{s.Policy: true}
	for _, a := range s.AcceptedPolicies {
		if oid, err := ParseOID(a); err != nil {
			p.add("%s: acceptedPolicies: %v", at, err)
		} else if seen[a] {
			p.add("%s: acceptedPolicies: %s is listed twice (the default policy is always accepted)", at, a)
		} else {
			parsed.AcceptedPolicies = append(parsed.AcceptedPolicies, oid)
		}
		seen[a] = true
	}
	switch sg := s.Signer; {
	case sg.Key != "" && sg.PKCS11 != nil:
		p.add("%s: signer: key (a PEM file) and pkcs11 (an HSM key) are alternatives: give one", at)
	case sg.PKCS11 != nil:
		sg.PKCS11.validate(p, at+": signer.pkcs11")
	case sg.Key == "" || sg.Cert == "":
		p.add("%s: signer needs key and cert, or pkcs11", at)
	}
	for _, h := range s.Hashes {
		if alg, ok := rfc3161.HashByName(h); !ok {
			p.add("%s: hashes: unknown hash %q", at, h)
		} else {
			parsed.Hashes = append(parsed.Hashes, alg)
		}
	}
	if s.Accuracy != nil && *s.Accuracy < 0 {
		p.add("%s: accuracy must not be negative", at)
	}
	if s.Precision <= 0 || s.Precision.D() > time.Second {
		p.add("%s: precision must be between 1ns and 1s", at)
	}
	for _, name := range slices.Sorted(maps.Keys(s.Chains)) {
		if name == "" {
			p.add("%s: chains: a chain needs a name", at)
		}
		parsed.Chains[name] = parseChain(p, fmt.Sprintf("%s: chains.%s", at, name), s.Chains[name])
	}
	if len(s.PolicyMap) == 0 {
		_, ok := s.Chains[DefaultChain]
		switch {
		case ok:
			parsed.Rules = []ParsedRule{{Name: "default", Chain: DefaultChain}}
		case len(s.Chains) > 0:
			p.add("%s: without a policyMap every request goes to chain %q, which is not defined", at, DefaultChain)
		}
	}
	for i, r := range s.PolicyMap {
		rat := fmt.Sprintf("%s: policyMap[%d]", at, i)
		if r.Name != "" {
			rat += " " + r.Name
		}
		if _, ok := s.Chains[r.Chain]; !ok {
			p.add("%s: chain %q is not defined", rat, r.Chain)
		}
		pr := ParsedRule{Name: r.Name, Chain: r.Chain}
		for _, fp := range []struct {
			name, pattern string
			re            **regexp.Regexp
		}{{"path", r.Path, &pr.Path}, {"policy", r.Policy, &pr.Policy}, {"client", r.Client, &pr.Client}, {"source", r.Source, &pr.Source}, {"protocol", r.Protocol, &pr.Protocol}} {
			re, err := CompilePattern(fp.pattern)
			if err != nil {
				p.add("%s: %s: %v", rat, fp.name, err)
			}
			*fp.re = re
		}
		parsed.Rules = append(parsed.Rules, pr)
	}
	if len(p.list) == before {
		s.parsed = parsed
	}
}

// parseChain checks a chain's filters and reads each into its spec.
func parseChain(p *problems, at string, chain []FilterSpec) ParsedChain {
	var out ParsedChain
	authenticated := false
	for i := range chain {
		f := &chain[i]
		fat := fmt.Sprintf("%s[%d] %s", at, i, f.Type)
		for _, msg := range f.problems {
			p.add("%s: %s", fat, msg)
		}
		switch kind, known := filterKinds[f.Type]; {
		case f.Type == FilterForward:
			u, err := url.Parse(f.URL)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				p.add("%s: url %q is not an http(s) URL", fat, f.URL)
			}
			if f.Timeout < 0 {
				p.add("%s: timeout must not be negative", fat)
			}
			if i != len(chain)-1 {
				p.add("%s: forward answers the request, so it must be the last filter of its chain", fat)
			}
			out.Forward = &Forward{URL: f.URL, Timeout: f.Timeout.D(), CAFile: f.CAFile}
		case f.Type == "":
			p.add("%s: filter without a type (one of %s)", fat, filterTypes())
		case !known:
			p.add("%s: unknown filter type (one of %s)", fat, filterTypes())
		default:
			out.Filters = append(out.Filters, kind.parse(f, p, fat))
		}
		switch f.Type {
		case FilterTLSClientCert, FilterAPIKey:
			authenticated = true
		case FilterAuthorizeByName, FilterAuthorizeByAuthn:
			if !authenticated {
				p.add("%s: needs an authentication filter (tls-client-cert or api-key) before it", fat)
			}
		}
	}
	return out
}

// CompilePattern compiles a policy-map or name pattern, anchored at both
// ends so that "partner" does not also match "not-a-partner". The empty
// pattern compiles to nil: it matches anything.
func CompilePattern(p string) (*regexp.Regexp, error) {
	if p == "" {
		return nil, nil
	}
	re, err := regexp.Compile(`^(?:` + p + `)$`)
	if err != nil {
		return nil, fmt.Errorf("pattern %q: %w", p, err)
	}
	return re, nil
}

// ParseOID parses a dotted object identifier.
func ParseOID(s string) (asn1.ObjectIdentifier, error) {
	parts := strings.Split(strings.TrimSpace(s), ".")
	if len(parts) < 2 {
		return nil, fmt.Errorf("%q is not a dotted OID", s)
	}
	oid := make(asn1.ObjectIdentifier, len(parts))
	for i, part := range parts {
		n, err := strconv.Atoi(part)
		if err != nil || n < 0 || (i == 0 && n > 2) {
			return nil, fmt.Errorf("%q is not a dotted OID", s)
		}
		oid[i] = n
	}
	return oid, nil
}

// ParsePrefix parses a CIDR prefix; a bare address is a one-address prefix.
func ParsePrefix(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is neither a CIDR prefix nor an address", s)
		}
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	pfx, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not a CIDR prefix", s)
	}
	if pfx != pfx.Masked() {
		return netip.Prefix{}, fmt.Errorf("%q has host bits set (did you mean %s?)", s, pfx.Masked())
	}
	return pfx, nil
}

type problems struct{ list []string }

func (p *problems) add(format string, args ...any) {
	p.list = append(p.list, fmt.Sprintf(format, args...))
}

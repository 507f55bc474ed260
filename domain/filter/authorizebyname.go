package filter

import (
	"crypto/x509"
	"fmt"
	"regexp"

	"github.com/chronolog/chronolog/domain/rfc3161"
)

// NameRule admits a client whose names match. Every non-nil pattern must
// match; a rule with neither pattern admits every client that reaches it.
// Patterns are Go regular expressions and, like them, unanchored: write
// ^…$ to match a whole name.
type NameRule struct {
	// Subject is matched against the certificate's subject DN, in the form
	// of pkix.Name.String (for example "CN=billing,O=Example").
	Subject *regexp.Regexp
	// SAN is matched against each subject alternative name: DNS names,
	// e-mail addresses, URIs and IP addresses; one match is enough.
	SAN *regexp.Regexp
}

// AuthorizeByName admits the clients an earlier authentication filter
// identified, if their names match one of the rules, in order.
//
// A client identified by an API key has no certificate; its rules are
// matched against the name the key is registered under, which stands in
// for the subject. Such a client matches only rules without a SAN pattern,
// since it has no alternative names.
type AuthorizeByName struct {
	rules []NameRule
}

// NewAuthorizeByName returns the filter for the rules.
func NewAuthorizeByName(rules []NameRule) *AuthorizeByName {
	return &AuthorizeByName{rules: rules}
}

func (*AuthorizeByName) Name() string { return "authorize-by-name" }

func (a *AuthorizeByName) Decide(r Request) Decision {
	c := r.Client
	switch {
	case c != nil && c.Certificate != nil:
		subject := c.Certificate.Subject.String()
		for i, rule := range a.rules {
			if matches(rule.Subject, subject) && (rule.SAN == nil || sanMatches(rule.SAN, c.Certificate)) {
				return Accept(fmt.Sprintf("client certificate %q matches authorization rule %d", subject, i))
			}
		}
		return Deny(rfc3161.BadRequest, TextNotAuthorized, fmt.Sprintf("client certificate %q matches no authorization rule", subject))
	case c != nil && c.Method == AuthAPIKey:
		for i, rule := range a.rules {
			if rule.SAN == nil && matches(rule.Subject, c.Name) {
				return Accept(fmt.Sprintf("API key client %q matches authorization rule %d", c.Name, i))
			}
		}
		return Deny(rfc3161.BadRequest, TextNotAuthorized, fmt.Sprintf("API key client %q matches no authorization rule", c.Name))
	}
	return Deny(rfc3161.BadRequest, TextNotAuthorized, "authorization by name needs a client authenticated by certificate")
}

func matches(re *regexp.Regexp, s string) bool { return re == nil || re.MatchString(s) }

func sanMatches(re *regexp.Regexp, c *x509.Certificate) bool {
	for _, n := range c.DNSNames {
		if re.MatchString(n) {
			return true
		}
	}
	for _, n := range c.EmailAddresses {
		if re.MatchString(n) {
			return true
		}
	}
	for _, u := range c.URIs {
		if re.MatchString(u.String()) {
			return true
		}
	}
	for _, ip := range c.IPAddresses {
		if re.MatchString(ip.String()) {
			return true
		}
	}
	return false
}

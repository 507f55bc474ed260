package tsa

import (
	"context"
	"regexp"

	"github.com/chronolog/chronolog/domain/events"
	"github.com/chronolog/chronolog/domain/filter"
)

// Protocols a request can speak.
const (
	ProtocolRFC3161      = "rfc3161"
	ProtocolAuthenticode = events.ProtocolAuthenticode
)

// RouteParams are what a policy map matches a request on: the context of
// the request, known before any filter runs.
type RouteParams struct {
	Path string
	// Policy is the requested policy OID, "" when the request names none.
	Policy string
	// Client is the subject DN of the TLS client certificate presented,
	// "" without one. It is not yet verified: the chain's tls-client-cert
	// filter does that.
	Client   string
	Source   string
	Protocol string
}

// Rule is one line of a policy map: a request whose every set pattern
// matches goes to Chain.
type Rule struct {
	Name                                   string
	Path, Policy, Client, Source, Protocol *regexp.Regexp
	// Chain names the filter chain (for the record); Filters are its
	// filters, run after the service's own hash and policy checks.
	Chain   string
	Filters filter.Chain
	// Upstream, when set, answers requests that pass the chain: the
	// service forwards them instead of signing (proxy mode).
	Upstream Upstream
}

func (r *Rule) matches(p *RouteParams) bool {
	return match(r.Path, p.Path) && match(r.Policy, p.Policy) && match(r.Client, p.Client) &&
		match(r.Source, p.Source) && match(r.Protocol, p.Protocol)
}

func match(re *regexp.Regexp, s string) bool { return re == nil || re.MatchString(s) }

// Upstream is another TSA a proxy service forwards requests to.
type Upstream interface {
	// URL names the upstream in the record.
	URL() string
	// Forward sends a DER TimeStampReq and returns the status code and
	// body of the upstream's answer as received (200 for a TimeStampResp).
	Forward(ctx context.Context, query []byte) (status int, body []byte, err error)
}

// route is a rule prepared for one protocol: its full chain computed once.
type route struct {
	rule  *Rule
	chain filter.Chain
}

func prepareRoutes(rules []Rule, base filter.Chain) (tsp, authenticode []route) {
	for i := range rules {
		r := &rules[i]
		full := append(append(filter.Chain{}, base...), r.Filters...)
		tsp = append(tsp, route{rule: r, chain: full})
		var ac filter.Chain
		for _, f := range r.Filters {
			// An Authenticode request carries only the signature to
			// countersign: filters that judge a TimeStampReq do not apply.
			if !filter.JudgesQuery(f) {
				ac = append(ac, f)
			}
		}
		authenticode = append(authenticode, route{rule: r, chain: ac})
	}
	return tsp, authenticode
}

func pick(routes []route, p *RouteParams) *route {
	for i := range routes {
		if routes[i].rule.matches(p) {
			return &routes[i]
		}
	}
	return nil
}

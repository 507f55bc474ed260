// Package filter holds the checks a timestamp service runs on a parsed
// request before it signs. Each filter is a pure decision; the service
// records every decision it asked for as a FilterDecided event, so an
// auditor can see not only what was refused but why each request passed.
//
// Filters run in a chain, in the order the configuration gives. The
// authentication filters establish who the client is (Identity); the
// authorization filters after them decide on that identity; the identity
// ends up on the request's events, where billing counts it.
package filter

import (
	"crypto/x509"
	"net/netip"
	"time"

	"github.com/chronolog/chronolog/domain/rfc3161"
)

// Request is what a filter may look at.
type Request struct {
	Query *rfc3161.TimeStampReq
	// Path is the URL path the request arrived on.
	Path string
	// Source is the client's network address as the transport saw it
	// (host:port); SourceIP is its address, invalid when unknown.
	Source   string
	SourceIP netip.Addr
	// BodySize is the size of the request body in bytes.
	BodySize int64
	// At is when the request was received: the time filters judge by
	// (rate limits, certificate validity).
	At time.Time
	// PeerCertificates is the TLS client's chain as presented, leaf first;
	// empty without TLS or without a client certificate. The transport
	// may or may not have verified it; the tls-client-cert filter does.
	PeerCertificates []*x509.Certificate
	// Bearer is the credential of an "Authorization: Bearer" header. It is
	// a secret: no filter puts it in a reason.
	Bearer string
	// Client is the identity established by the filters run so far; nil
	// until an authentication filter accepts.
	Client *Identity
}

// Authentication methods an Identity can carry.
const (
	AuthTLSClientCert = "tls-client-cert"
	AuthAPIKey        = "api-key"
)

// Identity is who the client was shown to be.
type Identity struct {
	// Name is what billing and the record call the client: the subject
	// DN of a client certificate, or the name an API key is registered under.
	Name string
	// Method is how it was established (AuthTLSClientCert, AuthAPIKey).
	Method string
	// Certificate is the verified client certificate, for authorization by
	// name; nil for other methods.
	Certificate *x509.Certificate
}

// Decision is a filter's verdict. A zero FailInfo with Accepted false is
// not a valid decision; use Accept or Deny.
type Decision struct {
	Accepted bool
	// Reason is the cause, for the record; it never reaches the client.
	Reason   string
	FailInfo rfc3161.FailInfo
	// Text, on a denial, is the fixed statusString the client reads
	// (FailInfo's own text when empty).
	Text string
	// Identity, on an accepting decision, is the client identity this
	// filter established; later filters see it as Request.Client.
	Identity *Identity
	// ForceCertReq, on an accepting decision, makes the token carry the
	// TSA certificate whatever the request's certReq says.
	ForceCertReq bool
}

// Accept returns an accepting decision with an explanation for the record.
func Accept(reason string) Decision { return Decision{Accepted: true, Reason: reason} }

// Deny returns a refusing decision that answers the client with f and
// text, a fixed phrase ("" for f's own text); reason, which may name the
// client, its address or an error, goes to the record only.
func Deny(f rfc3161.FailInfo, text, reason string) Decision {
	return Decision{Accepted: false, Reason: reason, FailInfo: f, Text: text}
}

// The texts a client reads when a filter denies it. Fixed phrases: what
// exactly was wrong is on the record, for the operator.
const (
	TextRateLimited        = "rate limit exceeded: retry later"
	TextClientCertRequired = "a TLS client certificate is required"
	TextClientCertRefused  = "the TLS client certificate is not accepted"
	TextNotAuthorized      = "the client is not authorized for this service"
	TextAPIKeyRequired     = "an API key is required"
	TextAPIKeyRefused      = "the API key is not accepted"
	TextAddressRefused     = "requests from this address are not accepted"
	TextNonceRequired      = "a nonce is required"
	TextNonceTooShort      = "the nonce is too short"
	TextAuthRequired       = "an authenticated client is required"
	TextRequestTooLarge    = "the request is too large"
	TextNoRoute            = "no route of this service accepts the request"
)

// Filter is one check of a chain.
type Filter interface {
	// Name is stable: it is recorded in FilterDecided events.
	Name() string
	Decide(r Request) Decision
}

// QueryFilter is implemented by the filters that judge the TimeStampReq
// itself (its hash, policy, nonce, certReq). They do not apply to a
// request without one, such as an Authenticode countersignature request.
type QueryFilter interface {
	Filter
	judgesQuery()
}

// JudgesQuery reports whether f needs a TimeStampReq to decide.
func JudgesQuery(f Filter) bool {
	_, ok := f.(QueryFilter)
	return ok
}

// Outcome is one filter's decision, named.
type Outcome struct {
	Filter string
	Decision
}

// Result is what a chain decided about one request.
type Result struct {
	// Outcomes holds every decision made, in order; a denial is last.
	Outcomes []Outcome
	// Denied points at the denial, nil when every filter accepted.
	Denied *Outcome
	// Client is the identity the chain established, nil if none did.
	Client *Identity
	// ForceCertReq is set when a filter demanded the certificate be included.
	ForceCertReq bool
}

// Chain runs filters in order and stops at the first denial.
type Chain []Filter

// Run decides r. The identity an accepting filter establishes is handed
// to the filters after it.
func (c Chain) Run(r Request) Result {
	return c.RunInto(make([]Outcome, 0, len(c)), r)
}

// RunInto is Run with the outcomes appended to dst, whose room the caller
// provides: a service runs a chain on every request.
func (c Chain) RunInto(dst []Outcome, r Request) Result {
	res := Result{Outcomes: dst[:0], Client: r.Client}
	for _, f := range c {
		r.Client = res.Client
		o := Outcome{Filter: f.Name(), Decision: f.Decide(r)}
		res.Outcomes = append(res.Outcomes, o)
		if !o.Accepted {
			res.Denied = &res.Outcomes[len(res.Outcomes)-1]
			return res
		}
		if o.Identity != nil {
			res.Client = o.Identity
		}
		if o.ForceCertReq {
			res.ForceCertReq = true
		}
	}
	return res
}

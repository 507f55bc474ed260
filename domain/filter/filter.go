// Package filter holds the checks a timestamp service runs on a parsed
// request before it signs. Each filter is a pure decision; the service
// records every decision it asked for as a FilterDecided event, so an
// auditor can see not only what was refused but why each request passed.
package filter

import (
	"github.com/chronolog/chronolog/domain/rfc3161"
)

// Request is what a filter may look at.
type Request struct {
	Query *rfc3161.TimeStampReq
	// Path is the URL path the request arrived on.
	Path string
	// Source is the client's network address.
	Source string
}

// Decision is a filter's verdict. A zero FailInfo with Accepted false is
// not a valid decision; use Accept or Deny.
type Decision struct {
	Accepted bool
	Reason   string
	FailInfo rfc3161.FailInfo
}

// Accept returns an accepting decision with an explanation for the record.
func Accept(reason string) Decision { return Decision{Accepted: true, Reason: reason} }

// Deny returns a refusing decision that answers the client with f.
func Deny(f rfc3161.FailInfo, reason string) Decision {
	return Decision{Accepted: false, Reason: reason, FailInfo: f}
}

// Filter is one check of a chain.
type Filter interface {
	// Name is stable: it is recorded in FilterDecided events.
	Name() string
	Decide(r Request) Decision
}

// Outcome is one filter's decision, named.
type Outcome struct {
	Filter string
	Decision
}

// Chain runs filters in order and stops at the first denial. It returns
// every decision made, the denial last.
type Chain []Filter

// Run decides r.
func (c Chain) Run(r Request) (outcomes []Outcome, denied *Outcome) {
	outcomes = make([]Outcome, 0, len(c))
	for _, f := range c {
		o := Outcome{Filter: f.Name(), Decision: f.Decide(r)}
		outcomes = append(outcomes, o)
		if !o.Accepted {
			return outcomes, &outcomes[len(outcomes)-1]
		}
	}
	return outcomes, nil
}

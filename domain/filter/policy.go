package filter

import (
	"encoding/asn1"
	"fmt"

	"github.com/chronolog/chronolog/domain/rfc3161"
)

// PolicyAcceptance admits requests that ask for no policy or for one the
// service accepts.
type PolicyAcceptance struct {
	accepted []asn1.ObjectIdentifier
}

// NewPolicyAcceptance returns the filter for the accepted policies.
func NewPolicyAcceptance(accepted []asn1.ObjectIdentifier) *PolicyAcceptance {
	return &PolicyAcceptance{accepted: accepted}
}

func (*PolicyAcceptance) judgesQuery() {}

func (*PolicyAcceptance) Name() string { return "policy" }

func (p *PolicyAcceptance) Decide(r Request) Decision {
	want := r.Query.ReqPolicy
	if want == nil {
		return Accept("no policy requested: the service default applies")
	}
	for _, a := range p.accepted {
		if a.Equal(want) {
			return Accept("policy " + want.String() + " is accepted")
		}
	}
	return Deny(rfc3161.UnacceptedPolicy, "", fmt.Sprintf("policy %s is not accepted by this service", want))
}

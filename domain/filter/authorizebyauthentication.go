package filter

import (
	"fmt"

	"github.com/chronolog/chronolog/domain/rfc3161"
)

// AuthorizeByAuthentication admits any client an earlier filter
// authenticated: for services where being known is enough, and billing
// only needs to know whom to charge.
type AuthorizeByAuthentication struct{}

// NewAuthorizeByAuthentication returns the filter.
func NewAuthorizeByAuthentication() *AuthorizeByAuthentication {
	return &AuthorizeByAuthentication{}
}

func (*AuthorizeByAuthentication) Name() string { return "authorize-by-authentication" }

func (*AuthorizeByAuthentication) Decide(r Request) Decision {
	if r.Client == nil {
		return Deny(rfc3161.BadRequest, TextAuthRequired, "no authenticated client")
	}
	return Accept(fmt.Sprintf("client %q authenticated by %s", r.Client.Name, r.Client.Method))
}

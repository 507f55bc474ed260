package filter

import (
	"fmt"
	"strconv"

	"github.com/chronolog/chronolog/domain/rfc3161"
)

// NonceRequired admits only requests that carry a nonce. Without one a
// client cannot tell its own token from a replayed one, so a service that
// promises freshness asks for it.
type NonceRequired struct {
	minBytes int
	// accepted is the record's reason for admitting a request; the nonce
	// itself is recorded with the request.
	accepted string
}

// NewNonceRequired returns the filter. minBytes > 0 also demands that many
// content octets, since a one-octet nonce repeats every 256 requests;
// minBytes <= 0 only demands that a nonce be present.
func NewNonceRequired(minBytes int) *NonceRequired {
	accepted := "nonce present"
	if minBytes > 0 {
		accepted = "nonce of at least " + strconv.Itoa(minBytes) + " octets present"
	}
	return &NonceRequired{minBytes: minBytes, accepted: accepted}
}

func (*NonceRequired) judgesQuery() {}

func (*NonceRequired) Name() string { return "nonce-required" }

func (n *NonceRequired) Decide(r Request) Decision {
	if r.Query == nil || r.Query.Nonce == nil {
		return Deny(rfc3161.BadRequest, TextNonceRequired, "the request carries no nonce and this service requires one")
	}
	got := len(r.Query.Nonce)
	if n.minBytes > 0 && got < n.minBytes {
		return Deny(rfc3161.BadRequest, TextNonceTooShort, fmt.Sprintf("the nonce is %d octets; this service requires at least %d", got, n.minBytes))
	}
	return Accept(n.accepted)
}

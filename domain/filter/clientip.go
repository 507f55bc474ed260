package filter

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/chronolog/chronolog/domain/rfc3161"
)

// ClientIP admits or refuses a request by the client's address. The deny
// list wins over the allow list, so a broad allowance can carve out
// exceptions; a non-empty allow list admits only what it names.
type ClientIP struct {
	allow, deny []netip.Prefix
	// allowedBy[i] is the record's reason for admitting an address in
	// allow[i], made once (the address is recorded with the request).
	allowedBy []string
}

// NewClientIP returns the filter. A filter with both lists empty would
// admit everyone while looking like access control, so it is an error.
// Prefixes are masked, and IPv4-mapped IPv6 prefixes (::ffff:a.b.c.d/n,
// n >= 96) become the IPv4 prefixes they cover, because addresses are
// unmapped before they are matched.
func NewClientIP(allow, deny []netip.Prefix) (*ClientIP, error) {
	if len(allow) == 0 && len(deny) == 0 {
		return nil, errors.New("client-ip: both the allow and the deny list are empty")
	}
	a, err := normalizePrefixes("allow", allow)
	if err != nil {
		return nil, err
	}
	d, err := normalizePrefixes("deny", deny)
	if err != nil {
		return nil, err
	}
	c := &ClientIP{allow: a, deny: d, allowedBy: make([]string, len(a))}
	for i, p := range a {
		c.allowedBy[i] = "client address in allowed prefix " + p.String()
	}
	return c, nil
}

func normalizePrefixes(list string, ps []netip.Prefix) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, len(ps))
	for i, p := range ps {
		if !p.IsValid() {
			return nil, fmt.Errorf("client-ip: %s list entry %d is not a valid prefix", list, i)
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		out[i] = p.Masked()
	}
	return out, nil
}

func (*ClientIP) Name() string { return "client-ip" }

func (c *ClientIP) Decide(r Request) Decision {
	if !r.SourceIP.IsValid() {
		return Deny(rfc3161.BadRequest, TextAddressRefused, "client address unknown")
	}
	// A dual-stack listener reports IPv4 clients as ::ffff:a.b.c.d, which
	// no IPv4 prefix contains; a zone would make Contains fail outright.
	addr := r.SourceIP.Unmap().WithZone("")
	for _, p := range c.deny {
		if p.Contains(addr) {
			return Deny(rfc3161.BadRequest, TextAddressRefused, addrReason(addr, " is in denied prefix ", p))
		}
	}
	if len(c.allow) == 0 {
		return Accept("client address in no denied prefix")
	}
	for i, p := range c.allow {
		if p.Contains(addr) {
			return Accept(c.allowedBy[i])
		}
	}
	return Deny(rfc3161.BadRequest, TextAddressRefused, addrReason(addr, " is in no allowed prefix", netip.Prefix{}))
}

// addrReason writes "client address <addr><verdict>[<prefix>]" in one
// allocation, for a denial's record.
func addrReason(addr netip.Addr, verdict string, p netip.Prefix) string {
	b := make([]byte, 0, 96)
	b = append(b, "client address "...)
	b = addr.AppendTo(b)
	b = append(b, verdict...)
	if p.IsValid() {
		b = p.AppendTo(b)
	}
	return string(b)
}

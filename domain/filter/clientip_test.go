package filter

import (
	"net/netip"
	"testing"

	"github.com/chronolog/chronolog/domain/rfc3161"
)

func prefixes(s ...string) []netip.Prefix {
	ps := make([]netip.Prefix, len(s))
	for i, p := range s {
		ps[i] = netip.MustParsePrefix(p)
	}
	return ps
}

func TestClientIP(t *testing.T) {
	office := prefixes("10.0.0.0/8", "2001:db8::/32")
	guests := prefixes("10.66.0.0/16", "2001:db8:bad::/48")
	tests := []struct {
		name        string
		allow, deny []netip.Prefix
		ip          string
		want        verdict
	}{
		{"allowed", office, nil, "10.1.2.3", accepts("in allowed prefix 10.0.0.0/8")},
		{"allowed v6", office, nil, "2001:db8::1", accepts("allowed prefix 2001:db8::/32")},
		{"not allowed", office, nil, "192.0.2.1", denies(rfc3161.BadRequest, "192.0.2.1 is in no allowed prefix")},
		{"mapped address is unmapped", office, nil, "::ffff:10.1.2.3", accepts("in allowed prefix 10.0.0.0/8")},
		{"zone is ignored", office, nil, "2001:db8::1%eth0", accepts("allowed prefix 2001:db8::/32")},
		{"deny wins", office, guests, "10.66.1.1", denies(rfc3161.BadRequest, "10.66.1.1 is in denied prefix 10.66.0.0/16")},
		{"deny wins v6", office, guests, "2001:db8:bad::9", denies(rfc3161.BadRequest, "denied prefix 2001:db8:bad::/48")},
		{"mapped address is denied", office, guests, "::ffff:10.66.0.1", denies(rfc3161.BadRequest, "denied prefix 10.66.0.0/16")},
		{"allowed around the hole", office, guests, "10.67.0.1", accepts("allowed prefix 10.0.0.0/8")},
		{"deny only: others pass", nil, guests, "192.0.2.1", accepts("no denied prefix")},
		{"deny only: denied", nil, guests, "10.66.0.1", denies(rfc3161.BadRequest, "denied prefix 10.66.0.0/16")},
		{"mapped prefix in the list", prefixes("::ffff:192.0.2.0/120"), nil, "192.0.2.9", accepts("allowed prefix 192.0.2.0/24")},
		{"unmasked prefix in the list", prefixes("192.0.2.77/24"), nil, "192.0.2.9", accepts("allowed prefix 192.0.2.0/24")},
		{"unknown address, allow list", office, nil, "", denies(rfc3161.BadRequest, "client address unknown")},
		{"unknown address, deny list", nil, guests, "", denies(rfc3161.BadRequest, "client address unknown")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := NewClientIP(tt.allow, tt.deny)
			if err != nil {
				t.Fatal(err)
			}
			if f.Name() != "client-ip" {
				t.Fatal(f.Name())
			}
			var ip netip.Addr
			if tt.ip != "" {
				ip = netip.MustParseAddr(tt.ip)
			}
			check(t, f.Decide(Request{SourceIP: ip, Source: "somewhere:1234"}), tt.want)
		})
	}
}

func TestClientIPConfiguration(t *testing.T) {
	tests := []struct {
		name        string
		allow, deny []netip.Prefix
	}{
		{"both empty", nil, nil},
		{"invalid allow", []netip.Prefix{{}}, nil},
		{"invalid deny", nil, []netip.Prefix{{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewClientIP(tt.allow, tt.deny); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

package hostport

import "testing"

func TestNormalize(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"pool.ntp.org", "pool.ntp.org:123", true},
		{"192.0.2.1:1123", "192.0.2.1:1123", true},
		{"2001:db8::1", "[2001:db8::1]:123", true},
		{"[2001:db8::1]", "[2001:db8::1]:123", true},
		{"[2001:db8::1]:5", "[2001:db8::1]:5", true},
		{"", "", false},
		{"[2001:db8::1", "", false},
		{"host:ntp", "", false},
		{"host:0", "", false},
		{"host:70000", "", false},
		{"a b", "", false},
		{"2001:db8::zz", "", false},
		{":123", "", false},
	} {
		got, err := Normalize(tc.in, 123)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("Normalize(%q) = %q, %v; want %q, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

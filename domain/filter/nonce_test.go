package filter

import (
	"testing"

	"github.com/chronolog/chronolog/domain/rfc3161"
)

func TestNonceRequired(t *testing.T) {
	eight := []byte{0x00, 0x9c, 1, 2, 3, 4, 5, 6}
	tests := []struct {
		name     string
		minBytes int
		q        *rfc3161.TimeStampReq
		want     verdict
	}{
		{"no nonce", 0, query(nil, false), denies(rfc3161.BadRequest, "no nonce")},
		{"no nonce, length asked", 8, query(nil, false), denies(rfc3161.BadRequest, "no nonce")},
		{"no query", 0, nil, denies(rfc3161.BadRequest, "no nonce")},
		{"any nonce will do", 0, query([]byte{1}, false), accepts("nonce present")},
		{"negative minimum means any", -3, query([]byte{1}, false), accepts("nonce present")},
		{"too short", 8, query(eight[:7], false), denies(rfc3161.BadRequest, "7 octets; this service requires at least 8")},
		{"long enough, sign octet counts", 8, query(eight, false), accepts("at least 8 octets")},
		{"longer", 4, query(eight, false), accepts("at least 4 octets")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := NewNonceRequired(tt.minBytes)
			if f.Name() != "nonce-required" {
				t.Fatal(f.Name())
			}
			check(t, f.Decide(Request{Query: tt.q}), tt.want)
		})
	}
}

package filter

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/chronolog/chronolog/domain/rfc3161"
)

const (
	billingToken = "tsa_7hG3kQ9wPz2mX4vB8nR1yT6cL0sD5fJ"
	auditToken   = "tsa_Wq8eR2tY6uI0oP4aS9dF3gH7jK1lZ5x"
)

func apiKey(name, token string) APIKey {
	return APIKey{Name: name, SHA256: sha256.Sum256([]byte(token))}
}

func hashHex(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

func TestAPIKeys(t *testing.T) {
	f, err := NewAPIKeys([]APIKey{apiKey("billing", billingToken), apiKey("audit", auditToken)})
	if err != nil {
		t.Fatal(err)
	}
	if f.Name() != "api-key" {
		t.Fatal(f.Name())
	}
	tests := []struct {
		name     string
		bearer   string
		want     verdict
		identity string
	}{
		{"billing", billingToken, accepts(`"billing"`), "billing"},
		{"audit", auditToken, accepts(`"audit"`), "audit"},
		{"none", "", denies(rfc3161.BadRequest, "no API key presented"), ""},
		{"unknown", "tsa_guess", denies(rfc3161.BadRequest, "API key not recognised"), ""},
		{"prefix of a key", billingToken[:20], denies(rfc3161.BadRequest, "API key not recognised"), ""},
		{"hash sent as key", "sha256:" + hashHex(billingToken), denies(rfc3161.BadRequest, "not recognised"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := f.Decide(Request{Bearer: tt.bearer})
			check(t, d, tt.want)
			if tt.bearer != "" && strings.Contains(d.Reason, tt.bearer) {
				t.Fatalf("the reason %q gives the key away", d.Reason)
			}
			if strings.Contains(d.Reason, hashHex(tt.bearer)[:8]) {
				t.Fatalf("the reason %q shows the key's hash", d.Reason)
			}
			if tt.identity == "" {
				return
			}
			if d.Identity == nil || d.Identity.Name != tt.identity || d.Identity.Method != AuthAPIKey || d.Identity.Certificate != nil {
				t.Fatalf("identity %+v, want %s by %s", d.Identity, tt.identity, AuthAPIKey)
			}
		})
	}
}

func TestAPIKeysConfiguration(t *testing.T) {
	tests := []struct {
		name string
		keys []APIKey
	}{
		{"none", nil},
		{"empty name", []APIKey{apiKey("", billingToken)}},
		{"no hash", []APIKey{{Name: "billing"}}},
		{"duplicate name", []APIKey{apiKey("billing", billingToken), apiKey("billing", auditToken)}},
		{"duplicate hash", []APIKey{apiKey("billing", billingToken), apiKey("audit", billingToken)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewAPIKeys(tt.keys)
			if err == nil {
				t.Fatal("accepted")
			}
			if strings.Contains(err.Error(), billingToken) {
				t.Fatalf("error %q gives the key away", err)
			}
		})
	}
}

func TestParseAPIKeyHash(t *testing.T) {
	sum := sha256.Sum256([]byte(billingToken))
	digits := hex.EncodeToString(sum[:])
	tests := []struct {
		name string
		s    string
		ok   bool
	}{
		{"lower case", "sha256:" + digits, true},
		{"upper case", "sha256:" + strings.ToUpper(digits), true},
		{"no prefix", digits, false},
		{"other algorithm", "sha512:" + digits, false},
		{"short", "sha256:" + digits[:62], false},
		{"long", "sha256:" + digits + "00", false},
		{"not hex", "sha256:" + digits[:63] + "g", false},
		{"the token itself", billingToken, false},
		{"empty", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := ParseAPIKeyHash(tt.s)
			switch {
			case tt.ok && (err != nil || h != sum):
				t.Fatalf("%x, %v", h, err)
			case !tt.ok && err == nil:
				t.Fatalf("accepted as %x", h)
			case !tt.ok && tt.s != "" && strings.Contains(err.Error(), tt.s):
				t.Fatalf("error %q repeats the input", err)
			}
		})
	}
}

package filter

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unsafe"

	"github.com/chronolog/chronolog/domain/rfc3161"
)

// APIKey is a registered bearer token. Only the SHA-256 of the token is
// kept, so a leaked configuration or memory dump does not hand out keys;
// the token being high-entropy, no salt or slow hash is needed.
type APIKey struct {
	// Name identifies the client to billing and in the record.
	Name   string
	SHA256 [32]byte
}

// APIKeys authenticates the client by an "Authorization: Bearer" token
// and establishes an Identity named as the key is registered.
type APIKeys struct {
	byHash map[[32]byte]registeredKey
}

// registeredKey is a key with what admitting it records, made once: the
// filter runs on every request.
type registeredKey struct {
	APIKey
	reason   string
	identity *Identity
}

// NewAPIKeys returns the filter for the keys. Names must be present and
// unique, since billing tells clients apart by them; hashes must be unique
// and set, since one token cannot stand for two clients.
func NewAPIKeys(keys []APIKey) (*APIKeys, error) {
	if len(keys) == 0 {
		return nil, errors.New("api-key: no keys registered")
	}
	byHash := make(map[[32]byte]registeredKey, len(keys))
	names := make(map[string]bool, len(keys))
	for i, k := range keys {
		switch {
		case k.Name == "":
			return nil, fmt.Errorf("api-key: key %d has no name", i)
		case names[k.Name]:
			return nil, fmt.Errorf("api-key: name %q is registered twice", k.Name)
		case k.SHA256 == [32]byte{}:
			return nil, fmt.Errorf("api-key: key %q has no hash", k.Name)
		}
		if other, ok := byHash[k.SHA256]; ok {
			return nil, fmt.Errorf("api-key: keys %q and %q have the same hash", other.Name, k.Name)
		}
		names[k.Name] = true
		byHash[k.SHA256] = registeredKey{APIKey: k, reason: "API key registered as " + strconv.Quote(k.Name),
			identity: &Identity{Name: k.Name, Method: AuthAPIKey}}
	}
	return &APIKeys{byHash: byHash}, nil
}

func (*APIKeys) Name() string { return "api-key" }

func (k *APIKeys) Decide(r Request) Decision {
	if r.Bearer == "" {
		return Deny(rfc3161.BadRequest, TextAPIKeyRequired, "no API key presented")
	}
	// The digest reads the token where it is: a []byte conversion would
	// copy it on every request.
	sum := sha256.Sum256(unsafe.Slice(unsafe.StringData(r.Bearer), len(r.Bearer)))
	// The lookup's timing depends only on the token's digest, which an
	// attacker cannot steer byte by byte; the constant-time comparison
	// keeps the check that admits from depending on it either.
	key, ok := k.byHash[sum]
	if !ok || subtle.ConstantTimeCompare(key.SHA256[:], sum[:]) != 1 {
		return Deny(rfc3161.BadRequest, TextAPIKeyRefused, "API key not recognised")
	}
	d := Accept(key.reason)
	// Shared by every request of the key: identities are never changed.
	d.Identity = key.identity
	return d
}

// ParseAPIKeyHash parses a key hash as configuration writes it:
// "sha256:" and 64 hexadecimal digits. The error never repeats the input,
// in case a token was pasted where its hash belongs.
func ParseAPIKeyHash(s string) ([32]byte, error) {
	var h [32]byte
	digits, ok := strings.CutPrefix(s, "sha256:")
	if !ok {
		return h, errors.New(`API key hash does not start with "sha256:"`)
	}
	if len(digits) != hex.EncodedLen(len(h)) {
		return h, fmt.Errorf("API key hash has %d hexadecimal digits, want %d", len(digits), hex.EncodedLen(len(h)))
	}
	if _, err := hex.Decode(h[:], []byte(digits)); err != nil {
		return [32]byte{}, errors.New("API key hash is not hexadecimal")
	}
	return h, nil
}

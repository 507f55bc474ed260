package filter

import (
	"fmt"
	"strings"

	"github.com/chronolog/chronolog/domain/rfc3161"
)

// HashAllowList admits only the listed message-imprint hash algorithms.
// SHA-1 is in the parser's catalog but is admitted only where a service
// lists it, since collisions make a SHA-1 imprint weak evidence.
type HashAllowList struct {
	allowed []rfc3161.HashAlgorithm
	// reasons[i] is the record's reason for admitting allowed[i], made
	// once: the filter runs on every request.
	reasons []string
	names   string
}

// NewHashAllowList returns the filter for the given algorithms.
func NewHashAllowList(allowed []rfc3161.HashAlgorithm) *HashAllowList {
	names := make([]string, len(allowed))
	reasons := make([]string, len(allowed))
	for i, a := range allowed {
		names[i], reasons[i] = a.Name, a.Name+" is allowed"
	}
	return &HashAllowList{allowed: allowed, reasons: reasons, names: strings.Join(names, ", ")}
}

func (*HashAllowList) judgesQuery() {}

func (*HashAllowList) Name() string { return "hash-allow-list" }

func (h *HashAllowList) Decide(r Request) Decision {
	alg := r.Query.MessageImprint.Algorithm
	for i, a := range h.allowed {
		if a.OID.Equal(alg.OID) {
			return Accept(h.reasons[i])
		}
	}
	return Deny(rfc3161.BadAlg, "", fmt.Sprintf("%s is not allowed here (allowed: %s)", alg.Name, h.names))
}

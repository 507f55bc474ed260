package renewal

import "time"

// Uses of an algorithm by a timestamp service.
const (
	UseHash      = "hash"
	UseSignature = "signature"
)

// Ended is an algorithm a service is configured with that the catalogue
// dates as ended: every token made with it is due for renewal the moment
// it is made.
type Ended struct {
	Use, Algorithm string
	// LastValid is the last instant the catalogue holds it valid.
	LastValid time.Time
}

// EndedAt lists, among the message-imprint hashes a service accepts and
// the signature its key makes, those whose end the catalogue dates before
// at. Algorithms the catalogue does not date are not listed: the renewal
// rule judges their tokens due at once, but nothing says they ended.
func (c *Catalog) EndedAt(at time.Time, hashes []string, keyType string) []Ended {
	var out []Ended
	for _, h := range hashes {
		if until, ok := c.HashValidUntil(h); ok && until.Before(at) {
			out = append(out, Ended{Use: UseHash, Algorithm: h, LastValid: until})
		}
	}
	if until, ok := c.SignatureValidUntil(keyType); ok && until.Before(at) {
		out = append(out, Ended{Use: UseSignature, Algorithm: keyType, LastValid: until})
	}
	return out
}

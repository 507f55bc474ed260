package filter

import (
	"fmt"
	"strconv"

	"github.com/chronolog/chronolog/domain/rfc3161"
)

// RequestSize refuses request bodies over a size. A TimeStampReq is a few
// hundred bytes; anything much larger is a mistake or an attempt to make
// the service parse and record garbage.
type RequestSize struct {
	max int64
	// accepted is the record's reason for admitting a body; its size is
	// recorded with the request.
	accepted string
}

// NewRequestSize returns the filter admitting bodies of at most max bytes.
func NewRequestSize(max int64) *RequestSize {
	return &RequestSize{max: max, accepted: "request body within the limit of " + strconv.FormatInt(max, 10) + " bytes"}
}

func (*RequestSize) Name() string { return "request-size" }

func (s *RequestSize) Decide(r Request) Decision {
	if r.BodySize > s.max {
		return Deny(rfc3161.BadRequest, TextRequestTooLarge, fmt.Sprintf("the request body is %d bytes, over this service's limit of %d", r.BodySize, s.max))
	}
	return Accept(s.accepted)
}

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
	max     int64
	maxText string
}

// NewRequestSize returns the filter admitting bodies of at most max bytes.
func NewRequestSize(max int64) *RequestSize {
	return &RequestSize{max: max, maxText: strconv.FormatInt(max, 10)}
}

func (*RequestSize) Name() string { return "request-size" }

func (s *RequestSize) Decide(r Request) Decision {
	if r.BodySize > s.max {
		return Deny(rfc3161.BadRequest, TextRequestTooLarge, fmt.Sprintf("the request body is %d bytes, over this service's limit of %d", r.BodySize, s.max))
	}
	return Accept("request body of " + strconv.FormatInt(r.BodySize, 10) + " bytes is within the limit of " + s.maxText)
}

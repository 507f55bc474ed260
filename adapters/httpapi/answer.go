package httpapi

import (
	"net/http"

	"github.com/chronolog/chronolog/domain/authenticode"
	"github.com/chronolog/chronolog/domain/rfc3161"
	"github.com/chronolog/chronolog/domain/tsa"
)

const textPlain = "text/plain; charset=utf-8"

// httpAnswer is an outcome as HTTP sends it.
type httpAnswer struct {
	status      int
	contentType string
	body        []byte
}

// answer is the one place an outcome becomes an HTTP answer.
//
// Every RFC 3161 answer is 200 with a TimeStampResp, rejections included:
// real clients drop the PKIStatus of any 4xx/5xx. Authenticode has no
// status of its own, so its rejections are HTTP errors with a fixed text:
// 400 for a request that does not parse, 503 while the clock is outside
// its accuracy (clients retry), 403 for any other rejection, 500 for a
// failure. Refusals, of either protocol, have their own status.
func answer(o tsa.Outcome) httpAnswer {
	switch {
	case o.Kind == tsa.Refused:
		return httpAnswer{refusalStatus(o.Refusal), textPlain, []byte(refusalText(o.Refusal) + "\n")}
	case o.Kind == tsa.Forwarded:
		return httpAnswer{http.StatusOK, ReplyType, o.Response}
	case o.Protocol == tsa.ProtocolAuthenticode && o.Kind == tsa.Granted:
		return httpAnswer{http.StatusOK, AuthenticodeType, authenticode.EncodeResponse(o.Token)}
	case o.Protocol == tsa.ProtocolAuthenticode:
		status := http.StatusInternalServerError
		if o.Kind == tsa.Rejected {
			switch o.Rejection.FailInfo {
			case rfc3161.BadDataFormat:
				status = http.StatusBadRequest
			case rfc3161.TimeNotAvailable:
				status = http.StatusServiceUnavailable
			default:
				status = http.StatusForbidden
			}
		}
		return httpAnswer{status, textPlain, []byte(o.Rejection.ClientText() + "\n")}
	case o.Kind == tsa.Granted:
		return httpAnswer{http.StatusOK, ReplyType, rfc3161.GrantedResponse(o.Token)}
	default:
		return httpAnswer{http.StatusOK, ReplyType, rfc3161.RejectionResponse(o.Rejection)}
	}
}

func refusalStatus(r tsa.Refusal) int {
	switch r {
	case tsa.RefusedMethod:
		return http.StatusMethodNotAllowed
	case tsa.RefusedMediaType:
		return http.StatusUnsupportedMediaType
	case tsa.RefusedTooLarge:
		return http.StatusRequestEntityTooLarge
	case tsa.RefusedNoForwarding:
		return http.StatusNotImplemented
	default:
		return http.StatusBadRequest
	}
}

// refusalText is a refusal's fixed text; the cause is on the record.
func refusalText(r tsa.Refusal) string {
	switch r {
	case tsa.RefusedMethod:
		return "method not allowed: POST an " + QueryType
	case tsa.RefusedMediaType:
		return "unsupported content type: POST an " + QueryType
	case tsa.RefusedTooLarge:
		return "request body too large"
	case tsa.RefusedNoForwarding:
		return "this service forwards RFC 3161 requests only"
	default:
		return "request body could not be read"
	}
}

package httpapi

import (
	"net/http"
	"strings"
	"testing"

	"github.com/chronolog/chronolog/domain/authenticode"
	"github.com/chronolog/chronolog/domain/rfc3161"
	"github.com/chronolog/chronolog/domain/tsa"
)

// Every outcome of either protocol has one HTTP answer, and only this
// mapping knows it.
func TestAnswer(t *testing.T) {
	token := []byte{0x30, 0x03, 0x02, 0x01, 0x07}
	rej := func(f rfc3161.FailInfo) *rfc3161.Rejection {
		return &rfc3161.Rejection{FailInfo: f, Reason: "a cause for the record"}
	}
	const ac, tsp = tsa.ProtocolAuthenticode, tsa.ProtocolRFC3161
	for _, tc := range []struct {
		name        string
		o           tsa.Outcome
		status      int
		contentType string
		body        []byte // nil: a text, checked for the cause
	}{
		{"granted", tsa.Outcome{Kind: tsa.Granted, Protocol: tsp, Token: token}, 200, ReplyType, rfc3161.GrantedResponse(token)},
		{"rejected", tsa.Outcome{Kind: tsa.Rejected, Protocol: tsp, Rejection: rej(rfc3161.BadAlg)}, 200, ReplyType, rfc3161.RejectionResponse(rej(rfc3161.BadAlg))},
		{"failed", tsa.Outcome{Kind: tsa.Failed, Protocol: tsp, Rejection: rej(rfc3161.SystemFailure)}, 200, ReplyType, rfc3161.RejectionResponse(rej(rfc3161.SystemFailure))},
		{"forwarded", tsa.Outcome{Kind: tsa.Forwarded, Protocol: tsp, Response: []byte{0x30, 0}}, 200, ReplyType, []byte{0x30, 0}},
		{"authenticode granted", tsa.Outcome{Kind: tsa.Granted, Protocol: ac, Token: token}, 200, AuthenticodeType, authenticode.EncodeResponse(token)},
		{"authenticode garbage", tsa.Outcome{Kind: tsa.Rejected, Protocol: ac, Rejection: rej(rfc3161.BadDataFormat)}, 400, textPlain, nil},
		{"authenticode denied", tsa.Outcome{Kind: tsa.Rejected, Protocol: ac, Rejection: rej(rfc3161.BadRequest)}, 403, textPlain, nil},
		{"authenticode clock", tsa.Outcome{Kind: tsa.Rejected, Protocol: ac, Rejection: rej(rfc3161.TimeNotAvailable)}, 503, textPlain, nil},
		{"authenticode failed", tsa.Outcome{Kind: tsa.Failed, Protocol: ac, Rejection: rej(rfc3161.SystemFailure)}, 500, textPlain, nil},
		{"refused method", tsa.Outcome{Kind: tsa.Refused, Refusal: tsa.RefusedMethod}, 405, textPlain, nil},
		{"refused media type", tsa.Outcome{Kind: tsa.Refused, Refusal: tsa.RefusedMediaType}, 415, textPlain, nil},
		{"refused size", tsa.Outcome{Kind: tsa.Refused, Refusal: tsa.RefusedTooLarge}, 413, textPlain, nil},
		{"refused, body cut", tsa.Outcome{Kind: tsa.Refused, Refusal: tsa.RefusedIncomplete}, 400, textPlain, nil},
		{"refused forwarding", tsa.Outcome{Kind: tsa.Refused, Protocol: ac, Refusal: tsa.RefusedNoForwarding}, http.StatusNotImplemented, textPlain, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := answer(tc.o)
			if a.status != tc.status || a.contentType != tc.contentType {
				t.Fatalf("answer %d %s, want %d %s", a.status, a.contentType, tc.status, tc.contentType)
			}
			switch {
			case tc.body != nil && string(a.body) != string(tc.body):
				t.Errorf("body %x, want %x", a.body, tc.body)
			case tc.body == nil && (len(a.body) < 2 || strings.Contains(string(a.body), "cause")):
				t.Errorf("text %q: want a fixed text, without the cause", a.body)
			}
		})
	}
}

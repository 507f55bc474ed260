package tsa

import (
	"context"

	"github.com/chronolog/chronolog/domain/rfc3161"
)

// Handler is a timestamp service as a transport (HTTP, TCP) sees it: a
// *Service, or whatever stands for the service of a name across
// configuration reloads.
type Handler interface {
	Name() string
	// Handle answers a request through the whole pipeline.
	Handle(ctx context.Context, r Request) Outcome
	// Refuse records a request the transport would not take.
	Refuse(ctx context.Context, r Request, refusal Refusal, reason string) Outcome
	// Undelivered records that the answer to the request recorded under
	// serial did not reach its client.
	Undelivered(ctx context.Context, serial, reason string) error
}

var _ Handler = (*Service)(nil)

// Outcome is what a request came to, in the service's terms. Each
// transport turns it into its own wire answer in one place (an HTTP status
// and body, a TCP frame); the service knows none of them.
type Outcome struct {
	Kind Kind
	// Protocol is the protocol the request spoke: ProtocolRFC3161 or
	// ProtocolAuthenticode.
	Protocol string
	// Token, when Granted, is the token as signed and recorded: an RFC 3161
	// ContentInfo, or an Authenticode PKCS#7 SignedData.
	Token []byte
	// Response, when Forwarded, is the upstream TSA's TimeStampResp as
	// received and recorded.
	Response []byte
	// Rejection, when Rejected or Failed, is the failInfo and the fixed
	// text the client is told; its cause is on the record.
	Rejection *rfc3161.Rejection
	// Refusal, when Refused, is what was not taken.
	Refusal Refusal
	// Serial is the hex serial the request was recorded under; empty when
	// the service could not even draw one.
	Serial string
	// Recorded is false when the request's events could not be made
	// durable: the outcome is then Failed (Refused for a refusal), with
	// nothing on the record and no token.
	Recorded bool
}

// Kind is the kind of an Outcome.
type Kind uint8

const (
	// Granted: a token was issued and recorded.
	Granted Kind = iota + 1
	// Rejected: a TSP rejection with its failInfo (a malformed request, a
	// filter's denial, the clock outside its accuracy).
	Rejected
	// Refused: not taken at all (a transport refusal: method, media type,
	// size, framing), answered without a TSP status.
	Refused
	// Forwarded: passed to an upstream TSA, whose answer goes back as
	// received.
	Forwarded
	// Failed: systemFailure, no token (the signer, the store, an upstream
	// failed).
	Failed
)

func (k Kind) String() string {
	switch k {
	case Granted:
		return "granted"
	case Rejected:
		return "rejected"
	case Refused:
		return "refused"
	case Forwarded:
		return "forwarded"
	case Failed:
		return "failed"
	}
	return "unknown"
}

// Refusal names what a transport (or a service, for a protocol it does not
// speak) would not take. It is recorded as TimestampRejected.refusal; each
// transport knows how it answers each.
type Refusal string

const (
	// RefusedMethod: an HTTP method other than POST.
	RefusedMethod Refusal = "method"
	// RefusedMediaType: a content type that names no protocol the service
	// answers.
	RefusedMediaType Refusal = "media-type"
	// RefusedTooLarge: a body or frame over the size limit.
	RefusedTooLarge Refusal = "too-large"
	// RefusedIncomplete: a body or frame cut short, or unreadable.
	RefusedIncomplete Refusal = "incomplete"
	// RefusedTooSlow: a frame not received in time.
	RefusedTooSlow Refusal = "too-slow"
	// RefusedMessageType: an RFC 3161 §3.3 message other than a tsaMsg.
	RefusedMessageType Refusal = "message-type"
	// RefusedNoForwarding: an Authenticode request on a route that
	// forwards, which is done for RFC 3161 only.
	RefusedNoForwarding Refusal = "no-forwarding"
)

// unrecorded is the outcome of a request the service could not record:
// systemFailure, no token.
func unrecorded(serial, protocol string) Outcome {
	return Outcome{Kind: Failed, Protocol: protocol, Serial: serial, Rejection: &rfc3161.Rejection{FailInfo: rfc3161.SystemFailure}}
}

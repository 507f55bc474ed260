package events

import "time"

// Wire names of the timestamp request events.
const (
	TypeTimestampRequested = "TimestampRequested.v1"
	// TypeFilterDecided was one check on a request; records written
	// since FilterChainDecided hold one of those per request instead.
	TypeFilterDecided      = "FilterDecided.v1"
	TypeFilterChainDecided = "FilterChainDecided.v1"
	TypeTimestampIssued    = "TimestampIssued.v1"
	// TypeTimestampRejected is written since the service stopped speaking
	// HTTP; records written before hold TypeTimestampRejectedV1.
	TypeTimestampRejected   = "TimestampRejected.v2"
	TypeTimestampRejectedV1 = "TimestampRejected.v1"
	// TypeTimestampUndelivered follows an outcome whose answer did not
	// reach the client.
	TypeTimestampUndelivered = "TimestampUndelivered.v1"
)

// RequestStream names the stream holding one request's events.
func RequestStream(serialHex string) string { return "tsr-" + serialHex }

// TimestampRequested records a request as it arrived, parsed or not. A body
// that could not be parsed is still recorded by its hash and size.
type TimestampRequested struct {
	// Serial is the serial number reserved for this request (hex, no 0x).
	Serial      string    `json:"serial"`
	Service     string    `json:"service"`
	Path        string    `json:"path"`
	Method      string    `json:"method"`
	ContentType string    `json:"contentType,omitempty"`
	Source      string    `json:"source"`
	ReceivedAt  time.Time `json:"receivedAt"`
	// BodySHA256 is the hex SHA-256 of the body as received (of the part
	// read, when the body exceeded the limit).
	BodySHA256 string `json:"bodySha256"`
	BodySize   int64  `json:"bodySize"`
	// Parsed is false when the body was not a valid TimeStampReq; the
	// fields below are then empty.
	Parsed        bool   `json:"parsed"`
	HashAlgorithm string `json:"hashAlgorithm,omitempty"`
	HashedMessage string `json:"hashedMessage,omitempty"`
	// Nonce is the hex of the nonce INTEGER's content octets, as sent.
	Nonce     string `json:"nonce,omitempty"`
	ReqPolicy string `json:"reqPolicy,omitempty"`
	CertReq   bool   `json:"certReq"`
	// Transport is how the request came: http, https or tcp (RFC 3161
	// §3.3); empty in events recorded before it was added (http).
	Transport string `json:"transport,omitempty"`
	// Protocol is rfc3161 or authenticode; empty means rfc3161.
	Protocol string `json:"protocol,omitempty"`
	// TLSClient is the subject DN of the TLS client certificate presented,
	// whether or not a filter went on to accept it.
	TLSClient string `json:"tlsClient,omitempty"`
}

func (TimestampRequested) EventType() string { return TypeTimestampRequested }

// Verdicts of a filter.
const (
	VerdictAccepted = "accepted"
	VerdictRejected = "rejected"
)

// FilterChainDecided records every check made on a request, in order, in
// one event: the policy-map rule that routed it and the chain that rule
// names, then each filter that ran (the service's hash allow-list and
// policy acceptance first) with its verdict. A chain stops at its first
// denial, which is then the last decision.
type FilterChainDecided struct {
	Serial string `json:"serial"`
	// Rule and Chain name the route; both are empty when no rule of the
	// policy map admitted the request, and the one decision is then the
	// policy map's own rejection.
	Rule      string           `json:"rule,omitempty"`
	Chain     string           `json:"chain,omitempty"`
	Decisions []FilterDecision `json:"decisions"`
}

func (FilterChainDecided) EventType() string { return TypeFilterChainDecided }

// FilterDecision is one filter's verdict in a FilterChainDecided.
type FilterDecision struct {
	Filter  string `json:"filter"`
	Verdict string `json:"verdict"`
	Reason  string `json:"reason,omitempty"`
	// FailInfo names the RFC 3161 failure bit when Verdict is rejected.
	FailInfo string `json:"failInfo,omitempty"`
}

// FilterDecided records one check made on a request: how records written
// before FilterChainDecided hold a request's checks, one event each. It
// is still read, never written.
type FilterDecided struct {
	Serial  string `json:"serial"`
	Filter  string `json:"filter"`
	Verdict string `json:"verdict"`
	Reason  string `json:"reason,omitempty"`
	// FailInfo names the RFC 3161 failure bit when Verdict is rejected.
	FailInfo string `json:"failInfo,omitempty"`
}

func (FilterDecided) EventType() string { return TypeFilterDecided }

// TimestampIssued records a granted token. Token is the DER ContentInfo
// exactly as sent (base64 in JSON).
type TimestampIssued struct {
	Serial  string    `json:"serial"`
	GenTime time.Time `json:"genTime"`
	Policy  string    `json:"policy"`
	// Signer is the hex SHA-256 of the TSA certificate's DER.
	Signer string `json:"signer"`
	Token  []byte `json:"token"`
	// Client and ClientAuth are the identity the filters established and
	// how (tls-client-cert, api-key); empty for an anonymous client.
	Client     string `json:"client,omitempty"`
	ClientAuth string `json:"clientAuth,omitempty"`
	// Protocol is authenticode for a Microsoft Authenticode countersignature
	// (Token is then its PKCS#7 SignedData and Policy the service's
	// default); empty means an RFC 3161 token.
	Protocol string `json:"protocol,omitempty"`
	// ClockSample is the id of the ClockSampled event the clock gate
	// admitted the request on, and ClockUncertaintyNs the bound it
	// guaranteed at genTime (the sample's, plus the drift allowed since);
	// both empty when the server ran with an unverified clock (the token
	// then declares no accuracy) and in events recorded before the gate.
	ClockSample        string `json:"clockSample,omitempty"`
	ClockUncertaintyNs int64  `json:"clockUncertaintyNs,omitempty"`
}

func (TimestampIssued) EventType() string { return TypeTimestampIssued }

// ProtocolAuthenticode is the Protocol of a TimestampIssued (and its
// TimestampRequested) for a Microsoft Authenticode countersignature.
const ProtocolAuthenticode = "authenticode"

// Statuses of a TimestampRejected.
const (
	StatusRejection = "rejection"
	StatusRefused   = "refused"
)

// TimestampRejected records a request that got no token: a TSP rejection
// (Status rejection, FailInfo set; systemFailure when the service failed)
// or a refusal (Status refused, Refusal naming what was not taken: a
// method, a media type, a size, a frame). What the client was answered
// follows from these and the request's protocol and transport, by the
// transport's one mapping.
type TimestampRejected struct {
	Serial   string `json:"serial"`
	Status   string `json:"status"`
	FailInfo string `json:"failInfo,omitempty"`
	Refusal  string `json:"refusal,omitempty"`
	Reason   string `json:"reason"`
	// Client and ClientAuth are the identity the filters established
	// before the refusal, if any.
	Client     string `json:"client,omitempty"`
	ClientAuth string `json:"clientAuth,omitempty"`
}

func (TimestampRejected) EventType() string { return TypeTimestampRejected }

// TimestampRejectedV1 is TimestampRejected as records written before v2
// hold it: with the status code of the HTTP answer instead of a refusal's
// name. It is read, never written.
type TimestampRejectedV1 struct {
	Serial   string `json:"serial"`
	Status   string `json:"status"`
	FailInfo string `json:"failInfo,omitempty"`
	Reason   string `json:"reason"`
	// AnswerStatus is the HTTP status code the answer carried (200 for a
	// TSP rejection, 405, 413, 415 … for a refusal; TCP refusals were
	// recorded under the nearest HTTP code).
	AnswerStatus int    `json:"httpStatus"`
	Client       string `json:"client,omitempty"`
	ClientAuth   string `json:"clientAuth,omitempty"`
}

func (TimestampRejectedV1) EventType() string { return TypeTimestampRejectedV1 }

// Upcast is the record as v2 writes it: the refusal named by the answer's
// status code.
func (e TimestampRejectedV1) Upcast() Event {
	r := TimestampRejected{Serial: e.Serial, Status: e.Status, FailInfo: e.FailInfo, Reason: e.Reason, Client: e.Client, ClientAuth: e.ClientAuth}
	if e.Status == StatusRefused {
		switch e.AnswerStatus {
		case 405:
			r.Refusal = "method"
		case 415:
			r.Refusal = "media-type"
		case 413:
			r.Refusal = "too-large"
		case 408:
			r.Refusal = "too-slow"
		case 501:
			r.Refusal = "no-forwarding"
		default:
			r.Refusal = "incomplete"
		}
	}
	return r
}

// TimestampUndelivered records that the answer to a recorded request did
// not reach its client: the client closed its connection before the answer
// was written, or writing it failed. It is appended to the request's
// stream after its outcome, which it does not change: a token issued stays
// issued. Only what the server saw is recorded; its absence proves no
// delivery.
type TimestampUndelivered struct {
	Serial string `json:"serial"`
	Reason string `json:"reason"`
}

func (TimestampUndelivered) EventType() string { return TypeTimestampUndelivered }

// TypeTimestampForwarded is the wire name of TimestampForwarded.
const TypeTimestampForwarded = "TimestampForwarded.v1"

// TimestampForwarded records a request a proxy service passed to an
// upstream TSA, and the upstream's answer exactly as received.
type TimestampForwarded struct {
	Serial   string `json:"serial"`
	Upstream string `json:"upstream"`
	// UpstreamStatus is the status code of the upstream's HTTP answer.
	UpstreamStatus int `json:"httpStatus"`
	// Status is the PKIStatus of the upstream's TimeStampResp (granted,
	// grantedWithMods, rejection, ...), FailInfo its failure bit if any.
	Status   string `json:"status"`
	FailInfo string `json:"failInfo,omitempty"`
	// Response is the upstream's TimeStampResp DER (base64 in JSON).
	Response []byte `json:"response"`
	// Client and ClientAuth are the identity the filters established.
	Client     string `json:"client,omitempty"`
	ClientAuth string `json:"clientAuth,omitempty"`
}

func (TimestampForwarded) EventType() string { return TypeTimestampForwarded }

package tsa

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/big"
	"time"

	"github.com/chronolog/chronolog/domain/events"
	"github.com/chronolog/chronolog/domain/eventstore"
	"github.com/chronolog/chronolog/domain/filter"
	"github.com/chronolog/chronolog/domain/rfc3161"
)

// exchange gathers one request's events as they are decided; finish makes
// them durable in one append and says what the request came to.
type exchange struct {
	s        *Service
	protocol string
	serial   *big.Int
	hex      string
	stream   string
	// parts are the envelope fields every event of the request shares.
	parts *events.EnvelopeParts
	at    time.Time
	evs   []eventstore.EventData
	// client is the identity the filters established, nil if none;
	// tlsClient the subject DN of the TLS client certificate presented.
	client    *filter.Identity
	tlsClient string
	// buf holds the events' payloads one after the other: one allocation
	// for a request's events instead of one per event.
	buf []byte
	// outcomes and decisions hold the filter chain's verdicts as it runs
	// and as they are recorded, in the exchange's own memory for chains
	// of up to chainRoom filters.
	outcomes  [chainRoom]filter.Outcome
	decisions [chainRoom]events.FilterDecision
}

// chainRoom is how long a chain (the service's two checks included) may
// be before its verdicts need memory of their own.
const chainRoom = 8

func (s *Service) begin(r Request) (*exchange, error) {
	serial, err := s.p.Serials.NextSerial()
	if err != nil {
		return nil, fmt.Errorf("draw serial: %w", err)
	}
	h := serial.Text(16)
	x := &exchange{
		s:        s,
		protocol: r.protocol(),
		serial:   serial,
		hex:      h,
		stream:   events.RequestStream(h),
		at:       s.p.Clock.Now().UTC(),
		evs:      make([]eventstore.EventData, 0, s.maxEvents),
		// Formatting a DN is not free: once per request.
		tlsClient: peerSubject(r),
		buf:       make([]byte, 0, s.bufSize),
	}
	meta := events.Metadata{CorrelationID: r.CorrelationID, Node: s.cfg.Node, Service: s.cfg.Name}
	if x.parts, err = events.NewEnvelopeParts(x.stream, x.at, meta); err != nil {
		return nil, err
	}
	return x, nil
}

func (x *exchange) add(e events.Event) error {
	id := x.s.p.IDs.NewID()
	start := len(x.buf)
	buf, err := x.parts.Append(x.buf, id, e)
	if err != nil {
		return err
	}
	x.buf = buf
	// Capped, so that growing buf later never writes into this payload.
	payload := buf[start:len(buf):len(buf)]
	x.evs = append(x.evs, eventstore.EventData{ID: id, Type: e.EventType(), Payload: payload})
	return nil
}

// requested is the TimestampRequested of r, with what p parsed of it (p
// is nil when the body is not a request of its protocol).
func (x *exchange) requested(r Request, p *parsed) events.TimestampRequested {
	sum := sha256.Sum256(r.Body)
	e := events.TimestampRequested{
		Transport:   r.Transport,
		TLSClient:   x.tlsClient,
		Serial:      x.hex,
		Service:     x.s.cfg.Name,
		Path:        r.Path,
		Method:      r.Method,
		ContentType: r.ContentType,
		Source:      r.Source,
		ReceivedAt:  x.at,
		BodySHA256:  hex.EncodeToString(sum[:]),
		BodySize:    r.BodySize,
	}
	if x.protocol == ProtocolAuthenticode {
		e.Protocol = ProtocolAuthenticode
	}
	switch {
	case p == nil:
	case p.query != nil:
		q := p.query
		e.Parsed = true
		e.HashAlgorithm = q.MessageImprint.Algorithm.Name
		e.HashedMessage = hex.EncodeToString(q.MessageImprint.HashedMessage)
		if q.Nonce != nil {
			e.Nonce = hex.EncodeToString(q.Nonce)
		}
		if q.ReqPolicy != nil {
			e.ReqPolicy = q.ReqPolicy.String()
		}
		e.CertReq = q.CertReq
	case p.content != nil:
		// An Authenticode request's imprint is the SHA-256 of the
		// signature it asks to have countersigned.
		sum := sha256.Sum256(p.content)
		e.Parsed = true
		e.HashAlgorithm = rfc3161.SHA256.Name
		e.HashedMessage = hex.EncodeToString(sum[:])
	}
	return e
}

func peerSubject(r Request) string {
	if len(r.PeerCertificates) == 0 {
		return ""
	}
	return r.PeerCertificates[0].Subject.String()
}

// chainDecided records the route and every verdict of the chain, in
// order, as one event. rt is nil when no rule admitted the request.
func (x *exchange) chainDecided(rt *route, outcomes []filter.Outcome) error {
	e := events.FilterChainDecided{Serial: x.hex}
	if rt != nil {
		e.Rule, e.Chain = rt.rule.Name, rt.rule.Chain
		if e.Rule == "" {
			e.Rule = "unnamed"
		}
	}
	e.Decisions = x.decisions[:0]
	if len(outcomes) > chainRoom {
		e.Decisions = make([]events.FilterDecision, 0, len(outcomes))
	}
	for i := range outcomes {
		o := &outcomes[i]
		d := events.FilterDecision{Filter: o.Filter, Verdict: events.VerdictAccepted, Reason: o.Reason}
		if !o.Accepted {
			d.Verdict, d.FailInfo = events.VerdictRejected, o.FailInfo.String()
		}
		e.Decisions = append(e.Decisions, d)
	}
	return x.add(e)
}

func (x *exchange) outcomeRoom(n int) []filter.Outcome {
	if n <= chainRoom {
		return x.outcomes[:0]
	}
	return make([]filter.Outcome, 0, n)
}

// finish records last, the event that says what the request came to, and
// makes the request's events durable in one append, before o may leave.
// If they cannot be made durable, o is discarded (a token with it: no
// token leaves off the record) and the request failed.
func (x *exchange) finish(ctx context.Context, last events.Event, o Outcome) Outcome {
	if err := x.add(last); err != nil {
		return x.fail(ctx, err)
	}
	if _, err := x.s.p.Recorder.Append(ctx, x.stream, eventstore.NoStream, x.evs...); err != nil {
		x.s.p.Logger.Error("answer discarded: its events are not durable", "serial", x.hex, "outcome", o.Kind, "err", err)
		return x.unrecorded(o)
	}
	o.Protocol, o.Serial, o.Recorded = x.protocol, x.hex, true
	return o
}

// unrecorded is what answers o when nothing could be recorded: a refusal
// stays a refusal (it carries no token), anything else fails.
func (x *exchange) unrecorded(o Outcome) Outcome {
	if o.Kind == Refused {
		return Outcome{Kind: Refused, Refusal: o.Refusal, Protocol: x.protocol, Serial: x.hex}
	}
	return unrecorded(x.hex, x.protocol)
}

// reject records a rejection with its failInfo.
func (x *exchange) reject(ctx context.Context, rej *rfc3161.Rejection) Outcome {
	return x.finish(ctx, x.rejected(events.StatusRejection, rej.FailInfo.String(), "", rej.Reason),
		Outcome{Kind: Rejected, Rejection: rej})
}

// refuse records what was not taken.
func (x *exchange) refuse(ctx context.Context, refusal Refusal, reason string) Outcome {
	return x.finish(ctx, x.rejected(events.StatusRefused, "", refusal, reason), Outcome{Kind: Refused, Refusal: refusal})
}

// fail answers systemFailure for an internal error (a signer outage, an
// encoding fault, an upstream gone), recorded with its cause when it can
// be. The answer is the same either way: no token.
func (x *exchange) fail(ctx context.Context, cause error) Outcome {
	x.s.p.Logger.Error("timestamp request failed", "serial", x.hex, "err", cause)
	o := unrecorded(x.hex, x.protocol)
	if len(x.evs) == 0 {
		// Not even the request could be encoded: nothing to record.
		return o
	}
	e := x.rejected(events.StatusRejection, rfc3161.SystemFailure.String(), "", cause.Error())
	if err := x.add(e); err != nil {
		x.s.p.Logger.Error("system failure not recorded", "serial", x.hex, "err", err)
		return o
	}
	if _, err := x.s.p.Recorder.Append(ctx, x.stream, eventstore.NoStream, x.evs...); err != nil {
		x.s.p.Logger.Error("system failure not recorded", "serial", x.hex, "err", err)
		return o
	}
	o.Recorded = true
	return o
}

func (x *exchange) rejected(status, failInfo string, refusal Refusal, reason string) events.TimestampRejected {
	return events.TimestampRejected{
		Serial: x.hex, Status: status, FailInfo: failInfo, Refusal: string(refusal), Reason: reason,
		Client: identityName(x.client), ClientAuth: identityMethod(x.client),
	}
}

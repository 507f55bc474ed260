package tsa

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"math/big"
	"net/netip"
	"time"

	"github.com/chronolog/chronolog/domain/events"
	"github.com/chronolog/chronolog/domain/eventstore"
	"github.com/chronolog/chronolog/domain/filter"
	"github.com/chronolog/chronolog/domain/rfc3161"
)

// Request is a timestamp request as the transport received it.
type Request struct {
	Body        []byte
	Method      string
	Path        string
	ContentType string
	Source      string
	// BodySize is the size the client sent; larger than len(Body) when the
	// transport stopped reading at its limit.
	BodySize int64
	// CorrelationID ties the events to the transport's logs.
	CorrelationID string
	// Transport is http, https or tcp.
	Transport string
	// PeerCertificates is the TLS client's chain as presented, leaf first.
	PeerCertificates []*x509.Certificate
	// Bearer is the credential of an "Authorization: Bearer" header: a
	// secret, never recorded.
	Bearer string
}

// Reply is what the transport sends back.
type Reply struct {
	// HTTPStatus is 200 for every TSP answer, granted or not; a transport
	// refusal carries its own status and no Body.
	HTTPStatus int
	// Body is the DER TimeStampResp (for Authenticode, the base64 of the
	// PKCS#7 answer); ContentType is its media type.
	Body        []byte
	ContentType string
	// Serial is the hex serial the request was recorded under ("" when
	// even recording failed before a serial was drawn).
	Serial string
	// Granted is true when Body carries a token.
	Granted bool
	// Recorded is false when the events could not be made durable.
	Recorded bool
	// Outcome is what the record says the request came to, the status of
	// its last outcome event: OutcomeGranted, OutcomeRejection,
	// OutcomeRefused or OutcomeForwarded; empty when nothing was recorded.
	// Metrics count answers by it, so that they agree with the record.
	Outcome string
}

// Outcomes of a recorded request, as TimestampRejected.status and billing
// name them.
const (
	OutcomeGranted   = "granted"
	OutcomeRejection = "rejection"
	OutcomeRefused   = "refused"
	OutcomeForwarded = "forwarded"
)

// exchange gathers one request's events as they are decided.
type exchange struct {
	s      *Service
	serial *big.Int
	hex    string
	stream string
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

func (x *exchange) outcomeRoom(n int) []filter.Outcome {
	if n <= chainRoom {
		return x.outcomes[:0]
	}
	return make([]filter.Outcome, 0, n)
}

func (s *Service) begin(r Request) (*exchange, error) {
	serial, err := s.p.Serials.NextSerial()
	if err != nil {
		return nil, fmt.Errorf("draw serial: %w", err)
	}
	h := serial.Text(16)
	x := &exchange{
		s:      s,
		serial: serial,
		hex:    h,
		stream: events.RequestStream(h),
		at:     s.p.Clock.Now().UTC(),
		evs:    make([]eventstore.EventData, 0, s.maxEvents),
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

func (x *exchange) requested(r Request, q *rfc3161.TimeStampReq) error {
	return x.add(x.requestedEvent(r, q))
}

func (x *exchange) requestedEvent(r Request, q *rfc3161.TimeStampReq) events.TimestampRequested {
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
	if q != nil {
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
	}
	return e
}

func peerSubject(r Request) string {
	if len(r.PeerCertificates) == 0 {
		return ""
	}
	return r.PeerCertificates[0].Subject.String()
}

// commit makes the events durable. The transport bounds the wait through
// ctx's deadline; an append that misses it is an error like any other.
func (x *exchange) commit(ctx context.Context) error {
	if _, err := x.s.p.Recorder.Append(ctx, x.stream, eventstore.NoStream, x.evs...); err != nil {
		return fmt.Errorf("record %s: %w", x.stream, err)
	}
	return nil
}

// Handle answers one request. Whatever happens, the answer leaves only after
// its events are durable; if they cannot be made durable, a granted token is
// discarded and the client gets systemFailure.
func (s *Service) Handle(ctx context.Context, r Request) Reply {
	x, err := s.begin(r)
	if err != nil {
		s.p.Log.Error("timestamp request not recorded", "service", s.cfg.Name, "err", err)
		return systemFailure("")
	}
	q, perr := rfc3161.ParseTimeStampReq(r.Body)
	if perr != nil {
		q = nil
	}
	if err := x.requested(r, q); err != nil {
		return s.fail(ctx, x, err)
	}
	if perr != nil {
		return s.reject(ctx, x, rfc3161.AsRejection(perr))
	}

	params := RouteParams{Path: r.Path, Source: r.Source, Client: x.tlsClient, Protocol: ProtocolRFC3161}
	if q.ReqPolicy != nil {
		params.Policy = q.ReqPolicy.String()
	}
	rt, res, rej, err := s.decide(x, r, q, s.tsp, &params)
	if err != nil {
		return s.fail(ctx, x, err)
	}
	if rej != nil {
		return s.reject(ctx, x, rej)
	}
	if rt.rule.Upstream != nil {
		return s.forward(ctx, x, r, q, rt.rule.Upstream)
	}
	if res.ForceCertReq {
		q.CertReq = true
	}
	at := s.p.Clock.Now().UTC()
	adm, why := s.admit(at)
	if why != "" {
		return s.reject(ctx, x, &rfc3161.Rejection{FailInfo: rfc3161.TimeNotAvailable, Reason: why})
	}
	token, info, err := s.issue(x, q, at)
	if err != nil {
		return s.fail(ctx, x, err)
	}
	if err := x.add(events.TimestampIssued{
		Serial:             x.hex,
		GenTime:            info.GenTime,
		Policy:             info.Policy.String(),
		Signer:             s.fingerprint,
		Token:              token,
		Client:             identityName(x.client),
		ClientAuth:         identityMethod(x.client),
		ClockSample:        adm.SampleID,
		ClockUncertaintyNs: int64(adm.Uncertainty),
	}); err != nil {
		return s.fail(ctx, x, err)
	}
	if err := x.commit(ctx); err != nil {
		// Audit-first: a token that is not on the record never leaves.
		s.p.Log.Error("token discarded: its events are not durable", "serial", x.hex, "err", err)
		return systemFailure(x.hex)
	}
	return Reply{HTTPStatus: 200, Body: rfc3161.GrantedResponse(token), ContentType: ReplyType, Serial: x.hex, Granted: true, Recorded: true, Outcome: OutcomeGranted}
}

// issue builds and signs the token stamped at, a time the gate admitted.
func (s *Service) issue(x *exchange, q *rfc3161.TimeStampReq, at time.Time) ([]byte, *rfc3161.TSTInfo, error) {
	policy := s.cfg.Policy
	if q.ReqPolicy != nil {
		policy = q.ReqPolicy
	}
	info := &rfc3161.TSTInfo{
		Policy:         policy,
		MessageImprint: q.MessageImprint.Raw,
		SerialNumber:   x.serial,
		GenTime:        at.Truncate(s.cfg.Precision),
		Accuracy:       s.cfg.Accuracy,
		Nonce:          q.Nonce,
	}
	if s.cfg.IncludeTSAName {
		info.TSAName = s.p.Signer.Certificate().RawSubject
	}
	der, err := info.Marshal()
	if err != nil {
		return nil, nil, fmt.Errorf("encode TSTInfo %s: %w", x.hex, err)
	}
	token, err := s.p.Signer.Sign(der, q.CertReq, s.p.Rand)
	if err != nil {
		return nil, nil, fmt.Errorf("sign %s: %w", x.hex, err)
	}
	return token, info, nil
}

// reject records a refusal and answers it.
func (s *Service) reject(ctx context.Context, x *exchange, rej *rfc3161.Rejection) Reply {
	if err := x.add(events.TimestampRejected{
		Serial:     x.hex,
		Status:     OutcomeRejection,
		FailInfo:   rej.FailInfo.String(),
		Reason:     rej.Reason,
		HTTPStatus: 200,
		Client:     identityName(x.client),
		ClientAuth: identityMethod(x.client),
	}); err != nil {
		return s.fail(ctx, x, err)
	}
	if err := x.commit(ctx); err != nil {
		s.p.Log.Error("rejection not recorded", "serial", x.hex, "err", err)
		return systemFailure(x.hex)
	}
	return Reply{HTTPStatus: 200, Body: rfc3161.RejectionResponse(rej), ContentType: ReplyType, Serial: x.hex, Recorded: true, Outcome: OutcomeRejection}
}

// fail answers systemFailure for an internal error (a signer outage, an
// encoding fault). It records the failure when it can; the answer is the
// same either way: no token.
func (s *Service) fail(ctx context.Context, x *exchange, cause error) Reply {
	s.p.Log.Error("timestamp request failed", "serial", x.hex, "err", cause)
	if len(x.evs) == 0 {
		return systemFailure(x.hex)
	}
	err := x.add(events.TimestampRejected{
		Serial:     x.hex,
		Status:     OutcomeRejection,
		FailInfo:   rfc3161.SystemFailure.String(),
		Reason:     cause.Error(),
		HTTPStatus: 200,
		Client:     identityName(x.client),
		ClientAuth: identityMethod(x.client),
	})
	if err == nil {
		err = x.commit(ctx)
	}
	if err != nil {
		s.p.Log.Error("system failure not recorded", "serial", x.hex, "err", err)
		return systemFailure(x.hex)
	}
	r := systemFailure(x.hex)
	r.Recorded, r.Outcome = true, OutcomeRejection
	return r
}

// Refuse records a request the transport would not take (wrong method,
// content type, or a body over the limit) and answers it with httpStatus.
// The refusal goes out even if recording fails: it carries no token. The
// transport writes its own fixed text: reason is for the record.
func (s *Service) Refuse(ctx context.Context, r Request, httpStatus int, reason string) Reply {
	x, err := s.begin(r)
	if err == nil {
		err = x.requested(r, nil)
	}
	if err == nil {
		err = x.add(events.TimestampRejected{Serial: x.hex, Status: OutcomeRefused, Reason: reason, HTTPStatus: httpStatus,
			Client: identityName(x.client), ClientAuth: identityMethod(x.client)})
	}
	if err == nil {
		err = x.commit(ctx)
	}
	if err != nil {
		s.p.Log.Error("transport refusal not recorded", "status", httpStatus, "err", err)
		return Reply{HTTPStatus: httpStatus}
	}
	return Reply{HTTPStatus: httpStatus, Serial: x.hex, Recorded: true, Outcome: OutcomeRefused}
}

func systemFailure(serial string) Reply {
	rej := &rfc3161.Rejection{FailInfo: rfc3161.SystemFailure}
	return Reply{HTTPStatus: 200, Body: rfc3161.RejectionResponse(rej), ContentType: ReplyType, Serial: serial}
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

// ReplyType is the media type of a TimeStampResp (RFC 3161 §3.4).
const ReplyType = "application/timestamp-reply"

// decide picks the request's route and runs its chain, recording the
// route and every decision in one FilterChainDecided. It returns the route
// taken and the chain's result, or the rejection to answer.
func (s *Service) decide(x *exchange, r Request, q *rfc3161.TimeStampReq, routes []route, params *RouteParams) (*route, filter.Result, *rfc3161.Rejection, error) {
	rt := pick(routes, params)
	if rt == nil {
		reason := fmt.Sprintf("no policy-map rule admits this request (path %q, policy %q, client %q, protocol %s)",
			params.Path, params.Policy, params.Client, params.Protocol)
		o := filter.Outcome{Filter: "policy-map", Decision: filter.Deny(rfc3161.BadRequest, filter.TextNoRoute, reason)}
		if err := x.chainDecided(nil, []filter.Outcome{o}); err != nil {
			return nil, filter.Result{}, nil, err
		}
		return nil, filter.Result{}, &rfc3161.Rejection{FailInfo: o.FailInfo, Reason: reason, Text: o.Text}, nil
	}
	res := rt.chain.RunInto(x.outcomeRoom(len(rt.chain)), filter.Request{
		Query:            q,
		Path:             r.Path,
		Source:           r.Source,
		SourceIP:         sourceIP(r.Source),
		BodySize:         r.BodySize,
		At:               x.at,
		PeerCertificates: r.PeerCertificates,
		Bearer:           r.Bearer,
	})
	x.client = res.Client
	if err := x.chainDecided(rt, res.Outcomes); err != nil {
		return nil, res, nil, err
	}
	if res.Denied != nil {
		return rt, res, &rfc3161.Rejection{FailInfo: res.Denied.FailInfo, Reason: res.Denied.Reason, Text: res.Denied.Text}, nil
	}
	return rt, res, nil, nil
}

// sourceIP is the address of a host:port (or bare address) source, the
// zero Addr when it is neither.
func sourceIP(source string) netip.Addr {
	if ap, err := netip.ParseAddrPort(source); err == nil {
		return ap.Addr().Unmap()
	}
	if a, err := netip.ParseAddr(source); err == nil {
		return a.Unmap()
	}
	return netip.Addr{}
}

package tsa

import (
	"context"
	"crypto/x509"
	"fmt"
	"net/netip"
	"time"

	"github.com/chronolog/chronolog/domain/authenticode"
	"github.com/chronolog/chronolog/domain/clock"
	"github.com/chronolog/chronolog/domain/events"
	"github.com/chronolog/chronolog/domain/filter"
	"github.com/chronolog/chronolog/domain/rfc3161"
)

// Request is a timestamp request as the transport received it.
type Request struct {
	// Protocol is the protocol the transport took the body for:
	// ProtocolRFC3161 (the default when empty) or ProtocolAuthenticode.
	Protocol    string
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

func (r Request) protocol() string {
	if r.Protocol == "" {
		return ProtocolRFC3161
	}
	return r.Protocol
}

// parsed is a request's body read by its protocol: a TimeStampReq, or the
// signature an Authenticode client asks to have countersigned.
type parsed struct {
	query   *rfc3161.TimeStampReq
	content []byte
}

func parse(r Request) (*parsed, *rfc3161.Rejection) {
	if r.protocol() == ProtocolAuthenticode {
		req, err := authenticode.ParseRequest(r.Body)
		if err != nil {
			return nil, &rfc3161.Rejection{FailInfo: rfc3161.BadDataFormat, Reason: err.Error()}
		}
		return &parsed{content: req.Content}, nil
	}
	q, err := rfc3161.ParseTimeStampReq(r.Body)
	if err != nil {
		return nil, rfc3161.AsRejection(err)
	}
	return &parsed{query: q}, nil
}

// Handle answers one request, of either protocol, through one pipeline:
// parse, route, the filter chain, the clock gate, sign (or forward), and
// record. Whatever happens, the outcome is returned only after its events
// are durable; if they cannot be made durable, a token is discarded and
// the request failed.
func (s *Service) Handle(ctx context.Context, r Request) Outcome {
	if r.protocol() == ProtocolAuthenticode && !s.cfg.Authenticode {
		return s.Refuse(ctx, r, RefusedMediaType, "this service does not answer Authenticode requests")
	}
	x, err := s.begin(r)
	if err != nil {
		s.p.Logger.Error("timestamp request not recorded", "service", s.cfg.Name, "err", err)
		return unrecorded("", r.protocol())
	}
	p, rej := parse(r)
	if err := x.add(x.requested(r, p)); err != nil {
		return x.fail(ctx, err)
	}
	if rej != nil {
		return x.reject(ctx, rej)
	}
	rt, res, rej, err := s.decide(x, r, p)
	switch {
	case err != nil:
		return x.fail(ctx, err)
	case rej != nil:
		return x.reject(ctx, rej)
	case rt.rule.Upstream != nil && p.query == nil:
		return x.refuse(ctx, RefusedNoForwarding, "this route forwards to an upstream TSA, which is done for RFC 3161 requests only")
	case rt.rule.Upstream != nil:
		return s.forward(ctx, x, r, p.query, rt.rule.Upstream)
	}
	at := s.p.Clock.Now().UTC()
	adm, why := s.admit(at)
	if why != "" {
		return x.reject(ctx, &rfc3161.Rejection{FailInfo: rfc3161.TimeNotAvailable, Reason: why})
	}
	issued, err := s.sign(x, p, res.ForceCertReq, at, adm)
	if err != nil {
		return x.fail(ctx, err)
	}
	return x.finish(ctx, issued, Outcome{Kind: Granted, Token: issued.Token})
}

// sign makes the token stamped at, a time the gate admitted, and the
// event that records it.
func (s *Service) sign(x *exchange, p *parsed, forceCertReq bool, at time.Time, adm clock.Admission) (events.TimestampIssued, error) {
	e := events.TimestampIssued{
		Serial:             x.hex,
		Policy:             s.cfg.Policy.String(),
		Signer:             s.fingerprint,
		Client:             identityName(x.client),
		ClientAuth:         identityMethod(x.client),
		ClockSample:        adm.SampleID,
		ClockUncertaintyNs: int64(adm.Uncertainty),
	}
	if p.query == nil {
		// Authenticode: a countersignature at whole seconds, under the
		// service's default policy.
		der, err := s.p.Countersigner.Sign(p.content, at, s.p.Rand)
		if err != nil {
			return e, fmt.Errorf("countersign %s: %w", x.hex, err)
		}
		e.GenTime, e.Token, e.Protocol = at.Truncate(time.Second), der, ProtocolAuthenticode
		return e, nil
	}
	q := p.query
	if forceCertReq {
		q.CertReq = true
	}
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
		return e, fmt.Errorf("encode TSTInfo %s: %w", x.hex, err)
	}
	token, err := s.p.Signer.Sign(der, q.CertReq, s.p.Rand)
	if err != nil {
		return e, fmt.Errorf("sign %s: %w", x.hex, err)
	}
	e.GenTime, e.Policy, e.Token = info.GenTime, info.Policy.String(), token
	return e, nil
}

// Refuse records a request that is not taken (a method, a media type, a
// size, a frame the transport would not read) and says so; reason is for
// the record. The refusal goes out even if recording fails: it carries no
// token.
func (s *Service) Refuse(ctx context.Context, r Request, refusal Refusal, reason string) Outcome {
	x, err := s.begin(r)
	if err == nil {
		err = x.add(x.requested(r, nil))
	}
	if err != nil {
		s.p.Logger.Error("refusal not recorded", "refusal", refusal, "err", err)
		return Outcome{Kind: Refused, Refusal: refusal, Protocol: r.protocol()}
	}
	return x.refuse(ctx, refusal, reason)
}

// decide picks the request's route and runs its chain, recording the
// route and every decision in one FilterChainDecided. It returns the route
// taken and the chain's result, or the rejection to answer.
func (s *Service) decide(x *exchange, r Request, p *parsed) (*route, filter.Result, *rfc3161.Rejection, error) {
	params := RouteParams{Path: r.Path, Source: r.Source, Client: x.tlsClient, Protocol: x.protocol}
	routes := s.tsp
	if p.query == nil {
		routes = s.authenticode
	} else if p.query.ReqPolicy != nil {
		params.Policy = p.query.ReqPolicy.String()
	}
	rt := pick(routes, &params)
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
		Query:            p.query,
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

package tsa

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/chronolog/chronolog/domain/authenticode"
	"github.com/chronolog/chronolog/domain/events"
	"github.com/chronolog/chronolog/domain/rfc3161"
)

// AuthenticodeType is the media type of Authenticode requests and answers.
const AuthenticodeType = "application/octet-stream"

// HandleAuthenticode answers a Microsoft Authenticode legacy timestamp
// request. The protocol has no status for a refusal, so a request that
// cannot be parsed or that a filter denies gets an HTTP error (400, 403)
// with a fixed text, recorded with its cause like every answer.
func (s *Service) HandleAuthenticode(ctx context.Context, r Request) Reply {
	if !s.cfg.Authenticode {
		return s.Refuse(ctx, r, 415, "this service does not answer Authenticode requests: POST an application/timestamp-query")
	}
	x, err := s.begin(r)
	if err != nil {
		s.p.Log.Error("authenticode request not recorded", "service", s.cfg.Name, "err", err)
		return Reply{HTTPStatus: 500, Body: []byte(rfc3161.SystemFailure.Text() + "\n"), ContentType: textPlain}
	}
	e := x.requestedEvent(r, nil)
	e.Protocol = ProtocolAuthenticode
	req, perr := authenticode.ParseRequest(r.Body)
	if perr == nil {
		sum := sha256.Sum256(req.Content)
		e.Parsed = true
		e.HashAlgorithm = rfc3161.SHA256.Name
		e.HashedMessage = hex.EncodeToString(sum[:])
	}
	if err := x.add(e); err != nil {
		return s.failAuthenticode(ctx, x, err)
	}
	if perr != nil {
		return s.refuseAuthenticode(ctx, x, 400, "", authenticodeBadRequest, perr.Error())
	}
	params := RouteParams{Path: r.Path, Source: r.Source, Client: x.tlsClient, Protocol: ProtocolAuthenticode}
	rt, _, rej, err := s.decide(x, r, nil, s.authenticode, &params)
	if err != nil {
		return s.failAuthenticode(ctx, x, err)
	}
	if rej != nil {
		return s.refuseAuthenticode(ctx, x, 403, rej.FailInfo.String(), rej.ClientText(), rej.Reason)
	}
	if rt.rule.Upstream != nil {
		return s.refuseAuthenticode(ctx, x, 501, "", authenticodeNoForward, "this route forwards to an upstream TSA, which is done for RFC 3161 requests only")
	}
	at := s.p.Clock.Now().UTC()
	adm, why := s.admit(at)
	if why != "" {
		// Authenticode has no timeNotAvailable: the client retries on 503.
		return s.refuseAuthenticode(ctx, x, 503, rfc3161.TimeNotAvailable.String(), rfc3161.TimeNotAvailable.Text(), why)
	}
	der, err := s.p.Countersigner.Sign(req.Content, at, s.p.Rand)
	if err != nil {
		return s.failAuthenticode(ctx, x, fmt.Errorf("countersign %s: %w", x.hex, err))
	}
	if err := x.add(events.TimestampIssued{
		Serial:             x.hex,
		GenTime:            at.Truncate(1e9),
		Policy:             s.cfg.Policy.String(),
		Signer:             s.fingerprint,
		Token:              der,
		Client:             identityName(x.client),
		ClientAuth:         identityMethod(x.client),
		Protocol:           ProtocolAuthenticode,
		ClockSample:        adm.SampleID,
		ClockUncertaintyNs: int64(adm.Uncertainty),
	}); err != nil {
		return s.failAuthenticode(ctx, x, err)
	}
	if err := x.commit(ctx); err != nil {
		s.p.Log.Error("authenticode timestamp discarded: its events are not durable", "serial", x.hex, "err", err)
		return Reply{HTTPStatus: 500, Body: []byte(rfc3161.SystemFailure.Text() + "\n"), ContentType: textPlain, Serial: x.hex}
	}
	return Reply{HTTPStatus: 200, Body: authenticode.EncodeResponse(der), ContentType: AuthenticodeType, Serial: x.hex, Granted: true, Recorded: true, Outcome: OutcomeGranted}
}

// Fixed texts of Authenticode refusals: the cause is on the record.
const (
	authenticodeBadRequest = "the request is not an Authenticode timestamp request"
	authenticodeNoForward  = "this service forwards RFC 3161 requests only"
)

// refuseAuthenticode records and answers an HTTP refusal; the body is the
// fixed text, for the person reading the client's log, and reason goes to
// the record.
func (s *Service) refuseAuthenticode(ctx context.Context, x *exchange, status int, failInfo, text, reason string) Reply {
	stat := OutcomeRefused
	if failInfo != "" {
		stat = OutcomeRejection
	}
	if err := x.add(events.TimestampRejected{
		Serial: x.hex, Status: stat, FailInfo: failInfo, Reason: reason, HTTPStatus: status,
		Client: identityName(x.client), ClientAuth: identityMethod(x.client),
	}); err != nil {
		return s.failAuthenticode(ctx, x, err)
	}
	r := Reply{HTTPStatus: status, Body: []byte(text + "\n"), ContentType: textPlain, Serial: x.hex}
	if err := x.commit(ctx); err != nil {
		s.p.Log.Error("authenticode refusal not recorded", "serial", x.hex, "err", err)
		return r
	}
	r.Recorded, r.Outcome = true, stat
	return r
}

const textPlain = "text/plain; charset=utf-8"

// failAuthenticode is fail for Authenticode: HTTP 500, recorded when it can be.
func (s *Service) failAuthenticode(ctx context.Context, x *exchange, cause error) Reply {
	s.p.Log.Error("authenticode request failed", "serial", x.hex, "err", cause)
	r := Reply{HTTPStatus: 500, Body: []byte(rfc3161.SystemFailure.Text() + "\n"), ContentType: textPlain, Serial: x.hex}
	if len(x.evs) == 0 {
		return r
	}
	err := x.add(events.TimestampRejected{
		Serial: x.hex, Status: OutcomeRejection, FailInfo: rfc3161.SystemFailure.String(), Reason: cause.Error(), HTTPStatus: 500,
		Client: identityName(x.client), ClientAuth: identityMethod(x.client),
	})
	if err == nil {
		err = x.commit(ctx)
	}
	if err != nil {
		s.p.Log.Error("authenticode failure not recorded", "serial", x.hex, "err", err)
		return r
	}
	r.Recorded, r.Outcome = true, OutcomeRejection
	return r
}

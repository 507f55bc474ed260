package tsa

import (
	"bytes"
	"context"
	"fmt"

	"github.com/chronolog/chronolog/domain/events"
	"github.com/chronolog/chronolog/domain/rfc3161"
)

// forward answers a request that passed its chain by passing it to an
// upstream TSA. The upstream's answer is recorded exactly as received and
// sent on unchanged, but only if it answers this request: a token for
// another imprint or nonce (a confused or hostile upstream) is recorded
// and replaced by systemFailure.
func (s *Service) forward(ctx context.Context, x *exchange, r Request, q *rfc3161.TimeStampReq, up Upstream) Outcome {
	status, body, err := up.Forward(ctx, r.Body)
	if err != nil {
		return x.fail(ctx, fmt.Errorf("forward to upstream %s: %w", up.URL(), err))
	}
	e := events.TimestampForwarded{
		Serial:         x.hex,
		Upstream:       up.URL(),
		UpstreamStatus: status,
		Status:         "unreadable",
		Response:       body,
		Client:         identityName(x.client),
		ClientAuth:     identityMethod(x.client),
	}
	resp, perr := rfc3161.ParseTimeStampResp(body)
	if perr == nil {
		e.Status = pkiStatusName(resp.Status)
		if resp.FailInfo != nil {
			e.FailInfo = resp.FailInfo.String()
		}
	}
	var problem error
	switch {
	case status != 200:
		problem = fmt.Errorf("upstream %s answered status %d", up.URL(), status)
	case perr != nil:
		problem = fmt.Errorf("upstream %s answered no TimeStampResp: %w", up.URL(), perr)
	case resp.Token != nil:
		problem = answers(resp.Token, q)
	}
	if problem != nil {
		// The upstream's answer is on the record, and so is why it was
		// not sent on.
		if err := x.add(e); err != nil {
			return x.fail(ctx, err)
		}
		return x.fail(ctx, problem)
	}
	return x.finish(ctx, e, Outcome{Kind: Forwarded, Response: body})
}

// answers checks that an upstream token is for q's imprint and nonce.
func answers(token []byte, q *rfc3161.TimeStampReq) error {
	info, err := rfc3161.TokenTSTInfo(token)
	if err != nil {
		return fmt.Errorf("upstream token unreadable: %w", err)
	}
	if !bytes.Equal(info.MessageImprint, q.MessageImprint.Raw) {
		return fmt.Errorf("upstream token is for another message imprint")
	}
	if !bytes.Equal(info.Nonce, q.Nonce) {
		return fmt.Errorf("upstream token does not echo the request's nonce")
	}
	return nil
}

func pkiStatusName(s rfc3161.PKIStatus) string {
	switch s {
	case rfc3161.Granted:
		return "granted"
	case rfc3161.GrantedWithMods:
		return "grantedWithMods"
	case rfc3161.Rejected:
		return "rejection"
	case rfc3161.Waiting:
		return "waiting"
	case rfc3161.RevocationWarning:
		return "revocationWarning"
	case rfc3161.RevocationNotification:
		return "revocationNotification"
	}
	return fmt.Sprintf("status(%d)", int(s))
}

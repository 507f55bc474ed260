package tsa_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"errors"
	"io"
	"net/netip"
	"regexp"
	"testing"

	"github.com/chronolog/chronolog/domain/authenticode"
	"github.com/chronolog/chronolog/domain/clock"
	"github.com/chronolog/chronolog/domain/events"
	"github.com/chronolog/chronolog/domain/filter"
	"github.com/chronolog/chronolog/domain/rfc3161"
	"github.com/chronolog/chronolog/domain/tsa"
)

// failingKey signs nothing: the HSM went away mid-request.
type failingKey struct{ pub crypto.PublicKey }

func (k failingKey) Public() crypto.PublicKey { return k.pub }
func (failingKey) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	return nil, errors.New("pkcs11: CKR_DEVICE_REMOVED on slot 3 of /usr/lib/softhsm/libsofthsm2.so")
}

// Every way a request can be turned down answers the client with a short
// fixed text, never with its cause: causes name addresses, clients, keys,
// files and errors, and they go to the record.
func TestClientTextsAreFixed(t *testing.T) {
	fixed := map[string]bool{}
	for _, f := range []rfc3161.FailInfo{rfc3161.BadAlg, rfc3161.BadRequest, rfc3161.BadDataFormat, rfc3161.TimeNotAvailable,
		rfc3161.UnacceptedPolicy, rfc3161.UnacceptedExtension, rfc3161.AddInfoNotAvailable, rfc3161.SystemFailure} {
		fixed[f.Text()] = true
	}
	for _, s := range []string{filter.TextRateLimited, filter.TextClientCertRequired, filter.TextClientCertRefused,
		filter.TextNotAuthorized, filter.TextAPIKeyRequired, filter.TextAPIKeyRefused, filter.TextAddressRefused,
		filter.TextNonceRequired, filter.TextNonceTooShort, filter.TextAuthRequired, filter.TextRequestTooLarge, filter.TextNoRoute} {
		fixed[s] = true
	}
	deadNTP := "0 of 1 sources agree: ntp 127.0.0.1:12323: no answer: read udp 127.0.0.1:51790->127.0.0.1:12323: recvmsg: connection refused"
	denyLocal, err := filter.NewClientIP(nil, []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")})
	if err != nil {
		t.Fatal(err)
	}
	limit, err := filter.NewRateLimit(0.001, 1, 10)
	if err != nil {
		t.Fatal(err)
	}
	chain := func(fs ...filter.Filter) func(*tsa.Config, *tsa.Ports) {
		return func(c *tsa.Config, _ *tsa.Ports) { c.Rules = []tsa.Rule{{Name: "r", Chain: "c", Filters: fs}} }
	}
	withAuthenticode := func(c *tsa.Config, p *tsa.Ports) {
		cs, err := authenticode.NewSigner(rfc3161.SigningIdentity{Signer: lastKey, Certificate: p.Signer.Certificate()})
		if err != nil {
			t.Fatal(err)
		}
		c.Authenticode, p.Countersigner = true, cs
	}
	short := func(t *testing.T) []byte {
		q, err := rfc3161.NewTimeStampReq(rfc3161.SHA256, make([]byte, 32), nil, nil, false)
		if err != nil {
			t.Fatal(err)
		}
		der, _ := q.Marshal()
		return der
	}
	ok := func(t *testing.T) []byte { return query(t, rfc3161.SHA256, nil) }
	for _, tc := range []struct {
		name         string
		adjust       func(*tsa.Config, *tsa.Ports)
		body         func(*testing.T) []byte
		source       string
		authenticode bool
		recorder     error
	}{
		{name: "garbage", body: func(*testing.T) []byte { return []byte("GET / HTTP/1.1\r\n") }},
		{name: "digest of the wrong length", body: func(t *testing.T) []byte {
			der, _ := (&rfc3161.TimeStampReq{Version: 1, MessageImprint: rfc3161.MessageImprint{Algorithm: rfc3161.SHA256, HashedMessage: []byte{1, 2, 3}}}).Marshal()
			return der
		}},
		{name: "hash not allowed", body: func(t *testing.T) []byte { return query(t, rfc3161.SHA1, nil) }},
		{name: "address denied", adjust: chain(denyLocal), body: ok, source: "192.0.2.7:4431"},
		{name: "no nonce", adjust: chain(filter.NewNonceRequired(8)), body: short},
		{name: "rate limited", adjust: chain(limit), body: ok, source: "198.51.100.9:1"},
		{name: "no route", adjust: func(c *tsa.Config, _ *tsa.Ports) {
			c.Rules = []tsa.Rule{{Name: "r", Chain: "c", Path: regexp.MustCompile(`^/elsewhere$`)}}
		}, body: ok},
		{name: "clock not synchronised", adjust: func(_ *tsa.Config, p *tsa.Ports) {
			p.Gate = clock.NewGate(clock.DefaultPolicy())
			p.Gate.Set(clock.Assessment{SampleID: "x", At: serviceNow, Reason: deadNTP})
		}, body: ok},
		{name: "signer gone", adjust: func(_ *tsa.Config, p *tsa.Ports) {
			s, err := rfc3161.NewTokenSigner(rfc3161.SigningIdentity{Signer: failingKey{lastKey.Public().(*ecdsa.PublicKey)}, Certificate: p.Signer.Certificate()})
			if err != nil {
				t.Fatal(err)
			}
			p.Signer = s
		}, body: ok},
		{name: "store down", body: ok, recorder: errors.New("eventstore/sqlite: commit: disk I/O error on /var/lib/chronolog/events.db")},
		{name: "upstream down", adjust: func(c *tsa.Config, _ *tsa.Ports) {
			c.Rules = []tsa.Rule{{Name: "proxy", Chain: "proxy", Upstream: fakeUpstream{err: errors.New("dial tcp 10.1.2.3:443: connect: connection refused")}}}
		}, body: ok},
		{name: "authenticode garbage", adjust: withAuthenticode, authenticode: true, body: func(*testing.T) []byte { return []byte("%%%") }},
		{name: "authenticode denied", authenticode: true, body: func(*testing.T) []byte { return authenticode.NewRequest([]byte("sig")) },
			adjust: func(c *tsa.Config, p *tsa.Ports) { withAuthenticode(c, p); chain(denyLocal)(c, p) }, source: "192.0.2.7:4431"},
		{name: "authenticode clock", authenticode: true, body: func(*testing.T) []byte { return authenticode.NewRequest([]byte("sig")) },
			adjust: func(c *tsa.Config, p *tsa.Ports) {
				withAuthenticode(c, p)
				p.Gate = clock.NewGate(clock.DefaultPolicy())
				p.Gate.Set(clock.Assessment{SampleID: "x", At: serviceNow, Reason: deadNTP})
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &memRecorder{fail: tc.recorder}
			svc := newServiceWith(t, rec, tc.adjust)
			r := tsa.Request{Body: tc.body(t), Method: "POST", Path: "/tsa", Source: tc.source}
			if r.Source == "" {
				r.Source = "203.0.113.5:5555"
			}
			if tc.authenticode {
				r.Protocol = tsa.ProtocolAuthenticode
			}
			reply := svc.Handle(context.Background(), r)
			if tc.name == "rate limited" {
				reply = svc.Handle(context.Background(), r) // the second one is over the limit
			}
			if reply.Kind != tsa.Rejected && reply.Kind != tsa.Failed {
				t.Fatalf("outcome %+v, want a rejection", reply)
			}
			// What a transport writes: RFC 3161's statusString, or the
			// text of an Authenticode refusal; both are the rejection's.
			text := reply.Rejection.ClientText()
			if !tc.authenticode {
				resp := tsp(t, reply)
				if len(resp.StatusString) != 1 || resp.StatusString[0] != text {
					t.Fatalf("statusString %q, want [%q]", resp.StatusString, text)
				}
			}
			if !fixed[text] {
				t.Errorf("the client reads %q, not one of the fixed texts", text)
			}
			if tc.recorder != nil {
				if reply.Recorded {
					t.Fatal("recorded with the store down")
				}
				return
			}
			evs := decode(t, rec, reply.Serial)
			rej, isRej := evs[len(evs)-1].(*events.TimestampRejected)
			if !isRej || rej.Reason == "" || rej.Reason == text {
				t.Fatalf("last event %+v: want a TimestampRejected with its cause, not the client's text", evs[len(evs)-1])
			}
		})
	}
}

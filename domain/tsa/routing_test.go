package tsa_test

import (
	"context"
	"errors"
	"math/big"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chronolog/chronolog/domain/authenticode"
	"github.com/chronolog/chronolog/domain/events"
	"github.com/chronolog/chronolog/domain/filter"
	"github.com/chronolog/chronolog/domain/rfc3161"
	"github.com/chronolog/chronolog/domain/tsa"
)

// authBy is a fake authentication filter: it accepts a request whose
// bearer is its secret and names the client.
type authBy struct{ secret, client string }

func (authBy) Name() string { return "fake-auth" }
func (a authBy) Decide(r filter.Request) filter.Decision {
	if r.Bearer != a.secret {
		return filter.Deny(rfc3161.BadRequest, filter.TextAPIKeyRefused, "wrong credential")
	}
	d := filter.Accept("authenticated")
	d.Identity = &filter.Identity{Name: a.client, Method: filter.AuthAPIKey}
	return d
}

// forceCert is a fake filter demanding the certificate in every token.
type forceCert struct{}

func (forceCert) Name() string { return "fake-cert-req" }
func (forceCert) Decide(filter.Request) filter.Decision {
	d := filter.Accept("forced")
	d.ForceCertReq = true
	return d
}

func decode(t *testing.T, rec *memRecorder, serial string) []events.Event {
	t.Helper()
	var out []events.Event
	for _, e := range rec.streams["tsr-"+serial] {
		_, ev, err := events.Decode(e.Payload)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, ev)
	}
	return out
}

func TestPolicyMapRoutesAndRecordsIdentity(t *testing.T) {
	rec := &memRecorder{}
	svc := newServiceWith(t, rec, func(c *tsa.Config, _ *tsa.Ports) {
		c.Rules = []tsa.Rule{
			{Name: "partners", Path: regexp.MustCompile(`^/partners$`), Chain: "partners",
				Filters: filter.Chain{authBy{secret: "s3cret", client: "acme"}, forceCert{}}},
			{Name: "public", Path: regexp.MustCompile(`^/tsa$`), Chain: "public"},
		}
	})
	ctx := context.Background()
	noCert := func() []byte {
		q, _ := rfc3161.NewTimeStampReq(rfc3161.SHA256, make([]byte, 32), big.NewInt(9), nil, false)
		der, _ := q.Marshal()
		return der
	}()

	// A partner with the right credential: identity on the token's event,
	// and the certificate included although the request did not ask.
	r := svc.Handle(ctx, tsa.Request{Body: noCert, Path: "/partners", Bearer: "s3cret", Source: "10.1.2.3:4"})
	if r.Kind != tsa.Granted {
		t.Fatalf("reply %+v", r)
	}
	evs := decode(t, rec, r.Serial)
	issued := evs[len(evs)-1].(*events.TimestampIssued)
	if issued.Client != "acme" || issued.ClientAuth != filter.AuthAPIKey {
		t.Fatalf("issued event identity = %q/%q", issued.Client, issued.ClientAuth)
	}
	chain := evs[1].(*events.FilterChainDecided)
	if chain.Rule != "partners" || chain.Chain != "partners" || len(chain.Decisions) != 4 {
		t.Fatalf("the route taken and its chain are not recorded: %+v", chain)
	}
	for i, want := range []string{"hash-allow-list", "policy", "fake-auth", "fake-cert-req"} {
		if d := chain.Decisions[i]; d.Filter != want || d.Verdict != events.VerdictAccepted {
			t.Errorf("decision %d: %+v, want %s accepted", i, d, want)
		}
	}
	if certs, err := rfc3161.TokenCertificates(issued.Token); err != nil || len(certs) == 0 {
		t.Fatalf("cert-req forcing: certificates %d, %v", len(certs), err)
	}
	for _, e := range evs {
		if b, _ := events.Encode("00000000-0000-7000-8000-000000000001", "s", issuedAt, events.Metadata{}, e); strings.Contains(string(b.Payload), "s3cret") {
			t.Fatal("the bearer credential reached the record")
		}
	}

	// A wrong credential: badRequest, recorded with the filter's reason.
	r = svc.Handle(ctx, tsa.Request{Body: noCert, Path: "/partners", Bearer: "guess"})
	if fi := failInfoOf(t, r); fi != rfc3161.BadRequest {
		t.Fatalf("failInfo %v", fi)
	}
	evs = decode(t, rec, r.Serial)
	if rej := evs[len(evs)-1].(*events.TimestampRejected); rej.Reason != "wrong credential" || rej.Client != "" {
		t.Fatalf("rejection %+v", rej)
	}

	// The public route: no authentication, no identity, no forced cert.
	r = svc.Handle(ctx, tsa.Request{Body: noCert, Path: "/tsa"})
	evs = decode(t, rec, r.Serial)
	issued = evs[len(evs)-1].(*events.TimestampIssued)
	if issued.Client != "" {
		t.Fatalf("anonymous request carries client %q", issued.Client)
	}
	if certs, _ := rfc3161.TokenCertificates(issued.Token); len(certs) != 0 {
		t.Fatal("certReq false and no forcing filter: no certificate")
	}

	// No rule matches: badRequest, and the record says why.
	r = svc.Handle(ctx, tsa.Request{Body: noCert, Path: "/elsewhere"})
	if fi := failInfoOf(t, r); fi != rfc3161.BadRequest {
		t.Fatalf("failInfo %v", fi)
	}
	evs = decode(t, rec, r.Serial)
	chain = evs[1].(*events.FilterChainDecided)
	if d := chain.Decisions[0]; chain.Rule != "" || len(chain.Decisions) != 1 || d.Filter != "policy-map" || d.Verdict != events.VerdictRejected ||
		d.FailInfo != "badRequest" || !strings.Contains(d.Reason, "/elsewhere") {
		t.Fatalf("no-route decision %+v", chain)
	}
}

// fakeUpstream answers with another service's Handle, or misbehaves.
type fakeUpstream struct {
	svc    *tsa.Service
	status int
	body   []byte
	err    error
}

func (fakeUpstream) URL() string { return "https://upstream.example/tsa" }
func (u fakeUpstream) Forward(ctx context.Context, q []byte) (int, []byte, error) {
	if u.err != nil || u.body != nil {
		return u.status, u.body, u.err
	}
	r := u.svc.Handle(ctx, tsa.Request{Body: q, Path: "/tsa"})
	return 200, rfc3161.GrantedResponse(r.Token), nil
}

func TestForwardRecordsTheUpstreamAnswer(t *testing.T) {
	upstream := newService(t, &memRecorder{})
	other := upstream.Handle(context.Background(), tsa.Request{Body: query(t, rfc3161.SHA512, nil)})
	tests := []struct {
		name     string
		up       fakeUpstream
		granted  bool
		status   string
		failInfo rfc3161.FailInfo
	}{
		{"granted upstream", fakeUpstream{svc: upstream}, true, "granted", 0},
		{"upstream token for another imprint", fakeUpstream{status: 200, body: rfc3161.GrantedResponse(other.Token)}, false, "granted", rfc3161.SystemFailure},
		{"upstream HTTP 500", fakeUpstream{status: 500, body: []byte("oops")}, false, "unreadable", rfc3161.SystemFailure},
		{"upstream down", fakeUpstream{err: errors.New("connection refused")}, false, "", rfc3161.SystemFailure},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &memRecorder{}
			svc := newServiceWith(t, rec, func(c *tsa.Config, _ *tsa.Ports) {
				c.Rules = []tsa.Rule{{Name: "proxy", Chain: "proxy", Upstream: tt.up}}
			})
			r := svc.Handle(context.Background(), tsa.Request{Body: query(t, rfc3161.SHA256, nil), Path: "/tsa"})
			if (r.Kind == tsa.Forwarded) != tt.granted {
				t.Fatalf("reply %+v", r)
			}
			if !tt.granted && failInfoOf(t, r) != tt.failInfo {
				t.Fatalf("failInfo %v", failInfoOf(t, r))
			}
			var fwd *events.TimestampForwarded
			for _, e := range decode(t, rec, r.Serial) {
				if f, ok := e.(*events.TimestampForwarded); ok {
					fwd = f
				}
				if _, ok := e.(*events.TimestampIssued); ok {
					t.Fatal("a forwarded request is not issued by this TSA")
				}
			}
			switch {
			case tt.status == "" && fwd != nil:
				t.Fatal("nothing came back, yet a forwarded answer is recorded")
			case tt.status != "" && (fwd == nil || fwd.Status != tt.status || fwd.Upstream != "https://upstream.example/tsa"):
				t.Fatalf("forwarded event %+v, want status %s", fwd, tt.status)
			case tt.granted && string(fwd.Response) != string(r.Response):
				t.Fatal("the answer sent differs from the upstream's recorded answer")
			}
		})
	}
}

func TestAuthenticode(t *testing.T) {
	rec := &memRecorder{}
	var cs *authenticode.Signer
	svc := newServiceWith(t, rec, func(c *tsa.Config, p *tsa.Ports) {
		var err error
		cs, err = authenticode.NewSigner(rfc3161.SigningIdentity{Signer: lastKey, Certificate: p.Signer.Certificate()})
		if err != nil {
			t.Fatal(err)
		}
		c.Authenticode = true
		p.Countersigner = cs
		c.Rules = []tsa.Rule{
			{Name: "code", Protocol: regexp.MustCompile(`^authenticode$`), Chain: "code",
				// Query filters are dropped for Authenticode: only the
				// authentication below applies.
				Filters: filter.Chain{filter.NewHashAllowList(nil), authBy{secret: "k", client: "ci"}}},
		}
	})
	ctx := context.Background()
	sig := []byte("the signature bytes of a signed PE")
	ac := func(r tsa.Request) tsa.Request { r.Protocol = tsa.ProtocolAuthenticode; return r }
	r := svc.Handle(ctx, ac(tsa.Request{Body: authenticode.NewRequest(sig), Path: "/tsa", Bearer: "k"}))
	if r.Kind != tsa.Granted || r.Protocol != tsa.ProtocolAuthenticode {
		t.Fatalf("reply %+v", r)
	}
	if _, err := authenticode.Verify(r.Token); err != nil {
		t.Fatalf("the countersignature answered: %v", err)
	}
	evs := decode(t, rec, r.Serial)
	req := evs[0].(*events.TimestampRequested)
	issued := evs[len(evs)-1].(*events.TimestampIssued)
	if req.Protocol != tsa.ProtocolAuthenticode || !req.Parsed || issued.Protocol != tsa.ProtocolAuthenticode || issued.Client != "ci" {
		t.Fatalf("events %+v %+v", req, issued)
	}
	v, err := authenticode.Verify(issued.Token)
	if err != nil || string(v.Content) != string(sig) {
		t.Fatalf("recorded countersignature: %v", err)
	}

	// Garbage: badDataFormat, recorded.
	r = svc.Handle(ctx, ac(tsa.Request{Body: []byte("not base64 !!"), Path: "/tsa", Bearer: "k"}))
	if r.Kind != tsa.Rejected || r.Rejection.FailInfo != rfc3161.BadDataFormat || !r.Recorded {
		t.Fatalf("garbage reply %+v", r)
	}
	// Denied by a filter: recorded with the failInfo.
	r = svc.Handle(ctx, ac(tsa.Request{Body: authenticode.NewRequest(sig), Path: "/tsa"}))
	evs = decode(t, rec, r.Serial)
	if rej := evs[len(evs)-1].(*events.TimestampRejected); r.Kind != tsa.Rejected || rej.FailInfo != "badRequest" || rej.Status != events.StatusRejection {
		t.Fatalf("denied reply %+v, event %+v", r, rej)
	}
	// A service without Authenticode refuses the media type.
	plain := newService(t, &memRecorder{})
	if r := plain.Handle(ctx, ac(tsa.Request{Body: authenticode.NewRequest(sig)})); r.Kind != tsa.Refused || r.Refusal != tsa.RefusedMediaType || !r.Recorded {
		t.Fatalf("reply %+v", r)
	}
}

var issuedAt = time.Date(2026, 11, 22, 16, 0, 0, 0, time.UTC)

func failInfoOf(t *testing.T, r tsa.Outcome) rfc3161.FailInfo {
	t.Helper()
	resp := tsp(t, r)
	if resp.FailInfo == nil {
		t.Fatalf("no failInfo in %+v", resp)
	}
	return *resp.FailInfo
}

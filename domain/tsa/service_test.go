package tsa_test

import (
	"context"
	"crypto"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	mrand "math/rand"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chronolog/chronolog/domain/events"
	"github.com/chronolog/chronolog/domain/eventstore"
	"github.com/chronolog/chronolog/domain/rfc3161"
	"github.com/chronolog/chronolog/domain/tsa"
	"github.com/chronolog/chronolog/internal/testpki"
)

// The fakes below stand in for ports inside this domain test only.

type fixedClock struct{ t time.Time }

func (c fixedClock) Now() time.Time { return c.t }

type counter struct {
	mu sync.Mutex
	n  int64
}

func (c *counter) NextSerial() (*big.Int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n++
	return big.NewInt(1000 + c.n), nil
}

func (c *counter) NewID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n++
	return fmt.Sprintf("00000000-0000-7000-8000-%012d", c.n)
}

type memRecorder struct {
	mu      sync.Mutex
	streams map[string][]eventstore.EventData
	fail    error
}

func (m *memRecorder) Append(ctx context.Context, stream string, exp eventstore.ExpectedState, evs ...eventstore.EventData) (eventstore.AppendResult, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return eventstore.AppendResult{}, m.fail
	}
	if m.streams == nil {
		m.streams = map[string][]eventstore.EventData{}
	}
	_, exists := m.streams[stream]
	if !exp.Admits(exists, uint64(len(m.streams[stream])-1)) {
		return eventstore.AppendResult{}, &eventstore.WrongExpectedStateError{Stream: stream, Expected: exp, Exists: exists}
	}
	m.streams[stream] = append(m.streams[stream], evs...)
	return eventstore.AppendResult{}, nil
}

func (m *memRecorder) types(stream string) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for _, e := range m.streams[stream] {
		out = append(out, e.Type)
	}
	return out
}

type nopLog struct{ msgs []string }

func (l *nopLog) Error(msg string, args ...any) { l.msgs = append(l.msgs, msg) }

// lastKey is the key of the service newServiceWith made last, for tests
// that build a second signer over it.
var lastKey crypto.Signer

// clockTime is the time of the fixed clock; the TSA certificate is valid
// around it.
var clockTime = time.Date(2026, 11, 22, 16, 7, 45, 123456789, time.UTC)

var testPolicy = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 32473, 3161, 1}

func newService(t *testing.T, rec tsa.Recorder) *tsa.Service {
	t.Helper()
	return newServiceWith(t, rec, nil)
}

// newServiceWith lets a test adjust the configuration and ports.
func newServiceWith(t testing.TB, rec tsa.Recorder, adjust func(*tsa.Config, *tsa.Ports)) *tsa.Service {
	t.Helper()
	tsaCert := testpki.New(t, testpki.At(clockTime)).TSA(t)
	key, cert := tsaCert.Key, tsaCert.Cert
	lastKey = key
	signer, err := rfc3161.NewTokenSigner(rfc3161.SigningIdentity{Signer: key, Certificate: cert})
	if err != nil {
		t.Fatal(err)
	}
	c := &counter{}
	cfg := tsa.Config{
		Name:     "test",
		Policy:   testPolicy,
		Accuracy: &rfc3161.Accuracy{Seconds: 1},
	}
	ports := tsa.Ports{
		Clock:    fixedClock{clockTime},
		Serials:  c,
		IDs:      c,
		Rand:     mrand.New(mrand.NewSource(3)),
		Signer:   signer,
		Recorder: rec,
		Logger:   &nopLog{},
	}
	if adjust != nil {
		adjust(&cfg, &ports)
	}
	svc, err := tsa.New(cfg, ports)
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

func query(t *testing.T, alg rfc3161.HashAlgorithm, policy asn1.ObjectIdentifier) []byte {
	t.Helper()
	q, err := rfc3161.NewTimeStampReq(alg, make([]byte, alg.Size), big.NewInt(42), policy, true)
	if err != nil {
		t.Fatal(err)
	}
	der, err := q.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// tsp is the TimeStampResp an RFC 3161 outcome answers with, as every
// transport sends it.
func tsp(t *testing.T, o tsa.Outcome) *rfc3161.TimeStampResp {
	t.Helper()
	var der []byte
	switch o.Kind {
	case tsa.Granted:
		der = rfc3161.GrantedResponse(o.Token)
	case tsa.Rejected, tsa.Failed:
		der = rfc3161.RejectionResponse(o.Rejection)
	case tsa.Forwarded:
		der = o.Response
	default:
		t.Fatalf("outcome %+v has no TimeStampResp", o)
	}
	resp, err := rfc3161.ParseTimeStampResp(der)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func TestHandle(t *testing.T) {
	withExt := query(t, rfc3161.SHA256, nil)
	tests := []struct {
		name     string
		body     []byte
		granted  bool
		failInfo rfc3161.FailInfo
		events   string
	}{
		{"granted", query(t, rfc3161.SHA256, nil), true, 0,
			"TimestampRequested.v1 FilterChainDecided.v1 TimestampIssued.v1"},
		{"garbage", []byte("hello"), false, rfc3161.BadDataFormat,
			"TimestampRequested.v1 TimestampRejected.v2"},
		{"sha1 not allowed", query(t, rfc3161.SHA1, nil), false, rfc3161.BadAlg,
			"TimestampRequested.v1 FilterChainDecided.v1 TimestampRejected.v2"},
		{"unknown policy", query(t, rfc3161.SHA256, asn1.ObjectIdentifier{1, 2, 3}), false, rfc3161.UnacceptedPolicy,
			"TimestampRequested.v1 FilterChainDecided.v1 TimestampRejected.v2"},
		{"truncated", withExt[:len(withExt)-3], false, rfc3161.BadDataFormat,
			"TimestampRequested.v1 TimestampRejected.v2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &memRecorder{}
			svc := newService(t, rec)
			reply := svc.Handle(context.Background(), tsa.Request{Body: tt.body, Method: "POST", Path: "/tsa", Source: "127.0.0.1:1"})
			if !reply.Recorded || (reply.Kind == tsa.Granted) != tt.granted {
				t.Fatalf("reply = %+v", reply)
			}
			resp := tsp(t, reply)
			if tt.granted {
				if resp.Status != 0 || resp.Token == nil || resp.FailInfo != nil {
					t.Fatalf("granted answer: %+v", resp)
				}
			} else if resp.Status != 2 || resp.FailInfo == nil || *resp.FailInfo != tt.failInfo || resp.Token != nil {
				t.Fatalf("want rejection %v, got %+v", tt.failInfo, resp)
			}
			got := strings.Join(rec.types("tsr-"+reply.Serial), " ")
			if got != tt.events {
				t.Fatalf("events = %q, want %q", got, tt.events)
			}
		})
	}
}

func TestIssuedEventCarriesTheTokenSent(t *testing.T) {
	rec := &memRecorder{}
	svc := newService(t, rec)
	reply := svc.Handle(context.Background(), tsa.Request{Body: query(t, rfc3161.SHA256, nil), Method: "POST"})
	resp := tsp(t, reply)
	evs := rec.streams["tsr-"+reply.Serial]
	_, e, err := events.Decode(evs[len(evs)-1].Payload)
	if err != nil {
		t.Fatal(err)
	}
	issued := e.(*events.TimestampIssued)
	if string(issued.Token) != string(resp.Token) {
		t.Fatal("the recorded token differs from the token sent")
	}
	if got := issued.GenTime.Format(time.RFC3339Nano); got != "2026-11-22T16:07:45.123456Z" {
		t.Fatalf("genTime = %s, want microsecond precision", got)
	}
}

// TestFailClosed proves the audit-first rule: when the append fails or
// times out, no token leaves — the client gets systemFailure.
func TestFailClosed(t *testing.T) {
	for _, cause := range []error{errors.New("disk full"), context.DeadlineExceeded, eventstore.ErrClosed} {
		t.Run(cause.Error(), func(t *testing.T) {
			rec := &memRecorder{fail: cause}
			svc := newService(t, rec)
			reply := svc.Handle(context.Background(), tsa.Request{Body: query(t, rfc3161.SHA256, nil), Method: "POST"})
			if reply.Kind != tsa.Failed || reply.Recorded || reply.Token != nil {
				t.Fatalf("reply = %+v", reply)
			}
			resp := tsp(t, reply)
			if resp.Status != 2 || resp.Token != nil || resp.FailInfo == nil || *resp.FailInfo != rfc3161.SystemFailure {
				t.Fatalf("want systemFailure without token, got %+v", resp)
			}
		})
	}
}

func TestRefuseIsRecorded(t *testing.T) {
	rec := &memRecorder{}
	svc := newService(t, rec)
	reply := svc.Refuse(context.Background(), tsa.Request{Method: "GET", Path: "/tsa"}, tsa.RefusedMethod, "method GET")
	if reply.Kind != tsa.Refused || reply.Refusal != tsa.RefusedMethod || !reply.Recorded {
		t.Fatalf("reply = %+v", reply)
	}
	if got := strings.Join(rec.types("tsr-"+reply.Serial), " "); got != "TimestampRequested.v1 TimestampRejected.v2" {
		t.Fatalf("events = %q", got)
	}
	evs := decode(t, rec, reply.Serial)
	if rej := evs[1].(*events.TimestampRejected); rej.Status != events.StatusRefused || rej.Refusal != "method" || rej.FailInfo != "" || rej.Reason != "method GET" {
		t.Fatalf("recorded %+v", rej)
	}
}

func TestSerialNeverReused(t *testing.T) {
	rec := &memRecorder{}
	svc := newService(t, rec)
	seen := map[string]bool{}
	for i := 0; i < 50; i++ {
		r := svc.Handle(context.Background(), tsa.Request{Body: query(t, rfc3161.SHA256, nil), Method: "POST"})
		if seen[r.Serial] {
			t.Fatalf("serial %s reused", r.Serial)
		}
		seen[r.Serial] = true
	}
}

// One event holds the whole chain, in order, up to the denial that ends
// it, with the denial's cause and failInfo.
func TestChainDecidedHoldsEveryDecision(t *testing.T) {
	rec := &memRecorder{}
	svc := newService(t, rec)
	r := svc.Handle(context.Background(), tsa.Request{Body: query(t, rfc3161.SHA256, asn1.ObjectIdentifier{1, 2, 3}), Path: "/tsa"})
	evs := decode(t, rec, r.Serial)
	chain := evs[1].(*events.FilterChainDecided)
	if chain.Serial != r.Serial || chain.Rule != "default" || chain.Chain != "default" || len(chain.Decisions) != 2 {
		t.Fatalf("chain %+v", chain)
	}
	if d := chain.Decisions[0]; d.Filter != "hash-allow-list" || d.Verdict != events.VerdictAccepted || d.Reason != "sha256 is allowed" || d.FailInfo != "" {
		t.Errorf("first decision %+v", d)
	}
	if d := chain.Decisions[1]; d.Filter != "policy" || d.Verdict != events.VerdictRejected || d.FailInfo != "unacceptedPolicy" || !strings.Contains(d.Reason, "1.2.3") {
		t.Errorf("second decision %+v", d)
	}
}

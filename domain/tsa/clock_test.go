package tsa_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chronolog/chronolog/domain/authenticode"
	"github.com/chronolog/chronolog/domain/clock"
	"github.com/chronolog/chronolog/domain/events"
	"github.com/chronolog/chronolog/domain/rfc3161"
	"github.com/chronolog/chronolog/domain/tsa"
)

// The service's fixed clock reads 2026-11-22 16:07:45.123456789 UTC.
var serviceNow = time.Date(2026, 11, 22, 16, 7, 45, 123456789, time.UTC)

func TestClockGate(t *testing.T) {
	synced := clock.Assessment{SampleID: "0193a1b2-0000-7000-8000-0000000000aa", At: serviceNow.Add(-4 * time.Second), Synchronised: true, Bound: 2 * time.Millisecond}
	far := synced
	far.Bound = 1500 * time.Millisecond
	for _, tc := range []struct {
		name     string
		gate     bool
		set      *clock.Assessment
		granted  bool
		reason   string
		accuracy time.Duration
		sample   string
	}{
		{name: "unverified clock: granted, no accuracy declared", granted: true},
		{name: "synchronised: granted with the declared accuracy", gate: true, set: &synced, granted: true, accuracy: time.Second, sample: synced.SampleID},
		{name: "never sampled", gate: true, reason: "the clock has not been sampled yet"},
		{name: "outside the accuracy", gate: true, set: &far, reason: "the clock's uncertainty 1.5004s exceeds the declared accuracy 1s"},
		{name: "not synchronised", gate: true, set: &clock.Assessment{SampleID: "x", At: serviceNow, Reason: "0 of 1 sources agree"}, reason: "the clock is not synchronised: 0 of 1 sources agree"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &memRecorder{}
			svc := newServiceWith(t, rec, func(_ *tsa.Config, p *tsa.Ports) {
				if tc.gate {
					p.Gate = clock.NewGate(clock.DefaultPolicy())
					if tc.set != nil {
						p.Gate.Set(*tc.set)
					}
				}
			})
			reply := svc.Handle(context.Background(), tsa.Request{Body: query(t, rfc3161.SHA256, nil), Method: "POST", Path: "/tsa", Source: "127.0.0.1:1"})
			if !reply.Recorded || (reply.Kind == tsa.Granted) != tc.granted {
				t.Fatalf("reply %+v", reply)
			}
			resp := tsp(t, reply)
			evs := rec.streams["tsr-"+reply.Serial]
			_, last, err := events.Decode(evs[len(evs)-1].Payload)
			if err != nil {
				t.Fatal(err)
			}
			if !tc.granted {
				rej := last.(*events.TimestampRejected)
				if resp.FailInfo == nil || *resp.FailInfo != rfc3161.TimeNotAvailable || rej.FailInfo != "timeNotAvailable" || rej.Reason != tc.reason {
					t.Fatalf("answer %+v, recorded %+v", resp, rej)
				}
				return
			}
			info, err := rfc3161.TokenTSTInfo(resp.Token)
			if err != nil {
				t.Fatal(err)
			}
			if got := info.Accuracy.Duration(); got != tc.accuracy {
				t.Fatalf("token accuracy %v, want %v", got, tc.accuracy)
			}
			issued := last.(*events.TimestampIssued)
			if issued.ClockSample != tc.sample {
				t.Fatalf("clock sample %q, want %q", issued.ClockSample, tc.sample)
			}
			if tc.sample != "" && issued.ClockUncertaintyNs != int64(2*time.Millisecond+400*time.Microsecond) {
				t.Fatalf("uncertainty %d", issued.ClockUncertaintyNs)
			}
		})
	}
}

func TestClockGateRejectsAuthenticode(t *testing.T) {
	rec := &memRecorder{}
	svc := newServiceWith(t, rec, func(c *tsa.Config, p *tsa.Ports) {
		cs, err := authenticode.NewSigner(rfc3161.SigningIdentity{Signer: lastKey, Certificate: p.Signer.Certificate()})
		if err != nil {
			t.Fatal(err)
		}
		c.Authenticode = true
		p.Countersigner = cs
		p.Gate = clock.NewGate(clock.DefaultPolicy())
	})
	r := svc.Handle(context.Background(), tsa.Request{Protocol: tsa.ProtocolAuthenticode, Body: authenticode.NewRequest([]byte("sig")), Path: "/tsa"})
	// The client reads a fixed text; the cause is on the record.
	if r.Kind != tsa.Rejected || r.Protocol != tsa.ProtocolAuthenticode || !r.Recorded || r.Rejection.ClientText() != rfc3161.TimeNotAvailable.Text() {
		t.Fatalf("reply %+v", r)
	}
	evs := decode(t, rec, r.Serial)
	if rej := evs[len(evs)-1].(*events.TimestampRejected); rej.FailInfo != "timeNotAvailable" || !strings.Contains(rej.Reason, "not been sampled") {
		t.Fatalf("recorded %+v", rej)
	}
}

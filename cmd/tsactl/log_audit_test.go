package main

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/chronolog/chronolog/adapters/devpki"
	"github.com/chronolog/chronolog/adapters/signer/softkey"
	"github.com/chronolog/chronolog/domain/authenticode"
	"github.com/chronolog/chronolog/domain/events"
	"github.com/chronolog/chronolog/domain/rfc3161"
)

// testTSA is a development PKI: its CA's roots and the TSA's identity.
type testTSA struct {
	roots *x509.CertPool
	id    rfc3161.SigningIdentity
}

func newTestTSA(t *testing.T, now time.Time) testTSA {
	t.Helper()
	f, err := devpki.Ensure(devpki.Options{Dir: t.TempDir(), Organization: "Chronolog tsactl test", Now: now})
	if err != nil {
		t.Fatal(err)
	}
	k, err := softkey.Load(softkey.Config{KeyFile: f.TSAKey, CertFile: f.TSACert, ChainFile: f.Chain}, now)
	if err != nil {
		t.Fatal(err)
	}
	roots, err := loadPool(f.CACert)
	if err != nil {
		t.Fatal(err)
	}
	return testTSA{roots: roots, id: rfc3161.SigningIdentity{Signer: k.Signer(), Certificate: k.Certificate(), Chain: k.Chain()}}
}

// rfc3161Token is a token over "document" at genTime, carrying its
// certificates.
func (p testTSA) rfc3161Token(t *testing.T, genTime time.Time) []byte {
	t.Helper()
	sum := sha256.Sum256([]byte("document"))
	q, err := rfc3161.NewTimeStampReq(rfc3161.SHA256, sum[:], nil, nil, true)
	if err != nil {
		t.Fatal(err)
	}
	info := &rfc3161.TSTInfo{Policy: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 32473, 1}, MessageImprint: q.MessageImprint.Raw,
		SerialNumber: big.NewInt(0x1a), GenTime: genTime}
	der, err := info.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	s, err := rfc3161.NewTokenSigner(p.id)
	if err != nil {
		t.Fatal(err)
	}
	token, err := s.Sign(der, true, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return token
}

// countersignature is an Authenticode countersignature made at signingTime.
func (p testTSA) countersignature(t *testing.T, signingTime time.Time) []byte {
	t.Helper()
	s, err := authenticode.NewSigner(p.id)
	if err != nil {
		t.Fatal(err)
	}
	der, err := s.Sign([]byte("a code signature"), signingTime, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// TestTokenCheckerVerifiesEachKind: tsactl log audit's token check verifies
// an RFC 3161 token and an Authenticode countersignature, each as what its
// event says it is, against the CA given or each token's own certificate.
func TestTokenCheckerVerifiesEachKind(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	ours, stranger := newTestTSA(t, now), newTestTSA(t, now)
	genTime := now.Add(-time.Minute)
	rfc := &events.TimestampIssued{Serial: "1a", GenTime: genTime, Token: ours.rfc3161Token(t, genTime)}
	counter := &events.TimestampIssued{Serial: "1b", GenTime: genTime, Token: ours.countersignature(t, genTime), Protocol: events.ProtocolAuthenticode}

	for name, roots := range map[string]*x509.CertPool{"no --ca": nil, "--ca of the TSA": ours.roots} {
		for _, ti := range []*events.TimestampIssued{rfc, counter} {
			c := &tokenChecker{roots: roots}
			got, err := c.check(ti)
			if err != nil || !got.Equal(genTime) {
				t.Errorf("%s, protocol %q: %s, %v; want %s", name, ti.Protocol, got, err, genTime)
			}
		}
	}

	refused := []struct {
		name  string
		roots *x509.CertPool
		ti    *events.TimestampIssued
		want  string
	}{
		{"an RFC 3161 token against another CA", stranger.roots, rfc, "TSA certificate: x509: certificate signed by unknown authority"},
		{"a countersignature against another CA", stranger.roots, counter, "TSA certificate: x509: certificate signed by unknown authority"},
		{"a countersignature recorded as an RFC 3161 token", nil, &events.TimestampIssued{Token: counter.Token}, "TSTInfo"},
		{"an RFC 3161 token recorded as a countersignature", nil, &events.TimestampIssued{Token: rfc.Token, Protocol: events.ProtocolAuthenticode}, "authenticode response: SignedData version is not 1"},
		{"a token of an unknown protocol", nil, &events.TimestampIssued{Token: rfc.Token, Protocol: "carrier-pigeon"}, `a token of protocol "carrier-pigeon"`},
	}
	for _, tt := range refused {
		c := &tokenChecker{roots: tt.roots}
		if _, err := c.check(tt.ti); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err %v, want one naming %q", tt.name, err, tt.want)
		}
	}
}

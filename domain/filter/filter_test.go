package filter

import (
	"encoding/asn1"
	"math/big"
	"net/netip"
	"testing"

	"github.com/chronolog/chronolog/domain/rfc3161"
)

func req(t *testing.T, alg rfc3161.HashAlgorithm, policy asn1.ObjectIdentifier) Request {
	q, err := rfc3161.NewTimeStampReq(alg, make([]byte, alg.Size), big.NewInt(1), policy, false)
	if err != nil {
		t.Fatal(err)
	}
	return Request{Query: q}
}

func TestChain(t *testing.T) {
	def := asn1.ObjectIdentifier{1, 2, 3}
	chain := Chain{NewHashAllowList(rfc3161.DefaultHashes()), NewPolicyAcceptance([]asn1.ObjectIdentifier{def})}
	tests := []struct {
		name     string
		r        Request
		outcomes int
		denied   *rfc3161.FailInfo
	}{
		{"sha256, no policy", req(t, rfc3161.SHA256, nil), 2, nil},
		{"sha3-512, accepted policy", req(t, rfc3161.SHA3_512, def), 2, nil},
		{"sha1 not listed", req(t, rfc3161.SHA1, nil), 1, ptr(rfc3161.BadAlg)},
		{"unknown policy", req(t, rfc3161.SHA256, asn1.ObjectIdentifier{1, 2, 4}), 2, ptr(rfc3161.UnacceptedPolicy)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := chain.Run(tt.r)
			outcomes, denied := res.Outcomes, res.Denied
			if len(outcomes) != tt.outcomes {
				t.Fatalf("%d decisions, want %d (the chain stops at the first denial)", len(outcomes), tt.outcomes)
			}
			switch {
			case tt.denied == nil && denied != nil:
				t.Fatalf("denied: %+v", denied)
			case tt.denied != nil && (denied == nil || denied.FailInfo != *tt.denied || denied.Reason == ""):
				t.Fatalf("denial %+v, want %s with a reason", denied, *tt.denied)
			}
		})
	}
	allowSHA1 := NewHashAllowList([]rfc3161.HashAlgorithm{rfc3161.SHA1})
	if d := allowSHA1.Decide(req(t, rfc3161.SHA1, nil)); !d.Accepted {
		t.Fatal("a service that lists SHA-1 must accept it")
	}
}

func ptr(f rfc3161.FailInfo) *rfc3161.FailInfo { return &f }

func TestJudgesQuery(t *testing.T) {
	ip, err := NewClientIP([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for f, want := range map[Filter]bool{
		NewHashAllowList(nil): true, NewPolicyAcceptance(nil): true, NewNonceRequired(0): true, NewCertReqForced(): true,
		NewRequestSize(1): false, NewAuthorizeByAuthentication(): false, ip: false,
	} {
		if got := JudgesQuery(f); got != want {
			t.Errorf("%s: JudgesQuery = %v, want %v", f.Name(), got, want)
		}
	}
}

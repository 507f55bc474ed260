package filter

import (
	"crypto/x509"
	"encoding/asn1"
	"math/big"
	"net/netip"
	"regexp"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chronolog/chronolog/domain/rfc3161"
)

// benchRequest is a typical request: SHA-256, a nonce, from an address.
func benchRequest(b testing.TB) Request {
	nonce := new(big.Int).Lsh(big.NewInt(1), 63)
	q, err := rfc3161.NewTimeStampReq(rfc3161.SHA256, make([]byte, 32), nonce, nil, true)
	if err != nil {
		b.Fatal(err)
	}
	return Request{Query: q, Source: "192.0.2.7:50000", SourceIP: netip.MustParseAddr("192.0.2.7"), BodySize: int64(len(q.Raw)), At: epoch}
}

func mustRateLimit(b *testing.B, rate float64, burst, maxClients int) *RateLimit {
	l, err := NewRateLimit(rate, burst, maxClients)
	if err != nil {
		b.Fatal(err)
	}
	return l
}

func BenchmarkFilters(b *testing.B) {
	p := newTestPKI(b)
	base := benchRequest(b)
	withCert := base
	withCert.PeerCertificates = []*x509.Certificate{p.client}
	certClient := base
	certClient.Client = &Identity{Name: p.client.Subject.String(), Method: AuthTLSClientCert, Certificate: p.client}
	withKey := base
	withKey.Bearer = billingToken

	ip, err := NewClientIP(prefixes("10.0.0.0/8", "192.0.2.0/24", "2001:db8::/32"), prefixes("10.66.0.0/16"))
	if err != nil {
		b.Fatal(err)
	}
	keys := make([]APIKey, 100)
	for i := range keys {
		keys[i] = apiKey(string(rune('a'+i%26))+string(rune('a'+i/26)), billingToken+string(rune('a'+i)))
	}
	keys[42] = apiKey("billing", billingToken)
	apiKeys, err := NewAPIKeys(keys)
	if err != nil {
		b.Fatal(err)
	}
	benches := []struct {
		name string
		f    Filter
		r    Request
	}{
		{"hash-allow-list", NewHashAllowList(rfc3161.DefaultHashes()), base},
		{"policy", NewPolicyAcceptance([]asn1.ObjectIdentifier{{1, 2, 3}}), base},
		{"nonce-required", NewNonceRequired(8), base},
		{"cert-req", NewCertReqForced(), base},
		{"request-size", NewRequestSize(4096), base},
		{"client-ip", ip, base},
		{"tls-client-cert", NewTLSClientCert(p.roots, []*x509.Certificate{p.inter.Cert}), withCert},
		{"authorize-by-name", NewAuthorizeByName([]NameRule{
			{Subject: regexp.MustCompile(`^CN=audit,`)},
			{Subject: regexp.MustCompile(`,O=Example$`), SAN: regexp.MustCompile(`^billing\.clients\.example$`)},
		}), certClient},
		{"authorize-by-authentication", NewAuthorizeByAuthentication(), certClient},
		{"api-key", apiKeys, withKey},
		{"rate-limit", mustRateLimit(b, 1e9, 1e6, 10000), base},
	}
	for _, bb := range benches {
		// Time moves on, as the rate limit needs it to, also across the
		// runs the testing package makes of one sub-benchmark.
		r := bb.r
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				r.At = r.At.Add(time.Microsecond)
				if d := bb.f.Decide(r); !d.Accepted {
					b.Fatal(d.Reason)
				}
			}
		})
	}

	// The first verification of a chain, which the cache spares repeats.
	b.Run("tls-client-cert-uncached", func(b *testing.B) {
		b.ReportAllocs()
		r := withCert
		for b.Loop() {
			f := NewTLSClientCert(p.roots, []*x509.Certificate{p.inter.Cert})
			if d := f.Decide(r); !d.Accepted {
				b.Fatal(d.Reason)
			}
		}
	})
	// Clients on every processor at once, 1024 each, all remembered.
	b.Run("rate-limit-parallel", func(b *testing.B) {
		b.ReportAllocs()
		l := mustRateLimit(b, 1e9, 1e6, 10000)
		var workers atomic.Uint32
		b.RunParallel(func(pb *testing.PB) {
			w := byte(workers.Add(1))
			r := base
			for i := uint16(0); pb.Next(); i++ {
				r.At = r.At.Add(time.Microsecond)
				r.SourceIP = netip.AddrFrom4([4]byte{10, w, byte(i >> 8 & 0x03), byte(i)})
				if d := l.Decide(r); !d.Accepted {
					b.Fatal(d.Reason)
				}
			}
		})
	})
	// A flood of new clients while every bucket is in use and none has
	// refilled: each new one evicts another.
	b.Run("rate-limit-flood", func(b *testing.B) {
		b.ReportAllocs()
		l := mustRateLimit(b, 0.001, 1, 10000)
		r := base
		i := uint32(0)
		for b.Loop() {
			i++
			r.SourceIP = netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
			r.At = epoch.Add(time.Duration(i) * time.Microsecond)
			l.Decide(r)
		}
	})
}

// serverChain is the chain tsad runs for examples/bench-five-filters.yaml:
// the service's own hash and policy checks, then the five filters, every
// one of which admits benchRequest with billingToken.
func serverChain(tb testing.TB) Chain {
	ip, err := NewClientIP(prefixes("192.0.2.0/24", "2001:db8::/32"), prefixes("10.66.0.0/16"))
	if err != nil {
		tb.Fatal(err)
	}
	keys, err := NewAPIKeys([]APIKey{apiKey("bench", billingToken)})
	if err != nil {
		tb.Fatal(err)
	}
	limit, err := NewRateLimit(1e9, 1e9, 10000)
	if err != nil {
		tb.Fatal(err)
	}
	return Chain{
		NewHashAllowList(rfc3161.DefaultHashes()),
		NewPolicyAcceptance([]asn1.ObjectIdentifier{{1, 2, 3}}),
		NewRequestSize(4096),
		NewNonceRequired(8),
		ip,
		limit,
		keys,
	}
}

func BenchmarkFiveFilterChain(b *testing.B) {
	chain := serverChain(b)
	r := benchRequest(b)
	r.Bearer = billingToken
	out := make([]Outcome, 0, len(chain))
	b.ReportAllocs()
	for b.Loop() {
		r.At = r.At.Add(time.Microsecond)
		if res := chain.RunInto(out, r); res.Denied != nil {
			b.Fatal(res.Denied.Reason)
		}
	}
}

// The accept path of every filter the benchmark chain runs allocates
// nothing: what a decision records is made when the filter is.
func TestAcceptPathAllocatesNothing(t *testing.T) {
	chain := serverChain(t)
	r := benchRequest(t)
	r.Bearer = billingToken
	out := make([]Outcome, 0, len(chain))
	allocs := testing.AllocsPerRun(1000, func() {
		r.At = r.At.Add(time.Microsecond)
		if res := chain.RunInto(out, r); res.Denied != nil {
			t.Fatal(res.Denied.Reason)
		}
	})
	if allocs != 0 {
		t.Errorf("the chain allocates %v times per request", allocs)
	}
}

package filter

import (
	"crypto/x509"
	"sync"
	"testing"
	"time"

	"github.com/chronolog/chronolog/domain/rfc3161"
)

func TestTLSClientCert(t *testing.T) {
	p := newTestPKI(t)
	configured := NewTLSClientCert(p.roots, []*x509.Certificate{p.inter.Cert})
	presented := NewTLSClientCert(p.roots, nil)
	tests := []struct {
		name   string
		f      *TLSClientCert
		chain  []*x509.Certificate
		at     time.Time
		want   verdict
		leafOK bool
	}{
		{"intermediate configured", configured, []*x509.Certificate{p.client}, epoch, accepts(`"CN=billing,O=Example" verifies to root "CN=Test Root,O=Chronolog test"`), true},
		{"intermediate presented", presented, []*x509.Certificate{p.client, p.inter.Cert}, epoch, accepts("verifies to root"), true},
		{"issued by the root", presented, []*x509.Certificate{p.direct}, epoch, accepts(`"CN=direct,O=Example"`), true},
		{"intermediate missing", presented, []*x509.Certificate{p.client}, epoch, denies(rfc3161.BadRequest, `"CN=billing,O=Example" does not verify: x509: certificate signed by unknown authority`), false},
		{"expired", configured, []*x509.Certificate{p.expired}, epoch, denies(rfc3161.BadRequest, `"CN=stale,O=Example" does not verify: x509: certificate has expired`), false},
		{"not yet valid", configured, []*x509.Certificate{p.client}, epoch.AddDate(0, 0, -2), denies(rfc3161.BadRequest, "certificate has expired or is not yet valid"), false},
		{"other CA", configured, []*x509.Certificate{p.otherClient}, epoch, denies(rfc3161.BadRequest, `"CN=stranger,O=Example" does not verify: x509: certificate signed by unknown authority`), false},
		{"other CA, its root presented", configured, []*x509.Certificate{p.otherClient, p.otherRoot.Cert}, epoch, denies(rfc3161.BadRequest, "unknown authority"), false},
		{"no clientAuth", configured, []*x509.Certificate{p.serverOnly}, epoch, denies(rfc3161.BadRequest, `"CN=webserver,O=Example" does not verify: x509: certificate specifies an incompatible key usage`), false},
		{"no certificate", configured, nil, epoch, denies(rfc3161.BadRequest, "no TLS client certificate presented"), false},
		{"no time", configured, []*x509.Certificate{p.client}, time.Time{}, denies(rfc3161.TimeNotAvailable, "no reception time"), false},
		{"nil roots trust nothing", NewTLSClientCert(nil, []*x509.Certificate{p.inter.Cert}), []*x509.Certificate{p.client}, epoch, denies(rfc3161.BadRequest, "unknown authority"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.f.Name() != "tls-client-cert" {
				t.Fatal(tt.f.Name())
			}
			// Twice: the second answer may come from the cache and must agree.
			for range 2 {
				d := tt.f.Decide(Request{PeerCertificates: tt.chain, At: tt.at})
				check(t, d, tt.want)
				if !tt.leafOK {
					continue
				}
				leaf := tt.chain[0]
				if d.Identity == nil || d.Identity.Name != leaf.Subject.String() || d.Identity.Method != AuthTLSClientCert || d.Identity.Certificate != leaf {
					t.Fatalf("identity %+v, want %s by %s", d.Identity, leaf.Subject, AuthTLSClientCert)
				}
			}
		})
	}
}

// TestTLSClientCertCacheKeepsValidity shows a remembered chain is still
// judged by the request's time: the cache spares signature checks, not
// the validity period.
func TestTLSClientCertCacheKeepsValidity(t *testing.T) {
	p := newTestPKI(t)
	f := NewTLSClientCert(p.roots, []*x509.Certificate{p.inter.Cert})
	chain := []*x509.Certificate{p.client}
	steps := []struct {
		at   time.Time
		want verdict
	}{
		{epoch, accepts("verifies")},
		{epoch.Add(time.Hour), accepts("verifies")},
		{p.client.NotAfter, accepts("verifies")},
		{p.client.NotAfter.Add(time.Second), denies(rfc3161.BadRequest, "expired")},
		{p.client.NotBefore.Add(-time.Second), denies(rfc3161.BadRequest, "not yet valid")},
		{epoch, accepts("verifies")},
	}
	for _, s := range steps {
		check(t, f.Decide(Request{PeerCertificates: chain, At: s.at}), s.want)
	}
	if len(f.verified) != 1 {
		t.Fatalf("%d chains remembered, want 1", len(f.verified))
	}
	// The same leaf with another chain is another key: its verdict is its own.
	check(t, f.Decide(Request{PeerCertificates: []*x509.Certificate{p.client, p.otherRoot.Cert}, At: epoch}), accepts("verifies"))
	if len(f.verified) != 2 {
		t.Fatalf("%d chains remembered, want 2", len(f.verified))
	}
}

func TestTLSClientCertCacheIsBounded(t *testing.T) {
	p := newTestPKI(t)
	f := NewTLSClientCert(p.roots, []*x509.Certificate{p.inter.Cert})
	// Distinct presented chains stand in for distinct clients.
	filler := []*x509.Certificate{p.otherRoot.Cert, p.otherClient, p.expired, p.serverOnly, p.direct}
	n := 0
	for i := range filler {
		for j := range filler {
			for k := range filler {
				for l := range filler {
					for m := range filler {
						chain := []*x509.Certificate{p.client, filler[i], filler[j], filler[k], filler[l], filler[m]}
						check(t, f.Decide(Request{PeerCertificates: chain, At: epoch}), accepts("verifies"))
						n++
					}
				}
			}
		}
	}
	if n <= verifiedCacheSize || len(f.verified) != verifiedCacheSize || len(f.order) != verifiedCacheSize {
		t.Fatalf("%d chains verified, %d remembered (%d in order), want at most %d", n, len(f.verified), len(f.order), verifiedCacheSize)
	}
}

func TestTLSClientCertConcurrent(t *testing.T) {
	p := newTestPKI(t)
	f := NewTLSClientCert(p.roots, []*x509.Certificate{p.inter.Cert})
	chains := [][]*x509.Certificate{{p.client}, {p.direct}, {p.expired}, {p.client, p.inter.Cert}}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				c := chains[(g+i)%len(chains)]
				d := f.Decide(Request{PeerCertificates: c, At: epoch})
				if d.Accepted == (c[0] == p.expired) {
					t.Errorf("%s: %+v", c[0].Subject, d)
				}
			}
		})
	}
	wg.Wait()
}

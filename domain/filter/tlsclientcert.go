package filter

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"fmt"
	"sync"
	"time"

	"github.com/chronolog/chronolog/domain/rfc3161"
)

// verifiedCacheSize bounds the chains TLSClientCert remembers. A service
// has few distinct clients; past that, the oldest entry makes room.
const verifiedCacheSize = 1024

// TLSClientCert authenticates the client by its TLS certificate, verified
// against the service's own roots rather than trusting whatever the
// transport did. It establishes an Identity named by the subject DN.
//
// Successful verifications are remembered, keyed by the SHA-256 of the
// presented chain, with the validity window of the chain that verified:
// inside that window the same chain verifies again (the window is the
// only input that changes between requests), so a repeat costs a hash
// instead of signature checks. Failures are not remembered: a chain that
// is not yet valid may become so. Roots added with a constraint
// (CertPool.AddCertWithConstraint) must not depend on anything but the
// chain, or the cache would outlive their answer.
type TLSClientCert struct {
	roots         *x509.CertPool
	intermediates *x509.CertPool

	mu       sync.Mutex
	verified map[[32]byte]verifiedChain
	order    [][32]byte // insertion order, to evict the oldest
	next     int
}

type verifiedChain struct {
	notBefore, notAfter time.Time
	subject, reason     string
}

// NewTLSClientCert returns the filter. A nil roots pool verifies nothing:
// falling back to the system roots, as crypto/x509 would, would admit
// anyone with a publicly trusted certificate.
func NewTLSClientCert(roots *x509.CertPool, intermediates []*x509.Certificate) *TLSClientCert {
	if roots == nil {
		roots = x509.NewCertPool()
	}
	pool := x509.NewCertPool()
	for _, c := range intermediates {
		if c != nil {
			pool.AddCert(c)
		}
	}
	return &TLSClientCert{
		roots:         roots,
		intermediates: pool,
		verified:      make(map[[32]byte]verifiedChain),
	}
}

func (*TLSClientCert) Name() string { return "tls-client-cert" }

func (t *TLSClientCert) Decide(r Request) Decision {
	if len(r.PeerCertificates) == 0 || r.PeerCertificates[0] == nil {
		return Deny(rfc3161.BadRequest, TextClientCertRequired, "no TLS client certificate presented")
	}
	// crypto/x509 reads the machine clock when CurrentTime is zero.
	if r.At.IsZero() {
		return Deny(rfc3161.TimeNotAvailable, "", "the request has no reception time to check the client certificate against")
	}
	leaf := r.PeerCertificates[0]
	key := chainKey(r.PeerCertificates)

	t.mu.Lock()
	v, ok := t.verified[key]
	t.mu.Unlock()
	if ok && !r.At.Before(v.notBefore) && !r.At.After(v.notAfter) {
		return t.accept(leaf, v)
	}

	pool := t.intermediates
	if len(r.PeerCertificates) > 1 {
		pool = t.intermediates.Clone()
		for _, c := range r.PeerCertificates[1:] {
			if c != nil {
				pool.AddCert(c)
			}
		}
	}
	chains, err := leaf.Verify(x509.VerifyOptions{
		Roots:         t.roots,
		Intermediates: pool,
		CurrentTime:   r.At,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		return Deny(rfc3161.BadRequest, TextClientCertRefused, fmt.Sprintf("TLS client certificate %q does not verify: %v", leaf.Subject.String(), err))
	}
	chain := chains[0]
	v = verifiedChain{notBefore: chain[0].NotBefore, notAfter: chain[0].NotAfter, subject: leaf.Subject.String()}
	for _, c := range chain[1:] {
		if c.NotBefore.After(v.notBefore) {
			v.notBefore = c.NotBefore
		}
		if c.NotAfter.Before(v.notAfter) {
			v.notAfter = c.NotAfter
		}
	}
	v.reason = fmt.Sprintf("TLS client certificate %q verifies to root %q", v.subject, chain[len(chain)-1].Subject.String())
	t.remember(key, v)
	return t.accept(leaf, v)
}

func (*TLSClientCert) accept(leaf *x509.Certificate, v verifiedChain) Decision {
	d := Accept(v.reason)
	d.Identity = &Identity{Name: v.subject, Method: AuthTLSClientCert, Certificate: leaf}
	return d
}

func (t *TLSClientCert) remember(key [32]byte, v verifiedChain) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.verified[key]; !ok {
		if len(t.order) < verifiedCacheSize {
			t.order = append(t.order, key)
		} else {
			delete(t.verified, t.order[t.next])
			t.order[t.next] = key
			t.next = (t.next + 1) % verifiedCacheSize
		}
	}
	t.verified[key] = v
}

// chainKey digests the presented chain. The intermediates are part of the
// key because they decide whether the leaf verifies at all; each
// certificate is length-prefixed so no two chains share an encoding.
func chainKey(certs []*x509.Certificate) [32]byte {
	h := sha256.New()
	var n [4]byte
	for _, c := range certs {
		if c == nil {
			continue
		}
		binary.BigEndian.PutUint32(n[:], uint32(len(c.Raw)))
		h.Write(n[:])
		h.Write(c.Raw)
	}
	var k [32]byte
	h.Sum(k[:0])
	return k
}

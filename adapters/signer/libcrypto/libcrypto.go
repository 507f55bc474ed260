// Package libcrypto signs with OpenSSL 3's libcrypto, loaded at run time
// (dlopen of libcrypto.so.3, present wherever the openssl command is), for
// speed: on the development machine OpenSSL signs RSA-2048 about four times
// and ECDSA P-256 about 1.6 times as fast as Go's crypto, and signing is
// most of what issuing a token costs. Building needs no OpenSSL headers;
// where libcrypto is missing, New says so and the caller keeps Go's signer.
//
// A Signer holds a software key, like softkey: it changes where the
// arithmetic runs, not where the key lives. Every new Signer proves itself
// first: it signs a test digest with each hash it serves and checks the
// signature with Go's verifier, so a broken or mismatched library is
// refused at start rather than discovered by a client.
package libcrypto

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
)

// Available reports whether OpenSSL 3's libcrypto can be used here.
func Available() error { return load() }

// Signer is a crypto.Signer backed by libcrypto. It is safe for concurrent
// use and must be closed to free the key.
type Signer struct {
	goKey crypto.Signer // for Public, and for PSS, which the TSA never asks for
	key   *pkey
	isRSA bool
	// sigMax bounds a signature's length.
	sigMax int
	ctxs   map[crypto.Hash]*ctxPool
	mu     sync.Mutex
	closed bool
}

var _ crypto.Signer = (*Signer)(nil)

// digestNames are OpenSSL's names of the digests a TSA signs with.
var digestNames = map[crypto.Hash]string{
	crypto.SHA256: "SHA256",
	crypto.SHA384: "SHA384",
	crypto.SHA512: "SHA512",
}

// New loads priv (an RSA or ECDSA P-256/P-384/P-521 key) into libcrypto.
func New(priv crypto.Signer) (*Signer, error) {
	if err := load(); err != nil {
		return nil, err
	}
	s := &Signer{goKey: priv, ctxs: map[crypto.Hash]*ctxPool{}}
	switch k := priv.(type) {
	case *rsa.PrivateKey:
		s.isRSA = true
		s.sigMax = k.Size()
	case *ecdsa.PrivateKey:
		switch k.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
		default:
			return nil, fmt.Errorf("libcrypto: curve %s is not served", k.Curve.Params().Name)
		}
		// DER SEQUENCE of two INTEGERs, each at most one octet longer
		// than the order, with their headers.
		n := (k.Curve.Params().BitSize + 7) / 8
		s.sigMax = 2*(n+1) + 2*3 + 4
	default:
		return nil, fmt.Errorf("libcrypto: %T keys are not served", priv)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("libcrypto: encode key: %w", err)
	}
	s.key, err = newPKey(der)
	clear(der)
	if err != nil {
		return nil, err
	}
	for h := range digestNames {
		s.ctxs[h] = &ctxPool{free: make(chan *signCtx, 256)}
	}
	if err := s.selfTest(); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Public is the key's public half.
func (s *Signer) Public() crypto.PublicKey { return s.goKey.Public() }

// Sign signs digest, made with opts.HashFunc(): PKCS#1 v1.5 for RSA, an
// ASN.1 ECDSA-Sig-Value for ECDSA, as crypto/rsa and crypto/ecdsa do. rand
// is not used: OpenSSL draws from its own CSPRNG (Go 1.26's crypto also
// ignores the reader it is handed).
func (s *Signer) Sign(rand io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if _, pss := opts.(*rsa.PSSOptions); pss {
		return s.goKey.Sign(rand, digest, opts)
	}
	h := opts.HashFunc()
	pool, ok := s.ctxs[h]
	if !ok {
		return nil, fmt.Errorf("libcrypto: digest %v is not served", h)
	}
	if len(digest) != h.Size() || len(digest) == 0 {
		return nil, fmt.Errorf("libcrypto: %v digest of %d bytes", h, len(digest))
	}
	ctx, err := s.get(pool, h)
	if err != nil {
		return nil, err
	}
	sig := make([]byte, s.sigMax)
	n, err := ctx.sign(sig, digest)
	if err != nil {
		// A context that failed may hold state from the failure.
		ctx.free()
		return nil, err
	}
	s.put(pool, ctx)
	return sig[:n:n], nil
}

// SignFor measures OpenSSL's own speed with the key: in threads
// goroutines (each on a thread of its own while it signs), EVP_PKEY_sign
// over a SHA-256 digest in a loop in C for d, with nothing around it (no
// pool, no allocation, no cgo call per signature). It returns how many
// signatures were made; the caller measures the CPU time they took.
func (s *Signer) SignFor(threads int, d time.Duration) (int64, error) {
	if threads <= 0 {
		return 0, fmt.Errorf("libcrypto: %d threads", threads)
	}
	digest := sha256.Sum256([]byte("chronolog signing speed"))
	pool := s.ctxs[crypto.SHA256]
	counts := make([]int64, threads)
	errs := make([]error, threads)
	var wg sync.WaitGroup
	for i := range threads {
		wg.Go(func() {
			ctx, err := s.get(pool, crypto.SHA256)
			if err != nil {
				errs[i] = err
				return
			}
			counts[i], errs[i] = ctx.signFor(make([]byte, s.sigMax), digest[:], d)
			if errs[i] != nil {
				ctx.free()
				return
			}
			s.put(pool, ctx)
		})
	}
	wg.Wait()
	var n int64
	for _, c := range counts {
		n += c
	}
	return n, errors.Join(errs...)
}

// Close frees the key and the pooled contexts. Signing after Close fails.
func (s *Signer) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	for _, p := range s.ctxs {
		p.drain()
	}
	if s.key != nil {
		s.key.free()
	}
	return nil
}

// ctxPool keeps initialised signing contexts for one digest: making one
// costs OpenSSL 3 a provider lookup, far more than a signature's setup.
type ctxPool struct{ free chan *signCtx }

func (p *ctxPool) drain() {
	for {
		select {
		case c := <-p.free:
			c.free()
		default:
			return
		}
	}
}

func (s *Signer) get(p *ctxPool, h crypto.Hash) (*signCtx, error) {
	select {
	case c := <-p.free:
		return c, nil
	default:
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errors.New("libcrypto: signer closed")
	}
	return newSignCtx(s.key, digestNames[h], s.isRSA)
}

func (s *Signer) put(p *ctxPool, c *signCtx) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		c.free()
		return
	}
	select {
	case p.free <- c:
	default:
		c.free()
	}
}

// selfTest signs a digest with every served hash and verifies the result
// with Go; RSA PKCS#1 v1.5 is deterministic, so it must also equal Go's
// own signature byte for byte.
func (s *Signer) selfTest() error {
	msg := []byte("chronolog libcrypto self-test")
	for h := range digestNames {
		var digest []byte
		switch h {
		case crypto.SHA256:
			d := sha256.Sum256(msg)
			digest = d[:]
		case crypto.SHA384:
			d := sha512.Sum384(msg)
			digest = d[:]
		case crypto.SHA512:
			d := sha512.Sum512(msg)
			digest = d[:]
		}
		sig, err := s.Sign(nil, digest, h)
		if err != nil {
			return fmt.Errorf("libcrypto: self-test with %v: %w", h, err)
		}
		switch pub := s.Public().(type) {
		case *rsa.PublicKey:
			if err := rsa.VerifyPKCS1v15(pub, h, digest, sig); err != nil {
				return fmt.Errorf("libcrypto: self-test with %v: Go does not verify OpenSSL's signature: %w", h, err)
			}
			goSig, err := s.goKey.Sign(nil, digest, h)
			if err != nil || string(goSig) != string(sig) {
				return fmt.Errorf("libcrypto: self-test with %v: OpenSSL's PKCS#1 v1.5 signature differs from Go's", h)
			}
		case *ecdsa.PublicKey:
			if !ecdsa.VerifyASN1(pub, digest, sig) {
				return fmt.Errorf("libcrypto: self-test with %v: Go does not verify OpenSSL's signature", h)
			}
		}
	}
	return nil
}

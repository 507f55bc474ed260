package pkcs11

import (
	"crypto"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"time"

	p11 "github.com/miekg/pkcs11"
)

// SignFor measures the token's own speed, the most this token signs on
// this machine: on sessions sessions of its own (0: the pool's size), each
// in a goroutine of its own, C_SignInit and C_Sign in a loop in C for d,
// with nothing around them (no pool, no allocation, no cgo call per
// signature). Each signs what Sign signs for a SHA-256 digest (an Ed25519
// key, a 32-byte message). It returns how many signatures were made; the
// caller measures the CPU time they took. The key's pool is untouched,
// but the module cannot be initialised anew meanwhile: a key that must
// reconnect waits for the end.
func (k *Key) SignFor(sessions int, d time.Duration) (int64, error) {
	if sessions <= 0 {
		sessions = k.size
	}
	digest := sha256.Sum256([]byte("chronolog token speed"))
	opts := crypto.SignerOpts(crypto.SHA256)
	if KeyTypeOf(k.pub) == Ed25519 {
		opts = crypto.Hash(0)
	}
	r, err := k.request(digest[:], opts)
	if err != nil {
		return 0, err
	}
	var obj p11.ObjectHandle
	if err := k.withSession(func(_ *p11.Ctx, s *session) error { obj = s.obj; return nil }); err != nil {
		return 0, err
	}
	m := k.mod
	m.mu.RLock()
	defer m.mu.RUnlock()
	k.mu.Lock()
	slot := k.slot
	k.mu.Unlock()
	hs := make([]p11.SessionHandle, 0, sessions)
	defer func() {
		for _, h := range hs {
			_ = m.ctx.CloseSession(h)
		}
	}()
	for range sessions {
		h, err := m.ctx.OpenSession(slot, p11.CKF_SERIAL_SESSION)
		if err != nil {
			return 0, fmt.Errorf("pkcs11: speed of key %s: C_OpenSession: %w", k.cfg.selector(), err)
		}
		hs = append(hs, h)
	}
	counts := make([]int64, sessions)
	errs := make([]error, sessions)
	var wg sync.WaitGroup
	for i, h := range hs {
		wg.Go(func() {
			in := r.input
			if r.prefix != nil {
				var buf [digestInfoMax]byte
				in = append(append(buf[:0], r.prefix...), r.input...)
			}
			counts[i], errs[i] = m.fns.signFor(h, obj, r.mech, in, make([]byte, r.sigLen), d)
		})
	}
	wg.Wait()
	var n int64
	for _, c := range counts {
		n += c
	}
	if err := errors.Join(errs...); err != nil {
		return n, fmt.Errorf("pkcs11: speed of key %s: %w", k.cfg.selector(), err)
	}
	return n, nil
}

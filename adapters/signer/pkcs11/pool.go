package pkcs11

import (
	"fmt"
	"sync"
	"time"

	p11 "github.com/miekg/pkcs11"
)

// withSession runs op on a session of the pool: it fails at once while
// the key is unusable, and with ErrBusy when no session comes free within
// the wait. An error of op that means the token is gone loses the key.
func (k *Key) withSession(op func(*p11.Ctx, *session) error) error {
	k.mu.Lock()
	if !k.up {
		err := k.unavailableLocked()
		k.mu.Unlock()
		return err
	}
	down := k.down
	k.mu.Unlock()
	var deadline time.Time // set by the first wait
	for {
		s, err := k.take(down, &deadline)
		if err != nil {
			return err
		}
		if used, err := k.use(s, op); used {
			return err
		}
	}
}

// take takes a session from the pool, waiting until *deadline (k.wait
// from the first wait, which sets it) for one to come free.
func (k *Key) take(down <-chan struct{}, deadline *time.Time) (*session, error) {
	select {
	case s := <-k.pool:
		return s, nil
	default:
	}
	if deadline.IsZero() {
		*deadline = time.Now().Add(k.wait)
	}
	timer := timers.Get().(*time.Timer)
	timer.Reset(time.Until(*deadline))
	defer func() {
		timer.Stop()
		timers.Put(timer)
	}()
	select {
	case s := <-k.pool:
		return s, nil
	case <-down:
		k.mu.Lock()
		defer k.mu.Unlock()
		return nil, k.unavailableLocked()
	case <-timer.C:
		return nil, fmt.Errorf("%w: none of the %d sessions came free within %v", ErrBusy, k.size, k.wait)
	}
}

// timers are reused by the Sign calls that wait for a session: with more
// requests in flight than sessions, most of them wait.
var timers = sync.Pool{New: func() any {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return t
}}

// use runs op on s if s is current; if not, it disposes of s and reports
// that op did not run.
func (k *Key) use(s *session, op func(*p11.Ctx, *session) error) (bool, error) {
	m := k.mod
	m.mu.RLock()
	defer m.mu.RUnlock()
	if s.gen != m.gen {
		// Opened before the module was initialised anew: the handle may
		// be another key's session now, so it is dropped uncalled.
		return false, nil
	}
	k.mu.Lock()
	current := k.up && s.epoch == k.epoch
	k.mu.Unlock()
	if !current {
		_ = m.ctx.CloseSession(s.h)
		return false, nil
	}
	err := op(m.ctx, s)
	if err != nil && isGone(err) {
		k.lose(s.epoch, err.Error())
		// The session goes with the binding: the watcher reconnects.
		return true, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	k.put(m, s)
	return true, err
}

// put returns s to the pool, or closes it when its binding is over. The
// caller holds m.mu.
func (k *Key) put(m *module, s *session) {
	k.mu.Lock()
	ok := k.up && s.epoch == k.epoch
	if ok {
		select {
		case k.pool <- s:
		default:
			ok = false
		}
	}
	k.mu.Unlock()
	if !ok {
		_ = m.ctx.CloseSession(s.h)
	}
}

package pkcs11

import (
	"errors"
	"fmt"
	"time"

	p11 "github.com/miekg/pkcs11"
)

// Reconnection starts at once, then backs off from firstRetry, doubling
// up to lastRetry: quick after a blip, gentle on a device that is away.
const (
	firstRetry = 100 * time.Millisecond
	lastRetry  = 5 * time.Second
)

// gone are the errors that mean the session, the token or the device is
// gone, rather than that the request was wrong: the key is lost and
// reconnects.
var gone = map[p11.Error]bool{
	p11.CKR_SESSION_HANDLE_INVALID:   true,
	p11.CKR_SESSION_CLOSED:           true,
	p11.CKR_USER_NOT_LOGGED_IN:       true,
	p11.CKR_DEVICE_REMOVED:           true,
	p11.CKR_DEVICE_ERROR:             true,
	p11.CKR_TOKEN_NOT_PRESENT:        true,
	p11.CKR_TOKEN_NOT_RECOGNIZED:     true,
	p11.CKR_OBJECT_HANDLE_INVALID:    true,
	p11.CKR_KEY_HANDLE_INVALID:       true,
	p11.CKR_GENERAL_ERROR:            true,
	p11.CKR_FUNCTION_FAILED:          true,
	p11.CKR_CRYPTOKI_NOT_INITIALIZED: true,
	p11.CKR_SLOT_ID_INVALID:          true,
}

func isGone(err error) bool {
	var code p11.Error
	return errors.As(err, &code) && gone[code]
}

// needsReinit says whether a failed binding may succeed after the module
// is initialised anew: when the token is not (or no longer) offered, or
// the module itself fails. A wrong PIN or a changed key would not.
func needsReinit(err error) bool {
	var missing *tokenMissingError
	return errors.As(err, &missing) || isGone(err)
}

// lose marks the key unusable, if it is still in the binding epoch that
// failed, and wakes the watcher. A failure of an older binding's session
// is stale news.
func (k *Key) lose(epoch uint64, cause string) {
	k.mu.Lock()
	if !k.up || k.closed || epoch != k.epoch {
		k.mu.Unlock()
		return
	}
	k.up = false
	k.cause = cause
	close(k.down)
	k.mu.Unlock()
	select {
	case k.lost <- struct{}{}:
	default:
	}
}

// watch reports each loss, reconnects, and reports the return, in that
// order, from one goroutine, until the key is closed.
func (k *Key) watch() {
	defer close(k.done)
	for {
		select {
		case <-k.stop:
			return
		case <-k.lost:
		}
		k.mu.Lock()
		cause := k.cause
		k.mu.Unlock()
		k.notify(Change{Available: false, Cause: cause})
		if !k.reconnect() {
			return
		}
		k.notify(Change{Available: true})
	}
}

func (k *Key) notify(c Change) {
	if k.cfg.Observe != nil {
		k.cfg.Observe(c)
	}
}

// reconnect binds the key again, with backoff, until it succeeds (true)
// or the key is closed (false).
func (k *Key) reconnect() bool {
	k.drain()
	delay := firstRetry
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-k.stop:
			return false
		case <-timer.C:
		}
		err := k.tryBind()
		if err == nil {
			return true
		}
		k.mu.Lock()
		k.retry = err.Error()
		k.mu.Unlock()
		timer.Reset(delay)
		delay = min(2*delay, lastRetry)
	}
}

// tryBind binds once, and once more after initialising the module anew
// when that may help.
func (k *Key) tryBind() error {
	m := k.mod
	m.mu.RLock()
	seen := m.gen
	b, err := k.bind(m)
	if err == nil {
		k.attach(m, b)
	}
	m.mu.RUnlock()
	if err == nil || !needsReinit(err) {
		return err
	}
	m.reinit(seen)
	m.mu.RLock()
	defer m.mu.RUnlock()
	if b, err = k.bind(m); err != nil {
		return err
	}
	k.attach(m, b)
	return nil
}

// unavailableLocked is the error of a Sign on a key that is not usable; the caller holds k.mu.
func (k *Key) unavailableLocked() error {
	switch {
	case k.closed:
		return fmt.Errorf("%w: the key is closed", ErrUnavailable)
	case k.retry != "":
		return fmt.Errorf("%w: lost (%s); reconnecting: %s", ErrUnavailable, k.cause, k.retry)
	}
	return fmt.Errorf("%w: lost (%s); reconnecting", ErrUnavailable, k.cause)
}

package pkcs11

import (
	"crypto"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"sync"
	"time"

	p11 "github.com/miekg/pkcs11"
)

// Key is a private key on a token, signing through a pool of logged-in
// sessions. It is a crypto.Signer, safe for concurrent use.
type Key struct {
	cfg  Config // with the PIN, to log in again after an outage
	mod  *module
	size int
	wait time.Duration

	// Read from the token by Open; a reconnection refuses a key whose
	// public key is not pub.
	pub   crypto.PublicKey
	id    []byte
	label string
	// ecSize is the length of r and of s of an ECDSA key, 0 for others:
	// Curve.Params on every Sign showed in the profile.
	ecSize int

	pool chan *session

	mu     sync.Mutex
	up     bool
	closed bool
	epoch  uint64        // counts bindings; a session of an older one is not returned to the pool
	down   chan struct{} // closed while the key is unusable
	slot   uint
	cause  string // why the key was lost
	retry  string // why the last reconnection failed

	lost chan struct{} // wakes the watcher; one loss at a time, so one slot
	stop chan struct{}
	done chan struct{}
}

// session is a logged-in session, and the handle the private key has in
// it, as of one generation of the module and one binding of the key.
type session struct {
	h     p11.SessionHandle
	obj   p11.ObjectHandle
	gen   uint64
	epoch uint64

	// Scratch space of the one goroutine using the session: what C_Sign
	// signs when the adapter builds it (a DigestInfo), and an ECDSA r||s
	// before it becomes DER.
	in  [digestInfoMax]byte
	raw [ecdsaRawMax]byte
}

// binding is what bind sets up: the sessions of a pool and what the key
// said of itself.
type binding struct {
	slot     uint
	sessions []*session
	ident    identity
}

// Open loads the module (shared by every Key on the same module path),
// finds the token by its label, opens and logs in the session pool, and
// finds the private key and its public key.
func Open(cfg Config) (*Key, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	m, fresh, err := acquire(cfg.Module)
	if err != nil {
		return nil, err
	}
	k := &Key{
		cfg: cfg, mod: m, size: cfg.poolSize(), wait: cfg.wait(),
		pool: make(chan *session, cfg.poolSize()),
		down: make(chan struct{}),
		lost: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
	}
	close(k.down)
	// Registered before it binds, so that a re-initialisation in between
	// cannot leave it with sessions of a generation gone by.
	m.register(k)
	err = m.onToken(fresh, func() error {
		b, err := k.bind(m)
		if err != nil {
			return err
		}
		k.pub, k.id, k.label = b.ident.pub, b.ident.id, b.ident.label
		if ec, ok := k.pub.(*ecdsa.PublicKey); ok {
			k.ecSize = (ec.Curve.Params().BitSize + 7) / 8
		}
		k.attach(m, b)
		return nil
	})
	if err != nil {
		m.unregister(k)
		release(m)
		return nil, fmt.Errorf("pkcs11: open key %s on token %q: %w", cfg.selector(), cfg.Token, err)
	}
	go k.watch()
	return k, nil
}

// Public is the key's public key: *ecdsa.PublicKey, *rsa.PublicKey or
// ed25519.PublicKey.
func (k *Key) Public() crypto.PublicKey { return k.pub }

// ID is the key's CKA_ID, as the token stores it.
func (k *Key) ID() []byte { return append([]byte(nil), k.id...) }

// Label is the key's CKA_LABEL, as the token stores it.
func (k *Key) Label() string { return k.label }

// Sessions is the size of the session pool.
func (k *Key) Sessions() int { return k.size }

// Close closes the key's sessions; the module is finalised when the last
// Key on it closes. Sign fails with ErrUnavailable afterwards.
func (k *Key) Close() error {
	k.mu.Lock()
	if k.closed {
		k.mu.Unlock()
		return nil
	}
	k.closed = true
	if k.up {
		k.up = false
		close(k.down)
	}
	k.mu.Unlock()
	close(k.stop)
	<-k.done
	k.mod.unregister(k)
	k.drain()
	release(k.mod)
	return nil
}

// bind finds the token, opens the pool's sessions, logs in and finds the
// key; once the key was opened, it refuses a key whose public key is not
// the one opened, for a key swapped on the token must never sign. The
// caller holds m.mu.
func (k *Key) bind(m *module) (binding, error) {
	slot, err := findToken(m.ctx, k.cfg.Token)
	if err != nil {
		return binding{}, err
	}
	b := binding{slot: slot}
	fail := func(err error) (binding, error) {
		for _, s := range b.sessions {
			_ = m.ctx.CloseSession(s.h) // a session that will not close is the module's to reclaim
		}
		return binding{}, err
	}
	first, err := m.ctx.OpenSession(slot, p11.CKF_SERIAL_SESSION)
	if err != nil {
		return fail(fmt.Errorf("C_OpenSession: %w", err))
	}
	b.sessions = append(b.sessions, &session{h: first, gen: m.gen})
	if err := login(m.ctx, first, k.cfg.Token, k.cfg.PIN); err != nil {
		return fail(err)
	}
	obj, err := findPrivateKey(m.ctx, first, k.cfg.Token, k.cfg.KeyLabel, k.cfg.KeyID)
	if err != nil {
		return fail(err)
	}
	if b.ident, err = readIdentity(m.ctx, first, obj); err != nil {
		return fail(err)
	}
	if k.pub != nil && !samePublic(k.pub, b.ident.pub) {
		return fail(fmt.Errorf("%w: token %q now holds a different key %s", errKeyChanged, k.cfg.Token, k.cfg.selector()))
	}
	b.sessions[0].obj = obj
	for len(b.sessions) < k.size {
		h, err := m.ctx.OpenSession(slot, p11.CKF_SERIAL_SESSION)
		if err != nil {
			return fail(fmt.Errorf("C_OpenSession %d of %d: %w", len(b.sessions)+1, k.size, err))
		}
		// Object handles belong to the application, not the session.
		b.sessions = append(b.sessions, &session{h: h, obj: obj, gen: m.gen})
	}
	return b, nil
}

// errKeyChanged refuses a key that is not the one opened.
var errKeyChanged = errors.New("the key's public key changed: refusing to sign with another key")

// attach puts a binding's sessions in the pool, in place of whatever is
// left there, and makes the key usable. It reports whether the key was
// unusable before. The caller holds m.mu.
func (k *Key) attach(m *module, b binding) (wasDown bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed {
		for _, s := range b.sessions {
			_ = m.ctx.CloseSession(s.h)
		}
		return false
	}
	k.drainLocked(m)
	k.epoch++
	for _, s := range b.sessions {
		s.epoch = k.epoch
		select {
		case k.pool <- s:
		default: // not while the pool holds size sessions and was just emptied
			_ = m.ctx.CloseSession(s.h)
		}
	}
	k.slot = b.slot
	k.retry = ""
	wasDown = !k.up
	if wasDown {
		k.up = true
		k.down = make(chan struct{})
	}
	return wasDown
}

// rebind replaces the sessions of a usable key after the module was
// initialised anew (initErr when that failed); a key that cannot bind is
// lost. The caller holds m.mu for writing.
func (k *Key) rebind(m *module, initErr error) {
	k.mu.Lock()
	up, epoch := k.up, k.epoch
	k.mu.Unlock()
	if !up {
		return
	}
	err := initErr
	if err == nil {
		var b binding
		if b, err = k.bind(m); err == nil {
			k.attach(m, b)
			return
		}
	}
	k.lose(epoch, fmt.Sprintf("the module was initialised anew to recover a token, and this key did not come back: %v", err))
}

// drain closes the sessions in the pool.
func (k *Key) drain() {
	m := k.mod
	m.mu.RLock()
	defer m.mu.RUnlock()
	k.mu.Lock()
	defer k.mu.Unlock()
	k.drainLocked(m)
}

// drainLocked empties the pool; the caller holds m.mu and k.mu. A session
// of another generation is dropped without a call: its handle may be
// another's now.
func (k *Key) drainLocked(m *module) {
	for {
		select {
		case s := <-k.pool:
			if s.gen == m.gen {
				_ = m.ctx.CloseSession(s.h) // it may be gone with the token already
			}
		default:
			return
		}
	}
}

package pkcs11

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"

	p11 "github.com/miekg/pkcs11"
)

// module is one PKCS#11 library, shared by every Key and every
// administrative call of the process that names it: C_Initialize is once
// per process per library, so its life is reference-counted.
type module struct {
	path string
	ctx  *p11.Ctx
	fns  functions // the same library's C_SignInit and C_Sign, called directly

	// mu orders every call into the library (RLock) against C_Finalize
	// and C_Initialize (Lock). Session and object handles from before a
	// re-initialisation may name another key's session or object after
	// it, so a session remembers the generation it was opened in and is
	// dropped, never used, once gen has moved on.
	mu   sync.RWMutex
	gen  uint64
	keys map[*Key]struct{}

	refs int // guarded by modules
}

var modules = struct {
	sync.Mutex
	byPath map[string]*module
}{byPath: map[string]*module{}}

// acquire loads and initialises the library at path, or takes another
// reference to it; fresh says it was initialised for this caller.
func acquire(path string) (m *module, fresh bool, err error) {
	if path == "" {
		return nil, false, errors.New("pkcs11: no module path")
	}
	// Two paths to one file are one library to the dynamic loader, and so
	// must be one module here.
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return nil, false, fmt.Errorf("pkcs11: module %s: %w", path, err)
	}
	modules.Lock()
	defer modules.Unlock()
	m = modules.byPath[real]
	if m == nil {
		ctx := p11.New(real)
		if ctx == nil {
			return nil, false, fmt.Errorf("pkcs11: module %s could not be loaded (not a PKCS#11 library, or its dependencies are missing)", path)
		}
		// The library stays loaded for the life of the process:
		// unloading one that started threads or registered exit handlers
		// (OpenSSL does both inside SoftHSM2) can crash it later.
		fns, err := loadFunctions(real)
		if err != nil {
			return nil, false, err
		}
		m = &module{path: real, ctx: ctx, fns: fns, keys: map[*Key]struct{}{}}
		modules.byPath[real] = m
	}
	if m.refs == 0 {
		m.mu.Lock()
		err := m.ctx.Initialize()
		m.gen++
		m.mu.Unlock()
		if err != nil && !errors.Is(err, p11.Error(p11.CKR_CRYPTOKI_ALREADY_INITIALIZED)) {
			return nil, false, fmt.Errorf("pkcs11: C_Initialize of %s: %w", path, err)
		}
		fresh = true
	}
	m.refs++
	return m, fresh, nil
}

// onToken runs f, which looks for a token, holding m.mu for reading. A
// module initialised before the caller came may not know a token made
// since by another process (SoftHSM2 looks for tokens only in
// C_Initialize): when f does not find its token there, the module is
// initialised anew and f runs once more.
func (m *module) onToken(fresh bool, f func() error) error {
	m.mu.RLock()
	seen := m.gen
	err := f()
	m.mu.RUnlock()
	var missing *tokenMissingError
	if fresh || !errors.As(err, &missing) {
		return err
	}
	m.reinit(seen)
	m.mu.RLock()
	defer m.mu.RUnlock()
	return f()
}

// release drops a reference; the last one finalises the library, so that
// the next acquire reads its configuration anew.
func release(m *module) {
	modules.Lock()
	defer modules.Unlock()
	m.refs--
	if m.refs > 0 {
		return
	}
	m.mu.Lock()
	_ = m.ctx.Finalize() // nothing is left to save from a library that cannot finalise
	m.gen++
	m.mu.Unlock()
}

func (m *module) register(k *Key) {
	m.mu.Lock()
	m.keys[k] = struct{}{}
	m.mu.Unlock()
}

func (m *module) unregister(k *Key) {
	m.mu.Lock()
	delete(m.keys, k)
	m.mu.Unlock()
}

// reinit finalises and initialises the library again, unless that was
// done since generation seen. Some modules (SoftHSM2 among them) notice a
// token that came back only then. Every other key on the module loses its
// sessions with it, so each key that was usable binds anew here, before
// any Sign can run; one whose token is gone too is marked lost.
func (m *module) reinit(seen uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.gen != seen {
		return
	}
	_ = m.ctx.Finalize() // it may already be finalised; Initialize is what counts
	err := m.ctx.Initialize()
	m.gen++
	if err != nil {
		err = fmt.Errorf("C_Initialize: %w", err)
	}
	for k := range m.keys {
		k.rebind(m, err)
	}
}

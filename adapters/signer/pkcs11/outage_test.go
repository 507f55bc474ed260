package pkcs11

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	p11 "github.com/miekg/pkcs11"

	"github.com/chronolog/chronolog/adapters/signer/pkcs11/softhsmtest"
)

// observer records what Observe is told.
type observer chan Change

func (o observer) observe(c Change) { o <- c }

func (o observer) next(t *testing.T, within time.Duration) Change {
	t.Helper()
	select {
	case c := <-o:
		return c
	case <-time.After(within):
		t.Fatalf("Observe was not called within %v", within)
		return Change{}
	}
}

func (o observer) quiet(t *testing.T, during time.Duration) {
	t.Helper()
	select {
	case c := <-o:
		t.Errorf("Observe(%+v), want no change", c)
	case <-time.After(during):
	}
}

func signECDSA(k *Key, msg string) error {
	d := digest(crypto.SHA256, msg)
	sig, err := k.Sign(rand.Reader, d, crypto.SHA256)
	if err != nil {
		return err
	}
	if !ecdsa.VerifyASN1(k.Public().(*ecdsa.PublicKey), d, sig) {
		return errors.New("the signature does not verify")
	}
	return nil
}

func signEd25519(k *Key, msg string) error {
	sig, err := k.Sign(rand.Reader, []byte(msg), crypto.Hash(0))
	if err != nil {
		return err
	}
	if !ed25519.Verify(k.Public().(ed25519.PublicKey), []byte(msg), sig) {
		return errors.New("the signature does not verify")
	}
	return nil
}

// closeAllSessions does what another part of the process (or a module
// that drops its sessions) may do: C_CloseAllSessions on the key's slot,
// which also logs the token out. It holds the module exclusively: SoftHSM
// 2.6 frees a session that another thread is signing in, and crashes.
func closeAllSessions(t *testing.T, k *Key) {
	t.Helper()
	k.mod.mu.Lock()
	defer k.mod.mu.Unlock()
	k.mu.Lock()
	slot := k.slot
	k.mu.Unlock()
	if err := k.mod.ctx.CloseAllSessions(slot); err != nil {
		t.Fatal(err)
	}
}

func TestSessionsClosedUnderTheKey(t *testing.T) {
	module, _ := newToken(t)
	generate(t, module, testToken, ECDSAP256, "tsa")
	o := make(observer, 8)
	k := open(t, Config{Module: module, KeyLabel: "tsa", Observe: o.observe})
	if err := signECDSA(k, "before"); err != nil {
		t.Fatal(err)
	}
	closeAllSessions(t, k)
	err := signECDSA(k, "during")
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, p11.Error(p11.CKR_SESSION_HANDLE_INVALID)) {
		t.Fatalf("Sign on a closed session: %v, want ErrUnavailable from CKR_SESSION_HANDLE_INVALID", err)
	}
	if c := o.next(t, 2*time.Second); c.Available || !strings.Contains(c.Cause, "CKR_SESSION_HANDLE_INVALID") {
		t.Errorf("first change %+v, want the loss and its cause", c)
	}
	if c := o.next(t, 5*time.Second); !c.Available || c.Cause != "" {
		t.Errorf("second change %+v, want the return", c)
	}
	for i := range 10 {
		if err := signECDSA(k, fmt.Sprint("after ", i)); err != nil {
			t.Fatalf("Sign after the reconnection: %v", err)
		}
	}
	if n := len(k.pool); n != k.Sessions() {
		t.Errorf("%d sessions in the pool after the reconnection, want %d", n, k.Sessions())
	}
	o.quiet(t, 300*time.Millisecond)
}

// The outage an end-to-end test causes from outside: the token's
// directory taken away and put back. Both keys on it are lost and come
// back; a key on another token of the same module signs throughout,
// though the module is initialised anew under it to find the token again.
func TestTokenRemovedAndRestored(t *testing.T) {
	module, tokendir := newToken(t, testToken, "other")
	generate(t, module, testToken, ECDSAP256, "tsa")
	generate(t, module, testToken, Ed25519, "log")
	generate(t, module, "other", ECDSAP256, "bystander")
	oTSA, oLog := make(observer, 8), make(observer, 8)
	tsa := open(t, Config{Module: module, KeyLabel: "tsa", Observe: oTSA.observe})
	log := open(t, Config{Module: module, KeyLabel: "log", Observe: oLog.observe})
	bystander := open(t, Config{Module: module, Token: "other", KeyLabel: "bystander",
		Observe: func(c Change) { t.Errorf("the bystander key: Observe(%+v)", c) }})

	stop := make(chan struct{})
	var halt sync.Once
	var signed, failed atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if err := signECDSA(bystander, "bystander"); err != nil {
					failed.Add(1)
					t.Errorf("the bystander key failed: %v", err)
				}
				signed.Add(1)
				time.Sleep(time.Millisecond)
			}
		}()
	}

	// A failure stops the test before the signers: stop them before the
	// keys close.
	t.Cleanup(func() { halt.Do(func() { close(stop) }); wg.Wait() })
	genBefore := moduleGeneration(tsa.mod)
	restore := softhsmtest.RemoveToken(t, softhsmtest.TokenDir(t, tokendir, testToken))
	if err := signECDSA(tsa, "away"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Sign with the token away: %v, want ErrUnavailable", err)
	}
	if c := oTSA.next(t, 2*time.Second); c.Available || c.Cause == "" {
		t.Errorf("tsa: first change %+v, want the loss and its cause", c)
	}
	// The log key either fails its own Sign or is lost when the module is
	// initialised anew; both end in ErrUnavailable and one report.
	signEd25519(log, "away")
	if c := oLog.next(t, 2*time.Second); c.Available {
		t.Errorf("log: first change %+v, want the loss", c)
	}
	// While it is away, Sign fails at once, through several rounds of
	// reconnection, each initialising the module anew.
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		start := time.Now()
		err := signECDSA(tsa, "away")
		if !errors.Is(err, ErrUnavailable) {
			t.Fatalf("Sign with the token away: %v, want ErrUnavailable", err)
		}
		if took := time.Since(start); took > 100*time.Millisecond {
			t.Errorf("ErrUnavailable took %v: it must not wait for the reconnection", took)
		}
	}

	restore()
	if c := oTSA.next(t, 10*time.Second); !c.Available {
		t.Errorf("tsa: second change %+v, want the return", c)
	}
	if c := oLog.next(t, 10*time.Second); !c.Available {
		t.Errorf("log: second change %+v, want the return", c)
	}
	if err := signECDSA(tsa, "back"); err != nil {
		t.Errorf("tsa: Sign after the token came back: %v", err)
	}
	if err := signEd25519(log, "back"); err != nil {
		t.Errorf("log: Sign after the token came back: %v", err)
	}
	halt.Do(func() { close(stop) })
	wg.Wait()
	if reinits := moduleGeneration(tsa.mod) - genBefore; reinits < 2 {
		t.Errorf("the module was initialised anew %d times during the outage; the bystander was not put to the test", reinits)
	}
	if signed.Load() == 0 || failed.Load() > 0 {
		t.Errorf("the bystander key signed %d times and failed %d times, want no failure", signed.Load(), failed.Load())
	}
	oTSA.quiet(t, 100*time.Millisecond)
	oLog.quiet(t, 100*time.Millisecond)
}

// A key swapped on the token under the same label and id is not the key
// that was opened: it must never sign in its stead.
func TestSwappedKeyNeverSigns(t *testing.T) {
	module, _ := newToken(t)
	first := generate(t, module, testToken, ECDSAP256, "tsa")
	o := make(observer, 8)
	k := open(t, Config{Module: module, KeyLabel: "tsa", Observe: o.observe})
	err := withToken(module, testToken, userPIN, true, func(ctx *p11.Ctx, sh p11.SessionHandle) error {
		objs, err := findObjects(ctx, sh, []*p11.Attribute{p11.NewAttribute(p11.CKA_LABEL, "tsa")})
		for _, obj := range objs {
			if err := ctx.DestroyObject(sh, obj); err != nil {
				return err
			}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := GenerateKey(module, testToken, userPIN, KeySpec{Type: ECDSAP256, Label: "tsa", ID: first.ID}); err != nil {
		t.Fatal(err)
	}
	if err := signECDSA(k, "swapped"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Sign after the swap: %v, want ErrUnavailable", err)
	}
	if c := o.next(t, 2*time.Second); c.Available {
		t.Fatalf("change %+v, want the loss", c)
	}
	time.Sleep(500 * time.Millisecond) // several attempts to reconnect
	err = signECDSA(k, "swapped")
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "public key changed") {
		t.Errorf("Sign with the swapped key: %v, want ErrUnavailable saying the key changed", err)
	}
	o.quiet(t, time.Second)
}

// Close stops a reconnection in its backoff at once (goleak, in TestMain,
// checks that the watcher is gone).
func TestCloseDuringAnOutage(t *testing.T) {
	module, tokendir := newToken(t)
	generate(t, module, testToken, ECDSAP256, "tsa")
	o := make(observer, 8)
	k, err := Open(Config{Module: module, Token: testToken, KeyLabel: "tsa", PIN: userPIN, Observe: o.observe})
	if err != nil {
		t.Fatal(err)
	}
	softhsmtest.RemoveToken(t, softhsmtest.TokenDir(t, tokendir, testToken))
	if err := signECDSA(k, "away"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Sign with the token away: %v", err)
	}
	o.next(t, 2*time.Second)
	time.Sleep(400 * time.Millisecond)
	start := time.Now()
	if err := k.Close(); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("Close took %v during an outage", took)
	}
}

// Sessions lost again and again under 32 signing goroutines: every
// failure is ErrUnavailable, every signature made verifies, the changes
// alternate, and signing resumes each time.
func TestOutagesUnderLoad(t *testing.T) {
	module, _ := newToken(t)
	generate(t, module, testToken, ECDSAP256, "tsa")
	o := make(observer, 64)
	k := open(t, Config{Module: module, KeyLabel: "tsa", Sessions: 4, Observe: o.observe})
	stop := make(chan struct{})
	var halt sync.Once
	var signed, unavailable atomic.Int64
	var wg sync.WaitGroup
	for g := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				err := signECDSA(k, fmt.Sprint(g, i))
				switch {
				case err == nil:
					signed.Add(1)
				case errors.Is(err, ErrUnavailable):
					unavailable.Add(1)
				default:
					t.Errorf("Sign during outages: %v", err)
					return
				}
			}
		}()
	}
	t.Cleanup(func() { halt.Do(func() { close(stop) }); wg.Wait() })
	for round := range 5 {
		time.Sleep(20 * time.Millisecond)
		closeAllSessions(t, k)
		if c := o.next(t, 2*time.Second); c.Available {
			t.Fatalf("round %d: %+v, want the loss", round, c)
		}
		if c := o.next(t, 5*time.Second); !c.Available {
			t.Fatalf("round %d: %+v, want the return", round, c)
		}
	}
	halt.Do(func() { close(stop) })
	wg.Wait()
	if signed.Load() == 0 || unavailable.Load() == 0 {
		t.Errorf("%d signatures, %d refusals: the outages were not under load", signed.Load(), unavailable.Load())
	}
	if err := signECDSA(k, "after"); err != nil {
		t.Error(err)
	}
	if n := len(k.pool); n != k.Sessions() {
		t.Errorf("%d sessions in the pool, want %d", n, k.Sessions())
	}
}

func moduleGeneration(m *module) uint64 {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.gen
}

func TestWhichErrorsLoseTheKey(t *testing.T) {
	for _, tc := range []struct {
		err    error
		gone   bool
		reinit bool
	}{
		{p11.Error(p11.CKR_SESSION_HANDLE_INVALID), true, true},
		{fmt.Errorf("C_Sign: %w", p11.Error(p11.CKR_DEVICE_REMOVED)), true, true},
		{p11.Error(p11.CKR_OBJECT_HANDLE_INVALID), true, true},
		{p11.Error(p11.CKR_TOKEN_NOT_PRESENT), true, true},
		{p11.Error(p11.CKR_CRYPTOKI_NOT_INITIALIZED), true, true},
		{p11.Error(p11.CKR_GENERAL_ERROR), true, true},
		{p11.Error(p11.CKR_USER_NOT_LOGGED_IN), true, true},
		{p11.Error(p11.CKR_DATA_LEN_RANGE), false, false},
		{p11.Error(p11.CKR_MECHANISM_INVALID), false, false},
		{p11.Error(p11.CKR_PIN_INCORRECT), false, false},
		{&tokenMissingError{label: "t"}, false, true},
		{fmt.Errorf("bind: %w", &tokenMissingError{label: "t"}), false, true},
		{errKeyChanged, false, false},
		{errors.New("anything else"), false, false},
	} {
		if got := isGone(tc.err); got != tc.gone {
			t.Errorf("isGone(%v) = %v", tc.err, got)
		}
		if got := needsReinit(tc.err); got != tc.reinit {
			t.Errorf("needsReinit(%v) = %v", tc.err, got)
		}
	}
}

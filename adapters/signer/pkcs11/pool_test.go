package pkcs11

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	p11 "github.com/miekg/pkcs11"
)

func TestConcurrentSign(t *testing.T) {
	module, _ := newToken(t)
	generate(t, module, testToken, ECDSAP256, "tsa")
	for _, sessions := range []int{0, 2} {
		t.Run(fmt.Sprintf("pool of %d", sessions), func(t *testing.T) {
			k := open(t, Config{Module: module, KeyLabel: "tsa", Sessions: sessions})
			var wg sync.WaitGroup
			errs := make(chan error, 64)
			for g := range 64 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range 16 {
						d := digest(crypto.SHA256, fmt.Sprintf("request %d/%d", g, i))
						sig, err := k.Sign(rand.Reader, d, crypto.SHA256)
						if err != nil {
							errs <- err
							return
						}
						if !ecdsa.VerifyASN1(k.Public().(*ecdsa.PublicKey), d, sig) {
							errs <- fmt.Errorf("goroutine %d: signature %d does not verify", g, i)
							return
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			if n := len(k.pool); n != k.Sessions() {
				t.Errorf("%d sessions back in the pool, want %d", n, k.Sessions())
			}
		})
	}
}

func TestBusyPastTheWait(t *testing.T) {
	module, _ := newToken(t)
	generate(t, module, testToken, ECDSAP256, "tsa")
	const wait = 100 * time.Millisecond
	k := open(t, Config{Module: module, KeyLabel: "tsa", Sessions: 1, Wait: wait})
	if k.Sessions() != 1 {
		t.Fatalf("Sessions() = %d, want 1", k.Sessions())
	}
	held, release := make(chan struct{}), make(chan struct{})
	done := make(chan error)
	go func() {
		done <- k.withSession(func(*p11.Ctx, *session) error {
			close(held)
			<-release
			return nil
		})
	}()
	<-held
	start := time.Now()
	_, err := k.Sign(rand.Reader, digest(crypto.SHA256, "m"), crypto.SHA256)
	took := time.Since(start)
	if !errors.Is(err, ErrBusy) {
		t.Fatalf("Sign with the only session held: %v, want ErrBusy", err)
	}
	if took < wait || took > wait+time.Second {
		t.Errorf("ErrBusy after %v, want after the wait of %v", took, wait)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := k.Sign(rand.Reader, digest(crypto.SHA256, "m"), crypto.SHA256); err != nil {
		t.Errorf("Sign once the session is back: %v", err)
	}
}

func TestSignAfterCloseIsUnavailable(t *testing.T) {
	module, _ := newToken(t)
	generate(t, module, testToken, ECDSAP256, "tsa")
	k, err := Open(Config{Module: module, Token: testToken, KeyLabel: "tsa", PIN: userPIN,
		Observe: func(c Change) { t.Errorf("Observe(%+v) on a key that only closed", c) }})
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Close(); err != nil {
		t.Fatal(err)
	}
	if err := k.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := k.Sign(rand.Reader, digest(crypto.SHA256, "m"), crypto.SHA256); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Sign after Close: %v, want ErrUnavailable", err)
	}
}

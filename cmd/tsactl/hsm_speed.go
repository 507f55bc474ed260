package main

import (
	"crypto"
	"errors"
	"flag"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/chronolog/chronolog/adapters/signer/libcrypto"
	"github.com/chronolog/chronolog/adapters/signer/pkcs11"
	"github.com/chronolog/chronolog/adapters/signer/softkey"
)

// hsmSpeed measures how fast a key in a token signs with nothing around
// it, no server and no pool: the most the token can give on this machine,
// and the CPU time each signature costs. With --soft-key it measures a
// software key the same way, with the arithmetic tsad would use, so that
// the server's own cost per token can be told apart from the signature's
// for either key. Nothing is recorded.
func hsmSpeed(args []string) error {
	fs := flag.NewFlagSet("tsactl hsm speed", flag.ContinueOnError)
	var t tokenFlags
	t.register(fs, false)
	var k keySelector
	k.register(fs)
	sessions := fs.Int("sessions", 0, "sessions signing at once, each in a thread of its own (default: the pool tsad opens, 2×GOMAXPROCS)")
	duration := fs.Duration("duration", 3*time.Second, "how long each key signs")
	softKey := fs.String("soft-key", "", "also measure this software key file, with OpenSSL's libcrypto where it loads (as tsad --crypto auto), else Go")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *duration <= 0 {
		return errors.New("hsm speed: --duration must be positive")
	}
	if *sessions < 0 {
		return errors.New("hsm speed: --sessions must not be negative")
	}
	idb, err := k.bytes()
	if err != nil {
		return err
	}
	pin, err := t.readPIN()
	if err != nil {
		return err
	}
	key, err := pkcs11.Open(pkcs11.Config{Module: t.module, Token: t.token, KeyLabel: k.label, KeyID: idb, PIN: pin, Sessions: *sessions})
	if err != nil {
		return err
	}
	defer key.Close()
	n := key.Sessions()
	typ := pkcs11.KeyTypeOf(key.Public())
	if err := measure(fmt.Sprintf("token %s: C_SignInit+C_Sign in a loop in C, %d sessions", typ, n), *duration,
		func() (int64, error) { return key.SignFor(n, *duration) }); err != nil {
		return err
	}
	if *softKey == "" {
		return nil
	}
	soft, err := softkey.ReadKey(*softKey)
	if err != nil {
		return err
	}
	typ = pkcs11.KeyTypeOf(soft.Public())
	lc, err := libcrypto.New(soft)
	if err != nil {
		fmt.Printf("(OpenSSL's libcrypto unusable, Go crypto measured: %v)\n", err)
		return measure(fmt.Sprintf("software %s: Go crypto's Sign in a loop, %d goroutines", typ, n), *duration,
			func() (int64, error) { return goSignFor(soft, n, *duration) })
	}
	defer lc.Close()
	return measure(fmt.Sprintf("software %s: OpenSSL EVP_PKEY_sign in a loop in C, %d threads", typ, n), *duration,
		func() (int64, error) { return lc.SignFor(n, *duration) })
}

// measure runs sign, which signs for d and counts, and prints the
// signatures per second and the process's CPU time per signature (user
// and system, from getrusage: what the signing threads spent, not the
// wall time).
func measure(what string, d time.Duration, sign func() (int64, error)) error {
	cpu0, err := processCPU()
	if err != nil {
		return err
	}
	start := time.Now()
	n, err := sign()
	wall := time.Since(start)
	if err != nil {
		return err
	}
	cpu1, err := processCPU()
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("%s: no signature in %v", what, d)
	}
	cpu := cpu1 - cpu0
	fmt.Printf("%s, %v: %.0f signatures/s, %.2f cores, %.1f µs CPU per signature\n",
		what, d, float64(n)/wall.Seconds(), cpu.Seconds()/wall.Seconds(), float64(cpu.Nanoseconds())/1e3/float64(n))
	return nil
}

// processCPU is this process's user and system time so far.
func processCPU() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, fmt.Errorf("getrusage: %w", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}

// goSignFor signs with Go's crypto in n goroutines for d, where OpenSSL
// cannot: tsad signs with Go then too.
func goSignFor(key crypto.Signer, n int, d time.Duration) (int64, error) {
	digest := make([]byte, crypto.SHA256.Size())
	end := time.Now().Add(d)
	var count atomic.Int64
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			for time.Now().Before(end) {
				if _, err := key.Sign(nil, digest, crypto.SHA256); err != nil {
					errs[i] = err
					return
				}
				count.Add(1)
			}
		})
	}
	wg.Wait()
	return count.Load(), errors.Join(errs...)
}

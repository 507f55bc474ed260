package libcrypto

import (
	"crypto"
	"crypto/rand"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// BenchmarkAround is what a signature costs around itself in this
// process, as CPU time (and context switches) per signature: through
// Sign, from 64 goroutines as tsad's request handlers sign, less
// SignFor's, OpenSSL's own speed (EVP_PKEY_sign in a loop in C on
// 2×GOMAXPROCS threads, as many as tsad opens HSM sessions). Each
// iteration alternates a second of each:
//
//	go test -run '^$' -bench BenchmarkAround -benchtime 5x ./adapters/signer/libcrypto/
func BenchmarkAround(b *testing.B) {
	requireLibcrypto(b)
	for _, name := range []string{"ecdsa-p256", "rsa-3072"} {
		s, err := New(testKeys()[name])
		if err != nil {
			b.Fatal(err)
		}
		b.Run(name, func(b *testing.B) {
			var sign, raw cpuCount
			for range b.N {
				sign.measure(b, func() (int64, error) { return signLoop(s, 64, time.Second) })
				raw.measure(b, func() (int64, error) { return s.SignFor(2*runtime.GOMAXPROCS(0), time.Second) })
			}
			b.ReportMetric(sign.perSignature(), "sign-cpu-µs/sig")
			b.ReportMetric(raw.perSignature(), "raw-cpu-µs/sig")
			b.ReportMetric(sign.perSignature()-raw.perSignature(), "around-µs/sig")
			b.ReportMetric(sign.switchesPerSignature(), "sign-cs/sig")
			b.ReportMetric(raw.switchesPerSignature(), "raw-cs/sig")
		})
		s.Close()
	}
}

// cpuCount adds up signatures, and the process's CPU time and context
// switches they took.
type cpuCount struct {
	n, switches int64
	cpu         time.Duration
}

func (c *cpuCount) measure(b *testing.B, sign func() (int64, error)) {
	start, cs := processCPU(b), contextSwitches(b)
	n, err := sign()
	if err != nil {
		b.Fatal(err)
	}
	c.cpu += processCPU(b) - start
	c.switches += contextSwitches(b) - cs
	c.n += n
}

func (c *cpuCount) switchesPerSignature() float64 { return float64(c.switches) / float64(c.n) }

func (c *cpuCount) perSignature() float64 { return float64(c.cpu.Nanoseconds()) / 1e3 / float64(c.n) }

// contextSwitches counts the process's context switches so far, voluntary
// (a thread waits) and not (the kernel preempts it).
func contextSwitches(b *testing.B) int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return ru.Nvcsw + ru.Nivcsw
}

// processCPU is the process's user and system time so far.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// signLoop signs SHA-256 digests with s from goroutines goroutines for d.
func signLoop(s crypto.Signer, goroutines int, d time.Duration) (int64, error) {
	digest := digestOf(crypto.SHA256, []byte("benchmark"))
	end := time.Now().Add(d)
	var n atomic.Int64
	errs := make(chan error, goroutines)
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for time.Now().Before(end) {
				if _, err := s.Sign(rand.Reader, digest, crypto.SHA256); err != nil {
					errs <- err
					return
				}
				n.Add(1)
			}
		})
	}
	wg.Wait()
	close(errs)
	return n.Load(), <-errs
}

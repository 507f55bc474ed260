package pkcs11

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// BenchmarkSign compares SoftHSM2 keys through the adapter (64 goroutines
// sharing the session pool, as tsad's request handlers do) with Go's own
// keys, reporting signatures per second and the process's CPU time per
// signature:
//
//	go test -run '^$' -bench BenchmarkSign ./adapters/signer/pkcs11/
func BenchmarkSign(b *testing.B) {
	module, _ := newToken(b)
	soft := map[KeyType]crypto.Signer{}
	var err error
	if soft[ECDSAP256], err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		b.Fatal(err)
	}
	if soft[RSA3072], err = rsa.GenerateKey(rand.Reader, 3072); err != nil {
		b.Fatal(err)
	}
	for _, typ := range []KeyType{ECDSAP256, RSA3072} {
		generate(b, module, testToken, typ, string(typ))
		hsm := open(b, Config{Module: module, KeyLabel: string(typ)})
		for _, s := range []struct {
			name   string
			signer crypto.Signer
		}{{"softhsm", hsm}, {"go", soft[typ]}} {
			b.Run(string(typ)+"/"+s.name, func(b *testing.B) {
				d := digest(crypto.SHA256, "benchmark")
				b.SetParallelism((64 + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
				b.ReportAllocs()
				cpu := processCPU(b)
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if _, err := s.signer.Sign(rand.Reader, d, crypto.SHA256); err != nil {
							b.Error(err)
							return
						}
					}
				})
				report(b, int64(b.N), processCPU(b)-cpu, b.Elapsed())
			})
		}
	}
}

// BenchmarkAround is what a signature costs around itself in this
// process, as CPU time (and context switches) per signature: through
// Sign, from 64 goroutines sharing the pool as tsad's request handlers
// do, less SignFor's, the token's own speed (C_SignInit and C_Sign in a
// loop in C on as many sessions as the pool has). Each iteration
// alternates a second of each:
//
//	go test -run '^$' -bench BenchmarkAround -benchtime 5x ./adapters/signer/pkcs11/
func BenchmarkAround(b *testing.B) {
	module, _ := newToken(b)
	for _, typ := range []KeyType{ECDSAP256, RSA3072} {
		generate(b, module, testToken, typ, string(typ))
		k := open(b, Config{Module: module, KeyLabel: string(typ)})
		b.Run(string(typ), func(b *testing.B) {
			var sign, raw cpuCount
			for range b.N {
				sign.measure(b, func() (int64, error) { return signLoop(k, 64, time.Second) })
				raw.measure(b, func() (int64, error) { return k.SignFor(0, time.Second) })
			}
			b.ReportMetric(sign.perSignature(), "sign-cpu-µs/sig")
			b.ReportMetric(raw.perSignature(), "raw-cpu-µs/sig")
			b.ReportMetric(sign.perSignature()-raw.perSignature(), "around-µs/sig")
			b.ReportMetric(sign.switchesPerSignature(), "sign-cs/sig")
			b.ReportMetric(raw.switchesPerSignature(), "raw-cs/sig")
		})
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

// signLoop signs SHA-256 digests with s from goroutines goroutines for d.
func signLoop(s crypto.Signer, goroutines int, d time.Duration) (int64, error) {
	digest := digest(crypto.SHA256, "benchmark")
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

func report(b *testing.B, n int64, cpu, wall time.Duration) {
	b.ReportMetric(float64(n)/wall.Seconds(), "sigs/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(n), "cpu-µs/sig")
}

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

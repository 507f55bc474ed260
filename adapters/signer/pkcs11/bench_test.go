package pkcs11

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"runtime"
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

// BenchmarkSignFor is the token's own speed (Key.SignFor: C_SignInit and
// C_Sign in a loop in C on as many sessions as the pool has), for a
// second per run whatever b.N is:
//
//	go test -run '^$' -bench BenchmarkSignFor -benchtime 1x ./adapters/signer/pkcs11/
func BenchmarkSignFor(b *testing.B) {
	module, _ := newToken(b)
	for _, typ := range []KeyType{ECDSAP256, RSA3072} {
		generate(b, module, testToken, typ, string(typ))
		k := open(b, Config{Module: module, KeyLabel: string(typ)})
		b.Run(string(typ), func(b *testing.B) {
			var n int64
			var cpu time.Duration
			start := time.Now()
			for range b.N {
				c := processCPU(b)
				m, err := k.SignFor(0, time.Second)
				if err != nil {
					b.Fatal(err)
				}
				cpu += processCPU(b) - c
				n += m
			}
			report(b, n, cpu, time.Since(start))
		})
	}
}

func report(b *testing.B, n int64, cpu, wall time.Duration) {
	b.ReportMetric(float64(n)/wall.Seconds(), "sigs/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(n), "cpu-µs/sig")
}

// processCPU is the process's user and system time so far.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

package pkcs11

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"runtime"
	"testing"
)

// BenchmarkSign compares signatures per second of SoftHSM2 keys through
// the session pool with Go's own, 64 goroutines signing at once:
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
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if _, err := s.signer.Sign(rand.Reader, d, crypto.SHA256); err != nil {
							b.Error(err)
							return
						}
					}
				})
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sigs/s")
			})
		}
	}
}

package libcrypto

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"
)

// requireLibcrypto skips where OpenSSL 3 is missing, except under CI=true,
// where .ci/run provides it and its absence is a failure.
func requireLibcrypto(t testing.TB) {
	t.Helper()
	if err := Available(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true but %v", err)
		}
		t.Skipf("needs OpenSSL 3's libcrypto.so.3: %v", err)
	}
}

var testKeys = sync.OnceValue(func() map[string]crypto.Signer {
	keys := map[string]crypto.Signer{}
	for name, c := range map[string]elliptic.Curve{"ecdsa-p256": elliptic.P256(), "ecdsa-p384": elliptic.P384(), "ecdsa-p521": elliptic.P521()} {
		k, err := ecdsa.GenerateKey(c, rand.Reader)
		if err != nil {
			panic(err)
		}
		keys[name] = k
	}
	for _, bits := range []int{2048, 3072} {
		k, err := rsa.GenerateKey(rand.Reader, bits)
		if err != nil {
			panic(err)
		}
		keys[fmt.Sprintf("rsa-%d", bits)] = k
	}
	return keys
})

func digestOf(h crypto.Hash, msg []byte) []byte {
	switch h {
	case crypto.SHA256:
		d := sha256.Sum256(msg)
		return d[:]
	case crypto.SHA384:
		d := sha512.Sum384(msg)
		return d[:]
	default:
		d := sha512.Sum512(msg)
		return d[:]
	}
}

func TestSignaturesVerifyWithGo(t *testing.T) {
	requireLibcrypto(t)
	for name, key := range testKeys() {
		t.Run(name, func(t *testing.T) {
			s, err := New(key)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			for _, h := range []crypto.Hash{crypto.SHA256, crypto.SHA384, crypto.SHA512} {
				for i := range 20 {
					digest := digestOf(h, fmt.Appendf(nil, "token %d", i))
					sig, err := s.Sign(rand.Reader, digest, h)
					if err != nil {
						t.Fatal(err)
					}
					switch pub := s.Public().(type) {
					case *rsa.PublicKey:
						if err := rsa.VerifyPKCS1v15(pub, h, digest, sig); err != nil {
							t.Fatalf("%v: %v", h, err)
						}
						want, _ := rsa.SignPKCS1v15(nil, key.(*rsa.PrivateKey), h, digest)
						if !bytes.Equal(sig, want) {
							t.Fatalf("%v: PKCS#1 v1.5 signature differs from Go's", h)
						}
					case *ecdsa.PublicKey:
						if !ecdsa.VerifyASN1(pub, digest, sig) {
							t.Fatalf("%v: signature does not verify", h)
						}
					}
				}
			}
			// A tampered digest must not verify: the check above can fail.
			digest := digestOf(crypto.SHA256, []byte("x"))
			sig, _ := s.Sign(nil, digest, crypto.SHA256)
			digest[0] ^= 1
			switch pub := s.Public().(type) {
			case *rsa.PublicKey:
				if rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest, sig) == nil {
					t.Fatal("tampered digest verified")
				}
			case *ecdsa.PublicKey:
				if ecdsa.VerifyASN1(pub, digest, sig) {
					t.Fatal("tampered digest verified")
				}
			}
		})
	}
}

func TestConcurrentSigning(t *testing.T) {
	requireLibcrypto(t)
	key := testKeys()["ecdsa-p256"]
	s, err := New(key)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	pub := key.Public().(*ecdsa.PublicKey)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := range 16 {
		wg.Go(func() {
			for i := range 200 {
				d := digestOf(crypto.SHA256, fmt.Appendf(nil, "%d/%d", g, i))
				sig, err := s.Sign(nil, d, crypto.SHA256)
				if err != nil {
					errs <- err
					return
				}
				if !ecdsa.VerifyASN1(pub, d, sig) {
					errs <- fmt.Errorf("goroutine %d signature %d does not verify", g, i)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func TestRefusals(t *testing.T) {
	requireLibcrypto(t)
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	if _, err := New(edKey); err == nil {
		t.Error("an Ed25519 key was taken")
	}
	p224, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	if _, err := New(p224); err == nil {
		t.Error("a P-224 key was taken")
	}
	s, err := New(testKeys()["ecdsa-p256"])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Sign(nil, make([]byte, 20), crypto.SHA1); err == nil {
		t.Error("SHA-1 signed")
	}
	if _, err := s.Sign(nil, make([]byte, 31), crypto.SHA256); err == nil {
		t.Error("a short digest signed")
	}
	s.Close()
	s.Close()
	// Pooled contexts are gone; a new one cannot be made.
	for range 300 {
		if _, err := s.Sign(nil, make([]byte, 32), crypto.SHA256); err != nil {
			return
		}
	}
	t.Error("signing went on after Close")
}

func BenchmarkSign(b *testing.B) {
	requireLibcrypto(b)
	for _, name := range []string{"ecdsa-p256", "rsa-2048"} {
		key := testKeys()[name]
		s, err := New(key)
		if err != nil {
			b.Fatal(err)
		}
		digest := digestOf(crypto.SHA256, []byte("bench"))
		for impl, signer := range map[string]crypto.Signer{"libcrypto": s, "go": key} {
			b.Run(name+"/"+impl, func(b *testing.B) {
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if _, err := signer.Sign(rand.Reader, digest, crypto.SHA256); err != nil {
							b.Error(err)
							return
						}
					}
				})
			})
		}
		s.Close()
	}
}

func TestSignForCountsWhatItSigned(t *testing.T) {
	requireLibcrypto(t)
	for _, name := range []string{"ecdsa-p256", "rsa-2048"} {
		t.Run(name, func(t *testing.T) {
			s, err := New(testKeys()[name])
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			const d = 50 * time.Millisecond
			start := time.Now()
			n, err := s.SignFor(3, d)
			if err != nil {
				t.Fatal(err)
			}
			if took := time.Since(start); n < 3 || took < d {
				t.Errorf("SignFor(3, %v): %d signatures in %v; want at least one a thread, for at least %v", d, n, took, d)
			}
			// The contexts went back to the pool, and still sign.
			if got := len(s.ctxs[crypto.SHA256].free); got < 3 {
				t.Errorf("%d contexts back in the pool, want at least 3", got)
			}
			if _, err := s.Sign(nil, digestOf(crypto.SHA256, []byte("m")), crypto.SHA256); err != nil {
				t.Error(err)
			}
			if _, err := s.SignFor(0, d); err == nil {
				t.Error("SignFor with no thread: no error")
			}
		})
	}
}

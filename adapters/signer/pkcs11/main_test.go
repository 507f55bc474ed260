package pkcs11

import (
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/chronolog/chronolog/adapters/signer/pkcs11/softhsmtest"
)

// Every Key starts a watcher; a test that leaves one running fails here.
func TestMain(m *testing.M) {
	if module := os.Getenv(signerProcessEnv); module != "" {
		os.Exit(signerProcess(module))
	}
	goleak.VerifyTestMain(m)
}

const (
	testToken = "chronolog-test"
	soPIN     = "so-pin-8802"
	userPIN   = "user-pin-3311"
)

// newToken gives the test a private SoftHSM2 token directory holding the
// tokens labelled labels (testToken if none), made with InitToken.
func newToken(t testing.TB, labels ...string) (module, tokendir string) {
	t.Helper()
	module, tokendir, _ = softhsmtest.Setup(t)
	if len(labels) == 0 {
		labels = []string{testToken}
	}
	for _, l := range labels {
		if err := InitToken(module, l, soPIN, userPIN); err != nil {
			t.Fatal(err)
		}
	}
	return module, tokendir
}

func generate(t testing.TB, module, token string, typ KeyType, label string) KeyInfo {
	t.Helper()
	info, err := GenerateKey(module, token, userPIN, KeySpec{Type: typ, Label: label})
	if err != nil {
		t.Fatal(err)
	}
	return info
}

// open opens a key and closes it at the end of the test.
func open(t testing.TB, cfg Config) *Key {
	t.Helper()
	if cfg.PIN == "" {
		cfg.PIN = userPIN
	}
	if cfg.Token == "" {
		cfg.Token = testToken
	}
	k, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := k.Close(); err != nil {
			t.Error(err)
		}
	})
	return k
}

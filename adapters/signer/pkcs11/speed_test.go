package pkcs11

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	p11 "github.com/miekg/pkcs11"
)

func TestSignForCountsWhatItSigned(t *testing.T) {
	module, _ := newToken(t)
	for _, typ := range []KeyType{ECDSAP256, RSA2048, Ed25519} {
		t.Run(string(typ), func(t *testing.T) {
			generate(t, module, testToken, typ, string(typ))
			k := open(t, Config{Module: module, KeyLabel: string(typ), Sessions: 2})
			const d = 50 * time.Millisecond
			start := time.Now()
			n, err := k.SignFor(3, d)
			if err != nil {
				t.Fatal(err)
			}
			if took := time.Since(start); n < 3 || took < d {
				t.Errorf("SignFor(3, %v): %d signatures in %v; want at least one a session, for at least %v", d, n, took, d)
			}
			// Its own sessions are closed; the pool's are all back and sign.
			if got := len(k.pool); got != 2 {
				t.Errorf("%d sessions in the pool, want 2", got)
			}
			opts, msg := crypto.SignerOpts(crypto.SHA256), digest(crypto.SHA256, "m")
			if typ == Ed25519 {
				opts = crypto.Hash(0)
			}
			if _, err := k.Sign(rand.Reader, msg, opts); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestSignForAfterCloseIsUnavailable(t *testing.T) {
	module, _ := newToken(t)
	generate(t, module, testToken, ECDSAP256, "tsa")
	k, err := Open(Config{Module: module, Token: testToken, KeyLabel: "tsa", PIN: userPIN})
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := k.SignFor(1, time.Millisecond); !errors.Is(err, ErrUnavailable) {
		t.Errorf("SignFor after Close: %v, want ErrUnavailable", err)
	}
}

// A token that wants more room than the adapter gave leaves the operation
// active (PKCS#11 §5.2, CKR_BUFFER_TOO_SMALL): the adapter finishes it
// with a larger buffer, and the session signs again afterwards.
func TestSignIntoTooSmallABuffer(t *testing.T) {
	module, _ := newToken(t)
	generate(t, module, testToken, ECDSAP256, "tsa")
	k := open(t, Config{Module: module, KeyLabel: "tsa", Sessions: 1})
	d := digest(crypto.SHA256, "m")
	var raw []byte
	err := k.withSession(func(_ *p11.Ctx, s *session) (err error) {
		raw, err = k.mod.fns.sign(s.h, s.obj, mech{typ: p11.CKM_ECDSA}, d, make([]byte, 10))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	der, err := ecdsaDER(raw, 32)
	if err != nil {
		t.Fatal(err)
	}
	if !ecdsa.VerifyASN1(k.Public().(*ecdsa.PublicKey), d, der) {
		t.Error("the signature finished in a larger buffer does not verify")
	}
	if _, err := k.Sign(rand.Reader, d, crypto.SHA256); err != nil {
		t.Errorf("Sign on the same session afterwards: %v", err)
	}
}

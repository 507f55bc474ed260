package softkey

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chronolog/chronolog/adapters/devpki"
	"github.com/chronolog/chronolog/internal/testpki"
)

var now = time.Now()

func TestCheckTSACertificate(t *testing.T) {
	ca := testpki.New(t, testpki.At(now))
	key, other := testpki.NewKey(t, testpki.ECDSAP256), testpki.NewKey(t, testpki.ECDSAP256)
	// cert is a certificate for key with the extendedKeyUsage eku, valid
	// from an hour ago to notAfter.
	cert := func(eku testpki.Option, notAfter time.Time) *x509.Certificate {
		return ca.TSA(t, testpki.Key(key), eku, testpki.Valid(now.Add(-time.Hour), notAfter)).Cert
	}
	ts := testpki.EKU(true, testpki.OIDTimeStamping)
	later := now.Add(24 * time.Hour)
	tests := []struct {
		name string
		cert *x509.Certificate
		pub  crypto.PublicKey
		want string
	}{
		{"good", cert(ts, later), key.Public(), ""},
		{"non-critical EKU", cert(testpki.EKU(false, testpki.OIDTimeStamping), later), key.Public(), "not critical"},
		{"extra EKU", cert(testpki.EKU(true, testpki.OIDTimeStamping, testpki.OIDServerAuth), later), key.Public(), "only"},
		{"missing EKU", cert(testpki.NoEKU(), later), key.Public(), "no extendedKeyUsage"},
		{"mismatched key", cert(ts, later), other.Public(), "does not match"},
		{"expired", cert(ts, now.Add(-time.Minute)), key.Public(), "valid from"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckTSACertificate(tt.cert, tt.pub, now)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to say %q", err, tt.want)
			}
		})
	}
}

func TestLoadDevPKI(t *testing.T) {
	for _, kind := range []string{"ecdsa-p256", "rsa-2048"} {
		t.Run(kind, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "pki")
			f, err := devpki.Ensure(devpki.Options{Dir: dir, KeyType: kind, Organization: "test", Now: now})
			if err != nil || !f.Created {
				t.Fatalf("Ensure: %v %+v", err, f)
			}
			k, err := Load(Config{KeyFile: f.TSAKey, CertFile: f.TSACert, ChainFile: f.Chain}, now)
			if err != nil {
				t.Fatal(err)
			}
			if len(k.Chain()) != 1 || !k.Chain()[0].IsCA || len(k.Fingerprint()) != 64 {
				t.Fatalf("chain %d fingerprint %s", len(k.Chain()), k.Fingerprint())
			}
			again, err := devpki.Ensure(devpki.Options{Dir: dir, KeyType: kind, Now: now})
			if err != nil || again.Created {
				t.Fatalf("second Ensure must reuse the files: %v %+v", err, again)
			}
			if _, err := Load(Config{KeyFile: f.TSAKey, CertFile: f.TSACert, ChainFile: f.Chain}, now.Add(3*365*24*time.Hour)); err == nil {
				t.Fatal("an expired certificate loaded")
			}
			if openssl, err := exec.LookPath("openssl"); err == nil {
				out, _ := exec.Command(openssl, "x509", "-in", f.TSACert, "-noout", "-text").CombinedOutput()
				if !strings.Contains(string(out), "X509v3 Extended Key Usage: critical") || !strings.Contains(string(out), "Time Stamping") {
					t.Fatalf("openssl does not see a critical timeStamping EKU:\n%s", out)
				}
			}
		})
	}
}

func TestLoadRefusesAForeignChainAndAnIncompleteSet(t *testing.T) {
	a, _ := devpki.Ensure(devpki.Options{Dir: filepath.Join(t.TempDir(), "a"), Now: now})
	b, _ := devpki.Ensure(devpki.Options{Dir: filepath.Join(t.TempDir(), "b"), Now: now})
	if _, err := Load(Config{KeyFile: a.TSAKey, CertFile: a.TSACert, ChainFile: b.CACert}, now); err == nil {
		t.Fatal("a chain from another CA was accepted")
	}
	if _, err := Load(Config{KeyFile: a.TSAKey, CertFile: b.TSACert}, now); err == nil {
		t.Fatal("a certificate for another key was accepted")
	}
}

func TestKeyUsageWithoutSignatureIsRefused(t *testing.T) {
	ca := testpki.New(t, testpki.At(now))
	withKeyUsage := func(u x509.KeyUsage) *testpki.Leaf {
		return ca.TSA(t, testpki.Valid(now.Add(-time.Hour), now.Add(time.Hour)),
			testpki.Template(func(c *x509.Certificate) { c.KeyUsage = u }))
	}
	l := withKeyUsage(x509.KeyUsageKeyAgreement)
	if err := CheckTSACertificate(l.Cert, l.Key.Public(), now); err == nil || !strings.Contains(err.Error(), "keyUsage") {
		t.Fatalf("err = %v, want a keyUsage refusal", err)
	}
	l = withKeyUsage(x509.KeyUsageContentCommitment)
	if err := CheckTSACertificate(l.Cert, l.Key.Public(), now); err != nil {
		t.Fatalf("contentCommitment alone refused: %v", err)
	}
}

// TestLoadAcceptsSEC1AndPKCS1 rewrites the devpki PKCS#8 key in the legacy
// encodings and loads it with only the root as chain file.
func TestLoadAcceptsSEC1AndPKCS1(t *testing.T) {
	for _, kind := range []string{"ecdsa-p256", "rsa-2048"} {
		t.Run(kind, func(t *testing.T) {
			dir := t.TempDir()
			f, err := devpki.Ensure(devpki.Options{Dir: filepath.Join(dir, "pki"), KeyType: kind, Now: now})
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := os.ReadFile(f.TSAKey)
			b, _ := pem.Decode(raw)
			k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			var blk *pem.Block
			switch k := k.(type) {
			case *ecdsa.PrivateKey:
				der, _ := x509.MarshalECPrivateKey(k)
				blk = &pem.Block{Type: "EC PRIVATE KEY", Bytes: der}
			case *rsa.PrivateKey:
				blk = &pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}
			}
			legacy := filepath.Join(dir, "legacy.key")
			if err := os.WriteFile(legacy, pem.EncodeToMemory(blk), 0o600); err != nil {
				t.Fatal(err)
			}
			key, err := Load(Config{KeyFile: legacy, CertFile: f.TSACert, ChainFile: f.CACert}, now)
			if err != nil {
				t.Fatalf("%s: %v", blk.Type, err)
			}
			if len(key.Chain()) != 1 || !key.Chain()[0].IsCA || key.Certificate().Subject.CommonName != "Chronolog DEVELOPMENT TSA" {
				t.Fatalf("chain %d", len(key.Chain()))
			}
			if key.Signer() == nil {
				t.Fatal("no signer")
			}
		})
	}
}

func TestReadKey(t *testing.T) {
	dir := t.TempDir()
	f, err := devpki.Ensure(devpki.Options{Dir: filepath.Join(dir, "pki"), KeyType: "ecdsa-p256", Now: now})
	if err != nil {
		t.Fatal(err)
	}
	loaded, err := Load(Config{KeyFile: f.TSAKey, CertFile: f.TSACert, ChainFile: f.CACert}, now)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ReadKey(f.TSAKey)
	if err != nil {
		t.Fatal(err)
	}
	if !key.Public().(*ecdsa.PublicKey).Equal(loaded.Signer().Public()) {
		t.Error("ReadKey and Load read different keys")
	}
	if _, err := ReadKey(f.TSACert); err == nil || !strings.Contains(err.Error(), "no private key") {
		t.Errorf("ReadKey of a certificate: %v, want no private key", err)
	}
	if _, err := ReadKey(filepath.Join(dir, "missing.key")); err == nil {
		t.Error("ReadKey of a missing file: no error")
	}
}

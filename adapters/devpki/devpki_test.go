package devpki

import (
	"bytes"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestIncompleteSetIsRefused(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	f, err := Ensure(Options{Dir: dir, Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(f.TSAKey); st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, want 0600", st.Mode().Perm())
	}
	os.Remove(f.TSAKey)
	if _, err := Ensure(Options{Dir: dir, Now: time.Now()}); err == nil || !strings.Contains(err.Error(), "tsa.key") {
		t.Fatalf("err = %v, want it to name tsa.key", err)
	}
}

func TestUnknownKeyType(t *testing.T) {
	if _, err := Ensure(Options{Dir: t.TempDir() + "/x", KeyType: "dsa-1024", Now: time.Now()}); err == nil {
		t.Fatal("unknown key type accepted")
	}
}

func TestEnsureCreatesATSACertificateAndReusesIt(t *testing.T) {
	now := time.Date(2026, 11, 22, 16, 0, 0, 0, time.UTC)
	for _, kind := range []string{"", "ecdsa-p384", "rsa-2048", "rsa-3072"} {
		t.Run("keytype="+kind, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "pki")
			f, err := Ensure(Options{Dir: dir, KeyType: kind, Organization: "Example Org", Now: now})
			if err != nil || !f.Created {
				t.Fatalf("Ensure: %v %+v", err, f)
			}
			if st, err := os.Stat(dir); err != nil || st.Mode().Perm() != 0o700 {
				t.Fatalf("dir mode: %v %v", st.Mode().Perm(), err)
			}
			ca, tsa := readCert(t, f.CACert), readCert(t, f.TSACert)
			if !ca.IsCA || !ca.BasicConstraintsValid || ca.KeyUsage != x509.KeyUsageCertSign|x509.KeyUsageCRLSign ||
				ca.Subject.CommonName != "Chronolog DEVELOPMENT Root CA - not for production" {
				t.Fatalf("root CA: %+v", ca.Subject)
			}
			if err := ca.CheckSignatureFrom(ca); err != nil {
				t.Fatalf("root not self-signed: %v", err)
			}
			if err := tsa.CheckSignatureFrom(ca); err != nil {
				t.Fatalf("TSA not signed by root: %v", err)
			}
			if tsa.Subject.CommonName != "Chronolog DEVELOPMENT TSA" || len(tsa.Subject.Organization) != 1 || tsa.Subject.Organization[0] != "Example Org" {
				t.Fatalf("TSA subject %v", tsa.Subject)
			}
			if tsa.IsCA || tsa.KeyUsage != x509.KeyUsageDigitalSignature {
				t.Fatalf("TSA IsCA %v keyUsage %v", tsa.IsCA, tsa.KeyUsage)
			}
			if len(tsa.ExtKeyUsage) != 1 || tsa.ExtKeyUsage[0] != x509.ExtKeyUsageTimeStamping || len(tsa.UnknownExtKeyUsage) != 0 {
				t.Fatalf("TSA EKU %v %v", tsa.ExtKeyUsage, tsa.UnknownExtKeyUsage)
			}
			var ekuCritical, kuCritical bool
			for _, e := range tsa.Extensions {
				switch {
				case e.Id.Equal(oidExtKeyUsage):
					ekuCritical = e.Critical
				case e.Id.Equal(asn1.ObjectIdentifier{2, 5, 29, 15}):
					kuCritical = e.Critical
				}
			}
			if !ekuCritical || !kuCritical {
				t.Fatalf("EKU critical %v, keyUsage critical %v", ekuCritical, kuCritical)
			}
			if tsa.SerialNumber.Sign() <= 0 || len(tsa.SerialNumber.Bytes()) != 16 {
				t.Fatalf("serial %x", tsa.SerialNumber)
			}
			if !tsa.NotBefore.Equal(now.Add(-time.Hour)) || !tsa.NotAfter.Equal(now.Add(2*365*24*time.Hour)) {
				t.Fatalf("validity %s – %s", tsa.NotBefore, tsa.NotAfter)
			}
			if len(tsa.SubjectKeyId) == 0 || !bytes.Equal(tsa.AuthorityKeyId, ca.SubjectKeyId) {
				t.Fatalf("SKI %x AKI %x CA SKI %x", tsa.SubjectKeyId, tsa.AuthorityKeyId, ca.SubjectKeyId)
			}
			if _, err := x509.ParsePKCS8PrivateKey(pemBlock(t, f.TSAKey, "PRIVATE KEY")); err != nil {
				t.Fatalf("tsa.key is not PKCS#8: %v", err)
			}
			chain, _ := os.ReadFile(f.Chain)
			tsaPEM, _ := os.ReadFile(f.TSACert)
			caPEM, _ := os.ReadFile(f.CACert)
			if string(chain) != string(tsaPEM)+string(caPEM) {
				t.Fatal("chain.pem is not the TSA certificate followed by the root")
			}

			again, err := Ensure(Options{Dir: dir, KeyType: kind, Now: now.Add(time.Hour)})
			if err != nil || again.Created || *again != (Files{CACert: f.CACert, TSACert: f.TSACert, TSAKey: f.TSAKey, Chain: f.Chain}) {
				t.Fatalf("second Ensure: %v %+v", err, again)
			}
			if after, _ := os.ReadFile(f.TSACert); string(after) != string(tsaPEM) {
				t.Fatal("second Ensure rewrote tsa.pem")
			}
		})
	}
}

func TestOpenSSLSeesACriticalTimeStampingEKU(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("openssl is not installed, and CI must not skip: .ci/run installs it")
		}
		t.Skip("openssl not installed (apt-get install openssl)")
	}
	f, err := Ensure(Options{Dir: filepath.Join(t.TempDir(), "pki"), Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(openssl, "x509", "-in", f.TSACert, "-noout", "-text").CombinedOutput()
	if err != nil {
		t.Fatalf("openssl: %v\n%s", err, out)
	}
	for _, want := range []string{"X509v3 Extended Key Usage: critical", "Time Stamping", "X509v3 Key Usage: critical", "Digital Signature"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("openssl output lacks %q:\n%s", want, out)
		}
	}
}

func TestValidForBeyondTheCAIsRefused(t *testing.T) {
	if _, err := Ensure(Options{Dir: filepath.Join(t.TempDir(), "pki"), ValidFor: 11 * 365 * 24 * time.Hour, Now: time.Now()}); err == nil {
		t.Fatal("a TSA certificate outliving its CA was created")
	}
}

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	c, err := x509.ParseCertificate(pemBlock(t, path, "CERTIFICATE"))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func pemBlock(t *testing.T, path, typ string) []byte {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(raw)
	if b == nil || b.Type != typ {
		t.Fatalf("%s: want a %s PEM block", path, typ)
	}
	return b.Bytes
}

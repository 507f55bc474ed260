package authenticode

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chronolog/chronolog/domain/rfc3161"
)

type keyKind string

const (
	p256    keyKind = "ecdsa-p256"
	p384    keyKind = "ecdsa-p384"
	rsa2048 keyKind = "rsa-2048"
	ed      keyKind = "ed25519"
)

var allKinds = []keyKind{p256, p384, rsa2048, ed}

type testPKI struct {
	root, tsa *x509.Certificate
	rootKey   crypto.Signer
	key       crypto.Signer
}

func newKey(tb testing.TB, kind keyKind) crypto.Signer {
	tb.Helper()
	var key crypto.Signer
	var err error
	switch kind {
	case p256:
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case p384:
		key, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case rsa2048:
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	case ed:
		_, key, err = ed25519.GenerateKey(rand.Reader)
	}
	if err != nil {
		tb.Fatal(err)
	}
	return key
}

// newTestPKI makes a P-256 root and a TSA certificate for a key of kind,
// with the critical timeStamping EKU a TSA certificate must carry.
func newTestPKI(tb testing.TB, kind keyKind) testPKI {
	tb.Helper()
	rootKey := newKey(tb, p256)
	now := time.Now()
	rootTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test root"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	rootDER, err := x509.CreateCertificate(rand.Reader, rootTmpl, rootTmpl, rootKey.Public(), rootKey)
	if err != nil {
		tb.Fatal(err)
	}
	root, _ := x509.ParseCertificate(rootDER)
	key := newKey(tb, kind)
	eku, _ := asn1.Marshal([]asn1.ObjectIdentifier{{1, 3, 6, 1, 5, 5, 7, 3, 8}})
	tmpl := &x509.Certificate{
		SerialNumber: new(big.Int).SetBytes([]byte{0x80, 1, 2, 3, 4, 5, 6, 7, 8}), // high bit: DER needs a 0x00 pad
		Subject:      pkix.Name{CommonName: "test TSA " + string(kind), Organization: []string{"Chronolog"}},
		NotBefore:    now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtraExtensions: []pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 37}, Critical: true, Value: eku}},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, root, key.Public(), rootKey)
	if err != nil {
		tb.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return testPKI{root: root, tsa: cert, rootKey: rootKey, key: key}
}

func (p testPKI) signer(tb testing.TB) *Signer {
	tb.Helper()
	s, err := NewSigner(rfc3161.SigningIdentity{Signer: p.key, Certificate: p.tsa, Chain: []*x509.Certificate{p.root}})
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// tool finds an external program for a cross-check: missing, the test is
// skipped, except in CI where a skipped cross-check would pass silently.
func tool(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is missing and CI must not skip this cross-check: .ci/run installs it", name)
		}
		t.Skipf("%s is not installed (apt-get install %s): cross-check skipped", name, name)
	}
	return path
}

func writeFile(t *testing.T, dir, name string, b []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func certPEM(certs ...*x509.Certificate) []byte {
	var out []byte
	for _, c := range certs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return out
}

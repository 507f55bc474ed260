package authenticode

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/chronolog/chronolog/domain/rfc3161"
	"github.com/chronolog/chronolog/internal/testpki"
)

type keyKind = testpki.KeyType

const (
	p256    = testpki.ECDSAP256
	p384    = testpki.ECDSAP384
	rsa2048 = testpki.RSA2048
	ed      = testpki.Ed25519
)

var allKinds = []keyKind{p256, p384, rsa2048, ed}

type testPKI struct {
	ca        *testpki.CA
	root, tsa *x509.Certificate
	key       crypto.Signer
}

// newTestPKI makes a P-256 root and a TSA certificate for a key of kind,
// with the critical timeStamping EKU a TSA certificate must carry.
func newTestPKI(tb testing.TB, kind keyKind) testPKI {
	tb.Helper()
	ca := testpki.New(tb)
	tsa := ca.TSA(tb, kind, testpki.Subject("test TSA "+string(kind), "Chronolog"),
		testpki.Template(func(c *x509.Certificate) {
			c.SerialNumber = new(big.Int).SetBytes([]byte{0x80, 1, 2, 3, 4, 5, 6, 7, 8}) // high bit: DER needs a 0x00 pad
		}))
	return testPKI{ca: ca, root: ca.Cert, tsa: tsa.Cert, key: tsa.Key}
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

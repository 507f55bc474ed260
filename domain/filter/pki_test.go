package filter

import (
	"crypto/x509"
	"testing"
	"time"

	"github.com/chronolog/chronolog/internal/testpki"
)

// epoch is when the test requests arrive; the test certificates are valid
// around it unless they are meant not to be.
var epoch = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// testPKI is a root with an intermediate that issues the client
// certificates, and an unrelated root with its own client.
type testPKI struct {
	root, inter, otherRoot *testpki.CA
	roots                  *x509.CertPool

	client      *x509.Certificate // clientAuth, valid at epoch, with SANs
	expired     *x509.Certificate // clientAuth, expired before epoch
	serverOnly  *x509.Certificate // serverAuth only
	direct      *x509.Certificate // issued by the root itself
	otherClient *x509.Certificate // issued by otherRoot
}

func newTestPKI(t testing.TB) *testPKI {
	p := &testPKI{}
	p.root = testpki.New(t, testpki.At(epoch))
	p.inter = p.root.Intermediate(t)
	p.otherRoot = testpki.New(t, testpki.At(epoch), testpki.Subject("Other Root", "Chronolog test"))
	p.roots = p.root.Pool()

	client := func(ca *testpki.CA, cn string, opts ...testpki.Option) *x509.Certificate {
		return ca.TLSClient(t, append([]testpki.Option{testpki.Subject(cn, "Example"),
			testpki.Valid(epoch.AddDate(0, 0, -1), epoch.AddDate(1, 0, 0))}, opts...)...).Cert
	}
	p.client = client(p.inter, "billing")
	p.expired = client(p.inter, "stale", testpki.Valid(epoch.AddDate(-2, 0, 0), epoch.AddDate(-1, 0, 0)))
	p.serverOnly = client(p.inter, "webserver", testpki.EKU(false, testpki.OIDServerAuth))
	p.direct = client(p.root, "direct")
	p.otherClient = client(p.otherRoot, "stranger")
	return p
}

package filter

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"net/url"
	"testing"
	"time"
)

// epoch is when the test requests arrive; the test certificates are valid
// around it unless they are meant not to be.
var epoch = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

type issuer struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// testPKI is a root with an intermediate that issues the client
// certificates, and an unrelated root with its own client.
type testPKI struct {
	root, inter, otherRoot issuer
	roots                  *x509.CertPool

	client      *x509.Certificate // clientAuth, valid at epoch, with SANs
	expired     *x509.Certificate // clientAuth, expired before epoch
	serverOnly  *x509.Certificate // serverAuth only
	direct      *x509.Certificate // issued by the root itself
	otherClient *x509.Certificate // issued by otherRoot
}

var serial int64

func newKey(t testing.TB) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func sign(t testing.TB, tmpl *x509.Certificate, key *ecdsa.PrivateKey, parent *issuer) *x509.Certificate {
	serial++
	tmpl.SerialNumber = big.NewInt(serial)
	parentCert, parentKey := tmpl, key
	if parent != nil {
		parentCert, parentKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parentCert, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func newCA(t testing.TB, name string, parent *issuer) issuer {
	key := newKey(t)
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: name, Organization: []string{"Chronolog Test"}},
		NotBefore:             epoch.AddDate(-1, 0, 0),
		NotAfter:              epoch.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	return issuer{cert: sign(t, tmpl, key, parent), key: key}
}

func newClient(t testing.TB, cn string, notBefore, notAfter time.Time, eku []x509.ExtKeyUsage, parent *issuer) *x509.Certificate {
	tmpl := &x509.Certificate{
		Subject:        pkix.Name{CommonName: cn, Organization: []string{"Example"}},
		NotBefore:      notBefore,
		NotAfter:       notAfter,
		KeyUsage:       x509.KeyUsageDigitalSignature,
		ExtKeyUsage:    eku,
		DNSNames:       []string{cn + ".clients.example"},
		EmailAddresses: []string{cn + "@example.org"},
		URIs:           []*url.URL{{Scheme: "spiffe", Host: "example.org", Path: "/tsa/" + cn}},
		IPAddresses:    []net.IP{net.ParseIP("192.0.2.7")},
	}
	return sign(t, tmpl, newKey(t), parent)
}

func newTestPKI(t testing.TB) *testPKI {
	p := &testPKI{}
	p.root = newCA(t, "Test Root", nil)
	p.inter = newCA(t, "Test Intermediate", &p.root)
	p.otherRoot = newCA(t, "Other Root", nil)
	p.roots = x509.NewCertPool()
	p.roots.AddCert(p.root.cert)

	clientAuth := []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	valid := func(cn string, parent *issuer, eku []x509.ExtKeyUsage) *x509.Certificate {
		return newClient(t, cn, epoch.AddDate(0, 0, -1), epoch.AddDate(1, 0, 0), eku, parent)
	}
	p.client = valid("billing", &p.inter, clientAuth)
	p.expired = newClient(t, "stale", epoch.AddDate(-2, 0, 0), epoch.AddDate(-1, 0, 0), clientAuth, &p.inter)
	p.serverOnly = valid("webserver", &p.inter, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth})
	p.direct = valid("direct", &p.root, clientAuth)
	p.otherClient = valid("stranger", &p.otherRoot, clientAuth)
	return p
}

// Package testpki makes throwaway certificate authorities for tests: a
// root, intermediates below it, and the end-entity certificates Chronolog's
// tests need: TSA certificates with the critical, sole timeStamping
// extendedKeyUsage RFC 3161 §2.3 asks for, code-signing certificates for
// Authenticode, TLS server and client certificates.
//
// Every field has a default that fits; options change what a test is about
// (the key type, the validity, a broken extendedKeyUsage), and Template
// reaches any other field. It imports the standard library only, so the
// domain's tests may use it.
package testpki

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
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// Object identifiers of the extendedKeyUsage extension and of the purposes
// the tests name in it.
var (
	OIDExtKeyUsage  = asn1.ObjectIdentifier{2, 5, 29, 37}
	OIDServerAuth   = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 1}
	OIDClientAuth   = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 2}
	OIDCodeSigning  = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 3}
	OIDTimeStamping = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 8}
)

// KeyType names a kind of key as tsactl does. It is also an Option: the
// certificate's key is a new one of this type.
type KeyType string

const (
	ECDSAP256 KeyType = "ecdsa-p256"
	ECDSAP384 KeyType = "ecdsa-p384"
	RSA2048   KeyType = "rsa-2048"
	Ed25519   KeyType = "ed25519"
)

func (k KeyType) apply(c *config) { c.keyType = k }

// NewKey generates a key of the given type.
func NewKey(tb testing.TB, kind KeyType) crypto.Signer {
	tb.Helper()
	var key crypto.Signer
	var err error
	switch kind {
	case ECDSAP256:
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case ECDSAP384:
		key, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case RSA2048:
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	case Ed25519:
		_, key, err = ed25519.GenerateKey(rand.Reader)
	default:
		err = fmt.Errorf("testpki: unknown key type %q", kind)
	}
	if err != nil {
		tb.Fatal(err)
	}
	return key
}

// An Option changes one certificate from its defaults.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	at                  time.Time
	keyType             KeyType
	key                 crypto.Signer
	pub                 crypto.PublicKey
	subject             *pkix.Name
	notBefore, notAfter time.Time
	eku                 *pkix.Extension
	edits               []func(*x509.Certificate)
}

// At is the time the default validity is reckoned from (default: now). Given
// to New, it holds for every certificate of the PKI.
func At(t time.Time) Option { return optionFunc(func(c *config) { c.at = t }) }

// Key is the certificate's key (one made once for many tests, or one in an
// HSM that signs its own root).
func Key(k crypto.Signer) Option { return optionFunc(func(c *config) { c.key = k }) }

// PublicKey certifies a public key whose private key the test does not hold
// (it is in a token); the Leaf has no Key.
func PublicKey(pub crypto.PublicKey) Option { return optionFunc(func(c *config) { c.pub = pub }) }

// Subject is the certificate's subject: a common name and organizations
// (none unless given).
func Subject(cn string, org ...string) Option {
	return optionFunc(func(c *config) { c.subject = &pkix.Name{CommonName: cn, Organization: org} })
}

// Valid is the certificate's validity, for tests of expiry.
func Valid(notBefore, notAfter time.Time) Option {
	return optionFunc(func(c *config) { c.notBefore, c.notAfter = notBefore, notAfter })
}

// EKU replaces the certificate's extendedKeyUsage with these purposes,
// critical or not, for certificates that break a rule on purpose.
func EKU(critical bool, purposes ...asn1.ObjectIdentifier) Option {
	return optionFunc(func(c *config) {
		v, err := asn1.Marshal(purposes)
		if err != nil {
			panic(err) // a slice of OIDs always marshals
		}
		c.eku = &pkix.Extension{Id: OIDExtKeyUsage, Critical: critical, Value: v}
	})
}

// NoEKU leaves the extendedKeyUsage out.
func NoEKU() Option { return optionFunc(func(c *config) { c.eku = nil }) }

// Template edits the template last, before it is signed, for what no other
// option covers. A nil edit does nothing.
func Template(edit func(*x509.Certificate)) Option {
	return optionFunc(func(c *config) {
		if edit != nil {
			c.edits = append(c.edits, edit)
		}
	})
}

// A CA issues certificates. Chain is the CAs above it, nearest first; a
// root has none.
type CA struct {
	Cert  *x509.Certificate
	Key   crypto.Signer
	Chain []*x509.Certificate
	at    time.Time
}

// A Leaf is an end-entity certificate, its key (nil when issued for a
// PublicKey) and the chain above it, its issuer first, up to the root.
type Leaf struct {
	Cert  *x509.Certificate
	Key   crypto.Signer
	Chain []*x509.Certificate
}

// serial numbers every certificate of a test binary apart, so no two
// share an issuer and a serial.
var serial atomic.Int64

const org = "Chronolog test"

// New makes a self-signed root CA, "CN=Test Root,O=Chronolog test", valid
// from a year before At to ten years after, with a new ECDSA P-256 key
// unless told otherwise.
func New(tb testing.TB, opts ...Option) *CA {
	tb.Helper()
	cfg := configure(time.Now(), opts)
	cert, key := issue(tb, nil, caTemplate(&cfg, "Test Root"), &cfg)
	return &CA{Cert: cert, Key: key, at: cfg.at}
}

// Intermediate makes a CA below ca, "Test Intermediate".
func (ca *CA) Intermediate(tb testing.TB, opts ...Option) *CA {
	tb.Helper()
	cfg := configure(ca.at, opts)
	cert, key := issue(tb, ca, caTemplate(&cfg, "Test Intermediate"), &cfg)
	return &CA{Cert: cert, Key: key, Chain: ca.chain(), at: cfg.at}
}

// TSA issues a TSA certificate, "Test TSA": keyUsage digitalSignature and
// timeStamping as its only extendedKeyUsage, critical (RFC 3161 §2.3;
// Go's x509 would mark it non-critical, so it is written by hand). It is
// valid from an hour before At to a year after.
func (ca *CA) TSA(tb testing.TB, opts ...Option) *Leaf {
	tb.Helper()
	return ca.leaf(tb, "Test TSA", OIDTimeStamping, true, opts)
}

// CodeSigning issues an Authenticode signer's certificate, "Test Code
// Signer", with the codeSigning extendedKeyUsage.
func (ca *CA) CodeSigning(tb testing.TB, opts ...Option) *Leaf {
	tb.Helper()
	return ca.leaf(tb, "Test Code Signer", OIDCodeSigning, false, opts)
}

// TLSServer issues a serverAuth certificate for localhost and 127.0.0.1.
func (ca *CA) TLSServer(tb testing.TB, opts ...Option) *Leaf {
	tb.Helper()
	opts = append([]Option{Template(func(c *x509.Certificate) {
		c.DNSNames, c.IPAddresses = []string{"localhost"}, []net.IP{net.ParseIP("127.0.0.1")}
	})}, opts...)
	return ca.leaf(tb, "localhost", OIDServerAuth, false, opts)
}

// TLSClient issues a clientAuth certificate, "Test Client" unless a Subject
// is given, with one name of each kind a filter may match, made from the
// common name CN: DNS CN.clients.example, email CN@example.org, URI
// spiffe://example.org/tsa/CN, and IP address 192.0.2.7.
func (ca *CA) TLSClient(tb testing.TB, opts ...Option) *Leaf {
	tb.Helper()
	opts = append([]Option{Template(func(c *x509.Certificate) {
		cn := c.Subject.CommonName
		c.DNSNames = []string{cn + ".clients.example"}
		c.EmailAddresses = []string{cn + "@example.org"}
		c.URIs = []*url.URL{{Scheme: "spiffe", Host: "example.org", Path: "/tsa/" + cn}}
		c.IPAddresses = []net.IP{net.ParseIP("192.0.2.7")}
	})}, opts...)
	return ca.leaf(tb, "Test Client", OIDClientAuth, false, opts)
}

// Pool is a certificate pool trusting ca.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// CertFile writes ca's certificate as PEM into a new directory of
// tb.TempDir and returns its path.
func (ca *CA) CertFile(tb testing.TB) string {
	tb.Helper()
	return writePEM(tb, tb.TempDir(), "ca.pem", "CERTIFICATE", ca.Cert.Raw)
}

// CertFile writes l's certificate as PEM into a new directory of
// tb.TempDir and returns its path.
func (l *Leaf) CertFile(tb testing.TB) string {
	tb.Helper()
	return writePEM(tb, tb.TempDir(), "cert.pem", "CERTIFICATE", l.Cert.Raw)
}

// Files writes l's certificate and its PKCS #8 key as PEM into a new
// directory of tb.TempDir, for configuration files and external tools.
func (l *Leaf) Files(tb testing.TB) (certFile, keyFile string) {
	tb.Helper()
	if l.Key == nil {
		tb.Fatal("testpki: the leaf was issued for a public key alone: no key to write")
	}
	der, err := x509.MarshalPKCS8PrivateKey(l.Key)
	if err != nil {
		tb.Fatal(err)
	}
	dir := tb.TempDir()
	return writePEM(tb, dir, "cert.pem", "CERTIFICATE", l.Cert.Raw), writePEM(tb, dir, "key.pem", "PRIVATE KEY", der)
}

func (ca *CA) chain() []*x509.Certificate {
	return append([]*x509.Certificate{ca.Cert}, ca.Chain...)
}

func (ca *CA) leaf(tb testing.TB, cn string, purpose asn1.ObjectIdentifier, critical bool, opts []Option) *Leaf {
	tb.Helper()
	// The kind's extendedKeyUsage comes first, so that EKU and NoEKU
	// replace it.
	cfg := configure(ca.at, append([]Option{EKU(critical, purpose)}, opts...))
	tmpl := &x509.Certificate{
		Subject:   subject(&cfg, cn),
		NotBefore: cfg.at.Add(-time.Hour), NotAfter: cfg.at.AddDate(1, 0, 0),
		KeyUsage: x509.KeyUsageDigitalSignature,
	}
	if cfg.eku != nil {
		tmpl.ExtraExtensions = []pkix.Extension{*cfg.eku}
	}
	cert, key := issue(tb, ca, tmpl, &cfg)
	return &Leaf{Cert: cert, Key: key, Chain: ca.chain()}
}

func configure(at time.Time, opts []Option) config {
	cfg := config{at: at, keyType: ECDSAP256}
	for _, o := range opts {
		o.apply(&cfg)
	}
	return cfg
}

func subject(cfg *config, cn string) pkix.Name {
	if cfg.subject != nil {
		return *cfg.subject
	}
	return pkix.Name{CommonName: cn, Organization: []string{org}}
}

func caTemplate(cfg *config, cn string) *x509.Certificate {
	tmpl := &x509.Certificate{
		Subject:   subject(cfg, cn),
		NotBefore: cfg.at.AddDate(-1, 0, 0), NotAfter: cfg.at.AddDate(10, 0, 0),
		IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	if cfg.eku != nil {
		tmpl.ExtraExtensions = []pkix.Extension{*cfg.eku}
	}
	return tmpl
}

// issue signs tmpl with parent's key, or with the certificate's own key
// when parent is nil, and returns the certificate and its key.
func issue(tb testing.TB, parent *CA, tmpl *x509.Certificate, cfg *config) (*x509.Certificate, crypto.Signer) {
	tb.Helper()
	tmpl.SerialNumber = big.NewInt(serial.Add(1))
	if !cfg.notBefore.IsZero() || !cfg.notAfter.IsZero() {
		tmpl.NotBefore, tmpl.NotAfter = cfg.notBefore, cfg.notAfter
	}
	for _, edit := range cfg.edits {
		edit(tmpl)
	}
	key, pub := cfg.key, cfg.pub
	switch {
	case key != nil:
		pub = key.Public()
	case pub == nil:
		key = NewKey(tb, cfg.keyType)
		pub = key.Public()
	case parent == nil:
		tb.Fatal("testpki: a root signs itself: it needs a private key, not a public key alone")
	}
	parentCert, parentKey := tmpl, key
	if parent != nil {
		parentCert, parentKey = parent.Cert, parent.Key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parentCert, pub, parentKey)
	if err != nil {
		tb.Fatalf("testpki: issue %s: %v", tmpl.Subject, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	return cert, key
}

func writePEM(tb testing.TB, dir, name, typ string, der []byte) string {
	tb.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		tb.Fatal(err)
	}
	return path
}

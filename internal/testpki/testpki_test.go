package testpki

import (
	"crypto"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestImportsOnlyTheStandardLibrary: the domain's tests import this
// package, and the domain depends on the standard library alone.
func TestImportsOnlyTheStandardLibrary(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		parsed, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range parsed.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if strings.Contains(strings.SplitN(p, "/", 2)[0], ".") {
				t.Errorf("%s imports %s: testpki uses the standard library only", f, p)
			}
		}
	}
}

// publicKey is what every public key of the standard library can do.
type publicKey interface{ Equal(crypto.PublicKey) bool }

// ekuOf is the certificate's extendedKeyUsage extension as written.
func ekuOf(t *testing.T, c *x509.Certificate) (purposes []asn1.ObjectIdentifier, critical, present bool) {
	t.Helper()
	for _, e := range c.Extensions {
		if e.Id.Equal(OIDExtKeyUsage) {
			if _, err := asn1.Unmarshal(e.Value, &purposes); err != nil {
				t.Fatal(err)
			}
			return purposes, e.Critical, true
		}
	}
	return nil, false, false
}

func TestTSAChainVerifies(t *testing.T) {
	at := time.Date(2026, 11, 22, 16, 0, 0, 0, time.UTC)
	root := New(t, At(at))
	inter := root.Intermediate(t)
	for _, kind := range []KeyType{ECDSAP256, ECDSAP384, RSA2048, Ed25519} {
		t.Run(string(kind), func(t *testing.T) {
			tsa := inter.TSA(t, kind)
			if _, err := tsa.Cert.Verify(x509.VerifyOptions{
				Roots: root.Pool(), Intermediates: inter.Pool(), CurrentTime: at,
				KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageTimeStamping},
			}); err != nil {
				t.Fatal(err)
			}
			if len(tsa.Chain) != 2 || !tsa.Chain[0].Equal(inter.Cert) || !tsa.Chain[1].Equal(root.Cert) {
				t.Fatalf("chain %v", tsa.Chain)
			}
			purposes, critical, _ := ekuOf(t, tsa.Cert)
			if !critical || len(purposes) != 1 || !purposes[0].Equal(OIDTimeStamping) {
				t.Fatalf("extendedKeyUsage %v, critical %v", purposes, critical)
			}
			if tsa.Cert.Subject.String() != "CN=Test TSA,O=Chronolog test" || !tsa.Cert.NotAfter.Equal(at.AddDate(1, 0, 0)) {
				t.Fatalf("%s valid to %s", tsa.Cert.Subject, tsa.Cert.NotAfter)
			}
		})
	}
	if _, err := inter.TSA(t).Cert.Verify(x509.VerifyOptions{Roots: New(t, At(at)).Pool(), Intermediates: inter.Pool(), CurrentTime: at}); err == nil {
		t.Fatal("a TSA certificate verifies to a root that did not issue it")
	}
}

func TestOptions(t *testing.T) {
	ca := New(t)
	from, to := time.Now().Add(-2*time.Hour), time.Now().Add(-time.Hour)
	expired := ca.TSA(t, Valid(from, to), Subject("old", "Example"))
	if !expired.Cert.NotBefore.Equal(from.Truncate(time.Second)) || !expired.Cert.NotAfter.Equal(to.Truncate(time.Second)) ||
		expired.Cert.Subject.String() != "CN=old,O=Example" {
		t.Fatalf("%s valid %s to %s", expired.Cert.Subject, expired.Cert.NotBefore, expired.Cert.NotAfter)
	}
	if _, _, present := ekuOf(t, ca.TSA(t, NoEKU()).Cert); present {
		t.Error("NoEKU left an extendedKeyUsage")
	}
	purposes, critical, _ := ekuOf(t, ca.TSA(t, EKU(false, OIDTimeStamping, OIDCodeSigning)).Cert)
	if critical || len(purposes) != 2 {
		t.Errorf("EKU(false, two): %v, critical %v", purposes, critical)
	}
	other := NewKey(t, ECDSAP256)
	held := ca.TSA(t, PublicKey(other.Public()))
	if held.Key != nil || !other.Public().(publicKey).Equal(held.Cert.PublicKey) {
		t.Error("PublicKey: the certificate is not for the key given, or the leaf has a key")
	}
	if own := ca.TSA(t, Key(other)); own.Key != other {
		t.Error("Key: not the key given")
	}
	if c := ca.TSA(t, Template(func(c *x509.Certificate) { c.KeyUsage = x509.KeyUsageContentCommitment })).Cert; c.KeyUsage != x509.KeyUsageContentCommitment {
		t.Errorf("Template: keyUsage %v", c.KeyUsage)
	}
	client := ca.TLSClient(t, Subject("alice", "Partner")).Cert
	if client.DNSNames[0] != "alice.clients.example" || client.URIs[0].String() != "spiffe://example.org/tsa/alice" ||
		len(client.ExtKeyUsage) != 1 || client.ExtKeyUsage[0] != x509.ExtKeyUsageClientAuth {
		t.Errorf("TLS client %v %v %v", client.DNSNames, client.URIs, client.ExtKeyUsage)
	}
	server := ca.TLSServer(t).Cert
	if err := server.VerifyHostname("127.0.0.1"); err != nil || server.ExtKeyUsage[0] != x509.ExtKeyUsageServerAuth {
		t.Errorf("TLS server: %v, %v", err, server.ExtKeyUsage)
	}
	if cs := ca.CodeSigning(t).Cert; len(cs.ExtKeyUsage) != 1 || cs.ExtKeyUsage[0] != x509.ExtKeyUsageCodeSigning {
		t.Errorf("code signing: %v", cs.ExtKeyUsage)
	}
}

func TestFiles(t *testing.T) {
	ca := New(t)
	leaf := ca.TSA(t, RSA2048)
	certFile, keyFile := leaf.Files(t)
	read := func(path, typ string) []byte {
		t.Helper()
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := pem.Decode(raw)
		if b == nil || b.Type != typ {
			t.Fatalf("%s holds no %s", path, typ)
		}
		return b.Bytes
	}
	if c, err := x509.ParseCertificate(read(certFile, "CERTIFICATE")); err != nil || !c.Equal(leaf.Cert) {
		t.Fatalf("%s: %v", certFile, err)
	}
	key, err := x509.ParsePKCS8PrivateKey(read(keyFile, "PRIVATE KEY"))
	if err != nil || !leaf.Key.Public().(publicKey).Equal(key.(crypto.Signer).Public()) {
		t.Fatalf("%s: %v", keyFile, err)
	}
	if c, err := x509.ParseCertificate(read(ca.CertFile(t), "CERTIFICATE")); err != nil || !c.Equal(ca.Cert) {
		t.Fatalf("CA file: %v", err)
	}
}

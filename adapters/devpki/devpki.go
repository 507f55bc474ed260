// Package devpki creates the development PKI of `tsad dev`: a root CA and a
// TSA certificate whose only extended key usage is timeStamping, marked
// critical (RFC 3161 §2.3). It is for development only and names itself so
// in every certificate subject.
package devpki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Options say where and what to create.
type Options struct {
	Dir string
	// KeyType is ecdsa-p256 (default), ecdsa-p384, rsa-2048 or rsa-3072.
	KeyType      string
	Organization string
	// ValidFor is the TSA certificate's lifetime; zero means two years.
	ValidFor time.Duration
	Now      time.Time
}

// Files are the paths of the PKI.
type Files struct {
	CACert, TSACert, TSAKey, Chain string
	// Created is true when Ensure made them now.
	Created bool
}

// caValidity is the development root's lifetime: ten years.
const caValidity = 10 * 365 * 24 * time.Hour

var (
	oidExtKeyUsage    = asn1.ObjectIdentifier{2, 5, 29, 37}
	oidKPTimeStamping = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 8}
)

// Ensure returns the PKI in Dir, creating it when Dir holds none. A
// half-written set is an error: it is never silently replaced.
func Ensure(opts Options) (*Files, error) {
	f := &Files{
		CACert:  filepath.Join(opts.Dir, "ca.pem"),
		TSACert: filepath.Join(opts.Dir, "tsa.pem"),
		TSAKey:  filepath.Join(opts.Dir, "tsa.key"),
		Chain:   filepath.Join(opts.Dir, "chain.pem"),
	}
	var missing []string
	for _, p := range []string{f.CACert, f.TSACert, f.TSAKey, f.Chain} {
		if _, err := os.Stat(p); err != nil {
			missing = append(missing, filepath.Base(p))
		}
	}
	switch len(missing) {
	case 0:
		return f, nil
	case 4:
	default:
		return nil, fmt.Errorf("%s holds an incomplete development PKI (missing %s): remove it or restore the files", opts.Dir, strings.Join(missing, ", "))
	}
	if opts.Now.IsZero() {
		return nil, errors.New("devpki: Now is required")
	}
	if opts.ValidFor <= 0 {
		opts.ValidFor = 2 * 365 * 24 * time.Hour
	}
	if opts.ValidFor > caValidity {
		return nil, fmt.Errorf("devpki: ValidFor %s outlives the development CA (%s)", opts.ValidFor, caValidity)
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("create %s: %w", opts.Dir, err)
	}
	caKey, err := newKey(opts.KeyType)
	if err != nil {
		return nil, err
	}
	tsaKey, err := newKey(opts.KeyType)
	if err != nil {
		return nil, err
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               name("Chronolog DEVELOPMENT Root CA - not for production", opts.Organization),
		NotBefore:             opts.Now.Add(-time.Hour),
		NotAfter:              opts.Now.Add(caValidity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		SubjectKeyId:          keyID(caKey.Public()),
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		return nil, fmt.Errorf("create development CA: %w", err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	// Go marks extendedKeyUsage non-critical; RFC 3161 wants it critical
	// and alone, so it goes in by hand.
	eku, _ := asn1.Marshal([]asn1.ObjectIdentifier{oidKPTimeStamping})
	tsaTmpl := &x509.Certificate{
		SerialNumber:    randomSerial(),
		Subject:         name("Chronolog DEVELOPMENT TSA", opts.Organization),
		NotBefore:       opts.Now.Add(-time.Hour),
		NotAfter:        opts.Now.Add(opts.ValidFor),
		KeyUsage:        x509.KeyUsageDigitalSignature,
		ExtraExtensions: []pkix.Extension{{Id: oidExtKeyUsage, Critical: true, Value: eku}},
		SubjectKeyId:    keyID(tsaKey.Public()),
	}
	tsaDER, err := x509.CreateCertificate(rand.Reader, tsaTmpl, ca, tsaKey.Public(), caKey)
	if err != nil {
		return nil, fmt.Errorf("create development TSA certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(tsaKey)
	if err != nil {
		return nil, err
	}
	cert := func(der []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}) }
	writes := []struct {
		path string
		data []byte
		mode os.FileMode
	}{
		{f.TSAKey, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600},
		{f.TSACert, cert(tsaDER), 0o644},
		{f.CACert, cert(caDER), 0o644},
		{f.Chain, append(cert(tsaDER), cert(caDER)...), 0o644},
	}
	for _, w := range writes {
		if err := writeAtomic(w.path, w.data, w.mode); err != nil {
			return nil, err
		}
	}
	// Make the renames durable; a directory that cannot be synced (some
	// file systems) is not an error.
	if d, err := os.Open(opts.Dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	f.Created = true
	return f, nil
}

// name builds a subject; an empty organization is left out rather than
// written as an empty O attribute.
func name(cn, org string) pkix.Name {
	n := pkix.Name{CommonName: cn}
	if org != "" {
		n.Organization = []string{org}
	}
	return n
}

func newKey(kind string) (crypto.Signer, error) {
	switch kind {
	case "", "ecdsa-p256":
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "ecdsa-p384":
		return ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case "rsa-2048":
		return rsa.GenerateKey(rand.Reader, 2048)
	case "rsa-3072":
		return rsa.GenerateKey(rand.Reader, 3072)
	}
	return nil, fmt.Errorf("unknown key type %q (ecdsa-p256, ecdsa-p384, rsa-2048, rsa-3072)", kind)
}

func randomSerial() *big.Int {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	b[0] &= 0x7f
	b[0] |= 0x01
	return new(big.Int).SetBytes(b)
}

func keyID(pub crypto.PublicKey) []byte {
	der, _ := x509.MarshalPKIXPublicKey(pub)
	sum := sha1.Sum(der)
	return sum[:]
}

func writeAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path))
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

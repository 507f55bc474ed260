// Package softkey loads a TSA key and certificate from PEM files. It is the
// development and small-deployment signer; production keys belong in an
// HSM (adapters/signer/pkcs11), which reuses CheckTSACertificate.
package softkey

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"time"
)

// Config names the PEM files.
type Config struct {
	KeyFile, CertFile string
	// ChainFile holds the issuers up to the root (optional); a leading
	// copy of the TSA certificate is dropped.
	ChainFile string
}

// Key is a loaded, checked TSA key.
type Key struct {
	signer crypto.Signer
	cert   *x509.Certificate
	chain  []*x509.Certificate
}

func (k *Key) Signer() crypto.Signer          { return k.signer }
func (k *Key) Certificate() *x509.Certificate { return k.cert }
func (k *Key) Chain() []*x509.Certificate     { return k.chain }
func (k *Key) Fingerprint() string {
	s := sha256.Sum256(k.cert.Raw)
	return hex.EncodeToString(s[:])
}

// Load reads and checks the key material; it refuses a certificate that a
// strict client would refuse.
func Load(cfg Config, now time.Time) (*Key, error) {
	raw, err := os.ReadFile(cfg.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("read TSA key: %w", err)
	}
	signer, err := parseKey(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.KeyFile, err)
	}
	certs, err := ReadCertificates(cfg.CertFile)
	if err != nil {
		return nil, err
	}
	k := &Key{signer: signer, cert: certs[0]}
	if err := CheckTSACertificate(k.cert, signer.Public(), now); err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.CertFile, err)
	}
	if cfg.ChainFile != "" {
		chain, err := ReadCertificates(cfg.ChainFile)
		if err != nil {
			return nil, err
		}
		if bytes.Equal(chain[0].Raw, k.cert.Raw) {
			chain = chain[1:]
		}
		k.chain = chain
		if len(chain) > 0 {
			roots, inter := x509.NewCertPool(), x509.NewCertPool()
			roots.AddCert(chain[len(chain)-1])
			for _, c := range chain[:len(chain)-1] {
				inter.AddCert(c)
			}
			if _, err := k.cert.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: now,
				KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageTimeStamping}}); err != nil {
				return nil, fmt.Errorf("%s does not validate the TSA certificate: %w", cfg.ChainFile, err)
			}
		}
	}
	return k, nil
}

var (
	oidExtKeyUsage    = asn1.ObjectIdentifier{2, 5, 29, 37}
	oidKPTimeStamping = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 8}
)

// CheckTSACertificate enforces RFC 3161 §2.3 and the key match: the
// extendedKeyUsage extension present, critical, and timeStamping alone;
// keyUsage, if present, allowing signatures; the key pair matching; now
// within the validity period.
func CheckTSACertificate(cert *x509.Certificate, pub crypto.PublicKey, now time.Time) error {
	want, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return fmt.Errorf("TSA public key: %w", err)
	}
	if got, _ := x509.MarshalPKIXPublicKey(cert.PublicKey); !bytes.Equal(got, want) {
		return errors.New("the certificate's public key does not match the TSA private key")
	}
	var eku *struct{ critical bool }
	for _, e := range cert.Extensions {
		if e.Id.Equal(oidExtKeyUsage) {
			eku = &struct{ critical bool }{e.Critical}
		}
	}
	switch {
	case eku == nil:
		return errors.New("the certificate has no extendedKeyUsage: a TSA certificate needs timeStamping, critical")
	case !eku.critical:
		return errors.New("the certificate's extendedKeyUsage is not critical (RFC 3161 §2.3)")
	case len(cert.UnknownExtKeyUsage) != 0 || len(cert.ExtKeyUsage) != 1 || cert.ExtKeyUsage[0] != x509.ExtKeyUsageTimeStamping:
		return errors.New("timeStamping must be the certificate's only extendedKeyUsage (RFC 3161 §2.3)")
	}
	if cert.KeyUsage != 0 && cert.KeyUsage&(x509.KeyUsageDigitalSignature|x509.KeyUsageContentCommitment) == 0 {
		return errors.New("the certificate's keyUsage allows neither digitalSignature nor contentCommitment")
	}
	if now.Before(cert.NotBefore) || now.After(cert.NotAfter) {
		return fmt.Errorf("the certificate is valid from %s to %s, not now (%s)", cert.NotBefore.UTC(), cert.NotAfter.UTC(), now.UTC())
	}
	return nil
}

func parseKey(raw []byte) (crypto.Signer, error) {
	for {
		var b *pem.Block
		b, raw = pem.Decode(raw)
		if b == nil {
			return nil, errors.New("no private key PEM block")
		}
		var key any
		var err error
		switch b.Type {
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(b.Bytes)
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(b.Bytes)
		case "RSA PRIVATE KEY":
			key, err = x509.ParsePKCS1PrivateKey(b.Bytes)
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", b.Type, err)
		}
		switch k := key.(type) {
		case *ecdsa.PrivateKey:
			return k, nil
		case *rsa.PrivateKey:
			return k, nil
		case ed25519.PrivateKey:
			return k, nil
		}
		return nil, fmt.Errorf("unsupported key type %T", key)
	}
}

// ReadCertificates reads every CERTIFICATE block of a PEM file, in order.
func ReadCertificates(path string) ([]*x509.Certificate, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read certificates: %w", err)
	}
	var out []*x509.Certificate
	for {
		var b *pem.Block
		b, raw = pem.Decode(raw)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no certificate", path)
	}
	return out, nil
}

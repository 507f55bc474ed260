// Package softkey loads a TSA key and certificate from PEM files. It is the
// development and small-deployment signer; production keys belong in an
// HSM (adapters/signer/pkcs11); both are checked by domain/tsacert.
package softkey

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/chronolog/chronolog/domain/tsacert"
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
	if cfg.ChainFile != "" {
		chain, err := ReadCertificates(cfg.ChainFile)
		if err != nil {
			return nil, err
		}
		// A full bundle starting with the TSA certificate itself is
		// taken as the issuers after it.
		if bytes.Equal(chain[0].Raw, k.cert.Raw) {
			chain = chain[1:]
		}
		k.chain = chain
	}
	if err := tsacert.Check(k.cert, signer.Public(), k.chain, now); err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.CertFile, err)
	}
	return k, nil
}

// CheckTSACertificate enforces RFC 3161 §2.3 and the key match (see
// tsacert.Check) for a certificate without its chain.
func CheckTSACertificate(cert *x509.Certificate, pub crypto.PublicKey, now time.Time) error {
	return tsacert.Check(cert, pub, nil, now)
}

// ReadKey reads a private key file (PEM: PKCS#8, SEC 1 or PKCS#1), with
// no certificate: what Load does with the key, for the tools that only
// sign.
func ReadKey(path string) (crypto.Signer, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read key: %w", err)
	}
	signer, err := parseKey(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return signer, nil
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

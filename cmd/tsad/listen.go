package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"

	"github.com/chronolog/chronolog/adapters/config"
)

// listen opens the HTTP listener, wrapped in TLS when the server section
// asks for it.
func listen(s config.Server) (net.Listener, string, error) {
	var tc *tls.Config
	if s.TLS != nil {
		var err error
		if tc, err = tlsConfig(s.TLS); err != nil {
			return nil, "", err
		}
	}
	ln, err := net.Listen("tcp", s.Listen)
	if err != nil {
		return nil, "", fmt.Errorf("listen: %w", err)
	}
	if tc == nil {
		return ln, "http", nil
	}
	return tls.NewListener(ln, tc), "https", nil
}

// tlsConfig is the listener's TLS: 1.2 at least, and the client
// authentication the file asks for. With "request" the handshake takes any
// client certificate and the services' tls-client-cert filters judge it
// against their own CAs, recording the verdict; with "require" the
// handshake itself refuses, and nothing reaches the record.
func tlsConfig(t *config.TLS) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(t.Cert, t.Key)
	if err != nil {
		return nil, fmt.Errorf("TLS certificate: %w", err)
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	switch t.ClientAuth {
	case config.ClientAuthRequest:
		tc.ClientAuth = tls.RequestClientCert
	case config.ClientAuthVerifyIfGiven:
		tc.ClientAuth = tls.VerifyClientCertIfGiven
	case config.ClientAuthRequire:
		tc.ClientAuth = tls.RequireAndVerifyClientCert
	}
	if t.ClientCAs != "" {
		if tc.ClientCAs, err = readPool(t.ClientCAs); err != nil {
			return nil, fmt.Errorf("TLS client CAs: %w", err)
		}
	}
	return tc, nil
}

// readPool reads the CA certificates client certificates must chain to.
func readPool(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("CA file %s holds no PEM certificate", path)
	}
	return pool, nil
}

// Package upstream forwards RFC 3161 requests to another TSA over HTTP(S):
// the proxy mode of a timestamp service.
package upstream

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/chronolog/chronolog/domain/rfc3161"
)

// MaxResponse bounds what is read from the upstream: a TimeStampResp with a
// long certificate chain is a few KiB.
const MaxResponse = 1 << 20

// Config names the upstream.
type Config struct {
	URL string
	// Timeout bounds one exchange; zero means 10 s.
	Timeout time.Duration
	// CAFile, when set, holds the only CAs the upstream's TLS certificate
	// may chain to; otherwise the system's roots.
	CAFile string
}

// TSA is one upstream time-stamp authority.
type TSA struct {
	cfg    Config
	client *http.Client
}

// New prepares the client.
func New(cfg Config) (*TSA, error) {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("upstream CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("upstream CA file %s holds no PEM certificate", cfg.CAFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &TSA{cfg: cfg, client: &http.Client{Transport: tr, Timeout: cfg.Timeout}}, nil
}

// URL is the upstream's address.
func (u *TSA) URL() string { return u.cfg.URL }

// Forward posts query and returns the upstream's status and body.
func (u *TSA) Forward(ctx context.Context, query []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.cfg.URL, bytes.NewReader(query))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", rfc3161.MediaTypeQuery)
	req.Header.Set("Accept", rfc3161.MediaTypeReply)
	resp, err := u.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponse+1))
	if err != nil {
		return resp.StatusCode, nil, fmt.Errorf("read upstream answer: %w", err)
	}
	if len(body) > MaxResponse {
		return resp.StatusCode, nil, fmt.Errorf("upstream answer exceeds %d bytes", MaxResponse)
	}
	return resp.StatusCode, body, nil
}

// Close releases idle connections.
func (u *TSA) Close() error {
	u.client.CloseIdleConnections()
	return nil
}

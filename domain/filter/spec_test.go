package filter

import (
	"crypto/x509"
	"errors"
	"strings"
	"testing"
)

// New makes each spec's filter; a spec whose files do not read is an
// error naming the file's role.
func TestNew(t *testing.T) {
	p := newTestPKI(t)
	files := func(path string) ([]*x509.Certificate, error) {
		switch path {
		case "ca.pem":
			return []*x509.Certificate{p.root.Cert}, nil
		case "inter.pem":
			return []*x509.Certificate{p.inter.Cert}, nil
		}
		return nil, errors.New("no such file")
	}
	for _, tc := range []struct {
		spec Spec
		name string
	}{
		{NonceRequiredSpec{MinBytes: 8}, "nonce-required"},
		{CertReqSpec{}, "cert-req"},
		{RequestSizeSpec{Max: 100}, "request-size"},
		{ClientIPSpec{Allow: prefixes("10.0.0.0/8")}, "client-ip"},
		{TLSClientCertSpec{CAFile: "ca.pem", IntermediatesFile: "inter.pem"}, "tls-client-cert"},
		{AuthorizeByNameSpec{}, "authorize-by-name"},
		{AuthorizeByAuthenticationSpec{}, "authorize-by-authentication"},
		{APIKeysSpec{Keys: []APIKey{apiKey("a", "k")}}, "api-key"},
		{RateLimitSpec{Rate: 1, Burst: 1}, "rate-limit"},
	} {
		f, err := New(tc.spec, files)
		if err != nil || f.Name() != tc.name {
			t.Errorf("New(%T) = %v, %v; want %s", tc.spec, f, err, tc.name)
		}
	}
	for _, tc := range []struct {
		spec Spec
		want string
	}{
		{TLSClientCertSpec{CAFile: "missing.pem"}, "caFile"},
		{TLSClientCertSpec{CAFile: "ca.pem", IntermediatesFile: "missing.pem"}, "intermediatesFile"},
		{ClientIPSpec{}, "both the allow and the deny list are empty"},
		{RateLimitSpec{Rate: 1}, "burst"},
		{APIKeysSpec{Keys: nil}, "no keys"},
	} {
		if _, err := New(tc.spec, files); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v) = %v, want an error about %s", tc.spec, err, tc.want)
		}
	}
}

package filter

import (
	"crypto/x509"
	"fmt"
	"net/netip"
)

// Spec is one filter of a chain with its options parsed and checked: what
// a configuration says, ready for New. Adding a filter means the filter,
// its Spec with a case in New, how the configuration reads it, and the
// docs.
type Spec interface{ spec() }

type (
	// NonceRequiredSpec: NewNonceRequired.
	NonceRequiredSpec struct{ MinBytes int }
	// CertReqSpec: NewCertReqForced.
	CertReqSpec struct{}
	// RequestSizeSpec: NewRequestSize.
	RequestSizeSpec struct{ Max int64 }
	// ClientIPSpec: NewClientIP.
	ClientIPSpec struct{ Allow, Deny []netip.Prefix }
	// TLSClientCertSpec: NewTLSClientCert, with the certificates of the
	// files named (intermediates optional).
	TLSClientCertSpec struct{ CAFile, IntermediatesFile string }
	// AuthorizeByNameSpec: NewAuthorizeByName.
	AuthorizeByNameSpec struct{ Rules []NameRule }
	// AuthorizeByAuthenticationSpec: NewAuthorizeByAuthentication.
	AuthorizeByAuthenticationSpec struct{}
	// APIKeysSpec: NewAPIKeys.
	APIKeysSpec struct{ Keys []APIKey }
	// RateLimitSpec: NewRateLimit; MaxClients 0 is DefaultMaxClients.
	RateLimitSpec struct {
		Rate       float64
		Burst      int
		MaxClients int
	}
)

// DefaultMaxClients is how many clients a rate limit keeps buckets for
// when its configuration does not say.
const DefaultMaxClients = 100000

func (NonceRequiredSpec) spec()             {}
func (CertReqSpec) spec()                   {}
func (RequestSizeSpec) spec()               {}
func (ClientIPSpec) spec()                  {}
func (TLSClientCertSpec) spec()             {}
func (AuthorizeByNameSpec) spec()           {}
func (AuthorizeByAuthenticationSpec) spec() {}
func (APIKeysSpec) spec()                   {}
func (RateLimitSpec) spec()                 {}

// CertificateFiles reads the PEM certificates of a file a configuration
// names.
type CertificateFiles func(path string) ([]*x509.Certificate, error)

// New makes the filter a spec describes, reading the files it names
// through files.
func New(s Spec, files CertificateFiles) (Filter, error) {
	switch s := s.(type) {
	case NonceRequiredSpec:
		return NewNonceRequired(s.MinBytes), nil
	case CertReqSpec:
		return NewCertReqForced(), nil
	case RequestSizeSpec:
		return NewRequestSize(s.Max), nil
	case ClientIPSpec:
		return NewClientIP(s.Allow, s.Deny)
	case TLSClientCertSpec:
		cas, err := files(s.CAFile)
		if err != nil {
			return nil, fmt.Errorf("caFile: %w", err)
		}
		roots := x509.NewCertPool()
		for _, c := range cas {
			roots.AddCert(c)
		}
		var inter []*x509.Certificate
		if s.IntermediatesFile != "" {
			if inter, err = files(s.IntermediatesFile); err != nil {
				return nil, fmt.Errorf("intermediatesFile: %w", err)
			}
		}
		return NewTLSClientCert(roots, inter), nil
	case AuthorizeByNameSpec:
		return NewAuthorizeByName(s.Rules), nil
	case AuthorizeByAuthenticationSpec:
		return NewAuthorizeByAuthentication(), nil
	case APIKeysSpec:
		return NewAPIKeys(s.Keys)
	case RateLimitSpec:
		max := s.MaxClients
		if max == 0 {
			max = DefaultMaxClients
		}
		return NewRateLimit(s.Rate, s.Burst, max)
	}
	return nil, fmt.Errorf("no filter for a %T", s)
}

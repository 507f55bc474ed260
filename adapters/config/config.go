// Package config reads the tsad configuration file (YAML): the listeners
// and the timestamp services, each with its policies, signer, filter
// chains and the policy map that routes a request to one of them.
//
// Load reports every mistake in the file at once, each with its place
// ("services[1] qualified: chains.partners[2] rate-limit: rate must be
// positive"), so an operator fixes a file in one pass; a file with any
// mistake is never used. The format is documented in docs/configuration.md
// and example.yaml.
package config

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"gopkg.in/yaml.v3"
)

// File is a whole configuration file.
type File struct {
	Server   Server    `yaml:"server" json:"server"`
	Services []Service `yaml:"services" json:"services"`

	// Path is where the file was read from; SHA256 is the hex digest of
	// its bytes. Neither is part of the YAML.
	Path   string `yaml:"-" json:"-"`
	SHA256 string `yaml:"-" json:"-"`
}

// Server holds what applies to the whole process. A reload cannot change
// it: listeners are bound once.
type Server struct {
	// Listen is the HTTP(S) listen address.
	Listen string `yaml:"listen" json:"listen"`
	TLS    *TLS   `yaml:"tls,omitempty" json:"tls,omitempty"`
	// MaxBody is the HTTP body limit in bytes.
	MaxBody int64 `yaml:"maxBody,omitempty" json:"maxBody,omitempty"`
	// RequestTimeout bounds one request, the wait for its events included.
	RequestTimeout Duration `yaml:"requestTimeout,omitempty" json:"requestTimeout,omitempty"`
	// CertificateWarningDays: a TSA certificate expiring within this many
	// days is warned of (and recorded) at every start; default 30.
	CertificateWarningDays int `yaml:"certificateWarningDays,omitempty" json:"certificateWarningDays,omitempty"`
	// Clock is the clock-quality sampling and issuance gate; nil leaves
	// the choice to the command (see Clock).
	Clock *Clock `yaml:"clock,omitempty" json:"clock,omitempty"`
	// API is the read-side query API; without tokens it answers 401.
	API *API `yaml:"api,omitempty" json:"api,omitempty"`
}

// TLS configures the HTTPS listener.
type TLS struct {
	Cert string `yaml:"cert" json:"cert"`
	Key  string `yaml:"key" json:"key"`
	// ClientAuth is none, request (ask for a certificate, let the
	// tls-client-cert filter judge it), verify-if-given or require
	// (the handshake itself refuses a client without a certificate that
	// verifies against ClientCAs).
	ClientAuth string `yaml:"clientAuth,omitempty" json:"clientAuth,omitempty"`
	ClientCAs  string `yaml:"clientCAs,omitempty" json:"clientCAs,omitempty"`
}

// Client authentication modes of the TLS listener.
const (
	ClientAuthNone          = "none"
	ClientAuthRequest       = "request"
	ClientAuthVerifyIfGiven = "verify-if-given"
	ClientAuthRequire       = "require"
)

// Service is one timestamp service.
type Service struct {
	Name string `yaml:"name" json:"name"`
	// Paths are the HTTP paths the service answers on.
	Paths []string `yaml:"paths" json:"paths"`
	// TCP is an optional listen address for RFC 3161 §3.3 (socket) requests.
	TCP string `yaml:"tcp,omitempty" json:"tcp,omitempty"`
	// Policy is the default TSA policy OID; AcceptedPolicies are further
	// ones a request may ask for.
	Policy           string   `yaml:"policy" json:"policy"`
	AcceptedPolicies []string `yaml:"acceptedPolicies,omitempty" json:"acceptedPolicies,omitempty"`
	Signer           Signer   `yaml:"signer" json:"signer"`
	// Accuracy is the declared accuracy put in tokens ("0s" omits it).
	Accuracy  *Duration `yaml:"accuracy,omitempty" json:"accuracy,omitempty"`
	Precision Duration  `yaml:"precision,omitempty" json:"precision,omitempty"`
	// Hashes is the message-imprint allow-list, by name (sha256, sha3-512, ...).
	Hashes []string `yaml:"hashes,omitempty" json:"hashes,omitempty"`
	// IncludeChain puts the issuer certificates after the TSA certificate
	// when a token carries certificates; default true.
	IncludeChain *bool `yaml:"includeChain,omitempty" json:"includeChain,omitempty"`
	// TSAName puts the certificate subject in TSTInfo.tsa.
	TSAName bool `yaml:"tsaName,omitempty" json:"tsaName,omitempty"`
	// Authenticode answers Microsoft Authenticode legacy requests
	// (application/octet-stream, base64) on the service's paths.
	Authenticode bool `yaml:"authenticode,omitempty" json:"authenticode,omitempty"`
	// Chains are the named filter chains; PolicyMap routes each request
	// to one. Without a policy map every request goes to chain "default".
	Chains    map[string][]FilterSpec `yaml:"chains,omitempty" json:"chains,omitempty"`
	PolicyMap []Rule                  `yaml:"policyMap,omitempty" json:"policyMap,omitempty"`

	// parsed is what validation read, when it found no problem.
	parsed *Parsed
}

// Signer names the key that signs a service's tokens: a PEM key file
// (development, tests) or a key in an HSM (PKCS11). Cert is the TSA
// certificate; with an HSM key it may be left out when the token holds the
// certificate beside the key (tsactl hsm import-cert). Chain holds the
// issuer certificates, nearest first.
type Signer struct {
	Key    string  `yaml:"key,omitempty" json:"key,omitempty"`
	PKCS11 *PKCS11 `yaml:"pkcs11,omitempty" json:"pkcs11,omitempty"`
	Cert   string  `yaml:"cert,omitempty" json:"cert,omitempty"`
	Chain  string  `yaml:"chain,omitempty" json:"chain,omitempty"`
}

// Rule is one line of a policy map: the first rule whose every pattern
// matches picks the chain. Patterns are RE2 regular expressions matched
// against the whole value (they are anchored for you); an empty pattern
// matches anything.
type Rule struct {
	Name string `yaml:"name,omitempty" json:"name,omitempty"`
	// Path is the URL path; Policy the requested policy OID ("" when the
	// request names none); Client the subject DN of the TLS client
	// certificate presented ("" without one); Source the client IP;
	// Protocol rfc3161 or authenticode.
	Path     string `yaml:"path,omitempty" json:"path,omitempty"`
	Policy   string `yaml:"policy,omitempty" json:"policy,omitempty"`
	Client   string `yaml:"client,omitempty" json:"client,omitempty"`
	Source   string `yaml:"source,omitempty" json:"source,omitempty"`
	Protocol string `yaml:"protocol,omitempty" json:"protocol,omitempty"`
	Chain    string `yaml:"chain" json:"chain"`
}

// DefaultChain is where requests go when a service has no policy map.
const DefaultChain = "default"

// Load reads and validates the file at path. Relative file names in it
// are taken relative to the file's directory.
func Load(path string) (*File, error) {
	f, err := Read(path)
	if err != nil {
		return f, err
	}
	if err := f.Check(); err != nil {
		return f, fmt.Errorf("configuration %s: %w", path, err)
	}
	return f, nil
}

// Read reads and decodes the file at path without validating it, for a
// caller that fills in values of its own (tsad dev gives services without
// a signer the development key) before Check.
func Read(path string) (*File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read configuration: %w", err)
	}
	f, err := Decode(b)
	if err != nil {
		return nil, fmt.Errorf("configuration %s: %w", path, err)
	}
	f.Path = path
	dir, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("configuration %s: %w", path, err)
	}
	f.resolve(dir)
	return f, nil
}

// Parse decodes and validates a configuration. On a validation failure it
// returns the decoded file too (for the record) and an error listing every
// problem.
func Parse(b []byte) (*File, error) {
	f, err := Decode(b)
	if err != nil {
		return nil, err
	}
	return f, f.Check()
}

// Decode reads YAML into a File, refusing unknown keys.
func Decode(b []byte) (*File, error) {
	sum := sha256.Sum256(b)
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var f File
	if err := dec.Decode(&f); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("the file is empty")
		}
		return nil, err
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, errors.New("the file holds more than one YAML document")
	}
	f.SHA256 = hex.EncodeToString(sum[:])
	return &f, nil
}

// Check fills in defaults and validates, returning a *ValidationError
// listing every problem.
func (f *File) Check() error {
	f.applyDefaults()
	if errs := f.Validate(); len(errs) > 0 {
		return &ValidationError{Problems: errs}
	}
	return nil
}

// resolve makes the file names in f relative to dir absolute.
func (f *File) resolve(dir string) {
	abs := func(p *string) {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	if t := f.Server.TLS; t != nil {
		abs(&t.Cert)
		abs(&t.Key)
		abs(&t.ClientCAs)
	}
	for i := range f.Services {
		s := &f.Services[i]
		abs(&s.Signer.Key)
		if k := s.Signer.PKCS11; k != nil {
			abs(&k.PIN.File)
		}
		abs(&s.Signer.Cert)
		abs(&s.Signer.Chain)
		for _, chain := range s.Chains {
			for j := range chain {
				abs(&chain[j].CAFile)
				abs(&chain[j].IntermediatesFile)
			}
		}
	}
}

// ValidationError lists every problem found in a file.
type ValidationError struct{ Problems []string }

func (e *ValidationError) Error() string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%d problem(s):", len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n  - ")
		b.WriteString(p)
	}
	return b.String()
}

func (f *File) applyDefaults() {
	if f.Server.Listen == "" {
		f.Server.Listen = "127.0.0.1:3180"
	}
	if f.Server.TLS != nil && f.Server.TLS.ClientAuth == "" {
		f.Server.TLS.ClientAuth = ClientAuthNone
	}
	if f.Server.CertificateWarningDays == 0 {
		f.Server.CertificateWarningDays = 30
	}
	if f.Server.Clock != nil {
		f.Server.Clock.applyDefaults()
	}
	for i := range f.Services {
		s := &f.Services[i]
		if s.IncludeChain == nil {
			t := true
			s.IncludeChain = &t
		}
		if len(s.Hashes) == 0 {
			s.Hashes = []string{"sha256", "sha384", "sha512", "sha3-256", "sha3-384", "sha3-512"}
		}
		if s.Accuracy == nil {
			d := Duration(time.Second)
			s.Accuracy = &d
		}
		if s.Precision == 0 {
			s.Precision = Duration(time.Microsecond)
		}
	}
}

// Duration is a time.Duration written as Go writes one ("1s", "500ms").
type Duration time.Duration

func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration (write e.g. 1s, 500ms, 100us)", n.Line, s)
	}
	*d = Duration(v)
	return nil
}

func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// D is the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

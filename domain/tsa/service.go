// Package tsa is one timestamp service: it turns a request body into a
// TimeStampResp and the events that record it, and lets the answer go only
// after those events are durable. It does no I/O of its own: the clock, the
// serial and id sources, randomness, the signer and the event recorder are
// ports handed to it.
package tsa

import (
	"context"
	"crypto/sha256"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/big"
	"time"

	"github.com/chronolog/chronolog/domain/clock"
	"github.com/chronolog/chronolog/domain/eventstore"
	"github.com/chronolog/chronolog/domain/filter"
	"github.com/chronolog/chronolog/domain/rfc3161"
)

// Clock tells the time the service stamps.
type Clock interface{ Now() time.Time }

// SerialSource hands out serial numbers: positive, at most 20 octets, never
// repeated across restarts or nodes. The store enforces the last part: a
// request stream tsr-<serial> is appended with NoStream.
type SerialSource interface{ NextSerial() (*big.Int, error) }

// IDSource hands out event ids (UUIDv7 strings).
type IDSource interface{ NewID() string }

// Recorder appends events durably; it returns only once they are committed.
type Recorder interface {
	Append(ctx context.Context, stream string, expected eventstore.ExpectedState, events ...eventstore.EventData) (eventstore.AppendResult, error)
}

// Logger receives what an operator must see but a client must not.
type Logger interface {
	Error(msg string, args ...any)
}

// Config describes one timestamp service.
type Config struct {
	// Name identifies the service in events and metrics.
	Name string
	// Node identifies this server in event metadata.
	Node string
	// Policy is the TSA policy OID put in tokens when the request names none.
	Policy asn1.ObjectIdentifier
	// AcceptedPolicies are the policies a request may ask for; Policy is
	// always accepted.
	AcceptedPolicies []asn1.ObjectIdentifier
	// Hashes is the message-imprint allow-list; empty means DefaultHashes.
	Hashes []rfc3161.HashAlgorithm
	// Accuracy is the declared accuracy put in every token; nil omits it.
	// The clock gate holds the service to it (to one second when nil), and
	// without a gate no token declares an accuracy: nothing guaranteed it.
	Accuracy *rfc3161.Accuracy
	// Precision truncates genTime; zero means one microsecond.
	Precision time.Duration
	// IncludeTSAName puts the certificate subject in TSTInfo.tsa.
	IncludeTSAName bool
	// Rules are the policy map: the first rule matching a request picks
	// the filter chain it runs (after the service's hash allow-list and
	// policy acceptance). Without rules every request runs those two only.
	Rules []Rule
	// Authenticode answers Microsoft Authenticode legacy requests; the
	// Countersigner port must then be set.
	Authenticode bool
}

// Ports are the service's connections to the world.
type Ports struct {
	Clock    Clock
	Serials  SerialSource
	IDs      IDSource
	Rand     io.Reader
	Signer   *rfc3161.TokenSigner
	Recorder Recorder
	Logger   Logger
	// Countersigner signs Authenticode answers with the service's key.
	Countersigner Countersigner
	// Gate admits a request only while the clock is within the declared
	// accuracy; nil runs on an unverified clock.
	Gate *clock.Gate
}

// Countersigner makes a Microsoft Authenticode timestamp: a PKCS#7
// SignedData over the client's signature bytes.
type Countersigner interface {
	Sign(content []byte, signingTime time.Time, rand io.Reader) ([]byte, error)
}

// Service issues timestamps for one configuration.
type Service struct {
	cfg Config
	p   Ports
	// tsp and authenticode are the policy map prepared for each protocol.
	tsp, authenticode []route
	// maxEvents and bufSize size a request's event buffers for the longest
	// chain, so that recording never reallocates them.
	maxEvents, bufSize int
	// fingerprint is the hex SHA-256 of the TSA certificate, recorded with
	// every token so an auditor knows which key signed it.
	fingerprint string
	// accuracy is what the gate holds the service to.
	accuracy time.Duration
}

// New validates cfg and returns the service.
func New(cfg Config, p Ports) (*Service, error) {
	var errs []error
	if cfg.Name == "" {
		errs = append(errs, errors.New("service name is empty"))
	}
	if len(cfg.Policy) == 0 {
		errs = append(errs, errors.New("default policy OID is empty"))
	}
	if p.Clock == nil || p.Serials == nil || p.IDs == nil || p.Rand == nil || p.Signer == nil || p.Recorder == nil || p.Logger == nil {
		errs = append(errs, errors.New("every port must be set"))
	}
	if cfg.Authenticode && p.Countersigner == nil {
		errs = append(errs, errors.New("authenticode needs a countersigner"))
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("timestamp service %q: %w", cfg.Name, errors.Join(errs...))
	}
	if len(cfg.Hashes) == 0 {
		cfg.Hashes = rfc3161.DefaultHashes()
	}
	if cfg.Precision <= 0 {
		cfg.Precision = time.Microsecond
	}
	accepted := append([]asn1.ObjectIdentifier{cfg.Policy}, cfg.AcceptedPolicies...)
	certSum := sha256.Sum256(p.Signer.Certificate().Raw)
	s := &Service{cfg: cfg, p: p, fingerprint: hex.EncodeToString(certSum[:]), accuracy: cfg.Accuracy.Duration()}
	if s.accuracy <= 0 {
		s.accuracy = time.Second
	}
	if p.Gate == nil {
		s.cfg.Accuracy = nil
	}
	rules := cfg.Rules
	if len(rules) == 0 {
		rules = []Rule{{Name: "default", Chain: "default"}}
	}
	base := filter.Chain{filter.NewHashAllowList(cfg.Hashes), filter.NewPolicyAcceptance(accepted)}
	s.tsp, s.authenticode = prepareRoutes(rules, base)
	longest := 0
	for _, r := range s.tsp {
		longest = max(longest, len(r.chain))
	}
	// Requested, the chain's decisions, the outcome; an envelope takes
	// about 400 bytes and a decision about 150 more, the token with
	// certificates a few KiB.
	s.maxEvents = 3
	s.bufSize = 3072 + 2*448 + 160*longest
	return s, nil
}

// Name is the service's name.
func (s *Service) Name() string { return s.cfg.Name }

// ClockAccuracy is the accuracy the clock gate holds the service to.
func (s *Service) ClockAccuracy() time.Duration { return s.accuracy }

// admit asks the gate about a token stamped at; with no gate (an
// unverified clock) everything is admitted on no guarantee.
func (s *Service) admit(at time.Time) (clock.Admission, string) {
	if s.p.Gate == nil {
		return clock.Admission{}, ""
	}
	return s.p.Gate.Admit(at, s.accuracy)
}

package main

import (
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/chronolog/chronolog/adapters/clock/system"
	"github.com/chronolog/chronolog/adapters/config"
	"github.com/chronolog/chronolog/adapters/httpapi"
	"github.com/chronolog/chronolog/adapters/ids"
	"github.com/chronolog/chronolog/adapters/signer/softkey"
	"github.com/chronolog/chronolog/adapters/upstream"
	"github.com/chronolog/chronolog/cmd/internal/hsmkey"
	"github.com/chronolog/chronolog/domain/authenticode"
	"github.com/chronolog/chronolog/domain/clock"
	"github.com/chronolog/chronolog/domain/events"
	"github.com/chronolog/chronolog/domain/filter"
	"github.com/chronolog/chronolog/domain/rfc3161"
	"github.com/chronolog/chronolog/domain/tsa"
)

// generation is the set of timestamp services built from one
// configuration. A reload builds a new generation and swaps it in whole.
type generation struct {
	file     *config.File
	byName   map[string]*builtService
	order    []string
	routes   map[string]httpapi.Service
	closers  []io.Closer
	failures []string
	// keyEvents record the keys this generation activated (and any
	// certificate close to its end); they are recorded with it.
	keyEvents []events.Event
	// endedAlgorithms record, by service, the algorithms it runs with
	// that the renewal catalogue dates as ended; recorded with the
	// service's configuration.
	endedAlgorithms map[string][]events.Event
}

// builtService is one service ready to answer, with what the record and
// the start-up report say of it.
type builtService struct {
	cfg        config.Service
	svc        *tsa.Service
	configJSON []byte
	configSHA  string
	// cert is the hex SHA-256 of the TSA certificate; how says who does
	// the signing arithmetic.
	cert, how string
	key       *serviceKey
}

// wiring is what every service shares.
type wiring struct {
	node, crypto string
	// warnDays: a TSA certificate expiring within this many days is
	// warned of and recorded.
	warnDays int
	// retired maps the fingerprints of retired keys to the reason.
	retired  map[string]string
	recorder tsa.Recorder
	// gate holds every service to its declared accuracy; nil when the
	// clock runs unverified.
	gate *clock.Gate
	log  *slog.Logger
	now  time.Time
}

// build turns a validated configuration into services. Like validation it
// reports every problem (an unreadable key, a certificate that is not a
// TSA certificate, a CA file without certificates) at once.
func build(f *config.File, w wiring) (*generation, error) {
	g := &generation{file: f, byName: map[string]*builtService{}, routes: map[string]httpapi.Service{}, endedAlgorithms: map[string][]events.Event{}}
	for i := range f.Services {
		sc := f.Services[i]
		at := fmt.Sprintf("services[%d] %s", i, sc.Name)
		b, problems := g.buildService(sc, w)
		for _, p := range problems {
			g.failures = append(g.failures, at+": "+p)
		}
		if b == nil {
			continue
		}
		g.byName[sc.Name] = b
		g.order = append(g.order, sc.Name)
		for _, p := range sc.Paths {
			g.routes[p] = b.svc
		}
	}
	if len(g.failures) > 0 {
		g.close()
		return nil, &config.ValidationError{Problems: g.failures}
	}
	return g, nil
}

func (g *generation) buildService(sc config.Service, w wiring) (*builtService, []string) {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	policy, _ := config.ParseOID(sc.Policy)
	var accepted []asn1.ObjectIdentifier
	for _, a := range sc.AcceptedPolicies {
		oid, _ := config.ParseOID(a)
		accepted = append(accepted, oid)
	}
	var hashes []rfc3161.HashAlgorithm
	for _, h := range sc.Hashes {
		alg, _ := rfc3161.HashByName(h)
		hashes = append(hashes, alg)
	}

	key, err := loadServiceKey(sc, w)
	if err != nil {
		bad("signer: %v", err)
	} else {
		g.closers = append(g.closers, key)
	}
	rules, ruleProblems := g.buildRules(sc, w.now)
	problems = append(problems, ruleProblems...)
	if key == nil {
		return nil, problems
	}
	var arith crypto.Signer
	var how string
	if key.hsm != nil {
		// The key never leaves the token: the token does the arithmetic.
		arith, how = key.hsm, "PKCS#11 token "+hsmKeyName(sc)
	} else {
		arith, how, err = signingArithmetic(w.crypto, key.signer)
		if err != nil {
			bad("signer: %v", err)
			return nil, problems
		}
		if c, ok := arith.(io.Closer); ok {
			g.closers = append(g.closers, c)
		}
	}
	id := rfc3161.SigningIdentity{Signer: arith, Certificate: key.cert}
	if *sc.IncludeChain {
		id.Chain = key.chain
	}
	signer, err := rfc3161.NewTokenSigner(id)
	if err != nil {
		bad("signer: %v", err)
	}
	var counter tsa.Countersigner
	if sc.Authenticode {
		cs, err := authenticode.NewSigner(rfc3161.SigningIdentity{Signer: arith, Certificate: key.cert, Chain: key.chain})
		if err != nil {
			bad("authenticode signer: %v", err)
		} else {
			counter = cs
		}
	}
	if len(problems) > 0 {
		return nil, problems
	}
	svc, err := tsa.New(tsa.Config{
		Name:             sc.Name,
		Node:             w.node,
		Policy:           policy,
		AcceptedPolicies: accepted,
		Hashes:           hashes,
		Accuracy:         accuracyOf(sc.Accuracy.D()),
		Precision:        sc.Precision.D(),
		IncludeTSAName:   sc.TSAName,
		Rules:            rules,
		Authenticode:     sc.Authenticode,
	}, tsa.Ports{
		Clock:         system.Clock{},
		Serials:       ids.Source{},
		IDs:           ids.Source{},
		Rand:          rand.Reader,
		Signer:        signer,
		Recorder:      w.recorder,
		Logger:        w.log,
		Countersigner: counter,
		Gate:          w.gate,
	})
	if err != nil {
		return nil, []string{err.Error()}
	}
	cj, err := recordedConfig(sc)
	if err != nil {
		return nil, []string{fmt.Sprintf("encode configuration for the record: %v", err)}
	}
	sum := sha256.Sum256(cj)
	g.keyEvents = append(g.keyEvents, key.activated)
	if e, soon := expiring(sc.Name, key, w, w.warnDays); soon {
		g.keyEvents = append(g.keyEvents, e)
	}
	if ended := endedAlgorithms(sc.Name, hashes, key, w); len(ended) > 0 {
		g.endedAlgorithms[sc.Name] = ended
	}
	return &builtService{cfg: sc, svc: svc, configJSON: cj, configSHA: hex.EncodeToString(sum[:]), cert: key.fingerprint(), how: how, key: key}, nil
}

// buildRules makes the policy map: each rule with the filters of its chain.
func (g *generation) buildRules(sc config.Service, now time.Time) ([]tsa.Rule, []string) {
	var problems []string
	chains := map[string]filter.Chain{}
	upstreams := map[string]tsa.Upstream{}
	for name, specs := range sc.Chains {
		var chain filter.Chain
		for i, spec := range specs {
			if spec.Type == config.FilterForward {
				up, err := upstream.New(upstream.Config{URL: spec.URL, Timeout: spec.Timeout.D(), CAFile: spec.CAFile})
				if err != nil {
					problems = append(problems, fmt.Sprintf("chains.%s[%d] forward: %v", name, i, err))
					continue
				}
				g.closers = append(g.closers, up)
				upstreams[name] = up
				continue
			}
			f, err := buildFilter(spec)
			if err != nil {
				problems = append(problems, fmt.Sprintf("chains.%s[%d] %s: %v", name, i, spec.Type, err))
				continue
			}
			chain = append(chain, f)
		}
		chains[name] = chain
	}
	if len(sc.PolicyMap) == 0 {
		if len(sc.Chains) == 0 {
			return nil, problems
		}
		return []tsa.Rule{{Name: "default", Chain: config.DefaultChain, Filters: chains[config.DefaultChain], Upstream: upstreams[config.DefaultChain]}}, problems
	}
	var rules []tsa.Rule
	for _, r := range sc.PolicyMap {
		rule := tsa.Rule{Name: r.Name, Chain: r.Chain, Filters: chains[r.Chain], Upstream: upstreams[r.Chain]}
		rule.Path, _ = config.CompilePattern(r.Path)
		rule.Policy, _ = config.CompilePattern(r.Policy)
		rule.Client, _ = config.CompilePattern(r.Client)
		rule.Source, _ = config.CompilePattern(r.Source)
		rule.Protocol, _ = config.CompilePattern(r.Protocol)
		rules = append(rules, rule)
	}
	return rules, problems
}

// buildFilter makes one filter from its (validated) specification.
func buildFilter(spec config.FilterSpec) (filter.Filter, error) {
	switch spec.Type {
	case config.FilterNonceRequired:
		return filter.NewNonceRequired(spec.MinBytes), nil
	case config.FilterCertReq:
		return filter.NewCertReqForced(), nil
	case config.FilterRequestSize:
		return filter.NewRequestSize(spec.Max), nil
	case config.FilterClientIP:
		var allow, deny []netip.Prefix
		for _, c := range spec.Allow {
			p, _ := config.ParsePrefix(c)
			allow = append(allow, p)
		}
		for _, c := range spec.Deny {
			p, _ := config.ParsePrefix(c)
			deny = append(deny, p)
		}
		return filter.NewClientIP(allow, deny)
	case config.FilterTLSClientCert:
		roots, err := readPool(spec.CAFile)
		if err != nil {
			return nil, err
		}
		var inter []*x509.Certificate
		if spec.IntermediatesFile != "" {
			if inter, err = softkey.ReadCertificates(spec.IntermediatesFile); err != nil {
				return nil, err
			}
		}
		return filter.NewTLSClientCert(roots, inter), nil
	case config.FilterAuthorizeByName:
		var rules []filter.NameRule
		for _, n := range spec.Names {
			var r filter.NameRule
			r.Subject, _ = config.CompilePattern(n.Subject)
			r.SAN, _ = config.CompilePattern(n.SAN)
			rules = append(rules, r)
		}
		return filter.NewAuthorizeByName(rules), nil
	case config.FilterAuthorizeByAuthn:
		return filter.NewAuthorizeByAuthentication(), nil
	case config.FilterAPIKey:
		var keys []filter.APIKey
		for _, k := range spec.Keys {
			sum, err := filter.ParseAPIKeyHash(k.SHA256)
			if err != nil {
				return nil, err
			}
			keys = append(keys, filter.APIKey{Name: k.Name, SHA256: sum})
		}
		return filter.NewAPIKeys(keys)
	case config.FilterRateLimit:
		max := spec.MaxClients
		if max == 0 {
			max = 100000
		}
		return filter.NewRateLimit(spec.Rate, spec.Burst, max)
	}
	return nil, fmt.Errorf("unknown filter type %q", spec.Type)
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

func (g *generation) close() {
	for _, c := range g.closers {
		c.Close()
	}
	g.closers = nil
}

// describe is the start-up report's line for a service.
func (b *builtService) describe(base string) string {
	urls := make([]string, len(b.cfg.Paths))
	for i, p := range b.cfg.Paths {
		urls[i] = base + p
	}
	extra := ""
	if b.cfg.Authenticode {
		extra += ", authenticode"
	}
	if b.cfg.TCP != "" {
		extra += ", tcp " + b.cfg.TCP
	}
	return fmt.Sprintf("service %s: %s policy %s, TSA certificate sha256 %s%s", b.cfg.Name, strings.Join(urls, " "), b.cfg.Policy, b.cert, extra)
}

// recordedConfig is what the record keeps of a service's configuration:
// the section itself, and the SHA-256 of every certificate file it names,
// so that a reload which only replaces a CA file's contents is a change
// on the record too. Private key files are not hashed: the TSA
// certificate's fingerprint stands for the key.
func recordedConfig(sc config.Service) ([]byte, error) {
	files := map[string]string{}
	add := func(path string) error {
		if path == "" {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		files[path] = hex.EncodeToString(sum[:])
		return nil
	}
	paths := []string{sc.Signer.Cert, sc.Signer.Chain}
	for _, chain := range sc.Chains {
		for _, f := range chain {
			paths = append(paths, f.CAFile, f.IntermediatesFile)
		}
	}
	for _, p := range paths {
		if err := add(p); err != nil {
			return nil, err
		}
	}
	return json.Marshal(struct {
		Service config.Service    `json:"service"`
		Files   map[string]string `json:"files"`
	}{sc, files})
}

// hsmKeyName names a service's HSM key for the start-up report.
func hsmKeyName(sc config.Service) string {
	p := sc.Signer.PKCS11
	if p == nil {
		return ""
	}
	return fmt.Sprintf("%q key %s", p.Token, hsmkey.Describe(p))
}

package app

import (
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/chronolog/chronolog/adapters/clock/system"
	"github.com/chronolog/chronolog/adapters/config"
	"github.com/chronolog/chronolog/adapters/ids"
	"github.com/chronolog/chronolog/adapters/signer/libcrypto"
	"github.com/chronolog/chronolog/adapters/signer/softkey"
	"github.com/chronolog/chronolog/adapters/upstream"
	"github.com/chronolog/chronolog/app/hsmkey"
	"github.com/chronolog/chronolog/domain/authenticode"
	"github.com/chronolog/chronolog/domain/events"
	"github.com/chronolog/chronolog/domain/filter"
	"github.com/chronolog/chronolog/domain/rfc3161"
	"github.com/chronolog/chronolog/domain/tsa"
)

// Generation is the set of timestamp services built from one
// configuration. A reload builds a new one and swaps it in whole.
type Generation struct {
	file     *config.File
	byName   map[string]*builtService
	order    []string
	routes   map[string]*tsa.Service
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

// Build turns a validated configuration into services. Like validation it
// reports every problem (an unreadable key, a certificate that is not a
// TSA certificate, a CA file without certificates) at once.
func Build(f *config.File, w Wiring) (*Generation, error) {
	g := &Generation{file: f, byName: map[string]*builtService{}, routes: map[string]*tsa.Service{}, endedAlgorithms: map[string][]events.Event{}}
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

func (g *Generation) buildService(sc config.Service, w Wiring) (*builtService, []string) {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	parsed := sc.Parsed()
	if parsed == nil {
		return nil, []string{"the configuration was not checked"}
	}
	policy, accepted, hashes := parsed.Policy, parsed.AcceptedPolicies, parsed.Hashes

	key, err := loadServiceKey(sc, w)
	if err != nil {
		bad("signer: %v", err)
	} else {
		g.closers = append(g.closers, key)
	}
	rules, ruleProblems := g.buildRules(parsed)
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
		arith, how, err = signingArithmetic(w.Crypto, key.signer)
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
		Node:             w.Node,
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
		Recorder:      w.Recorder,
		Logger:        w.Log,
		Countersigner: counter,
		Gate:          w.Gate,
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
	if e, soon := expiring(sc.Name, key, w, w.WarnDays); soon {
		g.keyEvents = append(g.keyEvents, e)
	}
	if ended := endedAlgorithms(sc.Name, hashes, key, w); len(ended) > 0 {
		g.endedAlgorithms[sc.Name] = ended
	}
	return &builtService{cfg: sc, svc: svc, configJSON: cj, configSHA: hex.EncodeToString(sum[:]), cert: key.fingerprint(), how: how, key: key}, nil
}

// buildRules makes the policy map: each rule with the filters of its chain.
func (g *Generation) buildRules(parsed *config.Parsed) ([]tsa.Rule, []string) {
	var problems []string
	chains := map[string]filter.Chain{}
	upstreams := map[string]tsa.Upstream{}
	for name, pc := range parsed.Chains {
		var chain filter.Chain
		for i, spec := range pc.Filters {
			f, err := filter.New(spec, softkey.ReadCertificates)
			if err != nil {
				problems = append(problems, fmt.Sprintf("chains.%s[%d]: %v", name, i, err))
				continue
			}
			chain = append(chain, f)
		}
		chains[name] = chain
		if fw := pc.Forward; fw != nil {
			up, err := upstream.New(upstream.Config{URL: fw.URL, Timeout: fw.Timeout, CAFile: fw.CAFile})
			if err != nil {
				problems = append(problems, fmt.Sprintf("chains.%s forward: %v", name, err))
				continue
			}
			g.closers = append(g.closers, up)
			upstreams[name] = up
		}
	}
	var rules []tsa.Rule
	for _, r := range parsed.Rules {
		rules = append(rules, tsa.Rule{Name: r.Name, Chain: r.Chain, Filters: chains[r.Chain], Upstream: upstreams[r.Chain],
			Path: r.Path, Policy: r.Policy, Client: r.Client, Source: r.Source, Protocol: r.Protocol})
	}
	return rules, problems
}

func (g *Generation) close() {
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

// signingArithmetic picks who computes signatures with the loaded key:
// OpenSSL's libcrypto where it loads (several times faster for RSA), or
// Go's crypto.
func signingArithmetic(choice string, key crypto.Signer) (crypto.Signer, string, error) {
	switch choice {
	case "go":
		return key, "Go crypto", nil
	case "auto", "openssl":
		lc, err := libcrypto.New(key)
		if err == nil {
			return lc, "OpenSSL 3 libcrypto", nil
		}
		if choice == "openssl" {
			return nil, "", err
		}
		return key, fmt.Sprintf("Go crypto (%v)", err), nil
	}
	return nil, "", fmt.Errorf("--crypto %q: want auto, openssl or go", choice)
}

// accuracyOf splits a duration into the TSTInfo accuracy fields.
func accuracyOf(d time.Duration) *rfc3161.Accuracy {
	if d <= 0 {
		return nil
	}
	return &rfc3161.Accuracy{
		Seconds: int(d / time.Second),
		Millis:  int(d % time.Second / time.Millisecond),
		Micros:  int(d % time.Millisecond / time.Microsecond),
	}
}

// Socket is a service's RFC 3161 §3.3 listen address.
type Socket struct{ Service, Addr string }

// Sockets are the services' TCP listen addresses, in configuration order.
func (g *Generation) Sockets() []Socket {
	var out []Socket
	for _, name := range g.order {
		if addr := g.byName[name].cfg.TCP; addr != "" {
			out = append(out, Socket{Service: name, Addr: addr})
		}
	}
	return out
}

// Report is the start-up report's line for each service, its URLs under
// base.
func (g *Generation) Report(base string) []string {
	out := make([]string, 0, len(g.order))
	for _, name := range g.order {
		out = append(out, g.byName[name].describe(base))
	}
	return out
}

// First is the first service's first path, and who does its signing
// arithmetic.
func (g *Generation) First() (path, signing string) {
	b := g.byName[g.order[0]]
	return b.cfg.Paths[0], b.how
}

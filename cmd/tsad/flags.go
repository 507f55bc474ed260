package main

import (
	"encoding/asn1"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/chronolog/chronolog/adapters/config"
)

// DevPolicy is the TSA policy of development servers: an arc under IANA's
// example enterprise number (RFC 5612), so it can never be mistaken for a
// production policy.
var DevPolicy = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 32473, 3161, 1}

// serverFlags are the flags dev and serve share.
type serverFlags struct {
	addr, data, path, node string
	policy, accepted       string
	hashes                 string
	accuracy               time.Duration
	precision              time.Duration
	maxBody                int64
	tsaName                bool
	shutdown               time.Duration
	debugAddr              string
	gcPercent              int
	memoryLimit            int
	clock                  string
	clockPeriod            time.Duration
	crypto                 string
	log                    logFlags
	// config is the configuration file; without one the flags above
	// describe a single service. set records the flags given explicitly.
	config string
	set    map[string]bool
}

func (f *serverFlags) register(fs *flag.FlagSet) {
	host, _ := os.Hostname()
	fs.StringVar(&f.config, "config", "", "configuration file (YAML) declaring the listeners and timestamp services; SIGHUP reloads it. Without it the flags below describe one service")
	fs.StringVar(&f.addr, "addr", "127.0.0.1:3180", "listen address (host:port; port 0 picks a free one); overrides the file's server.listen when given")
	fs.StringVar(&f.data, "data", "data", "data directory (event store, development PKI)")
	fs.StringVar(&f.path, "path", "/tsa", "URL path of the timestamp service")
	fs.StringVar(&f.node, "node", host, "node name recorded in event metadata")
	fs.StringVar(&f.policy, "policy", DevPolicy.String(), "default TSA policy OID")
	fs.StringVar(&f.accepted, "accept-policies", "", "comma-separated further policy OIDs a request may ask for")
	fs.StringVar(&f.hashes, "hashes", "sha256,sha384,sha512,sha3-256,sha3-384,sha3-512", "comma-separated message-imprint hash allow-list (add sha1 only if you must)")
	fs.DurationVar(&f.accuracy, "accuracy", time.Second, "declared accuracy put in every token (0 omits it)")
	fs.DurationVar(&f.precision, "precision", time.Microsecond, "genTime precision")
	fs.StringVar(&f.clock, "clock", "", "clock sources sampled for the issuance gate, comma-separated: ntp:HOST[:PORT], chrony:HOST:PORT, chrony:/PATH.sock, kernel; or unverified. Overrides the file's server.clock.sources. Default: the file's, else kernel (serve) or unverified (dev)")
	fs.DurationVar(&f.clockPeriod, "clock-period", 16*time.Second, "time between clock samples; overrides the file's server.clock.period when given")
	fs.Int64Var(&f.maxBody, "max-body", 64<<10, "request body limit in bytes")
	fs.BoolVar(&f.tsaName, "tsa-name", false, "put the certificate subject in TSTInfo.tsa")
	f.log.register(fs)
	fs.StringVar(&f.crypto, "crypto", "auto", "who does the signing arithmetic: openssl (OpenSSL 3's libcrypto, loaded at run time), go, or auto (openssl where it loads)")
	fs.IntVar(&f.gcPercent, "gc-percent", 400, "Go GC target (as GOGC; the GOGC environment variable wins when set): issuing allocates ~30 KB per token around a small live heap, so fewer collections save CPU for ~30 MiB more memory")
	fs.IntVar(&f.memoryLimit, "memory-limit", 48, "soft limit of the Go runtime's memory in MiB (as GOMEMLIMIT, which wins when set; 0 for none): under load the collector runs when the heap nears it rather than at --gc-percent, and idle memory goes back to the system")
	fs.StringVar(&f.debugAddr, "debug-addr", "", "serve Go's /debug/pprof on this address (off when empty; keep it on loopback)")
	fs.DurationVar(&f.shutdown, "shutdown-timeout", 30*time.Second, "how long in-flight requests may take to finish on SIGTERM")
}

// parsed notes which flags were given, for the ones that override a file.
func (f *serverFlags) parsed(fs *flag.FlagSet) {
	f.set = map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { f.set[fl.Name] = true })
}

// flagsConfig describes the one service of a server configured by flags.
func flagsConfig(f *serverFlags, kf keyFiles) (*config.File, error) {
	if _, err := config.ParseOID(f.policy); err != nil {
		return nil, err
	}
	acc := config.Duration(f.accuracy)
	include := true
	var accepted, hashes []string
	for _, p := range strings.Split(f.accepted, ",") {
		if p = strings.TrimSpace(p); p != "" {
			accepted = append(accepted, p)
		}
	}
	for _, h := range strings.Split(f.hashes, ",") {
		if h = strings.TrimSpace(h); h != "" {
			hashes = append(hashes, h)
		}
	}
	if len(hashes) == 0 {
		return nil, fmt.Errorf("hash allow-list is empty")
	}
	return &config.File{
		Server: config.Server{Listen: f.addr, MaxBody: f.maxBody},
		Services: []config.Service{{
			Name:             "default",
			Paths:            []string{f.path},
			Policy:           f.policy,
			AcceptedPolicies: accepted,
			Signer:           config.Signer{Key: kf.key, Cert: kf.cert, Chain: kf.chain},
			Accuracy:         &acc,
			Precision:        config.Duration(f.precision),
			Hashes:           hashes,
			IncludeChain:     &include,
			TSAName:          f.tsaName,
			Authenticode:     true,
		}},
	}, nil
}

// applyOverrides puts explicitly given flags over a file's server section,
// and, in development, the development key into services without a signer.
func (f *serverFlags) applyOverrides(cfg *config.File, kf keyFiles) {
	if f.set["addr"] {
		cfg.Server.Listen = f.addr
	}
	if f.set["max-body"] {
		cfg.Server.MaxBody = f.maxBody
	}
	if !kf.dev {
		return
	}
	for i := range cfg.Services {
		s := &cfg.Services[i].Signer
		if s.Key == "" && s.PKCS11 == nil && s.Cert == "" && s.Chain == "" {
			*s = config.Signer{Key: kf.key, Cert: kf.cert, Chain: kf.chain}
		}
	}
}

// applyClock settles the clock section: the --clock flags over the file's,
// and when neither says, the kernel's view for a production server and an
// unverified clock for a development one.
func (f *serverFlags) applyClock(cfg *config.File, kf keyFiles) {
	c := cfg.Server.Clock
	if f.set["clock"] {
		c = &config.Clock{}
		if cfg.Server.Clock != nil {
			*c = *cfg.Server.Clock
		}
		c.Sources, c.Unverified = nil, false
		for _, s := range strings.Split(f.clock, ",") {
			switch s = strings.TrimSpace(s); s {
			case "":
			case "unverified":
				c.Unverified = true
			default:
				c.Sources = append(c.Sources, s)
			}
		}
	}
	if c == nil {
		c = &config.Clock{Sources: []string{"kernel"}}
		if kf.dev {
			c = &config.Clock{Unverified: true}
		}
	}
	if f.set["clock-period"] {
		c.Period = config.Duration(f.clockPeriod)
	}
	cfg.Server.Clock = c
}

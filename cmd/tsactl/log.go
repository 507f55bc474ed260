package main

import (
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"os"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/chronolog/chronolog/adapters/logclient"
	"github.com/chronolog/chronolog/adapters/logkey"
	"github.com/chronolog/chronolog/domain/authenticode"
	"github.com/chronolog/chronolog/domain/events"
	"github.com/chronolog/chronolog/domain/rfc3161"
)

const logUsage = `usage: tsactl log <command> [flags]

Check a Chronolog transparency log through its auditor API (/log/v1/).
Nothing the server says is trusted: every answer is checked against a
checkpoint signed with the log's key, which you get out of band.

commands:
  verify TOKEN   prove that a token (.tsr or bare token) is in the log
  monitor        follow the log's checkpoints; exit 3 on a rollback or fork
  audit          replay the whole log: every segment, event and token

Run 'tsactl log <command> -h' for its flags.
`

// exitError carries an exit code other than 1: a monitor that saw the
// log rewrite its history must say so to the script running it.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// exitForkOrRollback is the exit code of a monitor that caught the log
// rolling back or forking.
const exitForkOrRollback = 3

func runLog(args []string) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, logUsage)
		os.Exit(2)
	}
	cmds := map[string]func([]string) error{
		"verify":  runLogVerify,
		"monitor": runLogMonitor,
		"audit":   runLogAudit,
	}
	cmd, ok := cmds[args[0]]
	if !ok {
		if a := args[0]; a == "-h" || a == "--help" || a == "help" {
			fmt.Print(logUsage)
			return nil
		}
		fmt.Fprintf(os.Stderr, "tsactl log: unknown command %q\n\n%s", args[0], logUsage)
		os.Exit(2)
	}
	err := cmd(args[1:])
	if errors.Is(err, flag.ErrHelp) {
		return nil // -h: the flags were printed
	}
	var ee *exitError
	if errors.As(err, &ee) {
		fmt.Fprintf(os.Stderr, "tsactl log %s: %v\n", args[0], ee.err)
		os.Exit(ee.code)
	}
	if err != nil {
		return fmt.Errorf("log %s: %w", args[0], err)
	}
	return nil
}

// logFlags are the flags every log command takes.
type logFlags struct {
	url, key string
}

func (f *logFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.url, "url", "", "the server's base URL, e.g. http://127.0.0.1:3180 (the API is under /log/v1/)")
	fs.StringVar(&f.key, "log-key", "", "the log's verifier key: a file holding it, or the key itself (<origin>+<hash>+<key>)")
}

// open checks the flags and returns the client and the log's verifier.
func (f *logFlags) open() (*logclient.Client, note.Verifier, error) {
	if f.url == "" || f.key == "" {
		return nil, nil, errors.New("--url and --log-key are required")
	}
	v, err := logkey.LoadVerifier(f.key)
	if err != nil {
		return nil, nil, err
	}
	return logclient.New(f.url, nil), v, nil
}

// parseInterspersed parses flags that may come after positional arguments
// ("log verify TOKEN --url …"), which package flag alone stops at.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// tokenChecker verifies tokens' signatures, each by its kind (an RFC 3161
// token, an Authenticode countersignature): against the roots of --ca, or,
// without it, against each token's own embedded certificate, which proves
// a token intact but not who issued it.
type tokenChecker struct {
	roots *x509.CertPool // nil: no --ca
	mu    sync.Mutex
	// signers are the TSA certificates of tokens verified so far: a token
	// requested without certReq carries none, and is checked against them.
	signers []*x509.Certificate
}

// check verifies the token issued records and returns the time it states.
func (c *tokenChecker) check(issued *events.TimestampIssued) (time.Time, error) {
	switch issued.Protocol {
	case "":
		return c.checkRFC3161(issued.Token)
	case events.ProtocolAuthenticode:
		return c.checkAuthenticode(issued.Token)
	}
	return time.Time{}, fmt.Errorf("a token of protocol %q, which this tsactl does not know", issued.Protocol)
}

func (c *tokenChecker) checkRFC3161(token []byte) (time.Time, error) {
	known := c.known()
	opts := rfc3161.VerifyOptions{Roots: c.roots, Certificates: known}
	if c.roots == nil {
		embedded, err := rfc3161.TokenCertificates(token)
		if err != nil {
			return time.Time{}, err
		}
		opts.Roots = x509.NewCertPool()
		for _, cert := range append(embedded, known...) {
			opts.Roots.AddCert(cert)
		}
	}
	v, err := rfc3161.VerifyToken(token, opts)
	if err != nil {
		return time.Time{}, err
	}
	c.remember(v.Signer)
	return v.TSTInfo.GenTime, nil
}

// checkAuthenticode verifies a countersignature against the certificate
// it must carry and, with --ca, that certificate's chain at its signing
// time, for time stamping, as an RFC 3161 token's is checked at genTime.
// Its signing time is what the TSA records as genTime.
func (c *tokenChecker) checkAuthenticode(token []byte) (time.Time, error) {
	v, err := authenticode.Verify(token)
	if err != nil {
		return time.Time{}, err
	}
	if c.roots != nil {
		inter := x509.NewCertPool()
		for _, cert := range append(v.Certificates, c.known()...) {
			inter.AddCert(cert)
		}
		if _, err := v.Certificate.Verify(x509.VerifyOptions{
			Roots: c.roots, Intermediates: inter, CurrentTime: v.SigningTime,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageTimeStamping},
		}); err != nil {
			return time.Time{}, fmt.Errorf("TSA certificate: %w", err)
		}
	}
	c.remember(v.Certificate)
	return v.SigningTime, nil
}

func (c *tokenChecker) known() []*x509.Certificate {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*x509.Certificate(nil), c.signers...)
}

func (c *tokenChecker) remember(cert *x509.Certificate) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.signers {
		if s.Equal(cert) {
			return
		}
	}
	c.signers = append(c.signers, cert)
}

package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/chronolog/chronolog/adapters/logkey"
	"github.com/chronolog/chronolog/domain/bundle"
	"github.com/chronolog/chronolog/schemas"
)

// errBundle is returned when a bundle does not verify; the problems are
// printed.
var errBundle = errors.New("the bundle does not verify")

func runExportVerify(args []string) error {
	fs := flag.NewFlagSet("tsactl export verify", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: tsactl export verify BUNDLE_DIR --ca CA.pem --log-key KEY\n\nChecks a bundle written by tsactl export, offline. The trust anchors are\nyours: nothing in the bundle is trusted for them.")
		fs.PrintDefaults()
	}
	caFile := fs.String("ca", "", "the TSA's trusted root certificates (PEM) (required)")
	key := fs.String("log-key", "", "the log's verifier key: a file holding it, or the key itself (<origin>+<hash>+<key>) (required)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return errors.New("needs one BUNDLE_DIR")
	}
	if *caFile == "" || *key == "" {
		return errors.New("--ca and --log-key are required")
	}
	roots, err := loadPool(*caFile)
	if err != nil {
		return err
	}
	verifier, err := logkey.LoadVerifier(*key)
	if err != nil {
		return err
	}
	root, err := os.OpenRoot(pos[0])
	if err != nil {
		return err
	}
	defer root.Close()
	r, err := bundle.Verify(root.FS(), bundle.Options{Roots: roots, RootsName: *caFile, Log: verifier, ValidateEvent: schemas.ValidateEvent})
	if err != nil {
		return err
	}
	printBundleReport(os.Stdout, r)
	if !r.OK() {
		return fmt.Errorf("%w: %s", errBundle, nProblems(r.Problems))
	}
	return nil
}

// maxListed bounds the problems printed per check.
const maxListed = 50

// printBundleReport prints one line per check, what it established and
// OK, or FAILED and each problem; then the verdict.
func printBundleReport(w io.Writer, r *bundle.Report) {
	for _, c := range r.Checks {
		label := fmt.Sprintf("%-14s", c.Name+":")
		switch c.Status {
		case bundle.OK:
			fmt.Fprintf(w, "%s%s: OK\n", label, c.Summary)
		case bundle.NotChecked:
			fmt.Fprintf(w, "%snot checked, %s\n", label, c.Summary)
		default:
			fmt.Fprintf(w, "%sFAILED, %s\n", label, nProblems(c.Failures))
			for i, p := range c.Problems {
				if i == maxListed {
					fmt.Fprintf(w, "  … and %d more\n", c.Failures-maxListed)
					break
				}
				fmt.Fprintf(w, "  - %s\n", p)
			}
		}
	}
	switch {
	case r.Stopped != "":
		fmt.Fprintf(w, "verify:       FAILED, %s (%s)\n", nProblems(r.Problems), r.Stopped)
	case r.Problems > 0:
		fmt.Fprintf(w, "verify:       FAILED, %s\n", nProblems(r.Problems))
	default:
		fmt.Fprintln(w, "verify:       OK")
	}
}

func nProblems(n int) string {
	if n == 1 {
		return "1 problem"
	}
	return fmt.Sprintf("%d problems", n)
}

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/chronolog/chronolog/adapters/logclient"
	"github.com/chronolog/chronolog/domain/translog"
)

func runLogAudit(args []string) error {
	fset := flag.NewFlagSet("tsactl log audit", flag.ContinueOnError)
	var lf logFlags
	lf.register(fset)
	caFile := fset.String("ca", "", "verify every token's signature and chain against these roots (PEM); without it, against each token's embedded certificate only")
	tolerance := fset.Duration("tolerance", time.Second, "flag a token whose genTime is this much earlier than a token before it in the log")
	strict := fset.Bool("strict", false, "fail on flags (backdating signals) too")
	if err := fset.Parse(args); err != nil {
		return err
	}
	if fset.NArg() != 0 {
		return fmt.Errorf("unexpected argument %q", fset.Arg(0))
	}
	client, verifier, err := lf.open()
	if err != nil {
		return err
	}
	checker := &tokenChecker{}
	trust := "against each token's embedded certificate only (no --ca): this shows the tokens intact, not who issued them"
	if *caFile != "" {
		if checker.roots, err = loadPool(*caFile); err != nil {
			return err
		}
		trust = "against " + *caFile
	}
	a, err := translog.NewAuditor(translog.AuditConfig{
		Source:     auditSource{client},
		Log:        verifier,
		CheckToken: checker.check,
		Tolerance:  *tolerance,
		Strict:     *strict,
		Progress: func(done, total uint64) {
			if done%100 == 0 && done < total {
				fmt.Printf("%s audited %d of %d segments\n", now(), done, total)
			}
		},
	})
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	r, err := a.Run(ctx)
	printAuditReport(r, trust)
	switch {
	case errors.Is(err, translog.ErrAuditFailed):
		fmt.Printf("audit: FAILED (%d failures, %d flags)\n", r.Failures, r.Flags)
		return err
	case err != nil:
		fmt.Println("audit: INCOMPLETE")
		return err
	case r.Flags > 0:
		fmt.Printf("audit: OK, with %d flags (not failing without --strict)\n", r.Flags)
	default:
		fmt.Println("audit: OK")
	}
	return nil
}

func printAuditReport(r translog.AuditReport, trust string) {
	if cp := r.Checkpoint; cp.Origin != "" {
		fmt.Printf("checkpoint: origin %s, size %d, root %s\n", cp.Origin, cp.Size, b64root(cp.Root))
	}
	fmt.Printf("audited:    %d segments, %d events, %d tokens (%d RFC 3161, %d Authenticode) verified %s\n",
		r.Segments, r.Events, r.Tokens, r.Tokens-r.Authenticode, r.Authenticode, trust)
	for _, f := range r.Findings {
		fmt.Println(f)
	}
	if n := r.Omitted(); n > 0 {
		fmt.Printf("… and %d more findings not listed\n", n)
	}
}

// auditSource reads the log for the auditor through the auditor API.
type auditSource struct{ c *logclient.Client }

func (s auditSource) Checkpoint(ctx context.Context) ([]byte, error) { return s.c.Checkpoint(ctx) }

func (s auditSource) Segment(ctx context.Context, index uint64) ([]byte, []translog.AuditEvent, error) {
	seg, err := s.c.Segment(ctx, index, true)
	if err != nil {
		return nil, nil, err
	}
	// The leaf's bytes are what the log committed to; the JSON copies of
	// its fields beside it are not used.
	evs := make([]translog.AuditEvent, len(seg.Events))
	for i, e := range seg.Events {
		evs[i] = translog.AuditEvent{Position: e.Position, Type: e.Type, Payload: e.Payload}
	}
	return seg.Leaf, evs, nil
}

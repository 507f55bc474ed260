package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/chronolog/chronolog/adapters/logclient"
	"github.com/chronolog/chronolog/domain/events"
	"github.com/chronolog/chronolog/domain/logwire"
	"github.com/chronolog/chronolog/domain/rfc3161"
)

func runLogVerify(args []string) error {
	fs := flag.NewFlagSet("tsactl log verify", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: tsactl log verify TOKEN --url URL --log-key KEY [--ca CA.pem] [--wait 5s]\n\nTOKEN is a reply (.tsr, TimeStampResp) or a bare token (CMS ContentInfo), DER.")
		fs.PrintDefaults()
	}
	var lf logFlags
	lf.register(fs)
	caFile := fs.String("ca", "", "also verify the token's signature and chain against these roots (PEM)")
	wait := fs.Duration("wait", 0, "retry this long while the token is not yet under a checkpoint")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return errors.New("needs one TOKEN file (a .tsr or a bare token)")
	}
	client, verifier, err := lf.open()
	if err != nil {
		return err
	}
	token, err := readToken(pos[0])
	if err != nil {
		return err
	}
	info, err := rfc3161.TokenTSTInfo(token)
	if err != nil {
		return fmt.Errorf("%s: %w", pos[0], err)
	}
	// The API names requests by the serial's lower-case hex, as the TSA
	// records them.
	serial := info.SerialNumber.Text(16)

	// The token's own signature first: no use proving a token that does
	// not verify.
	tokenNote := "signature not checked (no --ca)"
	if *caFile != "" {
		roots, err := loadPool(*caFile)
		if err != nil {
			return err
		}
		if _, err := rfc3161.VerifyToken(token, rfc3161.VerifyOptions{Roots: roots}); err != nil {
			return fmt.Errorf("token serial %s: does not verify against %s: %w", serial, *caFile, err)
		}
		tokenNote = "signature and chain verified against " + *caFile
	}

	ctx := context.Background()
	p, err := fetchProof(ctx, client, serial, *wait)
	if err != nil {
		return err
	}
	ep, err := p.EventProof()
	if err != nil {
		return fmt.Errorf("token serial %s: the proof served is malformed: %w", serial, err)
	}
	cp, err := ep.Verify(verifier)
	if err != nil {
		return fmt.Errorf("token serial %s: %w", serial, err)
	}
	// The proof holds for the event served; it proves this token only if
	// that event is this token's record, byte for byte.
	if err := isRecordOf(p.Event.Payload, serial, token); err != nil {
		return fmt.Errorf("token serial %s: the log proves the event at position %d, but %w", serial, p.Event.Position, err)
	}
	fmt.Printf("serial:     %s\n", serial)
	fmt.Printf("genTime:    %s\n", rfc3161.FormatGeneralizedTime(info.GenTime))
	fmt.Printf("token:      %s\n", tokenNote)
	fmt.Printf("event:      position %d, %s in stream %s, holding the token byte for byte\n", ep.Position, events.TypeTimestampIssued, events.RequestStream(serial))
	fmt.Printf("segment:    %d, positions %d–%d (%d events), the event is number %d\n",
		ep.SegmentIndex, ep.Segment.First, ep.Segment.Last, ep.Segment.Count, ep.EventIndex)
	fmt.Printf("checkpoint: origin %s, size %d, root %s\n", cp.Origin, cp.Size, base64.StdEncoding.EncodeToString(cp.Root[:]))
	fmt.Println("OK")
	return nil
}

// readToken reads a TimeStampResp or a bare token and returns the token.
func readToken(path string) ([]byte, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if _, err := rfc3161.TokenTSTInfo(raw); err == nil {
		return raw, nil
	}
	resp, err := rfc3161.ParseTimeStampResp(raw)
	if err != nil {
		return nil, fmt.Errorf("%s is neither a TimeStampResp nor a token: %w", path, err)
	}
	if resp.Token == nil {
		return nil, fmt.Errorf("%s: not granted: %s", path, resp.Describe())
	}
	return resp.Token, nil
}

// fetchProof asks for the proof, and while the token is not under a
// checkpoint yet, asks again until wait has passed.
func fetchProof(ctx context.Context, c *logclient.Client, serial string, wait time.Duration) (logwire.Proof, error) {
	deadline := time.Now().Add(wait)
	told := false
	for {
		p, err := c.Proof(ctx, serial)
		if err == nil {
			return p, nil
		}
		left := time.Until(deadline)
		if !errors.Is(err, logclient.ErrNotYet) || left <= 0 {
			if errors.Is(err, logclient.ErrNotYet) && wait > 0 {
				return p, fmt.Errorf("token serial %s: still not under a checkpoint after %s: %w", serial, wait, err)
			}
			if errors.Is(err, logclient.ErrNotYet) {
				return p, fmt.Errorf("token serial %s: %w (give --wait to wait for a checkpoint)", serial, err)
			}
			return p, fmt.Errorf("token serial %s: %w", serial, err)
		}
		if !told {
			fmt.Fprintf(os.Stderr, "token serial %s is not under a checkpoint yet; waiting up to %s\n", serial, wait)
			told = true
		}
		pause := 250 * time.Millisecond
		var ae *logclient.APIError
		if errors.As(err, &ae) && ae.RetryAfter > 0 {
			pause = ae.RetryAfter
		}
		select {
		case <-time.After(min(pause, left)):
		case <-ctx.Done():
			return p, ctx.Err()
		}
	}
}

// isRecordOf checks that payload is the TimestampIssued event of the
// request serial, holding token.
func isRecordOf(payload []byte, serial string, token []byte) error {
	env, ev, err := events.Decode(payload)
	if err != nil {
		return fmt.Errorf("that event does not decode: %w", err)
	}
	ti, ok := ev.(*events.TimestampIssued)
	if !ok {
		return fmt.Errorf("that event is a %s, not a %s", env.Type, events.TypeTimestampIssued)
	}
	if ti.Serial != serial || env.Stream != events.RequestStream(serial) {
		return fmt.Errorf("that event records serial %s in stream %s", ti.Serial, env.Stream)
	}
	if !bytes.Equal(ti.Token, token) {
		return errors.New("the token it records differs from this one")
	}
	return nil
}

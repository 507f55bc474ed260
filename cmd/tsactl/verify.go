package main

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/chronolog/chronolog/adapters/signer/softkey"
	"github.com/chronolog/chronolog/domain/rfc3161"
)

func runVerify(args []string) error {
	fs := flag.NewFlagSet("tsactl verify", flag.ContinueOnError)
	in := fs.String("in", "", "the reply (TimeStampResp, DER); with --token-only, a bare token")
	tokenOnly := fs.Bool("token-only", false, "--in holds a bare token (CMS ContentInfo), not a TimeStampResp")
	data := fs.String("data", "", "the data that was timestamped")
	query := fs.String("queryfile", "", "the query that was sent (checks imprint, nonce and policy)")
	digest := fs.String("digest", "", "the hex message digest that was timestamped")
	caFile := fs.String("ca", "", "trusted root certificates (PEM)")
	untrusted := fs.String("untrusted", "", "intermediate and TSA certificates (PEM), needed when the token carries none")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *in == "" || *caFile == "" {
		return fmt.Errorf("verify needs --in and --ca")
	}
	if countSet(*data, *query, *digest) != 1 {
		return fmt.Errorf("verify needs exactly one of --data, --queryfile, --digest")
	}
	raw, err := os.ReadFile(*in)
	if err != nil {
		return err
	}
	token := raw
	if !*tokenOnly {
		resp, err := rfc3161.ParseTimeStampResp(raw)
		if err != nil {
			return fmt.Errorf("%s: %w", *in, err)
		}
		if resp.Token == nil {
			return fmt.Errorf("%s: not granted: %s", *in, resp.Describe())
		}
		token = resp.Token
	}
	roots, err := loadPool(*caFile)
	if err != nil {
		return err
	}
	opts := rfc3161.VerifyOptions{Roots: roots}
	if *untrusted != "" {
		certs, err := softkey.ReadCertificates(*untrusted)
		if err != nil {
			return err
		}
		opts.Intermediates = x509.NewCertPool()
		for _, c := range certs {
			opts.Intermediates.AddCert(c)
		}
		opts.Certificates = certs
	}
	switch {
	case *query != "":
		der, err := os.ReadFile(*query)
		if err != nil {
			return err
		}
		if opts.Request, err = rfc3161.ParseTimeStampReq(der); err != nil {
			return fmt.Errorf("%s: %w", *query, err)
		}
	case *digest != "":
		if opts.Digest, err = hex.DecodeString(*digest); err != nil {
			return fmt.Errorf("--digest: %w", err)
		}
	}
	v, err := rfc3161.VerifyToken(token, opts)
	if err != nil {
		return fmt.Errorf("verification failed: %w", err)
	}
	if *data != "" {
		alg, ok := rfc3161.HashByOID(algorithmOf(v))
		if !ok {
			return fmt.Errorf("token imprint uses an unknown hash")
		}
		sum, err := hashFile(*data, alg)
		if err != nil {
			return err
		}
		if _, err := rfc3161.VerifyToken(token, rfc3161.VerifyOptions{Roots: opts.Roots, Intermediates: opts.Intermediates, Certificates: opts.Certificates, Digest: sum}); err != nil {
			return fmt.Errorf("verification failed: %w", err)
		}
	}
	printToken(v)
	fmt.Println("Verification: OK")
	return nil
}

func algorithmOf(v *rfc3161.VerifiedToken) []int {
	mi, err := rfc3161.ParseMessageImprint(v.TSTInfo.MessageImprint)
	if err != nil {
		return nil
	}
	return mi.Algorithm.OID
}

func printToken(v *rfc3161.VerifiedToken) {
	t := v.TSTInfo
	fmt.Printf("serial:   %s (0x%s)\n", t.SerialNumber, strings.ToUpper(t.SerialNumber.Text(16)))
	fmt.Printf("genTime:  %s\n", rfc3161.FormatGeneralizedTime(t.GenTime))
	fmt.Printf("policy:   %s\n", t.Policy)
	if a := t.Accuracy; a != nil {
		fmt.Printf("accuracy: %ds %dms %dµs\n", a.Seconds, a.Millis, a.Micros)
	} else {
		fmt.Println("accuracy: unspecified")
	}
	if t.Nonce != nil {
		fmt.Printf("nonce:    0x%s\n", hex.EncodeToString(t.Nonce))
	}
	sum := sha256.Sum256(v.Signer.Raw)
	fmt.Printf("signer:   %s\n          issuer %s, serial %s\n          sha256 %s\n", v.Signer.Subject, v.Signer.Issuer, v.Signer.SerialNumber, hex.EncodeToString(sum[:]))
}

func countSet(ss ...string) int {
	n := 0
	for _, s := range ss {
		if s != "" {
			n++
		}
	}
	return n
}

func loadPool(path string) (*x509.CertPool, error) {
	certs, err := softkey.ReadCertificates(path)
	if err != nil {
		return nil, err
	}
	p := x509.NewCertPool()
	for _, c := range certs {
		p.AddCert(c)
	}
	return p, nil
}

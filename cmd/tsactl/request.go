package main

import (
	"bytes"
	"crypto/rand"
	"encoding/asn1"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"strconv"
	"strings"

	"github.com/chronolog/chronolog/domain/rfc3161"
)

func runRequest(args []string) error {
	fs := flag.NewFlagSet("tsactl request", flag.ContinueOnError)
	url := fs.String("url", "http://127.0.0.1:3180/tsa", "TSA URL")
	tcpAddr := fs.String("tcp", "", "send the query over the RFC 3161 socket protocol to host:port (port 318 when left out) instead of HTTP")
	hash := fs.String("hash", "sha256", "message-imprint hash: sha256, sha384, sha512, sha3-256, sha3-384, sha3-512, sha1")
	nonceBits := fs.Int("nonce-bits", 64, "nonce size in bits (0 sends no nonce)")
	certReq := fs.Bool("cert", true, "ask for the TSA certificate in the token (certReq)")
	policy := fs.String("policy", "", "ask for this TSA policy OID")
	out := fs.String("out", "", "where to save the reply (default FILE.tsr)")
	queryOut := fs.String("query-out", "", "also save the query (default FILE.tsq)")
	bearerEnv := fs.String("bearer-env", "", "send the API key held in this environment variable (Authorization: Bearer), for services with an api-key filter")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := checkTransport(fs, *tcpAddr); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("request needs one FILE to timestamp")
	}
	file := fs.Arg(0)
	if *out == "" {
		*out = file + ".tsr"
	}
	if *queryOut == "" {
		*queryOut = file + ".tsq"
	}
	alg, ok := rfc3161.HashByName(*hash)
	if !ok {
		return fmt.Errorf("unknown hash %q", *hash)
	}
	digest, err := hashFile(file, alg)
	if err != nil {
		return err
	}
	var nonce *big.Int
	if *nonceBits > 0 {
		if nonce, err = rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), uint(*nonceBits))); err != nil {
			return fmt.Errorf("draw nonce: %w", err)
		}
	}
	var pol asn1.ObjectIdentifier
	if *policy != "" {
		if pol, err = parsePolicy(*policy); err != nil {
			return err
		}
	}
	q, err := rfc3161.NewTimeStampReq(alg, digest, nonce, pol, *certReq)
	if err != nil {
		return err
	}
	der, err := q.Marshal()
	if err != nil {
		return err
	}
	if err := os.WriteFile(*queryOut, der, 0o644); err != nil {
		return fmt.Errorf("save query: %w", err)
	}
	var reply []byte
	if *tcpAddr != "" {
		reply, err = exchangeTCP(*tcpAddr, der)
	} else {
		bearer := ""
		if *bearerEnv != "" {
			if bearer = os.Getenv(*bearerEnv); bearer == "" {
				return fmt.Errorf("--bearer-env %s: the variable is empty or unset", *bearerEnv)
			}
		}
		reply, err = post(http.DefaultClient, *url, der, bearer)
	}
	if err != nil {
		return err
	}
	if err := os.WriteFile(*out, reply, 0o644); err != nil {
		return fmt.Errorf("save reply: %w", err)
	}
	resp, err := rfc3161.ParseTimeStampResp(reply)
	if err != nil {
		return fmt.Errorf("reply saved to %s but it is not a TimeStampResp: %w", *out, err)
	}
	fmt.Printf("query: %s\nreply: %s\nstatus: %s\n", *queryOut, *out, resp.Describe())
	if resp.Token == nil {
		return fmt.Errorf("not granted")
	}
	return nil
}

// post sends one query and returns the reply body; a non-200 answer is a
// transport refusal and is returned as an error with its text.
func post(c *http.Client, url string, der []byte, bearer string) ([]byte, error) {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(der))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", rfc3161.MediaTypeQuery)
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	res, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("post to %s: %w", url, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("read reply: %w", err)
	}
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: HTTP %d: %s", url, res.StatusCode, strings.TrimSpace(string(body)))
	}
	if ct := res.Header.Get("Content-Type"); ct != rfc3161.MediaTypeReply {
		return nil, fmt.Errorf("%s: reply content type %q", url, ct)
	}
	return body, nil
}

func hashFile(path string, alg rfc3161.HashAlgorithm) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := alg.Hash.New()
	if _, err := io.Copy(h, f); err != nil {
		return nil, fmt.Errorf("hash %s: %w", path, err)
	}
	return h.Sum(nil), nil
}

func parsePolicy(s string) (asn1.ObjectIdentifier, error) {
	var oid asn1.ObjectIdentifier
	for _, p := range strings.Split(s, ".") {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("policy %q is not a dotted OID", s)
		}
		oid = append(oid, n)
	}
	if len(oid) < 2 {
		return nil, fmt.Errorf("policy %q is not a dotted OID", s)
	}
	return oid, nil
}

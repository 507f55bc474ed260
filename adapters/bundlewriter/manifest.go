package bundlewriter

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"math/big"
	"os"
	"time"

	"github.com/chronolog/chronolog/domain/bundle"
	"github.com/chronolog/chronolog/domain/rfc3161"
)

// writeManifest lists the bundle's files into manifest.json and has the
// TSA timestamp it: manifest.tsr.
func writeManifest(ctx context.Context, tsa TSA, cfg Config, sum *Summary) error {
	files, err := bundle.ListFiles(os.DirFS(cfg.Out))
	if err != nil {
		return err
	}
	m := &bundle.Manifest{
		Format: bundle.Format, From: cfg.From, To: cfg.To,
		FirstPosition: sum.First, LastPosition: sum.Last,
		Events: sum.Events, Tokens: len(sum.Serials),
		CreatedAt: time.Now().UTC(), TSA: cfg.TSAName, LogOrigin: sum.Checkpoint.Origin,
		Files: files,
	}
	raw, err := m.Marshal()
	if err != nil {
		return err
	}
	if err := writeFile(cfg.Out, bundle.ManifestFile, raw); err != nil {
		return err
	}
	reply, vt, err := timestamp(ctx, tsa, raw)
	if err != nil {
		return fmt.Errorf("timestamp manifest.json: %w", err)
	}
	if err := writeFile(cfg.Out, bundle.ManifestTSR, reply); err != nil {
		return err
	}
	sum.Files = len(files)
	sum.StampSerial, sum.StampGenTime = vt.TSTInfo.SerialNumber.Text(16), rfc3161.FormatGeneralizedTime(vt.TSTInfo.GenTime)
	return nil
}

// timestamp asks the TSA for a token over SHA-256(data), with its
// certificate and a nonce, and checks that the token answers this request
// and is signed by the certificate it carries; whether that certificate
// is to be trusted is the verifier's question.
func timestamp(ctx context.Context, tsa TSA, data []byte) ([]byte, *rfc3161.VerifiedToken, error) {
	digest := sha256.Sum256(data)
	nonce, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		return nil, nil, err
	}
	q, err := rfc3161.NewTimeStampReq(rfc3161.SHA256, digest[:], nonce, nil, true)
	if err != nil {
		return nil, nil, err
	}
	der, err := q.Marshal()
	if err != nil {
		return nil, nil, err
	}
	reply, err := tsa.Timestamp(ctx, der)
	if err != nil {
		return nil, nil, err
	}
	resp, err := rfc3161.ParseTimeStampResp(reply)
	if err != nil {
		return nil, nil, err
	}
	if resp.Token == nil {
		return nil, nil, fmt.Errorf("not granted: %s", resp.Describe())
	}
	embedded, err := rfc3161.TokenCertificates(resp.Token)
	if err != nil {
		return nil, nil, err
	}
	self := x509.NewCertPool()
	for _, c := range embedded {
		self.AddCert(c)
	}
	v, err := rfc3161.VerifyToken(resp.Token, rfc3161.VerifyOptions{Roots: self, Request: q})
	if err != nil {
		return nil, nil, fmt.Errorf("the token does not answer the request: %w", err)
	}
	return reply, v, nil
}

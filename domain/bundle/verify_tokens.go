package bundle

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"github.com/chronolog/chronolog/domain/authenticode"
	"github.com/chronolog/chronolog/domain/events"
	"github.com/chronolog/chronolog/domain/rfc3161"
)

// checkTokens verifies every token file against the CA, its request's
// imprint and its TimestampIssued event, each by its kind.
func (v *verifier) checkTokens() {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	entries, err := fs.ReadDir(v.fsys, TokensDir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		add("tokens: %v", err)
	}
	files := map[string]string{} // serial → path
	for _, e := range entries {
		name := e.Name()
		serial, ext := strings.TrimSuffix(name, path.Ext(name)), path.Ext(name)
		p := TokensDir + "/" + name
		iss, ok := v.issued[serial]
		switch {
		case e.IsDir() || (ext != ".tsr" && ext != ".p7"):
			add("%s: not a token file (SERIAL.tsr or SERIAL.p7)", p)
			continue
		case !ok:
			add("%s: no TimestampIssued of serial %s in events.jsonl", p, serial)
			continue
		case (iss.protocol == events.ProtocolAuthenticode) != (ext == ".p7"):
			add("%s: the event at position %d records a token of protocol %q", p, iss.position, iss.protocol)
			continue
		}
		files[serial] = p
	}
	// Certificates the bundle carries, as candidates: first those of the
	// tokens, for the ones requested without certReq; then keys.jsonl's.
	raws := map[string][]byte{}
	for _, serial := range sortedSerials(files) {
		p := files[serial]
		raw, err := fs.ReadFile(v.fsys, p)
		if err != nil {
			add("%s: %v", p, err)
			continue
		}
		raws[serial] = raw
		if v.issued[serial].protocol == events.ProtocolAuthenticode {
			continue
		}
		if resp, err := rfc3161.ParseTimeStampResp(raw); err == nil && resp.Token != nil {
			if certs, err := rfc3161.TokenCertificates(resp.Token); err == nil {
				v.addCandidates(certs...)
			}
		}
	}
	v.addKeyCertificates()
	nRFC, nAC := 0, 0
	for _, serial := range sortedSerials(v.issued) {
		iss := v.issued[serial]
		p, ok := files[serial]
		if !ok {
			ext := ".tsr"
			if iss.protocol == events.ProtocolAuthenticode {
				ext = ".p7"
			}
			add("tokens/%s%s: missing: the token issued at position %d has no file", serial, ext, iss.position)
			continue
		}
		raw, read := raws[serial]
		if !read {
			continue // its problem is listed
		}
		if sha256.Sum256(raw) != iss.file {
			// Its own signature is still checked below: a file that
			// differs and still verifies is another token of the TSA.
			add("%s: differs from the token recorded in events.jsonl at position %d", p, iss.position)
		}
		req, hasReq := v.requests[serial]
		if !hasReq {
			add("%s: no TimestampRequested of serial %s in events.jsonl: the imprint cannot be checked", p, serial)
		}
		if iss.protocol == events.ProtocolAuthenticode {
			nAC++
			if err := v.checkAuthenticode(raw, req, hasReq); err != nil {
				add("%s: %v", p, err)
			}
			continue
		}
		nRFC++
		if err := v.checkRFC3161(raw, serial, req, hasReq); err != nil {
			add("%s: %v", p, err)
		}
	}
	v.report.Counts.RFC3161, v.report.Counts.Authenticode = nRFC, nAC
	v.report.add("tokens", fmt.Sprintf("%d (%d RFC 3161, %d Authenticode) verified against %s, each matching its request's imprint and its event byte for byte",
		nRFC+nAC, nRFC, nAC, v.RootsName), problems)
}

func (v *verifier) checkRFC3161(raw []byte, serial string, req request, hasReq bool) error {
	resp, err := rfc3161.ParseTimeStampResp(raw)
	if err != nil {
		return err
	}
	if resp.Token == nil {
		return fmt.Errorf("not granted: %s", resp.Describe())
	}
	opts := rfc3161.VerifyOptions{Roots: v.Roots, Intermediates: v.pool(), Certificates: v.candidates}
	if hasReq {
		opts.Digest = req.digest
	}
	vt, err := rfc3161.VerifyToken(resp.Token, opts)
	if err != nil {
		return fmt.Errorf("does not verify against %s (imprint: the request's hashedMessage): %w", v.RootsName, err)
	}
	if got := vt.TSTInfo.SerialNumber.Text(16); got != serial {
		return fmt.Errorf("the token's serial is %s", got)
	}
	if hasReq {
		mi, err := rfc3161.ParseMessageImprint(vt.TSTInfo.MessageImprint)
		alg, known := rfc3161.HashByName(req.alg)
		if err != nil || !known || !mi.Algorithm.OID.Equal(alg.OID) {
			return fmt.Errorf("the token's imprint algorithm is not the request's %s", req.alg)
		}
	}
	return nil
}

// checkAuthenticode verifies a countersignature: its signature, its
// certificate's chain to the CA at its signing time, and that it
// countersigns what was requested.
func (v *verifier) checkAuthenticode(raw []byte, req request, hasReq bool) error {
	av, err := authenticode.Verify(raw)
	if err != nil {
		return err
	}
	inter := x509.NewCertPool()
	for _, c := range append(av.Certificates, v.candidates...) {
		inter.AddCert(c)
	}
	if _, err := av.Certificate.Verify(x509.VerifyOptions{
		Roots: v.Roots, Intermediates: inter, CurrentTime: av.SigningTime,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageTimeStamping},
	}); err != nil {
		return fmt.Errorf("its certificate does not chain to %s: %w", v.RootsName, err)
	}
	if hasReq {
		if sum := sha256.Sum256(av.Content); !bytes.Equal(sum[:], req.digest) {
			return errors.New("it countersigns other content than was requested")
		}
	}
	return nil
}

// addKeyCertificates adds keys.jsonl's imported certificates to the
// candidates (a token requested without certReq carries none).
func (v *verifier) addKeyCertificates() {
	_ = v.readLines(KeysFile, func(_ int, line []byte) {
		l, err := ParseLine(line)
		if err != nil {
			return
		}
		if _, e, err := events.Decode(l.Payload); err == nil {
			if ci, ok := e.(*events.CertificateImported); ok {
				if c, err := x509.ParseCertificate(ci.Certificate); err == nil {
					v.addCandidates(c)
				}
			}
		}
	})
}

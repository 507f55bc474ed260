package main

import (
	"bufio"
	"bytes"
	"cmp"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/chronolog/chronolog/adapters/logkey"
	"github.com/chronolog/chronolog/adapters/logwire"
	"github.com/chronolog/chronolog/domain/authenticode"
	"github.com/chronolog/chronolog/domain/events"
	"github.com/chronolog/chronolog/domain/rfc3161"
	"github.com/chronolog/chronolog/domain/translog"
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
	v := &bundleVerifier{fsys: root.FS(), roots: roots, caName: *caFile, log: verifier, out: os.Stdout}
	if n := v.run(); n > 0 {
		return fmt.Errorf("%w: %s", errBundle, nProblems(n))
	}
	return nil
}

// bundleVerifier checks one bundle; every check prints one line.
type bundleVerifier struct {
	fsys   fs.FS
	roots  *x509.CertPool
	caName string
	log    note.Verifier
	out    io.Writer

	problems int
	manifest *exportManifest
	rawMan   []byte
	// candidates are certificates met in the bundle: signer candidates for
	// tokens that carry none, and intermediates. Trust comes from roots
	// alone: every chain must end there.
	candidates []*x509.Certificate
	inter      *x509.CertPool

	// What events.jsonl holds, by serial and by position.
	requests map[string]exportRequest
	issued   map[string]exportIssued
	streams  map[string]map[uint64][32]byte // stream → position → digest of its line
	linesOK  bool                           // events.jsonl was read to its end
	// tail is the log's bookkeeping after the last other event, checked
	// against the log itself (export_tail.go).
	tail bookkeepingTail
}

type exportRequest struct {
	alg    string
	digest []byte
}

type exportIssued struct {
	position uint64
	protocol string
	payload  [32]byte // SHA-256 of the event's payload
	token    [32]byte // SHA-256 of the token
	file     [32]byte // SHA-256 of the token file expected: the TimeStampResp or the PKCS#7
}

func nProblems(n int) string {
	if n == 1 {
		return "1 problem"
	}
	return fmt.Sprintf("%d problems", n)
}

// maxListed bounds the problems printed per check.
const maxListed = 50

// report prints a check's line: what it established and OK, or each
// problem.
func (v *bundleVerifier) report(name, established string, problems []string) {
	label := fmt.Sprintf("%-14s", name+":")
	if len(problems) == 0 {
		fmt.Fprintf(v.out, "%s%s: OK\n", label, established)
		return
	}
	v.problems += len(problems)
	fmt.Fprintf(v.out, "%sFAILED, %s\n", label, nProblems(len(problems)))
	for i, p := range problems {
		if i == maxListed {
			fmt.Fprintf(v.out, "  … and %d more\n", len(problems)-maxListed)
			break
		}
		fmt.Fprintf(v.out, "  - %s\n", p)
	}
}

// run performs every check and returns the number of problems.
func (v *bundleVerifier) run() int {
	if !v.checkManifest() {
		fmt.Fprintf(v.out, "verify:       FAILED, %s (the manifest is unreadable: nothing else checked)\n", nProblems(v.problems))
		return v.problems
	}
	v.checkManifestStamp()
	v.checkEvents()
	v.checkStreams()
	v.checkTokens()
	v.checkLog()
	if v.problems > 0 {
		fmt.Fprintf(v.out, "verify:       FAILED, %s\n", nProblems(v.problems))
	} else {
		fmt.Fprintln(v.out, "verify:       OK")
	}
	return v.problems
}

// requiredFiles are in every bundle, listed in its manifest.
var requiredFiles = []string{"events.jsonl", "clock.jsonl", "keys.jsonl", "config.jsonl", "log/checkpoint"}

func (v *bundleVerifier) checkManifest() bool {
	raw, err := fs.ReadFile(v.fsys, exportManifestFile)
	if err != nil {
		v.report("manifest", "", []string{err.Error()})
		return false
	}
	m, err := readManifest(raw)
	if err != nil {
		v.report("manifest", "", []string{err.Error()})
		return false
	}
	v.manifest, v.rawMan = m, raw
	problems := checkBundleFiles(v.fsys, m.Files)
	listed := map[string]bool{}
	for _, f := range m.Files {
		listed[f.Path] = true
	}
	for _, r := range requiredFiles {
		if !listed[r] {
			problems = append(problems, r+": required, not listed in the manifest")
		}
	}
	if m.FirstPosition == 0 || m.LastPosition < m.FirstPosition || m.Events < 0 || m.Tokens < 0 || !m.From.Before(m.To) {
		problems = append(problems, fmt.Sprintf("manifest.json: window [%s, %s), positions %d–%d, %d events, %d tokens: inconsistent",
			fmtTime(m.From), fmtTime(m.To), m.FirstPosition, m.LastPosition, m.Events, m.Tokens))
	}
	v.report("manifest", fmt.Sprintf("%d files listed, each present with its SHA-256 and size, none unlisted", len(m.Files)), problems)
	return true
}

// checkManifestStamp: manifest.tsr is a token of the TSA over the
// manifest's SHA-256.
func (v *bundleVerifier) checkManifestStamp() {
	fail := func(format string, args ...any) {
		v.report("manifest.tsr", "", []string{fmt.Sprintf("manifest.tsr: "+format, args...)})
	}
	raw, err := fs.ReadFile(v.fsys, exportManifestTSR)
	if err != nil {
		fail("%v", err)
		return
	}
	resp, err := rfc3161.ParseTimeStampResp(raw)
	if err != nil {
		fail("%v", err)
		return
	}
	if resp.Token == nil {
		fail("not granted: %s", describeStatus(resp))
		return
	}
	if certs, err := rfc3161.TokenCertificates(resp.Token); err == nil {
		v.addCandidates(certs...)
	}
	digest := sha256.Sum256(v.rawMan)
	vt, err := rfc3161.VerifyToken(resp.Token, rfc3161.VerifyOptions{Roots: v.roots, Intermediates: v.pool(), Digest: digest[:]})
	if err != nil {
		fail("does not verify against %s as a token over SHA-256(manifest.json): %v", v.caName, err)
		return
	}
	if mi, err := rfc3161.ParseMessageImprint(vt.TSTInfo.MessageImprint); err != nil || !mi.Algorithm.OID.Equal(rfc3161.OIDSHA256) {
		fail("its imprint is not a SHA-256")
		return
	}
	v.addCandidates(vt.Signer)
	var problems []string
	if vt.TSTInfo.GenTime.Before(v.manifest.To) {
		problems = append(problems, fmt.Sprintf("manifest.tsr: genTime %s is before the window's end %s: the manifest was signed before the period was over",
			fmtTime(vt.TSTInfo.GenTime), fmtTime(v.manifest.To)))
	}
	v.report("manifest.tsr", fmt.Sprintf("token serial %s, genTime %s, by %s, chain to %s; imprint SHA-256(manifest.json)",
		vt.TSTInfo.SerialNumber.Text(16), rfc3161.FormatGeneralizedTime(vt.TSTInfo.GenTime), vt.Signer.Subject, v.caName), problems)
}

func (v *bundleVerifier) addCandidates(certs ...*x509.Certificate) {
	for _, c := range certs {
		known := false
		for _, k := range v.candidates {
			if k.Equal(c) {
				known = true
				break
			}
		}
		if !known {
			v.candidates = append(v.candidates, c)
			v.inter = nil
		}
	}
}

// pool is the candidates as an intermediates pool.
func (v *bundleVerifier) pool() *x509.CertPool {
	if v.inter == nil {
		v.inter = x509.NewCertPool()
		for _, c := range v.candidates {
			v.inter.AddCert(c)
		}
	}
	return v.inter
}

// readLines calls fn with each line of a bundle file, without its
// newline; a last line without one is a problem of its own.
func (v *bundleVerifier) readLines(name string, fn func(n int, line []byte)) error {
	f, err := v.fsys.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	for n := 1; ; n++ {
		line, err := r.ReadBytes('\n')
		if len(line) > 0 && line[len(line)-1] == '\n' {
			fn(n, line[:len(line)-1])
		} else if len(line) > 0 {
			return fmt.Errorf("line %d has no final newline", n)
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// exportStreams are the streams whose lines are cross-checked against
// clock.jsonl, keys.jsonl and config.jsonl.
var exportStreams = map[string]string{
	events.ClockStream:  "clock.jsonl",
	events.KeyStream:    "keys.jsonl",
	events.ConfigStream: "config.jsonl",
}

// checkEvents reads events.jsonl: contiguous positions, valid events;
// it keeps what the other checks compare with.
func (v *bundleVerifier) checkEvents() {
	m := v.manifest
	v.requests = map[string]exportRequest{}
	v.issued = map[string]exportIssued{}
	v.streams = map[string]map[uint64][32]byte{}
	for s := range exportStreams {
		v.streams[s] = map[uint64][32]byte{}
	}
	var problems []string
	add := func(format string, args ...any) {
		problems = append(problems, fmt.Sprintf("events.jsonl: "+format, args...))
	}
	count := 0
	var prev uint64
	var lastAt time.Time
	err := v.readLines("events.jsonl", func(n int, line []byte) {
		count++
		l, err := parseExportLine(line)
		if err != nil {
			add("line %d: %v", n, err)
			return
		}
		switch {
		case count == 1 && l.Position != m.FirstPosition:
			add("line 1: position %d, the manifest's firstPosition is %d", l.Position, m.FirstPosition)
		case count > 1 && l.Position <= prev:
			add("line %d: position %d after %d: not in commit order", n, l.Position, prev)
		case count > 1 && l.Position != prev+1:
			add("line %d: position %d after %d: positions %d–%d are missing", n, l.Position, prev, prev+1, l.Position-1)
		}
		prev = l.Position
		if err := schemas.ValidateEvent(l.Payload); err != nil {
			add("line %d (position %d): %v", n, l.Position, err)
			return
		}
		env, e, err := events.Decode(l.Payload)
		if err != nil {
			add("line %d (position %d): %v", n, l.Position, err)
			return
		}
		lastAt = env.RecordedAt
		if err := v.tail.add(l.Position, env.Type, l.Payload); err != nil {
			add("line %d (position %d): %v", n, l.Position, err)
		}
		if count == 1 && (env.RecordedAt.Before(m.From) || !env.RecordedAt.Before(m.To)) {
			add("line 1 (position %d): recorded at %s, outside the window [%s, %s)", l.Position, fmtTime(env.RecordedAt), fmtTime(m.From), fmtTime(m.To))
		}
		if s, ok := v.streams[env.Stream]; ok {
			s[l.Position] = sha256.Sum256(line)
		}
		switch e := e.(type) {
		case *events.TimestampRequested:
			if env.Stream != events.RequestStream(e.Serial) {
				add("line %d (position %d): the request of serial %s in stream %s", n, l.Position, e.Serial, env.Stream)
				return
			}
			d, err := hex.DecodeString(e.HashedMessage)
			if err != nil {
				add("line %d (position %d): hashedMessage %q is not hex", n, l.Position, e.HashedMessage)
				return
			}
			v.requests[e.Serial] = exportRequest{alg: e.HashAlgorithm, digest: d}
		case *events.TimestampIssued:
			if !isSerialHex(e.Serial) || env.Stream != events.RequestStream(e.Serial) {
				add("line %d (position %d): the token of serial %q in stream %s", n, l.Position, e.Serial, env.Stream)
				return
			}
			if first, dup := v.issued[e.Serial]; dup {
				add("line %d (position %d): serial %s was issued before, at position %d", n, l.Position, e.Serial, first.position)
				return
			}
			iss := exportIssued{position: l.Position, protocol: e.Protocol, payload: sha256.Sum256(l.Payload), token: sha256.Sum256(e.Token)}
			if e.Protocol == events.ProtocolAuthenticode {
				iss.file = iss.token
			} else {
				iss.file = sha256.Sum256(rfc3161.GrantedResponse(e.Token))
			}
			v.issued[e.Serial] = iss
		}
	})
	if err != nil {
		add("%v", err)
	} else {
		v.linesOK = true
	}
	if count > 0 && (lastAt.Before(m.From) || !lastAt.Before(m.To)) {
		add("the last line (position %d): recorded at %s, outside the window [%s, %s)", prev, fmtTime(lastAt), fmtTime(m.From), fmtTime(m.To))
	}
	if count != m.Events {
		add("%d events, the manifest says %d", count, m.Events)
	}
	if count > 0 && prev != m.LastPosition {
		add("ends at position %d, the manifest's lastPosition is %d", prev, m.LastPosition)
	}
	if len(v.issued) != m.Tokens {
		add("%d tokens issued, the manifest says %d", len(v.issued), m.Tokens)
	}
	v.report("events.jsonl", fmt.Sprintf("%d events, positions %d–%d contiguous, each valid against its schema, %d tokens issued",
		count, m.FirstPosition, m.LastPosition, len(v.issued)), problems)
}

// checkStreams compares clock.jsonl with the range's tsa-clock events,
// and checks that keys.jsonl and config.jsonl are their whole streams up
// to the range's end, agreeing with events.jsonl inside it.
func (v *bundleVerifier) checkStreams() {
	m := v.manifest
	var problems []string
	counts := map[string]int{}
	for _, stream := range []string{events.ClockStream, events.KeyStream, events.ConfigStream} {
		name := exportStreams[stream]
		inRange := v.streams[stream]
		seen := map[uint64]bool{}
		var prev uint64
		var nextRev uint64
		n := 0
		add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(name+": "+format, args...)) }
		err := v.readLines(name, func(ln int, line []byte) {
			n++
			l, err := parseExportLine(line)
			if err != nil {
				add("line %d: %v", ln, err)
				return
			}
			if n > 1 && l.Position <= prev {
				add("line %d: position %d after %d: not in commit order", ln, l.Position, prev)
			}
			prev = l.Position
			if err := schemas.ValidateEvent(l.Payload); err != nil {
				add("line %d (position %d): %v", ln, l.Position, err)
				return
			}
			env, _, err := events.Decode(l.Payload)
			if err != nil {
				add("line %d (position %d): %v", ln, l.Position, err)
				return
			}
			if env.Stream != stream {
				add("line %d (position %d): an event of stream %s", ln, l.Position, env.Stream)
			}
			if stream != events.ClockStream {
				// The whole stream: revisions from 0, without a gap.
				if l.Revision != nextRev {
					add("line %d (position %d): revision %d, expected %d: the stream is incomplete", ln, l.Position, l.Revision, nextRev)
				}
				nextRev = l.Revision + 1
				if l.Position > m.LastPosition {
					add("line %d: position %d is after the range's end %d", ln, l.Position, m.LastPosition)
				}
			} else if l.Position < m.FirstPosition || l.Position > m.LastPosition {
				add("line %d: position %d is outside the range %d–%d", ln, l.Position, m.FirstPosition, m.LastPosition)
			}
			if l.Position >= m.FirstPosition && l.Position <= m.LastPosition && v.linesOK {
				want, ok := inRange[l.Position]
				switch {
				case !ok:
					add("line %d: position %d is not an event of %s in events.jsonl", ln, l.Position, stream)
				case want != sha256.Sum256(line):
					add("line %d: position %d differs from its line in events.jsonl", ln, l.Position)
				}
			}
			seen[l.Position] = true
		})
		if err != nil {
			add("%v", err)
		}
		if v.linesOK {
			for p := range inRange {
				if !seen[p] {
					add("the event at position %d of events.jsonl (stream %s) is missing", p, stream)
				}
			}
		}
		counts[stream] = n
	}
	v.report("streams", fmt.Sprintf("clock.jsonl %d events, keys.jsonl %d, config.jsonl %d, agreeing with events.jsonl",
		counts[events.ClockStream], counts[events.KeyStream], counts[events.ConfigStream]), problems)
}

// checkTokens verifies every token file against the CA, its request's
// imprint and its TimestampIssued event.
func (v *bundleVerifier) checkTokens() {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	entries, err := fs.ReadDir(v.fsys, "tokens")
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		add("tokens: %v", err)
	}
	files := map[string]string{} // serial → path
	for _, e := range entries {
		name := e.Name()
		serial, ext := strings.TrimSuffix(name, path.Ext(name)), path.Ext(name)
		p := "tokens/" + name
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
	for serial, p := range files {
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
	for _, serial := range sortedKeys(v.issued) {
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
	v.report("tokens", fmt.Sprintf("%d (%d RFC 3161, %d Authenticode) verified against %s, each matching its request's imprint and its event byte for byte",
		nRFC+nAC, nRFC, nAC, v.caName), problems)
}

func (v *bundleVerifier) checkRFC3161(raw []byte, serial string, req exportRequest, hasReq bool) error {
	resp, err := rfc3161.ParseTimeStampResp(raw)
	if err != nil {
		return err
	}
	if resp.Token == nil {
		return fmt.Errorf("not granted: %s", describeStatus(resp))
	}
	opts := rfc3161.VerifyOptions{Roots: v.roots, Intermediates: v.pool(), Certificates: v.candidates}
	if hasReq {
		opts.Digest = req.digest
	}
	vt, err := rfc3161.VerifyToken(resp.Token, opts)
	if err != nil {
		return fmt.Errorf("does not verify against %s (imprint: the request's hashedMessage): %w", v.caName, err)
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
func (v *bundleVerifier) checkAuthenticode(raw []byte, req exportRequest, hasReq bool) error {
	av, err := authenticode.Verify(raw)
	if err != nil {
		return err
	}
	inter := x509.NewCertPool()
	for _, c := range append(av.Certificates, v.candidates...) {
		inter.AddCert(c)
	}
	if _, err := av.Certificate.Verify(x509.VerifyOptions{
		Roots: v.roots, Intermediates: inter, CurrentTime: av.SigningTime,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageTimeStamping},
	}); err != nil {
		return fmt.Errorf("its certificate does not chain to %s: %w", v.caName, err)
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
func (v *bundleVerifier) addKeyCertificates() {
	_ = v.readLines("keys.jsonl", func(_ int, line []byte) {
		l, err := parseExportLine(line)
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

// checkLog verifies log/checkpoint with the log key, and each token's
// inclusion proof: with the key, to a checkpoint that is log/checkpoint or
// that log/checkpoint provably extends, for the very bytes of its event in
// events.jsonl.
func (v *bundleVerifier) checkLog() {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	signed, err := fs.ReadFile(v.fsys, "log/checkpoint")
	if err != nil {
		v.report("log", "", []string{"log/checkpoint: " + err.Error()})
		fmt.Fprintln(v.out, "bookkeeping:  not checked, without log/checkpoint")
		return
	}
	final, err := translog.OpenCheckpoint(signed, v.log)
	if err != nil {
		v.report("log", "", []string{"log/checkpoint: does not verify with the log key: " + err.Error()})
		fmt.Fprintln(v.out, "bookkeeping:  not checked, without log/checkpoint")
		return
	}
	if final.Origin != v.manifest.LogOrigin {
		add("log/checkpoint: origin %s, the manifest says %s", final.Origin, v.manifest.LogOrigin)
	}
	entries, err := fs.ReadDir(v.fsys, "log/proofs")
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		add("log/proofs: %v", err)
	}
	have := map[string]bool{}
	for _, e := range entries {
		serial, ok := strings.CutSuffix(e.Name(), ".json")
		if _, issued := v.issued[serial]; e.IsDir() || !ok || !issued {
			add("log/proofs/%s: not the proof of a token issued in events.jsonl", e.Name())
			continue
		}
		have[serial] = true
	}
	// Each older checkpoint's tie to log/checkpoint, checked once.
	anchored := map[string]error{} // by size and root
	direct, viaConsistency := 0, 0
	for _, serial := range sortedKeys(v.issued) {
		p := "log/proofs/" + serial + ".json"
		if !have[serial] {
			add("%s: missing: the token issued at position %d has no inclusion proof", p, v.issued[serial].position)
			continue
		}
		iss := v.issued[serial]
		raw, err := fs.ReadFile(v.fsys, p)
		if err != nil {
			add("%s: %v", p, err)
			continue
		}
		var wp logwire.Proof
		if err := json.Unmarshal(raw, &wp); err != nil {
			add("%s: %v", p, err)
			continue
		}
		if wp.Serial != "" && wp.Serial != serial {
			add("%s: the proof of serial %s", p, wp.Serial)
		}
		ep, err := wp.EventProof()
		if err != nil {
			add("%s: malformed: %v", p, err)
			continue
		}
		cp, err := ep.Verify(v.log)
		if err != nil {
			add("%s: %v", p, err)
			continue
		}
		if ep.Position != iss.position {
			add("%s: proves the event at position %d, the token was issued at position %d", p, ep.Position, iss.position)
		}
		if sha256.Sum256(ep.Payload) != iss.payload {
			add("%s: the event it proves differs from the line of position %d in events.jsonl", p, iss.position)
		}
		switch {
		case cp.Size == final.Size && cp.Root == final.Root:
			direct++
		case cp.Size >= final.Size:
			add("%s: leads to a checkpoint of size %d that log/checkpoint (size %d) does not extend", p, cp.Size, final.Size)
		default:
			key := fmt.Sprintf("%d %x", cp.Size, cp.Root)
			err, done := anchored[key]
			if !done {
				err = v.checkConsistency([]byte(wp.Checkpoint), signed, cp.Size, final.Size)
				anchored[key] = err
			}
			if err != nil {
				add("%s: leads to the checkpoint of size %d: %v", p, cp.Size, err)
				continue
			}
			viaConsistency++
		}
	}
	how := fmt.Sprintf("%d proofs verified with the log key, to checkpoint origin %s size %d", direct+viaConsistency, final.Origin, final.Size)
	if viaConsistency > 0 {
		how += fmt.Sprintf(" (%d through consistency proofs from older checkpoints)", viaConsistency)
	}
	v.report("log", how+", each proving its event byte for byte as in events.jsonl", problems)
	v.checkBookkeeping(signed, final, anchored)
}

// checkConsistency checks log/consistency/FROM-TO.json: log/checkpoint
// extends the older checkpoint a proof leads to.
func (v *bundleVerifier) checkConsistency(older, newer []byte, from, to uint64) error {
	p := fmt.Sprintf("log/consistency/%d-%d.json", from, to)
	raw, err := fs.ReadFile(v.fsys, p)
	if err != nil {
		return fmt.Errorf("no proof that log/checkpoint extends it: %w", err)
	}
	var wc logwire.Consistency
	if err := json.Unmarshal(raw, &wc); err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	if wc.From != from || wc.To != to {
		return fmt.Errorf("%s: proves %d→%d", p, wc.From, wc.To)
	}
	hashes, err := logwire.DecodeHashes(wc.Proof)
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	if _, _, err := translog.VerifyConsistency(v.log, older, newer, hashes); err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	return nil
}

// sortedKeys are the serials of m in numeric order: hex without leading
// zeros, so the shorter is the smaller.
func sortedKeys[V any](m map[string]V) []string {
	out := slices.Collect(maps.Keys(m))
	slices.SortFunc(out, func(a, b string) int { return cmp.Or(cmp.Compare(len(a), len(b)), cmp.Compare(a, b)) })
	return out
}

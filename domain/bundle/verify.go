package bundle

import (
	"bufio"
	"cmp"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"slices"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/chronolog/chronolog/domain/events"
	"github.com/chronolog/chronolog/domain/rfc3161"
)

// Options are the relying party's: its trust anchors, never taken from
// the bundle, and the event schemas.
type Options struct {
	// Roots are the TSA's trusted root certificates; RootsName is how the
	// report names them (the file they were read from).
	Roots     *x509.CertPool
	RootsName string
	// Log is the transparency log's verifier key.
	Log note.Verifier
	// ValidateEvent checks a stored envelope and its data against their
	// JSON Schemas (schemas.ValidateEvent).
	ValidateEvent func(payload []byte) error
}

// Verify checks the bundle fsys holds against o's trust anchors. The
// report says what every check established or found; the error is for
// options that cannot verify anything.
func Verify(fsys fs.FS, o Options) (*Report, error) {
	if o.Roots == nil || o.Log == nil || o.ValidateEvent == nil {
		return nil, errors.New("bundle: verifying needs the TSA's roots, the log key and the event schemas")
	}
	v := &verifier{fsys: fsys, Options: o}
	v.run()
	return &v.report, nil
}

// verifier checks one bundle; each check adds its outcome to the report.
type verifier struct {
	fsys fs.FS
	Options
	report Report

	manifest *Manifest
	rawMan   []byte
	// candidates are certificates met in the bundle: signer candidates for
	// tokens that carry none, and intermediates. Trust comes from roots
	// alone: every chain must end there.
	candidates []*x509.Certificate
	inter      *x509.CertPool

	// What events.jsonl holds, by serial and by position.
	requests map[string]request
	issued   map[string]issued
	streams  map[string]map[uint64][32]byte // stream → position → digest of its line
	linesOK  bool                           // events.jsonl was read to its end
	// tail is the log's bookkeeping after the last other event, checked
	// against the log itself.
	tail Tail
}

type request struct {
	alg    string
	digest []byte
}

type issued struct {
	position uint64
	protocol string
	payload  [32]byte // SHA-256 of the event's payload
	file     [32]byte // SHA-256 of the token file expected: the TimeStampResp or the PKCS#7
}

func (v *verifier) run() {
	if !v.checkManifest() {
		v.report.Stopped = "the manifest is unreadable: nothing else checked"
		return
	}
	v.checkManifestStamp()
	v.checkEvents()
	v.checkStreams()
	v.checkTokens()
	v.checkLog()
}

func (v *verifier) checkManifest() bool {
	raw, err := fs.ReadFile(v.fsys, ManifestFile)
	if err != nil {
		v.report.add("manifest", "", []string{err.Error()})
		return false
	}
	m, err := ParseManifest(raw)
	if err != nil {
		v.report.add("manifest", "", []string{err.Error()})
		return false
	}
	v.manifest, v.rawMan = m, raw
	problems := CheckFiles(v.fsys, m.Files)
	listed := map[string]bool{}
	for _, f := range m.Files {
		listed[f.Path] = true
	}
	for _, r := range RequiredFiles {
		if !listed[r] {
			problems = append(problems, r+": required, not listed in the manifest")
		}
	}
	if m.FirstPosition == 0 || m.LastPosition < m.FirstPosition || m.Events < 0 || m.Tokens < 0 || !m.From.Before(m.To) {
		problems = append(problems, fmt.Sprintf("manifest.json: window [%s, %s), positions %d–%d, %d events, %d tokens: inconsistent",
			formatTime(m.From), formatTime(m.To), m.FirstPosition, m.LastPosition, m.Events, m.Tokens))
	}
	v.report.Counts.Files = len(m.Files)
	v.report.add("manifest", fmt.Sprintf("%d files listed, each present with its SHA-256 and size, none unlisted", len(m.Files)), problems)
	return true
}

// checkManifestStamp: manifest.tsr is a token of the TSA over the
// manifest's SHA-256, made after the window's end.
func (v *verifier) checkManifestStamp() {
	fail := func(format string, args ...any) {
		v.report.add("manifest.tsr", "", []string{fmt.Sprintf("manifest.tsr: "+format, args...)})
	}
	raw, err := fs.ReadFile(v.fsys, ManifestTSR)
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
		fail("not granted: %s", resp.Describe())
		return
	}
	if certs, err := rfc3161.TokenCertificates(resp.Token); err == nil {
		v.addCandidates(certs...)
	}
	digest := sha256.Sum256(v.rawMan)
	vt, err := rfc3161.VerifyToken(resp.Token, rfc3161.VerifyOptions{Roots: v.Roots, Intermediates: v.pool(), Digest: digest[:]})
	if err != nil {
		fail("does not verify against %s as a token over SHA-256(manifest.json): %v", v.RootsName, err)
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
			formatTime(vt.TSTInfo.GenTime), formatTime(v.manifest.To)))
	}
	v.report.add("manifest.tsr", fmt.Sprintf("token serial %s, genTime %s, by %s, chain to %s; imprint SHA-256(manifest.json)",
		vt.TSTInfo.SerialNumber.Text(16), rfc3161.FormatGeneralizedTime(vt.TSTInfo.GenTime), vt.Signer.Subject, v.RootsName), problems)
}

func (v *verifier) addCandidates(certs ...*x509.Certificate) {
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
func (v *verifier) pool() *x509.CertPool {
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
func (v *verifier) readLines(name string, fn func(n int, line []byte)) error {
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

// streamFiles are the streams whose lines are cross-checked against
// clock.jsonl, keys.jsonl and config.jsonl.
var streamFiles = map[string]string{
	events.ClockStream:  ClockFile,
	events.KeyStream:    KeysFile,
	events.ConfigStream: ConfigFile,
}

// checkEvents reads events.jsonl: contiguous positions, valid events;
// it keeps what the other checks compare with.
func (v *verifier) checkEvents() {
	m := v.manifest
	v.requests = map[string]request{}
	v.issued = map[string]issued{}
	v.streams = map[string]map[uint64][32]byte{}
	for s := range streamFiles {
		v.streams[s] = map[uint64][32]byte{}
	}
	var problems []string
	add := func(format string, args ...any) {
		problems = append(problems, fmt.Sprintf("events.jsonl: "+format, args...))
	}
	count := 0
	var prev uint64
	var lastAt time.Time
	err := v.readLines(EventsFile, func(n int, line []byte) {
		count++
		l, err := ParseLine(line)
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
		if err := v.ValidateEvent(l.Payload); err != nil {
			add("line %d (position %d): %v", n, l.Position, err)
			return
		}
		env, e, err := events.Decode(l.Payload)
		if err != nil {
			add("line %d (position %d): %v", n, l.Position, err)
			return
		}
		lastAt = env.RecordedAt
		if err := v.tail.Add(l.Position, env.Type, l.Payload); err != nil {
			add("line %d (position %d): %v", n, l.Position, err)
		}
		if count == 1 && (env.RecordedAt.Before(m.From) || !env.RecordedAt.Before(m.To)) {
			add("line 1 (position %d): recorded at %s, outside the window [%s, %s)", l.Position, formatTime(env.RecordedAt), formatTime(m.From), formatTime(m.To))
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
			v.requests[e.Serial] = request{alg: e.HashAlgorithm, digest: d}
		case *events.TimestampIssued:
			if !IsSerial(e.Serial) || env.Stream != events.RequestStream(e.Serial) {
				add("line %d (position %d): the token of serial %q in stream %s", n, l.Position, e.Serial, env.Stream)
				return
			}
			if first, dup := v.issued[e.Serial]; dup {
				add("line %d (position %d): serial %s was issued before, at position %d", n, l.Position, e.Serial, first.position)
				return
			}
			_, body, err := TokenFile(e)
			if err != nil {
				add("line %d (position %d): %v", n, l.Position, err)
				return
			}
			v.issued[e.Serial] = issued{position: l.Position, protocol: e.Protocol, payload: sha256.Sum256(l.Payload), file: sha256.Sum256(body)}
		}
	})
	if err != nil {
		add("%v", err)
	} else {
		v.linesOK = true
	}
	if count > 0 && (lastAt.Before(m.From) || !lastAt.Before(m.To)) {
		add("the last line (position %d): recorded at %s, outside the window [%s, %s)", prev, formatTime(lastAt), formatTime(m.From), formatTime(m.To))
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
	v.report.Counts.Events, v.report.Counts.Issued = count, len(v.issued)
	v.report.add("events.jsonl", fmt.Sprintf("%d events, positions %d–%d contiguous, each valid against its schema, %d tokens issued",
		count, m.FirstPosition, m.LastPosition, len(v.issued)), problems)
}

// checkStreams compares clock.jsonl with the range's tsa-clock events,
// and checks that keys.jsonl and config.jsonl are their whole streams up
// to the range's end, agreeing with events.jsonl inside it.
func (v *verifier) checkStreams() {
	m := v.manifest
	var problems []string
	counts := map[string]int{}
	for _, stream := range []string{events.ClockStream, events.KeyStream, events.ConfigStream} {
		name := streamFiles[stream]
		inRange := v.streams[stream]
		seen := map[uint64]bool{}
		var prev uint64
		var nextRev uint64
		n := 0
		add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(name+": "+format, args...)) }
		err := v.readLines(name, func(ln int, line []byte) {
			n++
			l, err := ParseLine(line)
			if err != nil {
				add("line %d: %v", ln, err)
				return
			}
			if n > 1 && l.Position <= prev {
				add("line %d: position %d after %d: not in commit order", ln, l.Position, prev)
			}
			prev = l.Position
			if err := v.ValidateEvent(l.Payload); err != nil {
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
			for _, p := range slices.Sorted(maps.Keys(inRange)) {
				if !seen[p] {
					add("the event at position %d of events.jsonl (stream %s) is missing", p, stream)
				}
			}
		}
		counts[stream] = n
	}
	c := &v.report.Counts
	c.Clock, c.Keys, c.Config = counts[events.ClockStream], counts[events.KeyStream], counts[events.ConfigStream]
	v.report.add("streams", fmt.Sprintf("clock.jsonl %d events, keys.jsonl %d, config.jsonl %d, agreeing with events.jsonl",
		c.Clock, c.Keys, c.Config), problems)
}

// sortedSerials are the serials of m in numeric order: hex without
// leading zeros, so the shorter is the smaller.
func sortedSerials[V any](m map[string]V) []string {
	out := slices.Collect(maps.Keys(m))
	slices.SortFunc(out, func(a, b string) int { return cmp.Or(cmp.Compare(len(a), len(b)), cmp.Compare(a, b)) })
	return out
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// plural counts things named by a regular noun.
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

package translog

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/chronolog/chronolog/domain/events"
	"github.com/chronolog/chronolog/domain/merkle"
)

// AuditEvent is an event as a log's server hands it to an auditor: its
// position and type as served, and its stored bytes, the only part the
// log commits to.
type AuditEvent struct {
	Position uint64
	Type     string
	Payload  []byte
}

// AuditSource is where an auditor reads a log: the server's API, or a
// test's tampered copy of a log. Nothing it returns is trusted.
type AuditSource interface {
	// Checkpoint returns the latest signed checkpoint.
	Checkpoint(ctx context.Context) ([]byte, error)
	// Segment returns the encoded leaf at index and the events the server
	// says it commits to, in the order served.
	Segment(ctx context.Context, index uint64) (leaf []byte, events []AuditEvent, err error)
}

// TokenCheck verifies the token an event records, by its kind: an RFC 3161
// token, or, when issued.Protocol is events.ProtocolAuthenticode, a PKCS#7
// countersignature. It checks the signature (and whatever else the caller
// trusts: a CA, a certificate) and returns the time the token states: an
// RFC 3161 genTime, an Authenticode signingTime. It is injected because
// certificate checks need the machine's roots and files, which this
// package does not touch.
type TokenCheck func(issued *events.TimestampIssued) (genTime time.Time, err error)

// AuditConfig says what an Auditor checks, against what.
type AuditConfig struct {
	Source AuditSource
	// Log verifies the log's checkpoints; its name is the log's origin.
	Log note.Verifier
	// CheckToken verifies every token the log holds, of either kind.
	CheckToken TokenCheck
	// Tolerance is how far a token's genTime may fall behind the latest
	// genTime seen before it in log order without being flagged: tokens are
	// signed concurrently and committed in batches, so log order is only
	// roughly genTime order.
	Tolerance time.Duration
	// Strict makes backdating flags fail the audit.
	Strict bool
	// Progress, when set, is called after each segment with how many are
	// done out of the checkpoint's size.
	Progress func(done, total uint64)
}

// Auditor replays a whole log against its checkpoint: every segment's
// events, every token in them.
type Auditor struct {
	cfg AuditConfig
}

// NewAuditor checks the configuration.
func NewAuditor(cfg AuditConfig) (*Auditor, error) {
	if cfg.Source == nil || cfg.Log == nil || cfg.CheckToken == nil {
		return nil, errors.New("translog: an auditor needs a source, the log's verifier and a token check")
	}
	if cfg.Tolerance < 0 {
		return nil, fmt.Errorf("translog: negative genTime tolerance %s", cfg.Tolerance)
	}
	return &Auditor{cfg: cfg}, nil
}

// Severity says whether a finding fails the audit.
type Severity int

const (
	// Failure: the log does not hold what it committed to, or holds a
	// token that does not verify.
	Failure Severity = iota + 1
	// Flag: a signal worth a look, such as a token whose genTime runs
	// backwards, that fails the audit only when Strict.
	Flag
)

func (s Severity) String() string {
	switch s {
	case Failure:
		return "FAIL"
	case Flag:
		return "FLAG"
	}
	return fmt.Sprintf("Severity(%d)", int(s))
}

// Finding is one problem, its message naming where it is: the checkpoint,
// a segment and its positions, a token and its position.
type Finding struct {
	Severity Severity
	Message  string
}

func (f Finding) String() string { return f.Severity.String() + " " + f.Message }

// maxFindings bounds the findings a report lists: a log served against the
// wrong CA fails at every token, and a million identical lines help no one.
// The counts stay exact.
const maxFindings = 1000

// AuditReport is what an audit found.
type AuditReport struct {
	// Checkpoint is the checkpoint audited against (zero if its signature
	// did not verify).
	Checkpoint Checkpoint
	// Segments and Events are how many were read; Tokens how many tokens
	// passed the token check, Authenticode how many of those were
	// Authenticode countersignatures.
	Segments, Events, Tokens, Authenticode uint64
	// Failures and Flags count the findings by severity; Findings lists
	// the first maxFindings of them, in the order found.
	Failures, Flags int
	Findings        []Finding
}

// Omitted is how many findings the report counts but does not list.
func (r *AuditReport) Omitted() int { return r.Failures + r.Flags - len(r.Findings) }

func (r *AuditReport) add(s Severity, format string, args ...any) {
	if s == Failure {
		r.Failures++
	} else {
		r.Flags++
	}
	if len(r.Findings) < maxFindings {
		r.Findings = append(r.Findings, Finding{Severity: s, Message: fmt.Sprintf(format, args...)})
	}
}

// ErrAuditFailed is wrapped by Run's error when the audit found failures,
// or flags under Strict.
var ErrAuditFailed = errors.New("translog: audit failed")

// Run audits the log: it verifies the latest checkpoint's signature, reads
// every segment it covers, checks each segment's events against its leaf
// and the leaves against the checkpoint's root, and checks every token.
// The report lists what was found; the error is non-nil when the audit
// failed or could not finish.
func (a *Auditor) Run(ctx context.Context) (AuditReport, error) {
	var r AuditReport
	signed, err := a.cfg.Source.Checkpoint(ctx)
	if err != nil {
		return r, fmt.Errorf("translog: audit: read the checkpoint: %w", err)
	}
	cp, err := OpenCheckpoint(signed, a.cfg.Log)
	if err != nil {
		r.add(Failure, "checkpoint: does not verify with the log's key %s: %v", a.cfg.Log.Name(), err)
		return r, a.verdict(&r)
	}
	r.Checkpoint = cp
	leafHashes := make([]merkle.Hash, 0, cp.Size)
	g := genTimes{tolerance: a.cfg.Tolerance}
	var prev *segmentSeen
	for i := range cp.Size {
		if err := ctx.Err(); err != nil {
			return r, fmt.Errorf("translog: audit stopped at segment %d of %d: %w", i, cp.Size, err)
		}
		raw, evs, err := a.cfg.Source.Segment(ctx, i)
		if err != nil {
			// The checkpoint commits to this segment: not serving it is
			// a failure, and without its leaf no root can be recomputed.
			r.add(Failure, "segment %d: not served, though the checkpoint at size %d covers it: %v", i, cp.Size, err)
			return r, fmt.Errorf("%w: segment %d is not served: %v", ErrAuditFailed, i, err)
		}
		r.Segments++
		r.Events += uint64(len(evs))
		// The log's leaf hash is over the bytes as served, parsed or not.
		leafHashes = append(leafHashes, merkle.LeafHash(raw))
		leaf, err := ParseSegmentLeaf(raw)
		if err != nil {
			r.add(Failure, "segment %d: the leaf does not parse: %v", i, err)
			prev = nil
		} else {
			a.segment(&r, i, leaf, evs, prev)
			prev = &segmentSeen{index: i, leaf: leaf}
			a.tokens(&r, &g, evs)
		}
		if a.cfg.Progress != nil {
			a.cfg.Progress(i+1, cp.Size)
		}
	}
	if root := merkle.Root(leafHashes); root != cp.Root {
		r.add(Failure, "checkpoint (size %d): the %d segment leaves served recompute root %s, the checkpoint's root is %s",
			cp.Size, len(leafHashes), b64(root), b64(cp.Root))
	}
	return r, a.verdict(&r)
}

func (a *Auditor) verdict(r *AuditReport) error {
	switch {
	case r.Failures > 0:
		return fmt.Errorf("%w: %d failures, the first: %s", ErrAuditFailed, r.Failures, r.Findings[0].Message)
	case a.cfg.Strict && r.Flags > 0:
		return fmt.Errorf("%w: %d flags (strict)", ErrAuditFailed, r.Flags)
	}
	return nil
}

type segmentSeen struct {
	index uint64
	leaf  SegmentLeaf
}

// segment checks that the events served are exactly those the leaf
// commits to: its count, its positions, its root.
func (a *Auditor) segment(r *AuditReport, index uint64, leaf SegmentLeaf, evs []AuditEvent, prev *segmentSeen) {
	where := fmt.Sprintf("segment %d (positions %d–%d)", index, leaf.First, leaf.Last)
	dense := leaf.Last-leaf.First+1 == leaf.Count
	if prev != nil {
		prevDense := prev.leaf.Last-prev.leaf.First+1 == prev.leaf.Count
		switch {
		case leaf.First <= prev.leaf.Last:
			r.add(Failure, "%s: starts at or before position %d, where segment %d ends: segments overlap or are out of order",
				where, prev.leaf.Last, prev.index)
		case dense && prevDense && leaf.First != prev.leaf.Last+1:
			// The writer seals every event it receives, so in a store
			// without gaps no position falls between two segments.
			r.add(Failure, "%s: %s in no segment: segment %d ends at position %d",
				where, positions(prev.leaf.Last+1, leaf.First-1), prev.index, prev.leaf.Last)
		}
	}
	if uint64(len(evs)) != leaf.Count {
		r.add(Failure, "segment %d: %d events served, the leaf says %d", index, len(evs), leaf.Count)
	}
	if problem := positionProblem(leaf, dense, evs); problem != "" {
		r.add(Failure, "%s: %s", where, problem)
	}
	hashes := make([]merkle.Hash, len(evs))
	for j, e := range evs {
		hashes[j] = merkle.LeafHash(e.Payload)
	}
	if root := merkle.Root(hashes); root != leaf.Root {
		r.add(Failure, "%s: recomputed root differs from the logged leaf: the %d events served give %s, the leaf holds %s",
			where, len(evs), b64(root), b64(leaf.Root))
	}
}

// positionProblem describes the first event out of place, "" when the
// positions run from the leaf's First to its Last in increasing order
// (consecutively, in a dense segment).
func positionProblem(leaf SegmentLeaf, dense bool, evs []AuditEvent) string {
	if len(evs) == 0 {
		return "no events served"
	}
	if p := evs[0].Position; p != leaf.First {
		return fmt.Sprintf("the first event served is at position %d, the leaf starts at %d", p, leaf.First)
	}
	for j := 1; j < len(evs); j++ {
		p, before := evs[j].Position, evs[j-1].Position
		switch {
		case p <= before:
			return fmt.Sprintf("the event at position %d is served after position %d: out of order or repeated", p, before)
		case p > leaf.Last:
			return fmt.Sprintf("the event at position %d is beyond the segment", p)
		case dense && p != before+1:
			return positions(before+1, p-1) + " missing"
		}
	}
	if p := evs[len(evs)-1].Position; p != leaf.Last {
		return fmt.Sprintf("the last event served is at position %d, the leaf ends at %d", p, leaf.Last)
	}
	return ""
}

// genTimes follows genTime along log order.
type genTimes struct {
	tolerance time.Duration
	seen      bool
	latest    time.Time
	serial    string
	position  uint64
}

// tokens checks every TimestampIssued among evs. What an event is comes
// from its payload, which the log commits to, not from the type served
// beside it.
func (a *Auditor) tokens(r *AuditReport, g *genTimes, evs []AuditEvent) {
	for _, e := range evs {
		env, ev, err := events.Decode(e.Payload)
		if err != nil {
			// A newer event type, or bytes that changed: the latter
			// fail the segment's root already. Only a token event that
			// cannot be read is a problem of its own.
			if e.Type == events.TypeTimestampIssued || env.Type == events.TypeTimestampIssued {
				r.add(Failure, "token at position %d: the TimestampIssued event does not decode: %v", e.Position, err)
			}
			continue
		}
		if env.Type != e.Type {
			r.add(Failure, "event at position %d: served as %s, its payload is a %s", e.Position, e.Type, env.Type)
		}
		ti, ok := ev.(*events.TimestampIssued)
		if !ok {
			continue
		}
		where := fmt.Sprintf("token serial %s at position %d", ti.Serial, e.Position)
		if ti.Protocol == events.ProtocolAuthenticode {
			where = fmt.Sprintf("Authenticode token serial %s at position %d", ti.Serial, e.Position)
		}
		gen, err := a.cfg.CheckToken(ti)
		if err != nil {
			r.add(Failure, "%s: signature does not verify: %v", where, err)
			continue
		}
		r.Tokens++
		if ti.Protocol == events.ProtocolAuthenticode {
			r.Authenticode++
		}
		if !gen.Equal(ti.GenTime) {
			r.add(Failure, "%s: the token's genTime %s differs from the %s its event records",
				where, formatTime(gen), formatTime(ti.GenTime))
		}
		if g.seen && gen.Before(g.latest.Add(-g.tolerance)) {
			r.add(Flag, "%s: genTime %s is %s before %s of token serial %s at position %d (tolerance %s): backdated?",
				where, formatTime(gen), g.latest.Sub(gen), formatTime(g.latest), g.serial, g.position, g.tolerance)
		}
		if !g.seen || gen.After(g.latest) {
			g.seen, g.latest, g.serial, g.position = true, gen, ti.Serial, e.Position
		}
	}
}

// positions names a range of positions with its verb: "position 7 is",
// "positions 7–9 are".
func positions(first, last uint64) string {
	if first == last {
		return fmt.Sprintf("position %d is", first)
	}
	return fmt.Sprintf("positions %d–%d are", first, last)
}

func b64(h merkle.Hash) string { return base64.StdEncoding.EncodeToString(h[:]) }

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

package bundlewriter

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/chronolog/chronolog/adapters/eventstore/sqlite"
	"github.com/chronolog/chronolog/domain/bundle"
	"github.com/chronolog/chronolog/domain/events"
	"github.com/chronolog/chronolog/domain/eventstore"
	"github.com/chronolog/chronolog/domain/merkle"
	"github.com/chronolog/chronolog/domain/rfc3161"
	"github.com/chronolog/chronolog/internal/testpki"
	"github.com/chronolog/chronolog/schemas"
)

// testTSA signs tokens with a fresh CA's TSA certificate, as a tsad would.
type testTSA struct {
	roots  *x509.CertPool
	signer *rfc3161.TokenSigner
	serial int64
	// refuse answers rejection instead; seen, if set, is called with each
	// query before the answer.
	refuse bool
	seen   func(query []byte)
}

func newTestTSA(t *testing.T) *testTSA {
	t.Helper()
	// Tokens are dated up to an hour back: the TSA certificate is valid
	// from two days before.
	now := time.Now()
	ca := testpki.New(t)
	tsa := ca.TSA(t, testpki.Valid(now.Add(-48*time.Hour), now.Add(time.Hour)))
	s, err := rfc3161.NewTokenSigner(rfc3161.SigningIdentity{Signer: tsa.Key, Certificate: tsa.Cert})
	if err != nil {
		t.Fatal(err)
	}
	return &testTSA{roots: ca.Pool(), signer: s, serial: 0x100}
}

// token signs a token of serial over the request q at genTime.
func (a *testTSA) token(t *testing.T, q *rfc3161.TimeStampReq, serial int64, genTime time.Time) []byte {
	t.Helper()
	info := rfc3161.TSTInfo{Policy: asn1.ObjectIdentifier{1, 2, 3}, MessageImprint: q.MessageImprint.Raw,
		SerialNumber: big.NewInt(serial), GenTime: genTime, Nonce: q.Nonce}
	der, err := info.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	token, err := a.signer.Sign(der, q.CertReq, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return token
}

func (a *testTSA) Timestamp(_ context.Context, query []byte) ([]byte, error) {
	if a.seen != nil {
		a.seen(query)
	}
	if a.refuse {
		return rfc3161.RejectionResponse(rfc3161.Reject(rfc3161.SystemFailure, "test")), nil
	}
	q, err := rfc3161.ParseTimeStampReq(query)
	if err != nil {
		return nil, err
	}
	a.serial++
	info := rfc3161.TSTInfo{Policy: asn1.ObjectIdentifier{1, 2, 3}, MessageImprint: q.MessageImprint.Raw,
		SerialNumber: big.NewInt(a.serial), GenTime: time.Now().UTC().Truncate(time.Millisecond), Nonce: q.Nonce}
	der, err := info.Marshal()
	if err != nil {
		return nil, err
	}
	token, err := a.signer.Sign(der, q.CertReq, rand.Reader)
	if err != nil {
		return nil, err
	}
	return rfc3161.GrantedResponse(token), nil
}

// recorded is a store holding a TSA's record around a window: a
// configuration event before it; in it a clock event, a request and its
// token, a clock event recorded late (outside the window, inside the
// range), a configuration event; then the log's bookkeeping (the seal of
// the segment of positions 5–6 and a checkpoint); after it a clock event.
type recorded struct {
	st       *sqlite.Store
	log      *miniLog
	tsa      *testTSA
	from, to time.Time
}

func record(t *testing.T) *recorded {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.New(ctx, sqlite.Config{Path: filepath.Join(t.TempDir(), "events.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	r := &recorded{st: st, tsa: newTestTSA(t)}
	r.to = time.Now().UTC().Add(-time.Minute).Truncate(time.Second)
	r.from = r.to.Add(-time.Hour)
	before, in, after := r.from.Add(-time.Minute), r.from.Add(time.Minute), r.to.Add(time.Second)
	appendEvent := func(stream string, at time.Time, e events.Event) {
		t.Helper()
		ed, err := events.Encode(uuid.Must(uuid.NewV7()).String(), stream, at, events.Metadata{}, e)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.Append(ctx, stream, eventstore.Any, ed); err != nil {
			t.Fatal(err)
		}
	}
	lost := func(at time.Time) events.ClockSyncLost {
		return events.ClockSyncLost{Service: "tsa", AccuracyNs: 1, Sample: uuid.Must(uuid.NewV7()).String(), BoundNs: 2, Reason: "test", At: at}
	}
	digest := sha256.Sum256([]byte("document"))
	q, err := rfc3161.NewTimeStampReq(rfc3161.SHA256, digest[:], big.NewInt(7), nil, true)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := q.Marshal()
	if q, err = rfc3161.ParseTimeStampReq(der); err != nil {
		t.Fatal(err)
	}
	token := r.tsa.token(t, q, 0x1a, in)
	body := sha256.Sum256(der)
	appendEvent(events.ConfigStream, before, events.ServiceConfigRefused{Source: "test.yaml", Problems: []string{"one"}})
	appendEvent(events.ClockStream, in, lost(in))
	appendEvent(events.RequestStream("1a"), in, events.TimestampRequested{Serial: "1a", Service: "tsa", Path: "/tsa", Method: "POST",
		Source: "127.0.0.1", ReceivedAt: in, BodySHA256: hex.EncodeToString(body[:]), BodySize: int64(len(der)), Parsed: true,
		HashAlgorithm: "sha256", HashedMessage: hex.EncodeToString(digest[:]), CertReq: true})
	appendEvent(events.RequestStream("1a"), in, events.TimestampIssued{Serial: "1a", GenTime: in, Policy: "1.2.3",
		Signer: strings.Repeat("ab", 32), Token: token})
	appendEvent(events.ClockStream, before, lost(before))
	appendEvent(events.ConfigStream, in, events.ServiceConfigRefused{Source: "test.yaml", Problems: []string{"two"}})
	stored, err := st.ReadAll(ctx, 0, 100)
	if err != nil || len(stored) != 6 {
		t.Fatalf("%d events stored, %v", len(stored), err)
	}
	var payloads [][]byte
	for _, e := range stored {
		payloads = append(payloads, e.Payload)
	}
	r.log = newMiniLog(t, payloads...)
	r.log.serials = map[string]uint64{"1a": 4}
	leaf, lh := r.log.leaves[2], r.log.hashes[2]
	appendEvent(events.LogSegmentsStream, in, events.LogSegmentSealed{Index: 2, First: leaf.First, Last: leaf.Last, Count: leaf.Count,
		Root: hex.EncodeToString(leaf.Root[:]), LeafHash: hex.EncodeToString(lh[:]), Log: "tessera"})
	root := merkle.Root(r.log.hashes)
	appendEvent(events.LogCheckpointsStream, in, events.LogCheckpointSigned{Origin: "example.com/log", Size: 3,
		Root: hex.EncodeToString(root[:]), Note: string(r.log.checkpoint(t, 3))})
	appendEvent(events.ClockStream, after, lost(after))
	return r
}

// TestWriteABundleThatVerifies writes a bundle from a real store and
// checks it with the bundle's verifier: every check passes.
func TestWriteABundleThatVerifies(t *testing.T) {
	r := record(t)
	out := filepath.Join(t.TempDir(), "bundle")
	var notes bytes.Buffer
	cfg := Config{Out: out, From: r.from, To: r.to, Wait: time.Second, TSAName: "http://tsa.test/tsa", Notes: &notes}
	sum, err := Write(context.Background(), cfg, r.st, r.log.serve(t, func() uint64 { return 3 }), r.tsa)
	if err != nil {
		t.Fatal(err)
	}
	if sum.First != 2 || sum.Last != 8 || sum.Events != 7 || sum.Outside != 1 || len(sum.Serials) != 1 || sum.RFC3161 != 1 ||
		sum.Clock != 2 || sum.Keys != 0 || sum.Config != 2 || len(sum.Tail) != 2 || sum.Tail.Segments() != 1 ||
		sum.Checkpoint.Size != 3 || sum.Covered != 6 || sum.AgainstFinal != 1 || sum.Consistency != 0 || sum.Files != 8 || sum.StampSerial != "101" {
		t.Errorf("summary %+v", sum)
	}
	if notes.Len() != 0 {
		t.Errorf("the export waited for a log that covered the range: %s", notes.String())
	}
	rep, err := bundle.Verify(os.DirFS(out), bundle.Options{Roots: r.tsa.roots, RootsName: "the test CA", Log: r.log.verifier, ValidateEvent: schemas.ValidateEvent})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range rep.Checks {
		if c.Status != bundle.OK {
			t.Errorf("%s: %s: %q", c.Name, c.Status, c.Problems)
		}
	}
	if !rep.OK() || len(rep.Checks) != 7 {
		t.Errorf("%d checks, %d problems", len(rep.Checks), rep.Problems)
	}
	// The stored bytes, line for line.
	want := []byte{}
	all, _ := r.st.ReadAll(context.Background(), 1, 7)
	for _, e := range all {
		want = bundle.AppendLine(want, e.Position, e.Revision, e.Payload)
	}
	if got := readFile(t, out, bundle.EventsFile); !bytes.Equal(got, want) {
		t.Errorf("events.jsonl:\n%s\nwant\n%s", got, want)
	}
}

func TestWriteRefusesAndLeavesNoHalfBundle(t *testing.T) {
	r := record(t)
	lg := r.log.serve(t, func() uint64 { return 3 })
	cfg := Config{From: r.from, To: r.to, Wait: time.Second, TSAName: "http://tsa.test/tsa"}

	// A TSA that refuses to timestamp the manifest: the whole bundle was
	// written by then, and is removed.
	cfg.Out = filepath.Join(t.TempDir(), "created")
	var listed []string
	r.tsa.refuse = true
	r.tsa.seen = func([]byte) {
		files, err := bundle.ListFiles(os.DirFS(cfg.Out))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			listed = append(listed, f.Path)
		}
		raw, err := os.ReadFile(filepath.Join(cfg.Out, bundle.ManifestFile))
		if err != nil {
			t.Fatal(err)
		}
		m, err := bundle.ParseManifest(raw)
		if err != nil {
			t.Fatal(err)
		}
		if p := bundle.CheckFiles(os.DirFS(cfg.Out), m.Files); len(p) > 0 || len(m.Files) != len(files) {
			t.Errorf("the manifest lists %d files of %d: %q", len(m.Files), len(files), p)
		}
	}
	_, err := Write(context.Background(), cfg, r.st, lg, r.tsa)
	if err == nil || !strings.Contains(err.Error(), "timestamp manifest.json: not granted: rejection (systemFailure)") {
		t.Fatalf("a TSA that refuses: %v", err)
	}
	if want := "clock.jsonl config.jsonl events.jsonl keys.jsonl log/checkpoint log/proofs/1a.json log/segments/2.json tokens/1a.tsr"; strings.Join(listed, " ") != want {
		t.Errorf("the bundle held %q when timestamped, want %q", listed, want)
	}
	if _, err := os.Stat(cfg.Out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the directory the export created is left: %v", err)
	}
	// In a directory that was there, empty: emptied again.
	cfg.Out = t.TempDir()
	if _, err := Write(context.Background(), cfg, r.st, lg, r.tsa); err == nil {
		t.Fatal("a TSA that refuses: no error")
	}
	if entries, err := os.ReadDir(cfg.Out); err != nil || len(entries) != 0 {
		t.Errorf("the directory holds %v, %v", entries, err)
	}

	// A written bundle is not written over; a window without events
	// writes nothing.
	r.tsa.refuse, r.tsa.seen = false, nil
	if err := os.WriteFile(filepath.Join(cfg.Out, "x"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Write(context.Background(), cfg, r.st, lg, r.tsa); err == nil || !strings.Contains(err.Error(), "is not empty: export writes a fresh bundle") {
		t.Errorf("into a written bundle: %v", err)
	}
	cfg.Out = filepath.Join(t.TempDir(), "empty")
	cfg.From, cfg.To = r.from.Add(-48*time.Hour), r.from.Add(-47*time.Hour)
	if _, err := Write(context.Background(), cfg, r.st, lg, r.tsa); !errors.Is(err, ErrNoEvents) {
		t.Errorf("a window without events: %v", err)
	}
	if _, err := os.Stat(cfg.Out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a window without events created %s: %v", cfg.Out, err)
	}
}

// TestManifestRefusesLinks: a bundle holds files; a link in its
// directory fails the export rather than be listed.
func TestManifestRefusesLinks(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "events.jsonl"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "log"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc/passwd", filepath.Join(dir, "log", "link")); err != nil {
		t.Fatal(err)
	}
	err := writeManifest(context.Background(), newTestTSA(t), Config{Out: dir}, &Summary{})
	if err == nil || !strings.Contains(err.Error(), "log/link is not a regular file") {
		t.Errorf("listing a bundle with a link: %v", err)
	}
}

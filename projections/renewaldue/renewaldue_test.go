package renewaldue

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	readstore "github.com/chronolog/chronolog/adapters/readstore/sqlite"
	"github.com/chronolog/chronolog/domain/events"
	"github.com/chronolog/chronolog/domain/eventstore"
	"github.com/chronolog/chronolog/domain/renewal"
	"github.com/chronolog/chronolog/projections"
	"github.com/chronolog/chronolog/projections/projectionstest"
)

// recorder builds committed events the way the store hands them over.
type recorder struct {
	t   *testing.T
	pos uint64
	at  time.Time
}

func newRecorder(t *testing.T) *recorder {
	return &recorder{t: t, at: time.Date(2026, 2, 1, 9, 0, 0, 0, time.UTC)}
}

func (r *recorder) event(stream, service string, e events.Event) eventstore.RecordedEvent {
	r.t.Helper()
	r.pos++
	r.at = r.at.Add(time.Second)
	id := fmt.Sprintf("0190e000-0000-7000-8000-%012x", r.pos)
	ed, err := events.Encode(id, stream, r.at, events.Metadata{Service: service, Node: "n1"}, e)
	if err != nil {
		r.t.Fatal(err)
	}
	return eventstore.RecordedEvent{Position: r.pos, Stream: stream, ID: ed.ID, Type: ed.Type, Payload: ed.Payload}
}

func (r *recorder) activated(service, keyType, certSHA256, issuer, serial string, notAfter time.Time) eventstore.RecordedEvent {
	return r.event(events.KeyStream, service, events.SigningKeyActivated{
		Service: service, Purpose: events.KeyPurposeTSA, KeyType: keyType, PublicKeySHA256: "pk-" + certSHA256,
		CertificateSHA256: certSHA256, Subject: "CN=" + service, Issuer: issuer, SerialNumber: serial, NotAfter: notAfter,
	})
}

func (r *recorder) requested(service, serial, hash string) eventstore.RecordedEvent {
	return r.event(events.RequestStream(serial), service, events.TimestampRequested{
		Serial: serial, Service: service, Path: "/" + service, Method: "POST", Source: "192.0.2.1:4000",
		ReceivedAt: r.at, BodySHA256: strings.Repeat("ab", 32), BodySize: 59, Parsed: true,
		HashAlgorithm: hash, HashedMessage: strings.Repeat("cd", 32), CertReq: true,
	})
}

func (r *recorder) filtered(service, serial string) eventstore.RecordedEvent {
	return r.event(events.RequestStream(serial), service, events.FilterChainDecided{Serial: serial, Rule: "default", Chain: "default",
		Decisions: []events.FilterDecision{{Filter: "policy", Verdict: events.VerdictAccepted}}})
}

func (r *recorder) issued(service, serial, signer string, gen time.Time) eventstore.RecordedEvent {
	return r.event(events.RequestStream(serial), service, events.TimestampIssued{
		Serial: serial, GenTime: gen, Policy: "1.3.6.1.4.1.99999.1", Signer: signer,
		Token: make([]byte, 4096), // the projection never decodes it
	})
}

// model is the renewal-due projection in a read store.
type model struct {
	*readstore.Store
	p *Projection
}

func open(t *testing.T, path string) model {
	t.Helper()
	c, err := renewal.Load()
	if err != nil {
		t.Fatal(err)
	}
	p := New(c)
	s, err := readstore.Open(context.Background(), path, p, readstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return model{s, p}
}

// Apply applies evs as one batch.
func (m model) Apply(_ context.Context, evs []eventstore.RecordedEvent) error {
	return projectionstest.Apply(projections.Model{Projection: m.p, Store: m.Store}, evs...)
}

func end(year int, month time.Month, day int) time.Time {
	return time.Date(year, month, day, 23, 59, 59, 0, time.UTC)
}

var (
	gen        = time.Date(2026, 2, 1, 10, 0, 0, 123456789, time.UTC)
	rsaCert    = strings.Repeat("a1", 32)
	ecCert     = strings.Repeat("b2", 32)
	ecLongCert = strings.Repeat("c3", 32)
	lateCert   = strings.Repeat("d4", 32)
	strayCert  = strings.Repeat("e5", 32)
)

const (
	issuerA = "CN=Chronolog Test CA,O=Chronolog"
	issuerB = "CN=Other CA,O=Elsewhere"
)

// history is a record with every case the read model tells apart.
func history(r *recorder) []eventstore.RecordedEvent {
	evs := []eventstore.RecordedEvent{
		// The log key: no certificate, nothing to keep.
		r.event(events.KeyStream, "", events.SigningKeyActivated{Purpose: events.KeyPurposeLog, KeyType: events.KeyTypeEd25519, PublicKeySHA256: "log"}),
		r.activated("rsa", events.KeyTypeRSA2048, rsaCert, issuerA, "1001", time.Date(2031, 6, 30, 12, 0, 0, 0, time.UTC)),
		r.activated("ec", events.KeyTypeECDSAP256, ecCert, issuerA, "1002", time.Date(2028, 3, 31, 12, 0, 0, 0, time.UTC)),
		r.activated("ec-long", events.KeyTypeECDSAP256, ecLongCert, issuerB, "2001", time.Date(2035, 1, 1, 0, 0, 0, 0, time.UTC)),
		r.event("config", "rsa", events.ServiceConfigured{}),
	}
	for _, x := range []struct{ service, serial, hash, cert string }{
		{"rsa", "01", "sha256", rsaCert},        // rsa-2048: end of 2026
		{"ec", "02", "sha256", ecCert},          // ecdsa-p256, certificate expires first
		{"ec-long", "03", "sha224", ecLongCert}, // sha224 imprint: hash-tree, 2026
		{"ec-long", "04", "sha256", ecLongCert}, // both algorithms end in 2029
		{"ec", "05", "sha384", strayCert},       // certificate never activated
		{"rsa", "08", "sha512", lateCert},       // activated only after the token
	} {
		evs = append(evs, r.requested(x.service, x.serial, x.hash), r.filtered(x.service, x.serial), r.issued(x.service, x.serial, x.cert, gen))
	}
	evs = append(evs,
		r.requested("rsa", "06", "sha256"),
		r.event(events.RequestStream("06"), "rsa", events.TimestampRejected{Serial: "06", Status: "rejection", FailInfo: "badAlg", Reason: "no"}),
		r.requested("proxy", "07", "sha256"),
		r.event(events.RequestStream("07"), "proxy", events.TimestampForwarded{Serial: "07", Upstream: "https://tsa.example", UpstreamStatus: 200, Status: "granted", Response: []byte{0x30, 0}}),
		// A token whose request is not on record.
		r.issued("rsa", "09", rsaCert, gen),
		r.activated("rsa", events.KeyTypeRSA3072, lateCert, issuerB, "3001", time.Date(2027, 5, 1, 0, 0, 0, 0, time.UTC)),
		r.event(events.ClockStream, "", events.ClockSampled{}),
	)
	return evs
}

func want() []Entry {
	e := func(serial, service, hash, sig, cert, issuer, certSerial string, notAfter, due time.Time, reason, kind string) Entry {
		return Entry{Serial: serial, GenTime: gen, Service: service, HashAlgorithm: hash, SignatureAlgorithm: sig,
			CertSHA256: cert, CertIssuer: issuer, CertSerial: certSerial, CertNotAfter: notAfter,
			DueAt: due, Reason: reason, Renewal: kind, CatalogVersion: "2026.1"}
	}
	return []Entry{
		e("01", "rsa", "sha256", "rsa-2048", rsaCert, issuerA, "1001", time.Date(2031, 6, 30, 12, 0, 0, 0, time.UTC),
			end(2026, 12, 31), "signature algorithm rsa-2048 ends", renewal.RenewalTimestamp),
		e("02", "ec", "sha256", "ecdsa-p256", ecCert, issuerA, "1002", time.Date(2028, 3, 31, 12, 0, 0, 0, time.UTC),
			time.Date(2028, 3, 31, 12, 0, 0, 0, time.UTC), "certificate expires", renewal.RenewalTimestamp),
		e("03", "ec-long", "sha224", "ecdsa-p256", ecLongCert, issuerB, "2001", time.Date(2035, 1, 1, 0, 0, 0, 0, time.UTC),
			end(2026, 12, 31), "hash algorithm sha224 ends", renewal.RenewalHashTree),
		e("04", "ec-long", "sha256", "ecdsa-p256", ecLongCert, issuerB, "2001", time.Date(2035, 1, 1, 0, 0, 0, 0, time.UTC),
			end(2029, 12, 31), "signature algorithm ecdsa-p256 ends; hash algorithm sha256 ends", renewal.RenewalHashTree),
		e("05", "ec", "sha384", "", strayCert, "", "", time.Time{},
			gen, renewal.ReasonCertificateUnknown, renewal.RenewalTimestamp),
		e("08", "rsa", "sha512", "rsa-3072", lateCert, issuerB, "3001", time.Date(2027, 5, 1, 0, 0, 0, 0, time.UTC),
			time.Date(2027, 5, 1, 0, 0, 0, 0, time.UTC), "certificate expires", renewal.RenewalTimestamp),
		e("09", "rsa", "", "rsa-2048", rsaCert, issuerA, "1001", time.Date(2031, 6, 30, 12, 0, 0, 0, time.UTC),
			gen, "hash algorithm unknown to the record", renewal.RenewalHashTree),
	}
}

func all(t *testing.T, db *sql.DB) []Entry {
	t.Helper()
	got, err := Search(context.Background(), db, Query{Limit: MaxLimit})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func checkEntries(t *testing.T, got, want []Entry) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d entries, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Errorf("entry %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
}

func TestRenewalDue(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "renewal-due.db"))
	evs := history(newRecorder(t))
	if err := s.Apply(ctx, evs); err != nil {
		t.Fatal(err)
	}
	checkEntries(t, all(t, s.DB()), want())

	// Nothing is left pending: issued, rejected and forwarded requests
	// are all closed.
	var pending int
	if err := s.DB().QueryRow(`SELECT count(*) FROM pending`).Scan(&pending); err != nil || pending != 0 {
		t.Errorf("pending requests: %d, %v", pending, err)
	}
}

func TestApplyTwiceIsIdempotent(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "renewal-due.db")
	s := open(t, path)
	evs := history(newRecorder(t))
	half := len(evs) / 2
	if err := s.Apply(ctx, evs[:half]); err != nil {
		t.Fatal(err)
	}
	// The whole batch again, overlapping what was applied, then again.
	for range 2 {
		if err := s.Apply(ctx, evs); err != nil {
			t.Fatal(err)
		}
	}
	checkEntries(t, all(t, s.DB()), want())
	if s.Checkpoint() != evs[len(evs)-1].Position {
		t.Errorf("checkpoint %d, want %d", s.Checkpoint(), evs[len(evs)-1].Position)
	}

	// Reopened, the store resumes from its checkpoint.
	s.Close()
	s2 := open(t, path)
	if err := s2.Apply(ctx, evs); err != nil {
		t.Fatal(err)
	}
	checkEntries(t, all(t, s2.DB()), want())
}

func TestRebuildByEventIsTheSameAsByBatch(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "renewal-due.db"))
	for _, e := range history(newRecorder(t)) {
		if err := s.Apply(ctx, []eventstore.RecordedEvent{e}); err != nil {
			t.Fatal(err)
		}
	}
	checkEntries(t, all(t, s.DB()), want())
}

func TestSearchAndCount(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "renewal-due.db"))
	if err := s.Apply(ctx, history(newRecorder(t))); err != nil {
		t.Fatal(err)
	}
	db := s.DB()
	for _, tc := range []struct {
		name    string
		q       Query
		serials []string
	}{
		{"everything", Query{}, []string{"01", "02", "03", "04", "05", "08", "09"}},
		{"due before 2027", Query{DueBefore: time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)}, []string{"01", "03", "05", "09"}},
		{"due before the end of 2026, exclusive", Query{DueBefore: end(2026, 12, 31)}, []string{"05", "09"}},
		{"hash algorithm", Query{HashAlgorithm: "sha224"}, []string{"03"}},
		{"signature algorithm", Query{SignatureAlgorithm: "rsa-2048"}, []string{"01", "09"}},
		{"certificate issuer", Query{CertIssuer: issuerB}, []string{"03", "04", "08"}},
		{"certificate issuer and serial", Query{CertIssuer: issuerB, CertSerial: "2001"}, []string{"03", "04"}},
		{"service", Query{Service: "ec"}, []string{"02", "05"}},
		{"combined", Query{SignatureAlgorithm: "ecdsa-p256", HashAlgorithm: "sha256", DueBefore: end(2030, 1, 1)}, []string{"02", "04"}},
		{"after a serial", Query{After: "04"}, []string{"05", "08", "09"}},
		{"nothing", Query{HashAlgorithm: "md5"}, []string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Search(ctx, db, tc.q)
			if err != nil {
				t.Fatal(err)
			}
			serials := []string{}
			for _, e := range got {
				serials = append(serials, e.Serial)
			}
			if !slices.Equal(serials, tc.serials) {
				t.Errorf("Search = %v, want %v", serials, tc.serials)
			}
			n, err := Count(ctx, db, tc.q)
			if err != nil || n != len(tc.serials) {
				t.Errorf("Count = %d, %v; want %d", n, err, len(tc.serials))
			}
		})
	}
}

func TestSearchInBlocks(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "renewal-due.db"))
	if err := s.Apply(ctx, history(newRecorder(t))); err != nil {
		t.Fatal(err)
	}
	var blocks [][]string
	q := Query{DueBefore: end(2030, 1, 1), Limit: 2}
	for {
		left, err := Count(ctx, s.DB(), q)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Search(ctx, s.DB(), q)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 0 {
			if left != 0 {
				t.Errorf("%d left, none found", left)
			}
			break
		}
		var block []string
		for _, e := range got {
			block = append(block, e.Serial)
		}
		blocks = append(blocks, block)
		q.After = got[len(got)-1].Serial
	}
	want := [][]string{{"01", "02"}, {"03", "04"}, {"05", "08"}, {"09"}}
	if !reflect.DeepEqual(blocks, want) {
		t.Errorf("blocks %v, want %v", blocks, want)
	}

	for _, limit := range []int{-1, MaxLimit + 1} {
		if _, err := Search(ctx, s.DB(), Query{Limit: limit}); err == nil {
			t.Errorf("limit %d accepted", limit)
		}
	}
}

func TestCountBy(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "renewal-due.db"))
	if err := s.Apply(ctx, history(newRecorder(t))); err != nil {
		t.Fatal(err)
	}
	at := func(y int, m time.Month, d, h int) time.Time { return time.Date(y, m, d, h, 0, 0, 0, time.UTC) }
	for _, tc := range []struct {
		by   string
		q    Query
		want []Group
	}{
		{ByHashAlgorithm, Query{}, []Group{
			{Key: "", Count: 1, FirstDue: gen},
			{Key: "sha224", Count: 1, FirstDue: end(2026, 12, 31)},
			{Key: "sha256", Count: 3, FirstDue: end(2026, 12, 31)},
			{Key: "sha384", Count: 1, FirstDue: gen},
			{Key: "sha512", Count: 1, FirstDue: at(2027, 5, 1, 0)},
		}},
		{BySignatureAlgorithm, Query{}, []Group{
			{Key: "", Count: 1, FirstDue: gen},
			{Key: "ecdsa-p256", Count: 3, FirstDue: end(2026, 12, 31)},
			{Key: "rsa-2048", Count: 2, FirstDue: gen},
			{Key: "rsa-3072", Count: 1, FirstDue: at(2027, 5, 1, 0)},
		}},
		{ByCertificate, Query{}, []Group{
			{Key: rsaCert, CertIssuer: issuerA, CertSerial: "1001", Count: 2, FirstDue: gen},
			{Key: ecCert, CertIssuer: issuerA, CertSerial: "1002", Count: 1, FirstDue: at(2028, 3, 31, 12)},
			{Key: ecLongCert, CertIssuer: issuerB, CertSerial: "2001", Count: 2, FirstDue: end(2026, 12, 31)},
			{Key: lateCert, CertIssuer: issuerB, CertSerial: "3001", Count: 1, FirstDue: at(2027, 5, 1, 0)},
			{Key: strayCert, Count: 1, FirstDue: gen},
		}},
		{ByRenewal, Query{}, []Group{
			{Key: "hash-tree", Count: 3, FirstDue: gen},
			{Key: "timestamp", Count: 4, FirstDue: gen},
		}},
		{ByMonth, Query{}, []Group{
			{Key: "2026-02", Count: 2, FirstDue: gen},
			{Key: "2026-12", Count: 2, FirstDue: end(2026, 12, 31)},
			{Key: "2027-05", Count: 1, FirstDue: at(2027, 5, 1, 0)},
			{Key: "2028-03", Count: 1, FirstDue: at(2028, 3, 31, 12)},
			{Key: "2029-12", Count: 1, FirstDue: end(2029, 12, 31)},
		}},
		{ByRenewal, Query{SignatureAlgorithm: "ecdsa-p256"}, []Group{
			{Key: "hash-tree", Count: 2, FirstDue: end(2026, 12, 31)},
			{Key: "timestamp", Count: 1, FirstDue: at(2028, 3, 31, 12)},
		}},
		{ByMonth, Query{HashAlgorithm: "whirlpool"}, []Group{}},
	} {
		t.Run(tc.by, func(t *testing.T) {
			got, err := CountBy(ctx, s.DB(), tc.q, tc.by)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("CountBy(%s)\n got %+v\nwant %+v", tc.by, got, tc.want)
			}
		})
	}
	if _, err := CountBy(ctx, s.DB(), Query{}, "colour"); err == nil || !strings.Contains(err.Error(), "hashAlgorithm") {
		t.Errorf("CountBy(colour): %v", err)
	}
}

func TestJSON(t *testing.T) {
	b, err := json.Marshal(want()[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"serial"`, `"genTime"`, `"service"`, `"hashAlgorithm"`, `"signatureAlgorithm"`, `"certSha256"`,
		`"certIssuer"`, `"certSerial"`, `"certNotAfter"`, `"dueAt"`, `"reason"`, `"renewal"`, `"catalogVersion"`} {
		if !strings.Contains(string(b), key) {
			t.Errorf("%s: %s missing", b, key)
		}
	}
	b, err = json.Marshal(Group{Key: "sha256", Count: 2, FirstDue: gen})
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{"key":"sha256","count":2,"firstDue":"2026-02-01T10:00:00.123456789Z"}` {
		t.Errorf("group: %s", b)
	}
}

func TestAppliesEveryEventType(t *testing.T) {
	m := open(t, filepath.Join(t.TempDir(), "renewal-due.db"))
	projectionstest.AppliesEveryEventType(t, projections.Model{Projection: m.p, Store: m.Store})
}

// TestEveryEventTypeEmpty: the zero value of every registered type
// applies, as the one batch it is.
func TestEveryEventTypeEmpty(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "renewal-due.db"))
	r := newRecorder(t)
	types := events.Types()
	slices.Sort(types)
	for _, typ := range types {
		e := events.New(typ)
		if e == nil {
			t.Fatalf("%s: no constructor", typ)
		}
		ev := r.event("s", "svc", e)
		if err := s.Apply(ctx, []eventstore.RecordedEvent{ev}); err != nil {
			t.Errorf("%s: %v", typ, err)
		}
	}
}

// TestUndecodableEventStops: a token that cannot be decoded stops the
// batch, which is rolled back whole.
func TestUndecodableEventStops(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "renewal-due.db"))
	r := newRecorder(t)
	ev := r.issued("rsa", "01", rsaCert, gen)
	bogus := r.issued("rsa", "02", rsaCert, gen)
	bogus.Payload = []byte(`{"type":"TimestampIssued.v1","data":{"serial":"02","token":"not base64"}}`)
	err := s.Apply(ctx, []eventstore.RecordedEvent{ev, bogus})
	if err == nil || !strings.Contains(err.Error(), "TimestampIssued.v1") {
		t.Fatalf("Apply: %v; want the event refused", err)
	}
	if n, err := Count(ctx, s.DB(), Query{}); err != nil || n != 0 || s.Checkpoint() != 0 {
		t.Errorf("after the failed batch: %d tokens, checkpoint %d, %v", n, s.Checkpoint(), err)
	}
}

func TestNewLoadsTheEmbeddedCatalogue(t *testing.T) {
	if v := New(nil).Catalog().Version(); v != "2026.1" {
		t.Errorf("catalogue %q", v)
	}
	broken := errors.New("catalogue broken")
	p := &Projection{err: broken}
	if err := p.OnTimestampIssued(context.Background(), nil, projections.Meta{}, events.TimestampIssued{}); !errors.Is(err, broken) {
		t.Errorf("a token without a catalogue: %v", err)
	}
}

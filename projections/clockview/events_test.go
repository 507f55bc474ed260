package clockview

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/chronolog/chronolog/domain/events"
	"github.com/chronolog/chronolog/domain/eventstore"
	"github.com/chronolog/chronolog/projections"
	"github.com/google/uuid"
)

// log builds events as the store would deliver them, at growing positions.
type log struct {
	t   testing.TB
	pos uint64
}

func (l *log) add(stream string, at time.Time, meta events.Metadata, e events.Event) projections.Event {
	l.t.Helper()
	l.pos++
	id := uuid.Must(uuid.NewV7()).String()
	ed, err := events.Encode(id, stream, at, meta, e)
	if err != nil {
		l.t.Fatal(err)
	}
	pe, err := projections.FromRecorded(eventstore.RecordedEvent{Position: l.pos, Stream: stream, ID: id, Type: ed.Type, Payload: ed.Payload})
	if err != nil {
		l.t.Fatal(err)
	}
	return pe
}

var (
	signer = strings.Repeat("5e", 32)
	policy = "1.3.6.1.4.1.32473.3161.1"
)

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// serialAt is a UUIDv7 serial of time at, as ids.Source draws them.
func serialAt(at time.Time) string {
	u, err := uuid.NewV7FromReader(rand.Reader)
	if err != nil {
		panic(err)
	}
	ms := uint64(at.UnixMilli())
	for i := 0; i < 6; i++ {
		u[i] = byte(ms >> (40 - 8*i))
	}
	return strings.TrimLeft(hex.EncodeToString(u[:]), "0")
}

// req describes one request for the builders below.
type req struct {
	serial, service, client, digest, protocol string
	at                                        time.Time
	token                                     int // token size; 0 for a small one
}

func (l *log) requested(r req) projections.Event {
	return l.add(events.RequestStream(r.serial), r.at, events.Metadata{CorrelationID: "c-" + r.serial[:8], Node: "tsa-1", Service: r.service},
		events.TimestampRequested{
			Serial: r.serial, Service: r.service, Path: "/" + r.service, Method: "POST", ContentType: "application/timestamp-query",
			Source: "203.0.113.7:51234", ReceivedAt: r.at, BodySHA256: randomHex(32), BodySize: 59, Parsed: true,
			HashAlgorithm: "sha256", HashedMessage: r.digest, Nonce: randomHex(8), CertReq: true,
			Transport: "https", Protocol: r.protocol, TLSClient: r.client,
		})
}

func (l *log) filters(r req) []projections.Event {
	meta := events.Metadata{CorrelationID: "c-" + r.serial[:8], Node: "tsa-1", Service: r.service}
	return []projections.Event{
		l.add(events.RequestStream(r.serial), r.at, meta, events.FilterDecided{Serial: r.serial, Filter: "client-cert", Verdict: events.VerdictAccepted, Reason: "CN matches"}),
		l.add(events.RequestStream(r.serial), r.at, meta, events.FilterDecided{Serial: r.serial, Filter: "rate-limit", Verdict: events.VerdictAccepted}),
	}
}

func (l *log) issued(r req) projections.Event {
	n := r.token
	if n == 0 {
		n = 64
	}
	token := make([]byte, n)
	rand.Read(token)
	e := events.TimestampIssued{Serial: r.serial, GenTime: r.at.Add(1500 * time.Microsecond), Policy: policy, Signer: signer, Token: token,
		Client: r.client, ClockSample: "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", ClockUncertaintyNs: 1_500_000}
	if r.client != "" {
		e.ClientAuth = "tls-client-cert"
	}
	if r.protocol == "authenticode" {
		e.Protocol = r.protocol
	}
	return l.add(events.RequestStream(r.serial), r.at, events.Metadata{CorrelationID: "c-" + r.serial[:8], Node: "tsa-1", Service: r.service}, e)
}

func (l *log) rejected(r req, status string) projections.Event {
	e := events.TimestampRejected{Serial: r.serial, Status: status, Reason: "no", HTTPStatus: 200, Client: r.client}
	if status == "rejection" {
		e.FailInfo = "badAlg"
	} else {
		e.HTTPStatus = 415
	}
	return l.add(events.RequestStream(r.serial), r.at, events.Metadata{Node: "tsa-1", Service: r.service}, e)
}

func (l *log) forwarded(r req) projections.Event {
	return l.add(events.RequestStream(r.serial), r.at, events.Metadata{Node: "tsa-1", Service: r.service},
		events.TimestampForwarded{Serial: r.serial, Upstream: "https://tsa.example/", HTTPStatus: 200, Status: "granted",
			Response: []byte{0x30, 0x03, 0x02, 0x01, 0x00}, Client: r.client})
}

// request is a whole request: Requested, two FilterDecided, Issued.
func (l *log) request(r req) []projections.Event {
	out := []projections.Event{l.requested(r)}
	out = append(out, l.filters(r)...)
	return append(out, l.issued(r))
}

// samples returns a realistic event of every registered type.
func samples(t testing.TB) map[string]events.Event {
	at := time.Date(2026, 11, 22, 16, 7, 45, 123456789, time.UTC)
	fp := strings.Repeat("ab", 32)
	lost := at.Add(-time.Minute)
	serial := serialAt(at)
	return map[string]events.Event{
		events.TypeTimestampRequested: events.TimestampRequested{Serial: serial, Service: "default", Path: "/", Method: "POST",
			Source: "192.0.2.1:4000", ReceivedAt: at, BodySHA256: fp, BodySize: 59, Parsed: true, HashAlgorithm: "sha256",
			HashedMessage: fp, CertReq: true},
		events.TypeFilterDecided: events.FilterDecided{Serial: serial, Filter: "policy", Verdict: events.VerdictRejected, Reason: "policy", FailInfo: "unacceptedPolicy"},
		events.TypeTimestampIssued: events.TimestampIssued{Serial: serial, GenTime: at, Policy: policy, Signer: signer,
			Token: make([]byte, 2400), Client: "CN=c", ClientAuth: "tls-client-cert"},
		events.TypeTimestampRejected:  events.TimestampRejected{Serial: serial, Status: "rejection", FailInfo: "badAlg", Reason: "md5", HTTPStatus: 200},
		events.TypeTimestampForwarded: events.TimestampForwarded{Serial: serial, Upstream: "https://up.example/", HTTPStatus: 200, Status: "granted", Response: []byte{0x30, 0}},
		events.TypeServiceConfigured: events.ServiceConfigured{Service: "default", Source: "/etc/chronolog.yaml", ConfigSHA256: fp,
			Certificate: fp, Config: json.RawMessage(`{"name":"default","policy":"1.2.3"}`)},
		events.TypeServiceConfigChanged: events.ServiceConfigChanged{Service: "default", Change: events.ConfigModified, Source: "/etc/chronolog.yaml",
			PreviousSHA256: fp, ConfigSHA256: fp, Certificate: fp, Config: json.RawMessage(`{"name":"default"}`)},
		events.TypeServiceConfigRefused: events.ServiceConfigRefused{Source: "/etc/chronolog.yaml", Problems: []string{"no certificate"}},
		events.TypeLogSegmentSealed:     events.LogSegmentSealed{Index: 3, First: 1, Last: 1000, Count: 1000, Root: fp, LeafHash: fp, Log: "tessera"},
		events.TypeLogCheckpointSigned:  events.LogCheckpointSigned{Origin: "chronolog.example/log", Size: 4, Root: fp, Note: "chronolog.example/log\n4\nq83vEjRWeJA=\n"},
		events.TypeSigningKeyGenerated: events.SigningKeyGenerated{Token: "chronolog", KeyLabel: "tsa", KeyID: "01", KeyType: events.KeyTypeECDSAP256,
			PublicKey: []byte{0x30, 0x59}, PublicKeySHA256: fp, Attributes: events.KeyAttributes{Sensitive: true, Sign: true}},
		events.TypeCertificateImported: events.CertificateImported{Token: "chronolog", KeyLabel: "tsa", KeyID: "01", Certificate: []byte{0x30, 0},
			CertificateSHA256: fp, Subject: "CN=tsa", Issuer: "CN=ca", SerialNumber: "3f", NotBefore: at, NotAfter: at.AddDate(1, 0, 0), PublicKeySHA256: fp},
		events.TypeSigningKeyActivated: events.SigningKeyActivated{Service: "default", Purpose: events.KeyPurposeTSA, KeyType: events.KeyTypeRSA2048,
			PublicKeySHA256: fp, CertificateSHA256: fp, Subject: "CN=tsa", Issuer: "CN=ca", SerialNumber: "1", NotAfter: at},
		events.TypeSigningKeyRetired:     events.SigningKeyRetired{Token: "chronolog", KeyLabel: "tsa", KeyID: "01", PublicKeySHA256: fp, Reason: "superseded"},
		events.TypeSigningKeyUnavailable: events.SigningKeyUnavailable{Service: "default", Purpose: events.KeyPurposeTSA, Token: "chronolog", PublicKeySHA256: fp, Cause: "CKR_DEVICE_REMOVED", Since: at},
		events.TypeSigningKeyRestored: events.SigningKeyRestored{Service: "default", Purpose: events.KeyPurposeTSA, Token: "chronolog", PublicKeySHA256: fp,
			UnavailableSince: at, RestoredAt: at.Add(2 * time.Second), DurationMs: 2000},
		events.TypeSigningCertificateExpiring: events.SigningCertificateExpiring{Service: "default", CertificateSHA256: fp, Subject: "CN=tsa", NotAfter: at, DaysLeft: 3, WarnDays: 30},
		events.TypeClockSampled: events.ClockSampled{At: at, Synchronised: true, BoundNs: 800_000, OffsetNs: -12_000, Agreeing: 3, Sources: 3, Quorum: 2,
			DriftPPM: 15, Leap: "none", Readings: []events.ClockReading{{Source: "ntp", Name: "ntp1.example", At: at, OffsetNs: -12_000, RootDistanceNs: 700_000, Leap: "none", Synchronised: true}}},
		events.TypeClockSyncLost:     events.ClockSyncLost{Service: "default", AccuracyNs: 1_000_000, Sample: uuid.NewString(), Reason: "no quorum", At: lost},
		events.TypeClockSyncRegained: events.ClockSyncRegained{Service: "default", AccuracyNs: 1_000_000, Sample: uuid.NewString(), BoundNs: 600_000, At: at, LostAt: &lost, OutageNs: int64(time.Minute)},
		events.TypeLeapSecondAnnounced: events.LeapSecondAnnounced{Leap: "insert", At: time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC),
			Sample: uuid.NewString(), Sources: []string{"ntp ntp1.example"}, Refused: true, WindowNs: int64(time.Second)},
	}
}

func streamOf(e events.Event) string {
	switch e := e.(type) {
	case events.TimestampRequested:
		return events.RequestStream(e.Serial)
	case events.FilterDecided:
		return events.RequestStream(e.Serial)
	case events.TimestampIssued:
		return events.RequestStream(e.Serial)
	case events.TimestampRejected:
		return events.RequestStream(e.Serial)
	case events.TimestampForwarded:
		return events.RequestStream(e.Serial)
	case events.ClockSampled, events.ClockSyncLost, events.ClockSyncRegained, events.LeapSecondAnnounced:
		return events.ClockStream
	case events.LogSegmentSealed:
		return events.LogSegmentsStream
	case events.LogCheckpointSigned:
		return events.LogCheckpointsStream
	case events.ServiceConfigured, events.ServiceConfigChanged, events.ServiceConfigRefused:
		return events.ConfigStream
	}
	return events.KeyStream
}

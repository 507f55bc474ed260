// Package projectionstest is test support for projections: events as the
// store delivers them, a feed of them, and the benchmarks every read model
// runs.
package projectionstest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/chronolog/chronolog/domain/events"
	"github.com/chronolog/chronolog/domain/eventstore"
)

// Log builds events as the store would deliver them, at growing positions.
type Log struct {
	T   testing.TB
	Pos uint64 // the position of the last event built
}

// NewLog is a Log failing t on a bad event, its first event at position 1.
func NewLog(t testing.TB) *Log { return &Log{T: t} }

// Add is e on stream at the next position.
func (l *Log) Add(stream string, at time.Time, meta events.Metadata, e events.Event) eventstore.RecordedEvent {
	l.T.Helper()
	l.Pos++
	id := NewID(time.Now())
	ed, err := events.Encode(id, stream, at, meta, e)
	if err != nil {
		l.T.Fatal(err)
	}
	return eventstore.RecordedEvent{Position: l.Pos, Stream: stream, ID: id, Type: ed.Type, Payload: ed.Payload}
}

var (
	// Signer is the signer of the issued events built here.
	Signer = strings.Repeat("5e", 32)
	// Policy is the policy of the issued events built here.
	Policy = "1.3.6.1.4.1.32473.3161.1"
)

// uuidV7 is a random UUIDv7 of time at.
func uuidV7(at time.Time) [16]byte {
	var u [16]byte
	rand.Read(u[:])
	ms := uint64(at.UnixMilli())
	for i := range 6 {
		u[i] = byte(ms >> (40 - 8*i))
	}
	u[6] = u[6]&0x0f | 0x70 // version 7
	u[8] = u[8]&0x3f | 0x80 // RFC 9562 variant
	return u
}

// NewID is an event id as ids.Source draws them: a UUIDv7 of time at, in
// its canonical form.
func NewID(at time.Time) string {
	u := uuidV7(at)
	h := hex.EncodeToString(u[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// RandomHex is n random bytes in hex.
func RandomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// SerialAt is a UUIDv7 serial of time at, as ids.Source draws them.
func SerialAt(at time.Time) string {
	u := uuidV7(at)
	return strings.TrimLeft(hex.EncodeToString(u[:]), "0")
}

// Req describes one request for the builders below.
type Req struct {
	Serial, Service, Client, Digest, Protocol string
	At                                        time.Time
	Token                                     int // token size; 0 for a small one
}

// Requested is r's TimestampRequested.
func (l *Log) Requested(r Req) eventstore.RecordedEvent {
	return l.Add(events.RequestStream(r.Serial), r.At, events.Metadata{CorrelationID: "c-" + r.Serial[:8], Node: "tsa-1", Service: r.Service},
		events.TimestampRequested{
			Serial: r.Serial, Service: r.Service, Path: "/" + r.Service, Method: "POST", ContentType: "application/timestamp-query",
			Source: "203.0.113.7:51234", ReceivedAt: r.At, BodySHA256: RandomHex(32), BodySize: 59, Parsed: true,
			HashAlgorithm: "sha256", HashedMessage: r.Digest, Nonce: RandomHex(8), CertReq: true,
			Transport: "https", Protocol: r.Protocol, TLSClient: r.Client,
		})
}

// Filters is r's FilterChainDecided: the route and two filters, both
// accepting.
func (l *Log) Filters(r Req) eventstore.RecordedEvent {
	meta := events.Metadata{CorrelationID: "c-" + r.Serial[:8], Node: "tsa-1", Service: r.Service}
	return l.Add(events.RequestStream(r.Serial), r.At, meta, events.FilterChainDecided{Serial: r.Serial, Rule: "default", Chain: "default",
		Decisions: []events.FilterDecision{
			{Filter: "client-cert", Verdict: events.VerdictAccepted, Reason: "CN matches"},
			{Filter: "rate-limit", Verdict: events.VerdictAccepted},
		}})
}

// Issued is r's TimestampIssued, with a random token of r.Token bytes
// (64 if 0), genTime 1.5 ms after r.At, Policy and Signer.
func (l *Log) Issued(r Req) eventstore.RecordedEvent {
	return l.IssuedMeta(r, events.Metadata{CorrelationID: "c-" + r.Serial[:8], Node: "tsa-1", Service: r.Service})
}

// IssuedMeta is r's TimestampIssued with the envelope's metadata meta.
func (l *Log) IssuedMeta(r Req, meta events.Metadata) eventstore.RecordedEvent {
	n := r.Token
	if n == 0 {
		n = 64
	}
	token := make([]byte, n)
	rand.Read(token)
	e := events.TimestampIssued{Serial: r.Serial, GenTime: r.At.Add(1500 * time.Microsecond), Policy: Policy, Signer: Signer, Token: token,
		Client: r.Client, ClockSample: "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", ClockUncertaintyNs: 1_500_000}
	if r.Client != "" {
		e.ClientAuth = "tls-client-cert"
	}
	if r.Protocol == "authenticode" {
		e.Protocol = r.Protocol
	}
	return l.Add(events.RequestStream(r.Serial), r.At, meta, e)
}

// Rejected is r's TimestampRejected with status: a "rejection" (badAlg)
// or anything else (a refused media type).
func (l *Log) Rejected(r Req, status string) eventstore.RecordedEvent {
	e := events.TimestampRejected{Serial: r.Serial, Status: status, Reason: "no", Client: r.Client}
	if status == "rejection" {
		e.FailInfo = "badAlg"
	} else {
		e.Refusal = "media-type"
	}
	return l.Add(events.RequestStream(r.Serial), r.At, events.Metadata{Node: "tsa-1", Service: r.Service}, e)
}

// Forwarded is r's TimestampForwarded, granted upstream.
func (l *Log) Forwarded(r Req) eventstore.RecordedEvent {
	return l.Add(events.RequestStream(r.Serial), r.At, events.Metadata{Node: "tsa-1", Service: r.Service},
		events.TimestampForwarded{Serial: r.Serial, Upstream: "https://tsa.example/", UpstreamStatus: 200, Status: "granted",
			Response: []byte{0x30, 0x03, 0x02, 0x01, 0x00}, Client: r.Client})
}

// Request is a whole request as the TSA records it: Requested,
// FilterChainDecided, Issued.
func (l *Log) Request(r Req) []eventstore.RecordedEvent {
	return []eventstore.RecordedEvent{l.Requested(r), l.Filters(r), l.Issued(r)}
}

// Samples returns a realistic event of every registered type, by type.
func Samples(t testing.TB) map[string]events.Event {
	at := time.Date(2026, 11, 22, 16, 7, 45, 123456789, time.UTC)
	fp := strings.Repeat("ab", 32)
	lost := at.Add(-time.Minute)
	serial := SerialAt(at)
	return map[string]events.Event{
		events.TypeTimestampRequested: events.TimestampRequested{Serial: serial, Service: "default", Path: "/", Method: "POST",
			Source: "192.0.2.1:4000", ReceivedAt: at, BodySHA256: fp, BodySize: 59, Parsed: true, HashAlgorithm: "sha256",
			HashedMessage: fp, CertReq: true},
		events.TypeFilterChainDecided: events.FilterChainDecided{Serial: serial, Rule: "default", Chain: "default", Decisions: []events.FilterDecision{
			{Filter: "hash-allow-list", Verdict: events.VerdictAccepted, Reason: "sha256 is allowed"},
			{Filter: "policy", Verdict: events.VerdictRejected, Reason: "policy 1.2.3 is not accepted by this service", FailInfo: "unacceptedPolicy"}}},
		events.TypeFilterDecided: events.FilterDecided{Serial: serial, Filter: "policy", Verdict: events.VerdictRejected, Reason: "policy", FailInfo: "unacceptedPolicy"},
		events.TypeTimestampIssued: events.TimestampIssued{Serial: serial, GenTime: at, Policy: Policy, Signer: Signer,
			Token: make([]byte, 2400), Client: "CN=c", ClientAuth: "tls-client-cert"},
		events.TypeTimestampRejected:    events.TimestampRejected{Serial: serial, Status: "rejection", FailInfo: "badAlg", Reason: "md5"},
		events.TypeTimestampRejectedV1:  events.TimestampRejectedV1{Serial: serial, Status: "refused", Reason: "GET", AnswerStatus: 405},
		events.TypeTimestampUndelivered: events.TimestampUndelivered{Serial: serial, Reason: "the client closed its connection before the answer was written"},
		events.TypeServiceAlgorithmEnded: events.ServiceAlgorithmEnded{Service: "default", Use: events.AlgorithmUseHash, Algorithm: "sha1",
			LastValid: time.Date(2012, 7, 31, 23, 59, 59, 0, time.UTC), Catalog: "2026.1"},
		events.TypeTimestampForwarded: events.TimestampForwarded{Serial: serial, Upstream: "https://up.example/", UpstreamStatus: 200, Status: "granted", Response: []byte{0x30, 0}},
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
		events.TypeClockSyncLost:     events.ClockSyncLost{Service: "default", AccuracyNs: 1_000_000, Sample: NewID(at), Reason: "no quorum", At: lost},
		events.TypeClockSyncRegained: events.ClockSyncRegained{Service: "default", AccuracyNs: 1_000_000, Sample: NewID(at), BoundNs: 600_000, At: at, LostAt: &lost, OutageNs: int64(time.Minute)},
		events.TypeLeapSecondAnnounced: events.LeapSecondAnnounced{Leap: "insert", At: time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC),
			Sample: NewID(at), Sources: []string{"ntp ntp1.example"}, Refused: true, WindowNs: int64(time.Second)},
	}
}

// StreamOf is the stream e is recorded on.
func StreamOf(e events.Event) string {
	switch e := e.(type) {
	case events.TimestampRequested:
		return events.RequestStream(e.Serial)
	case events.FilterDecided:
		return events.RequestStream(e.Serial)
	case events.FilterChainDecided:
		return events.RequestStream(e.Serial)
	case events.TimestampUndelivered:
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

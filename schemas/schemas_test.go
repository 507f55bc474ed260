package schemas

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chronolog/chronolog/domain/events"
)

func TestEverySchemaHasAnEventType(t *testing.T) {
	types, names := events.Types(), EventSchemaNames()
	slices.Sort(types)
	slices.Sort(names)
	if !slices.Equal(types, names) {
		t.Fatalf("event types %v, schemas %v", types, names)
	}
}

func encode(t *testing.T, e events.Event) []byte {
	t.Helper()
	ed, err := events.Encode("01938d2e-6c4b-7e2a-9f1d-3b5c7a9e1f20", "tsr-1a2b", time.Date(2026, 11, 22, 16, 0, 0, 0, time.UTC),
		events.Metadata{Node: "n1", Service: "default"}, e)
	if err != nil {
		t.Fatal(err)
	}
	return ed.Payload
}

func TestSampleEventsValidate(t *testing.T) {
	now := time.Date(2026, 11, 22, 16, 0, 0, 123000, time.UTC)
	midnight, before := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC), now.Add(-16*time.Second)
	samples := []events.Event{
		events.TimestampRequested{Serial: "1a2b", Service: "default", Path: "/tsa", Method: "POST", Source: "127.0.0.1:5",
			ReceivedAt: now, BodySHA256: strings.Repeat("ab", 32), BodySize: 59, Parsed: true, HashAlgorithm: "sha256",
			HashedMessage: strings.Repeat("00", 32), Nonce: "ff7f", ReqPolicy: "1.2.3", CertReq: true},
		events.TimestampRequested{Serial: "1a2b", Service: "default", Path: "/tsa", Method: "GET", Source: "127.0.0.1:5",
			ReceivedAt: now, BodySHA256: strings.Repeat("ab", 32)},
		events.FilterDecided{Serial: "1a2b", Filter: "policy", Verdict: "rejected", Reason: "no", FailInfo: "unacceptedPolicy"},
		events.TimestampIssued{Serial: "1a2b", GenTime: now, Policy: "1.3.6.1.4.1.32473.3161.1", Signer: strings.Repeat("cd", 32), Token: []byte{0x30, 0x03, 1, 2, 3}},
		events.TimestampRejected{Serial: "1a2b", Status: "rejection", FailInfo: "badAlg", Reason: "md5"},
		events.TimestampRejected{Serial: "1a2b", Status: "refused", Refusal: "method", Reason: "GET"},
		events.TimestampRejectedV1{Serial: "1a2b", Status: "rejection", FailInfo: "badAlg", Reason: "md5", AnswerStatus: 200},
		events.TimestampRejectedV1{Serial: "1a2b", Status: "refused", Reason: "GET", AnswerStatus: 405},
		events.TimestampRequested{Serial: "1a2b", Service: "default", Path: "tcp:127.0.0.1:318", Method: "TCP", Source: "127.0.0.1:5",
			ReceivedAt: now, BodySHA256: strings.Repeat("ab", 32), BodySize: 60, Transport: "tcp", Protocol: "authenticode", TLSClient: "CN=alice"},
		events.TimestampIssued{Serial: "1a2b", GenTime: now, Policy: "1.3.6.1.4.1.32473.3161.1", Signer: strings.Repeat("cd", 32), Token: []byte{0x30, 0x03, 1, 2, 3},
			Client: "build-farm", ClientAuth: "api-key", Protocol: "authenticode"},
		events.TimestampRejected{Serial: "1a2b", Status: "rejection", FailInfo: "badRequest", Reason: "no key", Client: "CN=bob", ClientAuth: "tls-client-cert"},
		events.TimestampForwarded{Serial: "1a2b", Upstream: "https://tsa.example/tsa", UpstreamStatus: 200, Status: "granted", Response: []byte{0x30, 0}},
		events.ServiceConfigured{Service: "qualified", Source: "/etc/tsad.yaml", FileSHA256: strings.Repeat("ab", 32), ConfigSHA256: strings.Repeat("cd", 32),
			Certificate: strings.Repeat("ef", 32), Config: []byte(`{"service":{"name":"qualified"},"files":{}}`)},
		events.ServiceConfigChanged{Service: "qualified", Change: "removed", Source: "/etc/tsad.yaml", PreviousSHA256: strings.Repeat("cd", 32)},
		events.ServiceConfigRefused{Source: "/etc/tsad.yaml", Problems: []string{"services[0] a: hashes: unknown hash \"md5\""}},
		events.LogSegmentSealed{Index: 0, First: 1, Last: 4, Count: 4, Root: strings.Repeat("ab", 32), LeafHash: strings.Repeat("cd", 32), Log: "tessera"},
		events.LogCheckpointSigned{Origin: "tsa.example/log", Size: 1, Root: strings.Repeat("ef", 32), Note: "tsa.example/log\n1\n...\n\n— tsa.example/log abc\n"},
		events.SigningKeyGenerated{Token: "chronolog", KeyLabel: "tsa-2026", KeyID: "01a2", KeyType: events.KeyTypeECDSAP256,
			PublicKey: []byte{0x30, 0x59, 0x30, 0x13}, PublicKeySHA256: strings.Repeat("ab", 32),
			Attributes: events.KeyAttributes{Sensitive: true, Sign: true}, Operator: "alice", Module: "/usr/lib/softhsm/libsofthsm2.so"},
		events.SigningKeyGenerated{Token: "chronolog", KeyLabel: "log", KeyID: "02", KeyType: events.KeyTypeEd25519,
			PublicKey: []byte{0x30, 0x2a}, PublicKeySHA256: strings.Repeat("cd", 32)},
		events.CertificateImported{Token: "chronolog", KeyLabel: "tsa-2026", KeyID: "01a2", Certificate: []byte{0x30, 0x82, 0x01, 0x00},
			CertificateSHA256: strings.Repeat("ef", 32), Subject: "CN=Chronolog TSA,O=Example", Issuer: "CN=Example CA,O=Example",
			SerialNumber: "3f", NotBefore: now, NotAfter: now.AddDate(3, 0, 0), PublicKeySHA256: strings.Repeat("ab", 32), Operator: "alice"},
		events.SigningKeyActivated{Service: "qualified", Purpose: events.KeyPurposeTSA, Token: "chronolog", KeyLabel: "tsa-2026", KeyID: "01a2",
			KeyType: events.KeyTypeECDSAP256, PublicKeySHA256: strings.Repeat("ab", 32), CertificateSHA256: strings.Repeat("ef", 32),
			Subject: "CN=Chronolog TSA", Issuer: "CN=Example CA", SerialNumber: "3f", NotAfter: now.AddDate(3, 0, 0),
			Module: "/usr/lib/softhsm/libsofthsm2.so", Sessions: 8},
		events.SigningKeyActivated{Service: "default", Purpose: events.KeyPurposeTSA, KeyType: "rsa-2048", PublicKeySHA256: strings.Repeat("ab", 32),
			CertificateSHA256: strings.Repeat("ef", 32), Subject: "CN=dev TSA", Issuer: "CN=dev CA", SerialNumber: "1", NotAfter: now.AddDate(2, 0, 0)},
		events.SigningKeyActivated{Purpose: events.KeyPurposeLog, Token: "chronolog", KeyLabel: "log", KeyID: "02", KeyType: events.KeyTypeEd25519,
			PublicKeySHA256: strings.Repeat("cd", 32), Module: "/usr/lib/softhsm/libsofthsm2.so", Sessions: 1},
		events.SigningKeyRetired{Token: "chronolog", KeyLabel: "tsa-2025", KeyID: "01", PublicKeySHA256: strings.Repeat("ab", 32), Reason: "superseded by tsa-2026"},
		events.SigningKeyUnavailable{Service: "qualified", Purpose: events.KeyPurposeTSA, Token: "chronolog", KeyLabel: "tsa-2026",
			PublicKeySHA256: strings.Repeat("ab", 32), Cause: "CKR_DEVICE_REMOVED", Since: now},
		events.SigningKeyUnavailable{Purpose: events.KeyPurposeLog, Token: "chronolog", PublicKeySHA256: strings.Repeat("cd", 32),
			Cause: "CKR_TOKEN_NOT_PRESENT", Since: now},
		events.SigningKeyRestored{Service: "qualified", Purpose: events.KeyPurposeTSA, Token: "chronolog", KeyLabel: "tsa-2026",
			PublicKeySHA256: strings.Repeat("ab", 32), UnavailableSince: now, RestoredAt: now.Add(1500 * time.Millisecond), DurationMs: 1500},
		events.SigningCertificateExpiring{Service: "qualified", CertificateSHA256: strings.Repeat("ef", 32), Subject: "CN=Chronolog TSA",
			NotAfter: now.AddDate(0, 0, 20), DaysLeft: 20, WarnDays: 30},
		events.TimestampIssued{Serial: "1a2b", GenTime: now, Policy: "1.3.6.1.4.1.32473.3161.1", Signer: strings.Repeat("cd", 32), Token: []byte{0x30, 0x03, 1, 2, 3},
			ClockSample: "01938d2e-6c4b-7e2a-9f1d-3b5c7a9e1f21", ClockUncertaintyNs: 3_400_000},
		events.ClockSampled{At: now, Synchronised: true, BoundNs: 3_000_000, OffsetNs: -120_000, Agreeing: 2, Sources: 3, Quorum: 2, DriftPPM: 100, Leap: "insert",
			LeapAt: &midnight, Readings: []events.ClockReading{
				{Source: "ntp", Name: "ntp1.example:123", At: now, OffsetNs: -120_000, RoundTripNs: 800_000, RootDistanceNs: 2_000_000, Stratum: 1, Leap: "insert", Synchronised: true, ReferenceID: "PPS"},
				{Source: "chrony", Name: "127.0.0.1:323", At: now, OffsetNs: 4_000, RootDistanceNs: 900_000, Stratum: 2, Leap: "none", Synchronised: true},
				{Source: "kernel", Name: "adjtimex", At: now, RootDistanceNs: 16_000_000_000, EstimatedErrorNs: 16_000_000_000, Leap: "none", Error: "not synchronised"},
			}},
		events.ClockSampled{At: now, Reason: "0 of 1 sources agree, 1 needed; ntp a: i/o timeout", Sources: 1, Quorum: 1, DriftPPM: 100, Leap: "none",
			Readings: []events.ClockReading{{Source: "ntp", Name: "a:123", At: now, Leap: "none", Error: "i/o timeout"}}},
		events.ClockSyncLost{Service: "qualified", AccuracyNs: 1e9, Sample: "01938d2e-6c4b-7e2a-9f1d-3b5c7a9e1f21", Reason: "not synchronised", At: now},
		events.ClockSyncRegained{Service: "qualified", AccuracyNs: 1e9, Sample: "01938d2e-6c4b-7e2a-9f1d-3b5c7a9e1f21", BoundNs: 3_000_000, At: now},
		events.ClockSyncRegained{Service: "qualified", AccuracyNs: 1e9, Sample: "01938d2e-6c4b-7e2a-9f1d-3b5c7a9e1f21", BoundNs: 3_000_000, At: now,
			LostAt: &before, OutageNs: int64(16 * time.Second)},
		events.LeapSecondAnnounced{Leap: "insert", At: midnight, Sample: "01938d2e-6c4b-7e2a-9f1d-3b5c7a9e1f21", Sources: []string{"ntp ntp1.example:123"}, Refused: true, WindowNs: 1e9},
	}
	for _, e := range samples {
		if err := ValidateEvent(encode(t, e)); err != nil {
			t.Errorf("%s: %v", e.EventType(), err)
		}
	}
}

func TestBrokenLogEventsFail(t *testing.T) {
	good := string(encode(t, events.LogSegmentSealed{Index: 3, First: 10, Last: 12, Count: 3, Root: strings.Repeat("ab", 32), LeafHash: strings.Repeat("cd", 32), Log: "trillian"}))
	for name, payload := range map[string]string{
		"zero count":  strings.Replace(good, `"count":3`, `"count":0`, 1),
		"short root":  strings.Replace(good, strings.Repeat("ab", 32), "abab", 1),
		"unknown log": strings.Replace(good, `"trillian"`, `"sqlite"`, 1),
		"no leafHash": strings.Replace(good, `,"leafHash":"`+strings.Repeat("cd", 32)+`"`, ``, 1),
	} {
		if payload == good {
			t.Fatalf("%s: the mutation did not apply", name)
		}
		if err := ValidateEvent([]byte(payload)); err == nil {
			t.Errorf("%s: validated", name)
		}
	}
}

func TestBrokenEventsFail(t *testing.T) {
	good := string(encode(t, events.TimestampRejected{Serial: "1a2b", Status: "rejection", FailInfo: "badAlg", Reason: "x"}))
	for name, payload := range map[string]string{
		"bad failInfo":               strings.Replace(good, `"badAlg"`, `"badAlgorithm"`, 1),
		"missing field":              strings.Replace(good, `,"reason":"x"`, ``, 1),
		"extra field":                strings.Replace(good, `"reason":"x"`, `"reason":"x","color":"red"`, 1),
		"unknown type":               strings.Replace(good, `TimestampRejected.v2`, `TimestampEaten.v1`, 1),
		"refusal with a failInfo":    strings.Replace(good, `"status":"rejection","failInfo":"badAlg"`, `"status":"refused","failInfo":"badAlg","refusal":"method"`, 1),
		"rejection without failInfo": strings.Replace(good, `"failInfo":"badAlg",`, ``, 1),
		"HTTP status in v2":          strings.Replace(good, `"reason":"x"`, `"reason":"x","httpStatus":200`, 1),
		"envelope extra":             strings.Replace(good, `"stream"`, `"oops":1,"stream"`, 1),
		"not a serial":               strings.Replace(good, `"serial":"1a2b"`, `"serial":"XYZ"`, 1),
		"bad recordedAt":             strings.Replace(good, `2026-11-22T16:00:00Z`, `yesterday`, 1),
	} {
		if payload == good {
			t.Fatalf("%s: the mutation did not apply", name)
		}
		if err := ValidateEvent([]byte(payload)); err == nil {
			t.Errorf("%s: validated", name)
		}
	}
}

// TestSchemasAreClosedAndDescribed keeps every schema draft 2020-12, closed
// (additionalProperties false), with required fields and a description on
// every property.
func TestSchemasAreClosedAndDescribed(t *testing.T) {
	for _, n := range append(EventSchemaNames(), "envelope.v1") {
		raw, err := files.ReadFile("events/" + n + ".json")
		if err != nil {
			t.Fatal(err)
		}
		var s struct {
			Schema     string                     `json:"$schema"`
			AddProps   *bool                      `json:"additionalProperties"`
			Required   []string                   `json:"required"`
			Desc       string                     `json:"description"`
			Properties map[string]json.RawMessage `json:"properties"`
		}
		if err := json.Unmarshal(raw, &s); err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		if s.Schema != "https://json-schema.org/draft/2020-12/schema" || s.AddProps == nil || *s.AddProps || len(s.Required) == 0 || s.Desc == "" {
			t.Errorf("%s: want draft 2020-12, additionalProperties false, required fields and a description", n)
		}
		for _, r := range s.Required {
			if _, ok := s.Properties[r]; !ok {
				t.Errorf("%s: required %q is not a property", n, r)
			}
		}
		for p, body := range s.Properties {
			var d struct{ Description string }
			if json.Unmarshal(body, &d); d.Description == "" {
				t.Errorf("%s: property %q has no description", n, p)
			}
		}
	}
}

func TestBrokenKeyEventsFail(t *testing.T) {
	now := time.Date(2026, 11, 22, 16, 0, 0, 0, time.UTC)
	activated := string(encode(t, events.SigningKeyActivated{Service: "qualified", Purpose: events.KeyPurposeTSA, Token: "chronolog",
		KeyLabel: "tsa", KeyID: "01", KeyType: events.KeyTypeECDSAP384, PublicKeySHA256: strings.Repeat("ab", 32),
		CertificateSHA256: strings.Repeat("ef", 32), NotAfter: now, Module: "/lib/p11.so", Sessions: 4}))
	generated := string(encode(t, events.SigningKeyGenerated{Token: "chronolog", KeyLabel: "tsa", KeyID: "01", KeyType: events.KeyTypeRSA3072,
		PublicKey: []byte{0x30, 0}, PublicKeySHA256: strings.Repeat("ab", 32), Attributes: events.KeyAttributes{Sensitive: true, Sign: true}}))
	unavailable := string(encode(t, events.SigningKeyUnavailable{Purpose: events.KeyPurposeLog, Token: "chronolog", KeyLabel: "log",
		PublicKeySHA256: strings.Repeat("cd", 32), Cause: "CKR_DEVICE_ERROR", Since: now}))
	for _, good := range []string{activated, generated, unavailable} {
		if err := ValidateEvent([]byte(good)); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct{ name, good, old, new string }{
		{"tsa key without service", activated, `"service":"qualified",`, ``},
		{"tsa key without certificate", activated, `,"certificateSha256":"` + strings.Repeat("ef", 32) + `"`, ``},
		{"log key with service", activated, `"purpose":"tsa"`, `"purpose":"log"`},
		{"unknown purpose", activated, `"purpose":"tsa"`, `"purpose":"ocsp"`},
		{"unknown key type", activated, `"ecdsa-p384"`, `"dsa-1024"`},
		{"odd key id", activated, `"keyId":"01"`, `"keyId":"1"`},
		{"zero sessions", activated, `"sessions":4`, `"sessions":0`},
		{"generated key type outside the list", generated, `"rsa-3072"`, `"rsa-1024"`},
		{"attribute missing", generated, `"derive":false`, ``},
		{"attribute not a boolean", generated, `"sign":true`, `"sign":"yes"`},
		{"extra attribute", generated, `"derive":false`, `"derive":false,"modifiable":true`},
		{"short fingerprint", generated, strings.Repeat("ab", 32), "abab"},
		{"log outage naming a service", unavailable, `"purpose":"log"`, `"service":"default","purpose":"log"`},
		{"tsa outage without service", unavailable, `"purpose":"log"`, `"purpose":"tsa"`},
		{"no cause", unavailable, `"cause":"CKR_DEVICE_ERROR",`, ``},
	}
	for _, tt := range tests {
		payload := strings.Replace(tt.good, tt.old, tt.new, 1)
		payload = strings.Replace(payload, `,}`, `}`, 1)
		if payload == tt.good {
			t.Fatalf("%s: the mutation did not apply", tt.name)
		}
		if err := ValidateEvent([]byte(payload)); err == nil {
			t.Errorf("%s: validated", tt.name)
		}
	}
}

func TestFilterDecidedBadFailInfoFails(t *testing.T) {
	good := string(encode(t, events.FilterDecided{Serial: "1a2b", Filter: "policy", Verdict: "rejected", FailInfo: "unacceptedPolicy"}))
	if err := ValidateEvent([]byte(good)); err != nil {
		t.Fatal(err)
	}
	bad := strings.Replace(good, `"unacceptedPolicy"`, `"policyUnaccepted"`, 1)
	if err := ValidateEvent([]byte(bad)); err == nil {
		t.Fatal("an unknown failInfo validated")
	}
}

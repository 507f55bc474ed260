package events

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestKeyEventsRoundTrip: every key event decodes back to what was
// encoded, and its data holds exactly the fields the schema names (an
// optional field left empty is absent, a required one present even when
// empty).
func TestKeyEventsRoundTrip(t *testing.T) {
	at := time.Date(2026, 11, 22, 16, 7, 45, 0, time.UTC)
	fp := strings.Repeat("ab", 32)
	tests := []struct {
		name    string
		event   Event
		present []string
		absent  []string
	}{
		{"generated", SigningKeyGenerated{Token: "chronolog", KeyLabel: "tsa", KeyID: "01", KeyType: KeyTypeECDSAP256,
			PublicKey: []byte{0x30, 0x59}, PublicKeySHA256: fp, Attributes: KeyAttributes{Sensitive: true, Sign: true}},
			[]string{"token", "keyLabel", "keyId", "keyType", "publicKey", "publicKeySha256", "attributes"}, []string{"operator", "module"}},
		{"certificate imported", CertificateImported{Token: "chronolog", KeyLabel: "tsa", KeyID: "01", Certificate: []byte{0x30, 0},
			CertificateSHA256: fp, Subject: "CN=tsa", Issuer: "CN=ca", SerialNumber: "3f", NotBefore: at, NotAfter: at.AddDate(1, 0, 0),
			PublicKeySHA256: fp, Operator: "alice"},
			[]string{"certificate", "notBefore", "notAfter", "operator"}, nil},
		{"log key activated", SigningKeyActivated{Purpose: KeyPurposeLog, Token: "chronolog", KeyLabel: "log", KeyID: "02",
			KeyType: KeyTypeEd25519, PublicKeySHA256: fp, Module: "/lib/p11.so", Sessions: 1},
			[]string{"purpose", "token", "module", "sessions"},
			[]string{"service", "certificateSha256", "subject", "issuer", "serialNumber", "notAfter"}},
		{"file key activated", SigningKeyActivated{Service: "default", Purpose: KeyPurposeTSA, KeyType: KeyTypeRSA2048, PublicKeySHA256: fp,
			CertificateSHA256: fp, Subject: "CN=tsa", Issuer: "CN=ca", SerialNumber: "1", NotAfter: at},
			[]string{"service", "certificateSha256", "notAfter"}, []string{"token", "keyLabel", "keyId", "module", "sessions"}},
		{"retired", SigningKeyRetired{Token: "chronolog", KeyLabel: "tsa", KeyID: "01", PublicKeySHA256: fp, Reason: "superseded"},
			[]string{"reason"}, []string{"operator"}},
		{"log key unavailable", SigningKeyUnavailable{Purpose: KeyPurposeLog, Token: "chronolog", PublicKeySHA256: fp, Cause: "CKR_DEVICE_REMOVED", Since: at},
			[]string{"keyLabel", "since"}, []string{"service"}},
		{"restored", SigningKeyRestored{Service: "default", Purpose: KeyPurposeTSA, Token: "chronolog", KeyLabel: "tsa", PublicKeySHA256: fp,
			UnavailableSince: at, RestoredAt: at.Add(2 * time.Second), DurationMs: 2000},
			[]string{"service", "unavailableSince", "restoredAt", "durationMs"}, nil},
		{"certificate expiring", SigningCertificateExpiring{Service: "default", CertificateSHA256: fp, Subject: "CN=tsa", NotAfter: at, DaysLeft: 0, WarnDays: 30},
			[]string{"daysLeft", "warnDays"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ed, err := Encode("id-1", KeyStream, at, Metadata{Node: "n1"}, tt.event)
			if err != nil {
				t.Fatal(err)
			}
			env, got, err := Decode(ed.Payload)
			if err != nil {
				t.Fatal(err)
			}
			if env.Stream != KeyStream || env.Type != tt.event.EventType() {
				t.Fatalf("envelope %s in %s", env.Type, env.Stream)
			}
			if back := reflect.ValueOf(got).Elem().Interface(); !reflect.DeepEqual(back, tt.event) {
				t.Fatalf("decoded %+v\nwant %+v", back, tt.event)
			}
			var fields map[string]json.RawMessage
			if err := json.Unmarshal(env.Data, &fields); err != nil {
				t.Fatal(err)
			}
			for _, f := range tt.present {
				if _, ok := fields[f]; !ok {
					t.Errorf("%s missing from %s", f, env.Data)
				}
			}
			for _, f := range tt.absent {
				if _, ok := fields[f]; ok {
					t.Errorf("%s present in %s", f, env.Data)
				}
			}
		})
	}
}

package events

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

func TestScanObjectReadsAnEnvelope(t *testing.T) {
	at := time.Date(2026, 11, 25, 1, 2, 3, 456789000, time.UTC)
	ed, err := Encode("01938d2e-6c4b-7e2a-9f1d-3b5c7a9e1f20", "tsr-1a2b", at, Metadata{Service: "q\"uoted", Node: "n1"},
		TimestampIssued{Serial: "1a2b", GenTime: at, Policy: "1.2.3", Signer: "ab", Token: bytes.Repeat([]byte{0xfb, 0xff}, 900), Client: "CN=a\\b <c>"})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]byte{}
	if err := ScanObject(ed.Payload, func(k string, v []byte) error { got[k] = v; return nil }); err != nil {
		t.Fatal(err)
	}
	if typ, _ := String(got["type"]); typ != TypeTimestampIssued {
		t.Fatalf("type %q", typ)
	}
	if rat, err := Time(got["recordedAt"]); err != nil || !rat.Equal(at) {
		t.Fatalf("recordedAt %v %v", rat, err)
	}
	var client, service string
	if err := ScanObject(got["data"], func(k string, v []byte) error {
		if k == "client" {
			client, err = String(v)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := ScanObject(got["metadata"], func(k string, v []byte) error {
		if k == "service" {
			service, err = String(v)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if client != "CN=a\\b <c>" || service != "q\"uoted" {
		t.Fatalf("client %q service %q", client, service)
	}
}

// FuzzScanObject holds ScanObject to encoding/json: for every valid JSON
// object it yields the members json.Unmarshal finds (the last of a
// duplicated key wins in both), with the same values.
func FuzzScanObject(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":1}`, `{"a":"x\"}","b":[1,{"c":"]"}],"d":null}`, ` { "k" : "v\\" , "n" : -1.5e3 } `, `{"a":{"b":{"c":[]}}}`, `{"\u0061":true}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		got := map[string]json.RawMessage{}
		err := ScanObject(raw, func(k string, v []byte) error { got[k] = v; return nil })
		var want map[string]json.RawMessage
		if json.Unmarshal(raw, &want) != nil || want == nil {
			return // not a valid object: anything but a panic will do
		}
		if err != nil {
			t.Fatalf("valid object refused: %v\n%s", err, raw)
		}
		if len(got) != len(want) {
			t.Fatalf("%d members, json finds %d\n%s", len(got), len(want), raw)
		}
		for k, w := range want {
			var a, b bytes.Buffer
			if json.Compact(&a, got[k]) != nil || json.Compact(&b, w) != nil || !bytes.Equal(a.Bytes(), b.Bytes()) {
				t.Fatalf("member %q: %s, json: %s", k, got[k], w)
			}
		}
	})
}

package events

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

// TestEncodeMatchesEnvelope: the hand-assembled envelope is exactly what
// json.Marshal would make of Envelope, and decodes back.
func TestEncodeMatchesEnvelope(t *testing.T) {
	at := time.Date(2026, 11, 22, 16, 7, 45, 123456000, time.UTC)
	e := TimestampIssued{Serial: "ab", GenTime: at, Policy: "1.2.3", Signer: "cd", Token: []byte{0x30, 0x00, '"', '<'}}
	meta := Metadata{CorrelationID: "c\"1", Node: "n<1>", Service: "default"}
	ed, err := Encode("id-1", "tsr-ab", at, meta, e)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := json.Marshal(e)
	want, _ := json.Marshal(Envelope{Type: e.EventType(), ID: "id-1", Stream: "tsr-ab", RecordedAt: at, Data: data, Metadata: meta})
	if !bytes.Equal(ed.Payload, want) {
		t.Fatalf("payload\n%s\nwant\n%s", ed.Payload, want)
	}
	env, got, err := Decode(ed.Payload)
	if err != nil || env.Stream != "tsr-ab" || !bytes.Equal(got.(*TimestampIssued).Token, e.Token) {
		t.Fatalf("decode: %v %+v", err, env)
	}
	if !json.Valid(ed.Payload) {
		t.Fatal("invalid JSON")
	}
}

// A rejection recorded with its answer's HTTP status reads as one naming
// what was refused.
func TestTimestampRejectedV1Upcasts(t *testing.T) {
	if got := CurrentType(TypeTimestampRejectedV1); got != TypeTimestampRejected {
		t.Fatalf("TimestampRejected.v1 reads as %s", got)
	}
	for status, refusal := range map[int]string{405: "method", 415: "media-type", 413: "too-large", 408: "too-slow", 501: "no-forwarding", 400: "incomplete"} {
		old := TimestampRejectedV1{Serial: "1a", Status: StatusRefused, Reason: "r", AnswerStatus: status, Client: "c", ClientAuth: "api-key"}
		got := old.Upcast().(TimestampRejected)
		if want := (TimestampRejected{Serial: "1a", Status: StatusRefused, Refusal: refusal, Reason: "r", Client: "c", ClientAuth: "api-key"}); got != want {
			t.Errorf("HTTP %d: %+v, want %+v", status, got, want)
		}
	}
	rej := TimestampRejectedV1{Serial: "1a", Status: StatusRejection, FailInfo: "badAlg", Reason: "md5", AnswerStatus: 200}.Upcast().(TimestampRejected)
	if rej.FailInfo != "badAlg" || rej.Refusal != "" || rej.Status != StatusRejection {
		t.Errorf("a rejection upcasts to %+v", rej)
	}
	if CurrentType(TypeTimestampIssued) != TypeTimestampIssued {
		t.Error("a current type reads as another")
	}
}

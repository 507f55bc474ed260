package e2e

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"net/http"
	"testing"

	"github.com/chronolog/chronolog/domain/events"
)

// failInfo bit numbers of RFC 3161.
var failBits = map[string]int{
	"badAlg": 0, "badRequest": 2, "badDataFormat": 5, "timeNotAvailable": 14,
	"unacceptedPolicy": 15, "unacceptedExtension": 16, "addInfoNotAvailable": 17, "systemFailure": 25,
}

// TestBadInput sends every kind of bad request and checks both the answer
// and the event that records it, found by the body's SHA-256.
func TestBadInput(t *testing.T) {
	data := t.TempDir()
	srv := startServer(t, data)

	valid := mustMarshal(t, sha256Query("valid"))
	v2 := sha256Query("v2")
	v2.Version = 2
	md5 := sha256Query("md5")
	md5.MessageImprint.HashAlgorithm.Algorithm = oidMD5
	md5.MessageImprint.HashedMessage = md5.MessageImprint.HashedMessage[:16]
	unknown := sha256Query("unknown")
	unknown.MessageImprint.HashAlgorithm.Algorithm = asn1.ObjectIdentifier{1, 2, 3, 4, 5}
	params := sha256Query("params")
	params.MessageImprint.HashAlgorithm.Parameters = asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagInteger, Bytes: []byte{5}}
	short := sha256Query("short")
	short.MessageImprint.HashedMessage = short.MessageImprint.HashedMessage[:20]
	ext := sha256Query("ext")
	ext.Extensions = []pkix.Extension{{Id: asn1.ObjectIdentifier{1, 2, 3}, Value: []byte{5, 0}}}
	policy := sha256Query("policy")
	policy.ReqPolicy = asn1.ObjectIdentifier{1, 2, 3, 4}

	cases := []struct {
		name     string
		body     []byte
		failInfo string
	}{
		{"garbage", []byte("this is not DER at all"), "badDataFormat"},
		{"truncated DER", valid[:len(valid)-5], "badDataFormat"},
		{"trailing bytes", append(append([]byte{}, valid...), 0, 0), "badDataFormat"},
		{"version 2", mustMarshal(t, v2), "badRequest"},
		{"MD5", mustMarshal(t, md5), "badAlg"},
		{"unknown hash OID", mustMarshal(t, unknown), "badAlg"},
		{"hash parameters not NULL", mustMarshal(t, params), "badAlg"},
		{"digest of the wrong length", mustMarshal(t, short), "badDataFormat"},
		{"request extension", mustMarshal(t, ext), "unacceptedExtension"},
		{"unknown policy", mustMarshal(t, policy), "unacceptedPolicy"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, hdr, body := post(t, srv.url, "application/timestamp-query", c.body)
			if status != 200 || hdr.Get("Content-Type") != "application/timestamp-reply" {
				t.Fatalf("HTTP %d %s, want 200 with a TimeStampResp", status, hdr.Get("Content-Type"))
			}
			r := parseResp(t, body)
			if r.Status.Status != 2 {
				t.Fatalf("status %d, want rejection (2)", r.Status.Status)
			}
			if len(r.Token.FullBytes) != 0 {
				t.Fatal("a rejection carries a token")
			}
			bit := failBits[c.failInfo]
			if r.Status.FailInfo.BitLength != bit+1 || r.Status.FailInfo.At(bit) != 1 {
				t.Fatalf("failInfo %x (%d bits), want only %s (bit %d) in a minimal BIT STRING",
					r.Status.FailInfo.Bytes, r.Status.FailInfo.BitLength, c.failInfo, bit)
			}
			for i := 0; i < bit; i++ {
				if r.Status.FailInfo.At(i) != 0 {
					t.Fatalf("failInfo sets bit %d besides %s", i, c.failInfo)
				}
			}
		})
	}

	// Transport refusals.
	res, err := http.Get(srv.url)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 405 || res.Header.Get("Allow") != "POST" {
		t.Errorf("GET: HTTP %d Allow %q, want 405 Allow POST", res.StatusCode, res.Header.Get("Allow"))
	}
	wrongType := []byte("wrong content type body")
	if status, _, _ := post(t, srv.url, "text/plain", wrongType); status != 415 {
		t.Errorf("text/plain: HTTP %d, want 415", status)
	}
	huge := bytes.Repeat([]byte{0x30}, 70<<10)
	if status, _, _ := post(t, srv.url, "application/timestamp-query", huge); status != 413 {
		t.Errorf("70 KiB body: HTTP %d, want 413", status)
	}

	// A bad request never disturbs others: a good one still gets a token.
	status, _, body := post(t, srv.url, "application/timestamp-query", valid)
	if r := parseResp(t, body); status != 200 || r.Status.Status != 0 {
		t.Fatalf("a valid request after the bad ones: HTTP %d status %d", status, r.Status.Status)
	}

	if err := srv.stop(t); err != nil {
		t.Fatalf("tsad did not stop cleanly: %v\n%s", err, srv.output())
	}
	recorded := byBodyHash(readStore(t, data))
	for _, c := range cases {
		evs, ok := recorded[hashHex(c.body)]
		if !ok {
			t.Errorf("%s: no TimestampRequested with its body hash", c.name)
			continue
		}
		rej, ok := evs[len(evs)-1].(*events.TimestampRejected)
		if !ok || rej.FailInfo != c.failInfo || rej.Status != events.StatusRejection {
			t.Errorf("%s: last event %#v, want TimestampRejected %s", c.name, evs[len(evs)-1], c.failInfo)
		}
	}
	for name, want := range map[string]string{"GET": "method", "wrong type": "media-type"} {
		body := []byte{}
		if name == "wrong type" {
			body = wrongType
		}
		evs, ok := recorded[hashHex(body)]
		if !ok {
			t.Errorf("%s: not recorded", name)
			continue
		}
		if rej, ok := evs[len(evs)-1].(*events.TimestampRejected); !ok || rej.Status != events.StatusRefused || rej.Refusal != want {
			t.Errorf("%s: last event %#v, want TimestampRejected refused for its %s", name, evs[len(evs)-1], want)
		}
	}
	found413 := false
	for _, evs := range recorded {
		if rej, ok := evs[len(evs)-1].(*events.TimestampRejected); ok && rej.Refusal == "too-large" {
			found413 = true
		}
	}
	if !found413 {
		t.Error("the oversized body was not recorded")
	}
}

func hashHex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// byBodyHash indexes request streams by the SHA-256 of their body.
func byBodyHash(streams map[string][]events.Event) map[string][]events.Event {
	out := map[string][]events.Event{}
	for _, evs := range streams {
		if req, ok := evs[0].(*events.TimestampRequested); ok {
			out[req.BodySHA256] = evs
		}
	}
	return out
}

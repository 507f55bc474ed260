package authenticode

import (
	"bytes"
	"encoding/asn1"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// tlv encodes one DER element with a minimal length of any size.
func tlv(tag byte, content ...[]byte) []byte {
	c := bytes.Join(content, nil)
	if len(c) < 0x80 {
		return append([]byte{tag, byte(len(c))}, c...)
	}
	var l []byte
	for n := len(c); n > 0; n >>= 8 {
		l = append([]byte{byte(n)}, l...)
	}
	return append(append([]byte{tag, 0x80 | byte(len(l))}, l...), c...)
}

func oidDER(t testing.TB, oid asn1.ObjectIdentifier) []byte {
	b, err := asn1.Marshal(oid)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func b64(der []byte) string { return base64.StdEncoding.EncodeToString(der) }

// wrapLines breaks s every n characters, as OpenSSL's base64 BIO (n=64,
// "\n") and CryptBinaryToString (n=64, "\r\n") do, with a final break.
func wrapLines(s string, n int, sep string) string {
	var b strings.Builder
	for len(s) > n {
		b.WriteString(s[:n] + sep)
		s = s[n:]
	}
	return b.String() + s + sep
}

func TestParseRequest(t *testing.T) {
	sig := bytes.Repeat([]byte{0xa5}, 256)
	typ := oidDER(t, OIDCounterSignatureType)
	data := oidDER(t, oidData)
	contentInfo := func(sig []byte) []byte { return tlv(0x30, data, tlv(0xa0, tlv(0x04, sig))) }
	good := tlv(0x30, typ, contentInfo(sig))
	attrs := tlv(0x31, tlv(0x30, oidDER(t, asn1.ObjectIdentifier{1, 2, 3}), tlv(0x31, tlv(0x05))))
	small := tlv(0x30, typ, contentInfo(sig[:16]))
	odd := b64(tlv(0x30, typ, contentInfo(sig[:255])))
	if !strings.HasSuffix(odd, "=") {
		t.Fatal("the unpadded case needs a body whose base64 is padded")
	}

	tests := []struct {
		name    string
		body    string
		content []byte // when valid
		attrs   []byte
		wantErr string // when not
	}{
		{name: "no attributes", body: b64(good), content: sig},
		{name: "empty attributes", body: b64(tlv(0x30, typ, tlv(0x31), contentInfo(sig))), content: sig, attrs: tlv(0x31)},
		{name: "one attribute", body: b64(tlv(0x30, typ, attrs, contentInfo(sig))), content: sig, attrs: attrs},
		{name: "CRLF every 64 characters", body: wrapLines(b64(good), 64, "\r\n"), content: sig},
		{name: "LF every 64 characters (OpenSSL BIO)", body: wrapLines(b64(good), 64, "\n"), content: sig},
		{name: "trailing NUL", body: b64(good) + "\x00", content: sig},
		{name: "trailing whitespace then NUL", body: b64(good) + "\r\n \t\x00", content: sig},
		{name: "trailing NUL then CRLF", body: b64(good) + "\x00\r\n", content: sig},
		{name: "leading whitespace", body: " \r\n" + b64(good), content: sig},
		{name: "unpadded", body: strings.TrimRight(odd, "="), content: sig[:255]},
		{name: "one-byte content", body: b64(tlv(0x30, typ, contentInfo([]byte{0}))), content: []byte{0}},

		{name: "empty body", body: "", wantErr: "body is empty"},
		{name: "only NUL and whitespace", body: "\x00\r\n \x00", wantErr: "body is empty"},
		{name: "bad base64", body: "not base64!", wantErr: "body is not base64: byte ' ' at offset 3"},
		{name: "space inside the base64", body: b64(good)[:10] + " " + b64(good)[10:], wantErr: "body is not base64: byte ' ' at offset 10"},
		{name: "impossible length", body: "QUJDR", wantErr: "body is not base64"},
		{name: "raw DER", body: string(good), wantErr: "raw DER"},
		{name: "too big", body: strings.Repeat("A", MaxBodySize+1), wantErr: "more than the 65536 allowed"},
		{name: "not a SEQUENCE", body: b64([]byte{0x04, 0x01, 0x00}), wantErr: "TimeStampRequest has tag 0x04, want 0x30"},
		{name: "wrong countersignatureType", body: b64(tlv(0x30, oidDER(t, asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 3, 3, 1}), contentInfo(sig))),
			wantErr: "countersignatureType is 1.3.6.1.4.1.311.3.3.1, want 1.3.6.1.4.1.311.3.2.1"},
		{name: "countersignatureType not an OID", body: b64(tlv(0x30, []byte{0x02, 0x01, 0x01}, contentInfo(sig))),
			wantErr: "countersignatureType has tag 0x02, want 0x06"},
		{name: "countersignatureType badly encoded", body: b64(tlv(0x30, []byte{0x06, 0x01, 0x80}, contentInfo(sig))),
			wantErr: "countersignatureType is not a valid OBJECT IDENTIFIER"},
		{name: "wrong contentType", body: b64(tlv(0x30, typ, tlv(0x30, oidDER(t, oidSignedData), tlv(0xa0, tlv(0x04, sig))))),
			wantErr: "contentType is 1.2.840.113549.1.7.2, want data (1.2.840.113549.1.7.1)"},
		{name: "trailing DER garbage", body: b64(append(append([]byte{}, good...), 0, 0)), wantErr: "2 bytes after the TimeStampRequest"},
		{name: "field after the content", body: b64(tlv(0x30, typ, contentInfo(sig), tlv(0x05))), wantErr: "2 bytes after the content ContentInfo"},
		{name: "field after the [0]", body: b64(tlv(0x30, typ, tlv(0x30, data, tlv(0xa0, tlv(0x04, sig)), tlv(0x05)))), wantErr: "2 bytes after the content [0]"},
		{name: "two OCTET STRINGs", body: b64(tlv(0x30, typ, tlv(0x30, data, tlv(0xa0, tlv(0x04, sig), tlv(0x04, sig))))),
			wantErr: "260 bytes after the content OCTET STRING"},
		{name: "empty content", body: b64(tlv(0x30, typ, contentInfo(nil))), wantErr: "content is empty"},
		{name: "no content", body: b64(tlv(0x30, typ)), wantErr: "content ContentInfo is missing"},
		{name: "no content [0]", body: b64(tlv(0x30, typ, tlv(0x30, data))), wantErr: "content [0] EXPLICIT is missing"},
		{name: "content [0] IMPLICIT", body: b64(tlv(0x30, typ, tlv(0x30, data, tlv(0x80, sig)))), wantErr: "content [0] EXPLICIT has tag 0x80, want 0xa0"},
		{name: "constructed OCTET STRING (BER)", body: b64(tlv(0x30, typ, tlv(0x30, data, tlv(0xa0, tlv(0x24, tlv(0x04, sig)))))),
			wantErr: "content OCTET STRING has tag 0x24, want 0x04"},
		{name: "truncated", body: b64(good[:len(good)-1]), wantErr: "TimeStampRequest claims 291 bytes but only 290 follow"},
		{name: "huge length", body: b64(append([]byte{0x30, 0x84, 0x7f, 0xff, 0xff, 0xff}, good[4:]...)),
			wantErr: "TimeStampRequest claims 2147483647 bytes but only 291 follow"},
		{name: "huge inner length", body: b64(tlv(0x30, typ, tlv(0x30, data, tlv(0xa0, []byte{0x04, 0x83, 0xff, 0xff, 0xff})))),
			wantErr: "content OCTET STRING claims 16777215 bytes but only 0 follow"},
		{name: "absurd length field", body: b64(append([]byte{0x30, 0x88}, bytes.Repeat([]byte{0xff}, 8)...)),
			wantErr: "TimeStampRequest has an absurd 8-byte length field"},
		{name: "indefinite length", body: b64(append(append([]byte{0x30, 0x80}, small[2:]...), 0, 0)),
			wantErr: "TimeStampRequest has an indefinite length (BER, not DER)"},
		{name: "non-minimal length", body: b64(append([]byte{0x30, 0x81, small[1]}, small[2:]...)),
			wantErr: "TimeStampRequest has a length that is not minimally encoded (not DER)"},
		{name: "cut off in the length", body: b64([]byte{0x30, 0x82, 0x01}), wantErr: "TimeStampRequest is cut off inside its length"},
		{name: "attributes hold a non-attribute", body: b64(tlv(0x30, typ, tlv(0x31, tlv(0x02, []byte{1})), contentInfo(sig))),
			wantErr: "attribute has tag 0x02, want 0x30"},
		{name: "attribute without values", body: b64(tlv(0x30, typ, tlv(0x31, tlv(0x30, oidDER(t, asn1.ObjectIdentifier{1, 2, 3}))), contentInfo(sig))),
			wantErr: "attribute 1.2.3 does not hold exactly one SET of values"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := ParseRequest([]byte(tt.body))
			if tt.wantErr != "" {
				var re *RequestError
				if !errors.As(err, &re) {
					t.Fatalf("err = %v (%T), want a *RequestError", err, err)
				}
				if !strings.Contains(re.Reason, tt.wantErr) {
					t.Fatalf("reason %q, want it to contain %q", re.Reason, tt.wantErr)
				}
				if !strings.HasPrefix(err.Error(), "authenticode request: ") {
					t.Fatalf("Error() = %q", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(r.Content, tt.content) || !bytes.Equal(r.Attributes, tt.attrs) {
				t.Fatalf("content %x attributes %x", r.Content, r.Attributes)
			}
			if back, err := reencode(r); err != nil || !bytes.Equal(back, r.DER) && tt.attrs == nil {
				t.Fatalf("DER %x does not re-encode: %v", r.DER, err)
			}
		})
	}
}

// reencode re-encodes a request through NewRequest and decodes it.
func reencode(r *Request) ([]byte, error) {
	return base64.StdEncoding.DecodeString(string(NewRequest(r.Content)))
}

func TestNewRequestRoundTrip(t *testing.T) {
	for _, n := range []int{1, 64, 127, 128, 256, 512, 70000} {
		content := bytes.Repeat([]byte{byte(n)}, n)
		body := NewRequest(content)
		if bytes.ContainsAny(body, "\r\n") {
			t.Fatal("NewRequest breaks lines")
		}
		r, err := ParseRequest(body)
		if n > MaxBodySize*3/4 {
			if err == nil {
				t.Fatalf("%d bytes: a body over MaxBodySize is accepted", n)
			}
			continue
		}
		if err != nil || !bytes.Equal(r.Content, content) {
			t.Fatalf("%d bytes: %v", n, err)
		}
	}
}

// TestOsslsigncodeRequest parses the body osslsigncode 2.9 posted for
// `sign -t`, captured by TestOsslsigncodeEndToEnd.
func TestOsslsigncodeRequest(t *testing.T) {
	body, err := os.ReadFile(filepath.Join("testdata", "osslsigncode-2.9.req"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(body, []byte("\n")) {
		t.Fatal("the capture should keep OpenSSL's line breaks")
	}
	r, err := ParseRequest(body)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Content) != 256 || r.Attributes != nil {
		t.Fatalf("content %d bytes, attributes %x: want an RSA-2048 signature and none", len(r.Content), r.Attributes)
	}
}

func FuzzParseRequest(f *testing.F) {
	for _, n := range []int{1, 71, 256, 512} {
		body := NewRequest(bytes.Repeat([]byte{0x5a}, n))
		f.Add(body)
		f.Add([]byte(wrapLines(string(body), 64, "\r\n") + "\x00"))
	}
	if b, err := os.ReadFile(filepath.Join("testdata", "osslsigncode-2.9.req")); err == nil {
		f.Add(b)
	}
	typ := oidDER(f, OIDCounterSignatureType)
	f.Add([]byte(b64(tlv(0x30, typ, tlv(0x31, tlv(0x30, oidDER(f, asn1.ObjectIdentifier{1, 2, 3}), tlv(0x31))),
		tlv(0x30, oidDER(f, oidData), tlv(0xa0, tlv(0x04, []byte{1, 2, 3})))))))
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := ParseRequest(body)
		if err != nil {
			var re *RequestError
			if !errors.As(err, &re) || re.Reason == "" {
				t.Fatalf("error is not a *RequestError with a reason: %v", err)
			}
			return
		}
		if len(r.Content) == 0 {
			t.Fatal("empty content accepted")
		}
		again, err := ParseRequest(NewRequest(r.Content))
		if err != nil || !bytes.Equal(again.Content, r.Content) {
			t.Fatalf("content does not survive NewRequest: %v", err)
		}
		if r.Attributes == nil && !bytes.Equal(again.DER, r.DER) {
			t.Fatalf("accepted DER is not canonical:\n in %x\nout %x", r.DER, again.DER)
		}
	})
}

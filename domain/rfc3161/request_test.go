package rfc3161

import (
	"bytes"
	"encoding/asn1"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// der builds DER from a hex-free description: tag, then content.
func tlv(tag byte, content ...[]byte) []byte {
	c := bytes.Join(content, nil)
	if len(c) < 128 {
		return append([]byte{tag, byte(len(c))}, c...)
	}
	return append([]byte{tag, 0x81, byte(len(c))}, c...)
}

func oidDER(t *testing.T, oid asn1.ObjectIdentifier) []byte {
	b, err := asn1.Marshal(oid)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseTimeStampReqRejects(t *testing.T) {
	sha256 := oidDER(t, OIDSHA256)
	md5 := oidDER(t, asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 5})
	null := []byte{0x05, 0x00}
	digest := bytes.Repeat([]byte{0xab}, 32)
	imprint := func(alg []byte, params []byte, d []byte) []byte {
		return tlv(0x30, tlv(0x30, alg, params), tlv(0x04, d))
	}
	v1 := []byte{0x02, 0x01, 0x01}
	good := tlv(0x30, v1, imprint(sha256, null, digest))
	tests := []struct {
		name string
		der  []byte
		want FailInfo
	}{
		{"garbage", []byte("hello"), BadDataFormat},
		{"empty", nil, BadDataFormat},
		{"truncated", good[:len(good)-1], BadDataFormat},
		{"trailing bytes", append(append([]byte{}, good...), 0), BadDataFormat},
		{"non-minimal length", append([]byte{0x30, 0x81, byte(len(good) - 2)}, good[2:]...), BadDataFormat},
		{"version 2", tlv(0x30, []byte{0x02, 0x01, 0x02}, imprint(sha256, null, digest)), BadRequest},
		{"md5", tlv(0x30, v1, imprint(md5, null, digest[:16])), BadAlg},
		{"unknown oid", tlv(0x30, v1, imprint(oidDER(t, asn1.ObjectIdentifier{1, 2, 3}), nil, digest)), BadAlg},
		{"params not null", tlv(0x30, v1, imprint(sha256, []byte{0x02, 0x01, 0x05}, digest)), BadAlg},
		{"wrong digest length", tlv(0x30, v1, imprint(sha256, null, digest[:20])), BadDataFormat},
		{"extensions", tlv(0x30, v1, imprint(sha256, null, digest), tlv(0xa0, tlv(0x30))), UnacceptedExtension},
		{"certReq false encoded", tlv(0x30, v1, imprint(sha256, null, digest), []byte{0x01, 0x01, 0x00}), BadDataFormat},
		{"non-minimal nonce", tlv(0x30, v1, imprint(sha256, null, digest), []byte{0x02, 0x02, 0x00, 0x01}), BadDataFormat},
		{"unknown trailing field", tlv(0x30, v1, imprint(sha256, null, digest), []byte{0x0c, 0x00}), BadDataFormat},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseTimeStampReq(tt.der)
			var rej *Rejection
			if !errors.As(err, &rej) {
				t.Fatalf("err = %v, want a Rejection", err)
			}
			if rej.FailInfo != tt.want {
				t.Fatalf("failInfo = %s, want %s (%s)", rej.FailInfo, tt.want, rej.Reason)
			}
		})
	}
	if _, err := ParseTimeStampReq(good); err != nil {
		t.Fatalf("the valid base request is refused: %v", err)
	}
}

func TestParseTimeStampReqKeepsNonceAndParams(t *testing.T) {
	sha256 := oidDER(t, OIDSHA256)
	digest := bytes.Repeat([]byte{1}, 32)
	for _, nonce := range [][]byte{{0x00, 0xff}, {0xff, 0x01}, bytes.Repeat([]byte{0x7f}, 33), {0x80}} {
		for _, params := range [][]byte{nil, {0x05, 0x00}} {
			der := tlv(0x30, []byte{2, 1, 1}, tlv(0x30, tlv(0x30, sha256, params), tlv(0x04, digest)), tlv(0x02, nonce), []byte{1, 1, 0xff})
			r, err := ParseTimeStampReq(der)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(r.Nonce, nonce) || !r.CertReq || r.MessageImprint.ParamsNULL != (params != nil) {
				t.Fatalf("parsed %+v", r)
			}
			back, err := r.Marshal()
			if err != nil || !bytes.Equal(back, der) {
				t.Fatalf("round trip differs: %x vs %x (%v)", back, der, err)
			}
		}
	}
}

func FuzzParseTimeStampReq(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*.tsq")
	for _, s := range seeds {
		b, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{0x30, 0x00})
	f.Fuzz(func(t *testing.T, der []byte) {
		r, err := ParseTimeStampReq(der)
		if err != nil {
			var rej *Rejection
			if !errors.As(err, &rej) {
				t.Fatalf("error is not a Rejection: %v", err)
			}
			return
		}
		back, err := r.Marshal()
		if err != nil {
			t.Fatalf("accepted request does not marshal: %v", err)
		}
		if !bytes.Equal(back, der) {
			t.Fatalf("round trip differs:\n in %x\nout %x", der, back)
		}
		again, err := ParseTimeStampReq(back)
		if err != nil || !bytes.Equal(again.MessageImprint.Raw, r.MessageImprint.Raw) || !bytes.Equal(again.Nonce, r.Nonce) {
			t.Fatalf("re-parse differs: %v", err)
		}
	})
}

func TestOpenSSLQueriesParse(t *testing.T) {
	seeds, _ := filepath.Glob("testdata/*.tsq")
	if len(seeds) < 4 {
		t.Fatalf("want 4 openssl seed queries, found %d", len(seeds))
	}
	for _, s := range seeds {
		b, _ := os.ReadFile(s)
		r, err := ParseTimeStampReq(b)
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		if back, _ := r.Marshal(); !bytes.Equal(back, b) {
			t.Fatalf("%s: round trip differs", s)
		}
	}
}

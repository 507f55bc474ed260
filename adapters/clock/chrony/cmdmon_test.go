package chrony

import (
	"encoding/binary"
	"encoding/hex"
	"math"
	"strings"
	"testing"
	"time"
)

// liveReply is chronyd 4.3's answer to trackingRequest(12345), captured on
// loopback: local reference 7F7F0101, stratum 7, leap normal, all Floats
// zero.
const liveReply = "0602000000210005000000000000000000003039000000000000000" +
	"07f7f0101000000000000000000000000000000000000000000070000000000006b06421e" +
	"1650c2d4000000000000000000000000000000000000000000000000000000000000000000000000"

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// encodeFloat is chrony's UTI_FloatHostToNetwork, for building replies.
func encodeFloat(x float64) uint32 {
	const expBits, coefBits = 7, 25
	const expMin, expMax = -(1 << (expBits - 1)), 1<<(expBits-1) - 1
	const coefMax = 1<<(coefBits-1) - 1
	neg := int64(0)
	if x < 0 {
		x, neg = -x, 1
	} else if !(x >= 0) {
		x = 0 // NaN
	}
	var exp, coef int64
	switch {
	case x < 1e-100:
	case x > 1e100:
		exp, coef = expMax, coefMax+neg
	default:
		exp = int64(math.Log(x)/math.Log(2)) + 1
		coef = int64(x*math.Pow(2, float64(-exp+coefBits)) + 0.5)
		for coef > coefMax+neg {
			coef >>= 1
			exp++
		}
		if exp > expMax {
			exp, coef = expMax, coefMax+neg
		} else if exp < expMin {
			if exp+coefBits >= expMin {
				coef >>= expMin - exp
				exp = expMin
			} else {
				exp, coef = 0, 0
			}
		}
	}
	if neg == 1 {
		coef = int64(uint32(-coef) << expBits >> expBits)
	}
	return uint32(exp)<<coefBits | uint32(coef)
}

// trackingReply builds a reply to request seq.
func trackingReply(seq uint32, refID uint32, stratum, leap uint16, correction, rootDelay, rootDisp float64) []byte {
	b := make([]byte, trackingReplyLen)
	b[0], b[1] = protoVersion, pktReply
	binary.BigEndian.PutUint16(b[4:], reqTracking)
	binary.BigEndian.PutUint16(b[6:], rpyTracking)
	binary.BigEndian.PutUint32(b[16:], seq)
	d := b[replyHeaderLen:]
	binary.BigEndian.PutUint32(d[0:], refID)
	binary.BigEndian.PutUint16(d[24:], stratum)
	binary.BigEndian.PutUint16(d[26:], leap)
	binary.BigEndian.PutUint32(d[40:], encodeFloat(correction))
	binary.BigEndian.PutUint32(d[68:], encodeFloat(rootDelay))
	binary.BigEndian.PutUint32(d[72:], encodeFloat(rootDisp))
	return b
}

func TestTrackingRequest(t *testing.T) {
	b := trackingRequest(0x01020304)
	want := "06010000" + "0021" + "0000" + "01020304" + "00000000" + "00000000" + strings.Repeat("00", trackingReplyLen-requestHeaderLen)
	if got := hex.EncodeToString(b); got != want {
		t.Errorf("trackingRequest =\n%s\nwant\n%s", got, want)
	}
	if len(b) != 104 {
		t.Errorf("request is %d bytes; chronyd 4.3 wants 104 (padded to the reply's length)", len(b))
	}
}

func TestDecodeFloat(t *testing.T) {
	tests := []struct {
		x    uint32
		want float64
	}{
		{0, 0},
		{0x04800000, 1},                     // 2^23 × 2^(2−25)
		{0x03000000, -1},                    // −2^24 × 2^(1−25)
		{0x02800000, 0.5},                   // 2^23 × 2^(1−25)
		{0x01ffffff, -1.0 / (1 << 25)},      // −1 × 2^(0−25)
		{0x7e000001, math.Ldexp(1, 63-25)},  // largest exponent
		{0x80000001, math.Ldexp(1, -64-25)}, // smallest exponent
	}
	for _, tt := range tests {
		if got := decodeFloat(tt.x); got != tt.want {
			t.Errorf("decodeFloat(%#08x) = %g, want %g", tt.x, got, tt.want)
		}
	}
	// Round trips through chrony's encoder, to its 24 bits of precision.
	for _, v := range []float64{1, -1, 0.5, 1e-9, -1e-9, 0.123456789, -0.3, 300, 16, 1e-6, 2.5e-5, 86400, -1e6} {
		got := decodeFloat(encodeFloat(v))
		if math.Abs(got-v) > math.Abs(v)/(1<<23) {
			t.Errorf("decodeFloat(encodeFloat(%g)) = %g", v, got)
		}
	}
}

func TestParseTracking(t *testing.T) {
	const seq = 0xdeadbeef
	good := trackingReply(seq, 0x7f000001, 2, 0, 0.25, 0.001, 0.0005)
	with := func(b []byte, edit func([]byte)) []byte {
		c := append([]byte(nil), b...)
		edit(c)
		return c
	}
	tests := []struct {
		name    string
		pkt     []byte
		seq     uint32
		want    tracking
		wantErr string // "" for none; errOtherReply's text to skip
	}{
		{"live chronyd 4.3", mustHex(t, liveReply), 12345, tracking{refID: 0x7f7f0101, stratum: 7}, ""},
		{"synchronised", good, seq, tracking{refID: 0x7f000001, stratum: 2, correction: 0.25, rootDelay: decodeFloat(encodeFloat(0.001)), rootDispersion: decodeFloat(encodeFloat(0.0005))}, ""},
		{"leap insert", trackingReply(seq, 1, 3, 1, 0, 0, 0), seq, tracking{refID: 1, stratum: 3, leap: 1}, ""},
		{"unsynchronised", trackingReply(seq, 0, 0, 3, 0, 0, 0), seq, tracking{leap: 3}, ""},
		{"longer than needed", append(append([]byte(nil), good...), 0, 0, 0, 0), seq, tracking{refID: 0x7f000001, stratum: 2, correction: 0.25, rootDelay: decodeFloat(encodeFloat(0.001)), rootDispersion: decodeFloat(encodeFloat(0.0005))}, ""},
		{"other sequence", good, seq + 1, tracking{}, errOtherReply.Error()},
		{"a request", with(good, func(b []byte) { b[1] = pktRequest }), seq, tracking{}, errOtherReply.Error()},
		{"other command", with(good, func(b []byte) { b[5] = 14 }), seq, tracking{}, errOtherReply.Error()},
		{"empty", nil, seq, tracking{}, "shorter than its 28-byte header"},
		{"header only", good[:replyHeaderLen], seq, tracking{}, "tracking reply of 28 bytes"},
		{"truncated", good[:trackingReplyLen-1], seq, tracking{}, "tracking reply of 103 bytes"},
		{"version 5", with(good, func(b []byte) { b[0] = 5 }), seq, tracking{}, "protocol version 5"},
		{"bad length status", with(good, func(b []byte) { b[9] = 19 }), seq, tracking{}, "bad packet length (status 19)"},
		{"unauthorised", with(good, func(b []byte) { b[9] = 2 }), seq, tracking{}, "not authorised (status 2)"},
		{"unknown status", with(good, func(b []byte) { b[9] = 99 }), seq, tracking{}, "error (status 99)"},
		{"other reply type", with(good, func(b []byte) { b[7] = 1 }), seq, tracking{}, "reply type 1"},
		{"leap status 4", with(good, func(b []byte) { b[replyHeaderLen+27] = 4 }), seq, tracking{}, "unknown leap status 4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseTracking(tt.pkt, tt.seq)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseTracking = %+v, %v; want an error with %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("parseTracking = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestSeconds(t *testing.T) {
	tests := []struct {
		s       float64
		want    time.Duration
		wantErr bool
	}{
		{0, 0, false},
		{1, time.Second, false},
		{-0.25, -250 * time.Millisecond, false},
		{1e-9, time.Nanosecond, false},
		{4e-10, 0, false},
		{9e9, 9e18, false},
		{1e10, 0, true},
		{-1e10, 0, true},
		{decodeFloat(0x7effffff), 0, true}, // the largest Float, 2^86 s
	}
	for _, tt := range tests {
		got, err := seconds(tt.s)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("seconds(%g) = %v, %v; want %v, error %v", tt.s, got, err, tt.want, tt.wantErr)
		}
	}
}

// FuzzParseTracking feeds the reply parser arbitrary datagrams: it must
// not panic, and what it accepts must be a tracking reply to the request.
func FuzzParseTracking(f *testing.F) {
	f.Add(mustHex(f, liveReply), uint32(12345))
	f.Add(trackingReply(7, 0x7f000001, 2, 0, 0.25, 0.001, 0.0005), uint32(7))
	f.Add(trackingReply(7, 0, 0, 3, -1e-3, 1e100, 1e100), uint32(7))
	f.Add([]byte{6, 2, 0, 0, 0, 0x21, 0, 1, 0, 19}, uint32(0))
	f.Add([]byte{}, uint32(0))
	f.Fuzz(func(t *testing.T, b []byte, seq uint32) {
		tr, err := parseTracking(b, seq)
		if err != nil {
			return
		}
		if len(b) < trackingReplyLen || b[0] != protoVersion || b[1] != pktReply ||
			binary.BigEndian.Uint32(b[16:]) != seq || binary.BigEndian.Uint16(b[8:]) != 0 {
			t.Fatalf("accepted %x", b)
		}
		if tr.leap > 3 {
			t.Fatalf("leap status %d accepted", tr.leap)
		}
		for _, v := range []float64{tr.correction, tr.rootDelay, tr.rootDispersion} {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				t.Fatalf("float %g from %x", v, b)
			}
			_, _ = seconds(v) // must not panic either
		}
	})
}

package events

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
)

var trickyStrings = []string{
	"", "plain", `quote " and \ backslash`, "<script>&amp;</script>", "\x00\x01\x1f\x7f",
	"\b\f\n\r\t", "é ü 漢字 🕰", "\u2028\u2029", "\xff\xfe invalid \xc3", "tsr-01a2b3",
}

func randomString(r *rand.Rand) string {
	if r.IntN(3) == 0 {
		return trickyStrings[r.IntN(len(trickyStrings))]
	}
	b := make([]byte, r.IntN(40))
	for i := range b {
		b[i] = byte(r.IntN(256))
	}
	return string(b)
}

// fill sets every field of the struct v points to, by reflection, so that
// a field added later is covered without touching this test.
func fill(t testing.TB, r *rand.Rand, v reflect.Value) {
	t.Helper()
	for i := range v.NumField() {
		f := v.Field(i)
		switch f.Kind() {
		case reflect.String:
			f.SetString(randomString(r))
		case reflect.Bool:
			f.SetBool(r.IntN(2) == 0)
		case reflect.Int, reflect.Int64:
			f.SetInt(r.Int64N(1<<40) - 1<<39)
		case reflect.Slice:
			if f.Type().Elem().Kind() == reflect.Struct {
				n := r.IntN(6)
				f.Set(reflect.MakeSlice(f.Type(), n, n))
				for j := range n {
					fill(t, r, f.Index(j))
				}
				continue
			}
			if f.Type().Elem().Kind() != reflect.Uint8 {
				t.Fatalf("field %s: no filler for %s", v.Type().Field(i).Name, f.Type())
			}
			if r.IntN(5) == 0 {
				f.SetBytes(nil)
			} else {
				b := make([]byte, r.IntN(700))
				for j := range b {
					b[j] = byte(r.IntN(256))
				}
				f.SetBytes(b)
			}
		case reflect.Struct:
			if f.Type() != reflect.TypeFor[time.Time]() {
				t.Fatalf("field %s: no filler for %s", v.Type().Field(i).Name, f.Type())
			}
			zone := time.FixedZone("", (r.IntN(48)-24)*1800)
			if r.IntN(2) == 0 {
				zone = time.UTC
			}
			at := time.Unix(r.Int64N(253402300799), r.Int64N(1e9)).In(zone)
			if r.IntN(4) == 0 {
				at = at.Truncate(time.Second)
			}
			f.Set(reflect.ValueOf(at))
		default:
			t.Fatalf("field %s: no filler for %s", v.Type().Field(i).Name, f.Type())
		}
	}
}

func TestHandEncodersMatchEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	covered := 0
	for _, typ := range Types() {
		e := New(typ)
		if _, ok := e.(jsonAppender); !ok {
			continue
		}
		covered++
		for range 2000 {
			v := reflect.New(reflect.TypeOf(e).Elem())
			fill(t, r, v.Elem())
			ev := v.Elem().Interface().(Event)
			want, err := json.Marshal(ev)
			if err != nil {
				t.Fatal(err)
			}
			got, err := ev.(jsonAppender).appendJSON(nil)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("%s:\n got %s\nwant %s", typ, got, want)
			}
		}
	}
	if covered < 4 {
		t.Fatalf("only %d event types have hand encoders; the four request events must", covered)
	}
	for range 2000 {
		var m Metadata
		fill(t, r, reflect.ValueOf(&m).Elem())
		want, _ := json.Marshal(m)
		if got := m.appendJSON(nil); !bytes.Equal(got, want) {
			t.Fatalf("metadata:\n got %s\nwant %s", got, want)
		}
	}
}

func TestAppendTimeRefusesWhatMarshalJSONRefuses(t *testing.T) {
	for _, at := range []time.Time{time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC)} {
		if _, err := appendTime(nil, at); err == nil {
			t.Errorf("%v encoded", at)
		}
		if _, err := at.MarshalJSON(); err == nil {
			t.Errorf("encoding/json accepts %v: relax appendTime to match", at)
		}
	}
}

func FuzzAppendString(f *testing.F) {
	for _, s := range trickyStrings {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		if got := appendString(nil, s); !bytes.Equal(got, want) {
			t.Fatalf("%q:\n got %s\nwant %s", s, got, want)
		}
	})
}

func BenchmarkEncodeRequestEvents(b *testing.B) {
	at := time.Date(2026, 11, 24, 21, 10, 1, 572064073, time.UTC)
	meta := Metadata{Node: "tsa-1", Service: "default"}
	token := bytes.Repeat([]byte{0x30, 0x82, 0x02, 0x9e}, 168)
	evs := []Event{
		TimestampRequested{Serial: "1a20f64ea6470f782a25aec98d22641", Service: "default", Path: "/tsa", Method: "POST",
			ContentType: "application/timestamp-query", Source: "127.0.0.1:51504", ReceivedAt: at,
			BodySHA256: "e830aec258be066ad975282596f471f5554ce9b902443d7d49cb59077f3a6480", BodySize: 67, Parsed: true,
			HashAlgorithm: "sha256", HashedMessage: "d716713b4f2934d0ad556e40d58b02c58d45de57dbdb2fd60f4bd713deb4ea12",
			Nonce: "0094e97437a0f3e076"},
		FilterDecided{Serial: "1a20f64ea6470f782a25aec98d22641", Filter: "hash-allow-list", Verdict: VerdictAccepted, Reason: "sha256 is allowed"},
		FilterDecided{Serial: "1a20f64ea6470f782a25aec98d22641", Filter: "policy", Verdict: VerdictAccepted, Reason: "no policy requested"},
		TimestampIssued{Serial: "1a20f64ea6470f782a25aec98d22641", GenTime: at, Policy: "1.3.6.1.4.1.32473.3161.1",
			Signer: "ddc8a5c95e1d25610daa5902beecf845d7b02f745a4ee18cc97591bb7af2f19e", Token: token},
	}
	b.ReportAllocs()
	for b.Loop() {
		for _, e := range evs {
			if _, err := Encode("01a20f64-ea64-7103-91fc-e1a04d5b6a10", "tsr-1a20f64ea6470f782a25aec98d22641", at, meta, e); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// TestEnvelopePartsMatchAppendEnvelope: the shared-parts encoder writes the
// bytes AppendEnvelope writes, for every registered type.
func TestEnvelopePartsMatchAppendEnvelope(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, typ := range Types() {
		for range 300 {
			v := reflect.New(reflect.TypeOf(New(typ)).Elem())
			if _, hand := New(typ).(jsonAppender); hand || typ == TypeTimestampForwarded {
				fill(t, r, v.Elem())
			}
			ev := v.Elem().Interface().(Event)
			var m Metadata
			fill(t, r, reflect.ValueOf(&m).Elem())
			stream, id := randomString(r), randomString(r)
			at := time.Unix(r.Int64N(253402300799), r.Int64N(1e9))
			want, err := AppendEnvelope(nil, id, stream, at, m, ev)
			if err != nil {
				t.Fatal(err)
			}
			p, err := NewEnvelopeParts(stream, at, m)
			if err != nil {
				t.Fatal(err)
			}
			got, err := p.Append(nil, id, ev)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("%s: %v\n got %s\nwant %s", typ, err, got, want)
			}
		}
	}
}

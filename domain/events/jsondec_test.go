package events

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// viaJSON decodes data into a fresh value of typ's struct with
// encoding/json: what every decoder is held to.
func viaJSON(typ string, data []byte) (Event, error) {
	p := New(typ)
	if err := json.Unmarshal(data, p); err != nil {
		return nil, err
	}
	return reflect.ValueOf(p).Elem().Interface().(Event), nil
}

func handTypes() []string {
	var out []string
	for typ := range handDecoders {
		out = append(out, typ)
	}
	slices.Sort(out)
	return out
}

// TestHandDecodersMatchEncodingJSON: what the encoders write, and what
// encoding/json writes compact or indented, decodes by hand to what
// encoding/json decodes, for random values of every field.
func TestHandDecodersMatchEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, typ := range handTypes() {
		for range 2000 {
			v := reflect.New(reflect.TypeOf(New(typ)).Elem())
			fill(t, r, v.Elem())
			ev := v.Elem().Interface().(Event)
			marshaled, err := json.Marshal(ev)
			if err != nil {
				t.Fatal(err)
			}
			indented, _ := json.MarshalIndent(ev, " ", "\t")
			inputs := [][]byte{marshaled, indented}
			if a, ok := ev.(jsonAppender); ok {
				b, err := a.appendJSON(nil)
				if err != nil {
					t.Fatal(err)
				}
				inputs = append(inputs, b)
			}
			want, err := viaJSON(typ, marshaled)
			if err != nil {
				t.Fatal(err)
			}
			for _, in := range inputs {
				got, err := DecodeData(typ, in)
				if err != nil {
					t.Fatalf("%s: %v\n%s", typ, err, in)
				}
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("%s:\n got %#v\nwant %#v\nfrom %s", typ, got, want, in)
				}
			}
		}
	}
	if len(handDecoders) < 7 {
		t.Fatalf("%d hand decoders: every event of a request must have one", len(handDecoders))
	}
}

// TestHandDecodersKnowEveryField: each hand decoder names every JSON
// member of its struct, so that a field added to a struct and its encoder
// is not silently left zero by the decoder (the random values above would
// catch it too, but this says which field).
func TestHandDecodersKnowEveryField(t *testing.T) {
	known := map[string]*fields{
		TypeTimestampRequested: &requestedFields, TypeFilterDecided: &filterFields, TypeFilterChainDecided: &chainFields,
		TypeTimestampIssued: &issuedFields, TypeTimestampRejected: &rejectedFields, TypeTimestampUndelivered: &undeliverdFields,
		TypeTimestampForwarded: &forwardedFields,
	}
	check := func(name string, typ reflect.Type, f *fields) {
		for i := range typ.NumField() {
			tag := strings.Split(typ.Field(i).Tag.Get("json"), ",")[0]
			if !slices.Contains(f.names, tag) {
				t.Errorf("%s: the decoder does not know %q", name, tag)
			}
		}
		if len(f.names) != typ.NumField() {
			t.Errorf("%s: %d names for %d fields", name, len(f.names), typ.NumField())
		}
	}
	for _, typ := range handTypes() {
		check(typ, reflect.TypeOf(New(typ)).Elem(), known[typ])
	}
	check("FilterDecision", reflect.TypeFor[FilterDecision](), &decisionFields)
	check("Envelope", reflect.TypeFor[Envelope](), &envelopeFields)
	check("Metadata", reflect.TypeFor[Metadata](), &metadataFields)
}

func TestDecodeEnvelopeMatchesEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, typ := range Types() {
		for range 200 {
			v := reflect.New(reflect.TypeOf(New(typ)).Elem())
			if _, hand := handDecoders[typ]; hand {
				fill(t, r, v.Elem())
			}
			var m Metadata
			fill(t, r, reflect.ValueOf(&m).Elem())
			at := time.Unix(r.Int64N(253402300799), r.Int64N(1e9))
			payload, err := AppendEnvelope(nil, randomString(r), randomString(r), at, m, v.Elem().Interface().(Event))
			if err != nil {
				t.Fatal(err)
			}
			var want Envelope
			if err := json.Unmarshal(payload, &want); err != nil {
				t.Fatal(err)
			}
			got, err := DecodeEnvelope(payload)
			if err != nil || !reflect.DeepEqual(got, want) {
				t.Fatalf("%s: %v\n got %#v\nwant %#v", typ, err, got, want)
			}
			data, err := DecodeData(typ, got.Data)
			if err != nil {
				t.Fatal(err)
			}
			if wantData, _ := viaJSON(typ, want.Data); !reflect.DeepEqual(data, wantData) {
				t.Fatalf("%s data:\n got %#v\nwant %#v", typ, data, wantData)
			}
		}
	}
}

// TestDecodeDataEdges: the corners of encoding/json the decoders keep.
func TestDecodeDataEdges(t *testing.T) {
	deep := func(n int) string {
		return `{"serial":"a","x":` + strings.Repeat("[", n) + strings.Repeat("]", n) + `}`
	}
	for _, tc := range []struct {
		name, typ, data string
	}{
		{"null data", TypeTimestampIssued, `null`},
		{"null members", TypeTimestampIssued, `{"serial":null,"genTime":null,"token":null,"clockUncertaintyNs":null}`},
		{"empty token", TypeTimestampIssued, `{"serial":"a","token":""}`},
		{"token escaped", TypeTimestampIssued, `{"token":"AAE\u0043\/w=="}`},
		{"token with escaped newline", TypeTimestampIssued, `{"token":"AAEC\n/w=="}`},
		{"token raw newline", TypeTimestampIssued, "{\"token\":\"AAEC\n/w==\"}"},
		{"token not base64", TypeTimestampIssued, `{"token":"AAEC/w="}`},
		{"token a number", TypeTimestampIssued, `{"token":12}`},
		{"keys folded", TypeTimestampIssued, `{"SERIAL":"a","ſerial":"b","Serial":"c","GENTIME":"2026-01-02T03:04:05Z"}`},
		{"kelvin", TypeTimestampRequested, `{"bodySize":1,"tlsClient":"x","TLSCLIENT":"y","tlsclient":"z","TLSClient":"w"}`},
		{"duplicate keys, last wins", TypeTimestampRejected, `{"serial":"a","serial":"b","httpStatus":1,"httpStatus":2}`},
		{"duplicate arrays", TypeFilterChainDecided, `{"decisions":[{"filter":"a","reason":"x"},{"filter":"b"},{"filter":"c","failInfo":"f"}],"decisions":[{"filter":"d"}],"decisions":[{},{},{}]}`},
		{"null array", TypeFilterChainDecided, `{"decisions":[{"filter":"a"}],"decisions":null}`},
		{"empty array", TypeFilterChainDecided, `{"decisions":[]}`},
		{"unknown members skipped", TypeTimestampRejected, `{"x":{"y":[1,2,{"z":null}],"w":"\u00e9"},"serial":"a","n":-1.5e+3}`},
		{"unknown member invalid", TypeTimestampRejected, `{"x":[1,2,}`},
		{"unknown member bad escape", TypeTimestampRejected, `{"x":"\q","serial":"a"}`},
		{"unknown member bad number", TypeTimestampRejected, `{"x":01}`},
		{"trailing data", TypeTimestampRejected, `{"serial":"a"} x`},
		{"white space", TypeTimestampRejected, " \t\n{ \"serial\" : \"a\" ,\r\"httpStatus\":\n200 } \n"},
		{"int as float", TypeTimestampRejected, `{"httpStatus":200.0}`},
		{"int overflow", TypeTimestampIssued, `{"clockUncertaintyNs":9223372036854775808}`},
		{"int min", TypeTimestampIssued, `{"clockUncertaintyNs":-9223372036854775808}`},
		{"minus zero", TypeTimestampIssued, `{"clockUncertaintyNs":-0}`},
		{"string for an int", TypeTimestampIssued, `{"clockUncertaintyNs":"1"}`},
		{"bool", TypeTimestampRequested, `{"parsed":true,"certReq":false,"parsed":null}`},
		{"bool misspelt", TypeTimestampRequested, `{"parsed":tru}`},
		{"time with an offset", TypeTimestampIssued, `{"genTime":"2026-01-02T03:04:05.123+01:00"}`},
		{"time lower case", TypeTimestampIssued, `{"genTime":"2026-01-02t03:04:05z"}`},
		{"time too precise", TypeTimestampIssued, `{"genTime":"2026-01-02T03:04:05.1234567891Z"}`},
		{"time leap second", TypeTimestampIssued, `{"genTime":"2026-12-31T23:59:60Z"}`},
		{"time 29 February", TypeTimestampIssued, `{"genTime":"2100-02-29T00:00:00Z"}`},
		{"time escaped", TypeTimestampIssued, `{"genTime":"2026-01-02T03:04:05\u005a"}`},
		{"time a number", TypeTimestampIssued, `{"genTime":1}`},
		{"invalid utf-8", TypeTimestampIssued, "{\"serial\":\"a\xffb\",\"client\":\"\xc3\"}"},
		{"invalid utf-8 key", TypeTimestampIssued, "{\"seri\xffal\":\"a\"}"},
		{"control character", TypeTimestampIssued, "{\"serial\":\"a\x01\"}"},
		{"unterminated", TypeTimestampIssued, `{"serial":"abc`},
		{"not an object", TypeTimestampIssued, `[]`},
		{"empty", TypeTimestampIssued, ``},
		{"depth 10000", TypeTimestampIssued, deep(9998)},
		{"depth 10001", TypeTimestampIssued, deep(9999)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkDecode(t, tc.typ, []byte(tc.data))
		})
	}
}

// checkDecode holds DecodeData to encoding/json on data: both refuse it,
// or both accept it with the same value.
func checkDecode(t *testing.T, typ string, data []byte) {
	t.Helper()
	want, werr := viaJSON(typ, data)
	got, err := DecodeData(typ, data)
	if (err != nil) != (werr != nil) {
		t.Fatalf("%s %q: error %v, encoding/json: %v", typ, data, err, werr)
	}
	if err == nil && !reflect.DeepEqual(got, want) {
		t.Fatalf("%s %q:\n got %#v\nwant %#v", typ, data, got, want)
	}
}

func FuzzDecodeData(f *testing.F) {
	types := handTypes()
	for i, typ := range types {
		for _, e := range samplesOf(f, typ) {
			b, err := json.Marshal(e)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(uint8(i), b)
		}
	}
	f.Add(uint8(0), []byte(`{"decisions":[{"filter":"a"},{"Filter":"b","x":[{}]}],"DECISIONS":[]}`))
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		checkDecode(t, types[int(which)%len(types)], data)
	})
}

func FuzzDecodeEnvelope(f *testing.F) {
	at := time.Date(2026, 11, 22, 16, 7, 45, 123456000, time.UTC)
	for _, typ := range handTypes() {
		for _, e := range samplesOf(f, typ) {
			b, err := AppendEnvelope(nil, "01938d2e-6c4b-7e2a-9f1d-3b5c7a9e1f20", "tsr-1a", at, Metadata{Node: "n", Service: "s"}, e)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	f.Add([]byte(`{"type":"x","data":null,"metadata":null,"Metadata":{"NODE":"n"}}`))
	f.Fuzz(func(t *testing.T, payload []byte) {
		var want Envelope
		werr := json.Unmarshal(payload, &want)
		got, err := DecodeEnvelope(payload)
		if (err != nil) != (werr != nil) {
			t.Fatalf("%q: error %v, encoding/json: %v", payload, err, werr)
		}
		if err == nil && !reflect.DeepEqual(got, want) {
			t.Fatalf("%q:\n got %#v\nwant %#v", payload, got, want)
		}
	})
}

// samplesOf are a few values of typ, for fuzzing seeds.
func samplesOf(t testing.TB, typ string) []Event {
	r := rand.New(rand.NewPCG(uint64(len(typ)), 9))
	var out []Event
	for range 3 {
		v := reflect.New(reflect.TypeOf(New(typ)).Elem())
		fill(t, r, v.Elem())
		out = append(out, v.Elem().Interface().(Event))
	}
	return out
}

func BenchmarkDecodeRequestEvents(b *testing.B) {
	at := time.Date(2026, 11, 24, 21, 10, 1, 572064073, time.UTC)
	meta := Metadata{Node: "tsa-1", Service: "default"}
	token := bytes.Repeat([]byte{0x30, 0x82, 0x02, 0x9e}, 168)
	serial := "1a20f64ea6470f782a25aec98d22641"
	var payloads [][]byte
	var types []string
	for _, e := range []Event{
		TimestampRequested{Serial: serial, Service: "default", Path: "/tsa", Method: "POST",
			ContentType: "application/timestamp-query", Source: "127.0.0.1:51504", ReceivedAt: at,
			BodySHA256: "e830aec258be066ad975282596f471f5554ce9b902443d7d49cb59077f3a6480", BodySize: 67, Parsed: true,
			HashAlgorithm: "sha256", HashedMessage: "d716713b4f2934d0ad556e40d58b02c58d45de57dbdb2fd60f4bd713deb4ea12",
			Nonce: "0094e97437a0f3e076"},
		FilterChainDecided{Serial: serial, Rule: "default", Chain: "default", Decisions: []FilterDecision{
			{Filter: "hash-allow-list", Verdict: VerdictAccepted, Reason: "sha256 is allowed"},
			{Filter: "policy", Verdict: VerdictAccepted, Reason: "no policy requested"}}},
		TimestampIssued{Serial: serial, GenTime: at, Policy: "1.3.6.1.4.1.32473.3161.1",
			Signer: "ddc8a5c95e1d25610daa5902beecf845d7b02f745a4ee18cc97591bb7af2f19e", Token: token},
	} {
		p, err := AppendEnvelope(nil, "01a20f64-ea64-7103-91fc-e1a04d5b6a10", "tsr-"+serial, at, meta, e)
		if err != nil {
			b.Fatal(err)
		}
		payloads, types = append(payloads, p), append(types, e.EventType())
	}
	b.ReportAllocs()
	for b.Loop() {
		for i, p := range payloads {
			env, err := DecodeEnvelope(p)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := DecodeData(types[i], env.Data); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// checkDecodeEvent holds DecodeEvent to DecodeEnvelope and DecodeData.
func checkDecodeEvent(t *testing.T, typ string, payload []byte) {
	t.Helper()
	env, e, err := DecodeEvent(typ, payload)
	wantEnv, werr := DecodeEnvelope(payload)
	var want Event
	if werr == nil {
		want, werr = DecodeData(typ, wantEnv.Data)
	}
	if (err != nil) != (werr != nil) {
		t.Fatalf("%s %q: error %v, apart: %v", typ, payload, err, werr)
	}
	if err == nil && (!reflect.DeepEqual(env, wantEnv) || !reflect.DeepEqual(e, want)) {
		t.Fatalf("%s %q:\n got %#v %#v\nwant %#v %#v", typ, payload, env, e, wantEnv, want)
	}
}

func TestDecodeEvent(t *testing.T) {
	r := rand.New(rand.NewPCG(10, 11))
	for _, typ := range Types() {
		for range 100 {
			v := reflect.New(reflect.TypeOf(New(typ)).Elem())
			if _, hand := handDecoders[typ]; hand {
				fill(t, r, v.Elem())
			}
			payload, err := AppendEnvelope(nil, "01938d2e-6c4b-7e2a-9f1d-3b5c7a9e1f20", "s", time.Unix(r.Int64N(1e10), 0), Metadata{Node: "n"}, v.Elem().Interface().(Event))
			if err != nil {
				t.Fatal(err)
			}
			checkDecodeEvent(t, typ, payload)
		}
	}
	for _, p := range []string{
		`{"type":"x"}`, `{"data":null}`, `{"data":{"serial":1},"data":{"serial":"a"}}`, `{"data":{"serial":"a"},"data":{"genTime":"2026-01-02T03:04:05Z"}}`,
		`{"data":{"serial":"a"},"data":{"serial":1}}`, `{"data":{"serial":"a",}}`, `{"data":{"token":"AA=="}} x`, `{"DATA":{"serial":"b"}}`,
	} {
		checkDecodeEvent(t, TypeTimestampIssued, []byte(p))
		checkDecodeEvent(t, TypeClockSampled, []byte(p))
	}
}

func FuzzDecodeEvent(f *testing.F) {
	types := Types()
	slices.Sort(types)
	at := time.Date(2026, 11, 22, 16, 7, 45, 123456000, time.UTC)
	for i, typ := range types {
		if _, hand := handDecoders[typ]; !hand {
			continue
		}
		for _, e := range samplesOf(f, typ) {
			b, err := AppendEnvelope(nil, "01938d2e-6c4b-7e2a-9f1d-3b5c7a9e1f20", "tsr-1a", at, Metadata{Node: "n", Service: "s"}, e)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(uint8(i), b)
		}
	}
	f.Fuzz(func(t *testing.T, which uint8, payload []byte) {
		checkDecodeEvent(t, types[int(which)%len(types)], payload)
	})
}

func BenchmarkDecodeEvent(b *testing.B) {
	at := time.Date(2026, 11, 24, 21, 10, 1, 572064073, time.UTC)
	serial := "1a20f64ea6470f782a25aec98d22641"
	e := TimestampIssued{Serial: serial, GenTime: at, Policy: "1.3.6.1.4.1.32473.3161.1",
		Signer: "ddc8a5c95e1d25610daa5902beecf845d7b02f745a4ee18cc97591bb7af2f19e", Token: bytes.Repeat([]byte{0x30, 0x82, 0x02, 0x9e}, 168)}
	p, err := AppendEnvelope(nil, "01a20f64-ea64-7103-91fc-e1a04d5b6a10", "tsr-"+serial, at, Metadata{Node: "tsa-1", Service: "default"}, e)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("one pass", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := DecodeEvent(TypeTimestampIssued, p); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("envelope then data", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			env, err := DecodeEnvelope(p)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := DecodeData(TypeTimestampIssued, env.Data); err != nil {
				b.Fatal(err)
			}
		}
	})
}

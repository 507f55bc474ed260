package httpapi_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chronolog/chronolog/adapters/eventstore/sqlite"
	"github.com/chronolog/chronolog/domain/events"
	"github.com/chronolog/chronolog/domain/eventstore"
	"github.com/chronolog/chronolog/domain/tsa"
)

// slowRecorder holds every append back a while before the real store takes
// it: long enough for a client to hang up mid-request.
type slowRecorder struct {
	*sqlite.Store
	delay time.Duration
}

func (s slowRecorder) Append(ctx context.Context, stream string, exp eventstore.ExpectedState, evs ...eventstore.EventData) (eventstore.AppendResult, error) {
	time.Sleep(s.delay)
	return s.Store.Append(ctx, stream, exp, evs...)
}

func newSlowServer(t *testing.T, delay time.Duration) (*httptest.Server, *sqlite.Store) {
	t.Helper()
	return newServerWith(t, func(s *sqlite.Store) tsa.Recorder { return slowRecorder{s, delay} })
}

// waitTypes waits until the store holds one request stream and returns its
// event types.
func waitTypes(t *testing.T, store *sqlite.Store, last string) []string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		recs, err := store.ReadAll(context.Background(), 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		var types []string
		for _, r := range recs {
			types = append(types, r.Type)
		}
		if len(types) > 0 && types[len(types)-1] == last {
			return types
		}
		if time.Now().After(deadline) {
			t.Fatalf("the record holds %v, want a request ending in %s", types, last)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func metric(t *testing.T, srv *httptest.Server, name string) string {
	t.Helper()
	res, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return v
		}
	}
	t.Fatalf("no %s in /metrics", name)
	return ""
}

// A client that hangs up while its request is handled does not take the
// record with it: the request comes to its true outcome (the token is
// issued and recorded), the answer's fate is recorded after it, and the
// metrics say the same.
func TestHangUpKeepsTheRecord(t *testing.T) {
	srv, store := newSlowServer(t, 300*time.Millisecond)
	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	q := validQuery(t)
	fmt.Fprintf(c, "POST /tsa HTTP/1.1\r\nHost: x\r\nContent-Type: application/timestamp-query\r\nContent-Length: %d\r\n\r\n%s", len(q), q)
	time.Sleep(50 * time.Millisecond)
	c.Close()
	got := waitTypes(t, store, events.TypeTimestampUndelivered)
	want := []string{events.TypeTimestampRequested, events.TypeFilterChainDecided, events.TypeTimestampIssued, events.TypeTimestampUndelivered}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("recorded %v, want %v", got, want)
	}
	for name, want := range map[string]string{
		`chronolog_timestamps_total{outcome="granted"}`: "1", `chronolog_timestamps_total{outcome="rejected"}`: "0",
		"chronolog_unrecorded_total": "0", "chronolog_undelivered_total": "1",
	} {
		if v := metric(t, srv, name); v != want {
			t.Errorf("%s = %s, want %s", name, v, want)
		}
	}
}

// A client that hangs up in the middle of its body is refused, and the
// refusal is on the record with what arrived.
func TestHangUpMidBodyIsRecorded(t *testing.T) {
	srv, store := newSlowServer(t, 100*time.Millisecond)
	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "POST /tsa HTTP/1.1\r\nHost: x\r\nContent-Type: application/timestamp-query\r\nContent-Length: 100\r\n\r\n0123456789")
	time.Sleep(50 * time.Millisecond)
	c.Close()
	got := waitTypes(t, store, events.TypeTimestampUndelivered)
	want := []string{events.TypeTimestampRequested, events.TypeTimestampRejected, events.TypeTimestampUndelivered}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("recorded %v, want %v", got, want)
	}
	recs, _ := store.ReadAll(context.Background(), 0, 10)
	_, e, err := events.Decode(recs[0].Payload)
	if err != nil {
		t.Fatal(err)
	}
	if req := e.(*events.TimestampRequested); req.BodySize != 10 {
		t.Errorf("recorded body size %d, want the 10 bytes that arrived", req.BodySize)
	}
	_, e, _ = events.Decode(recs[1].Payload)
	if rej := e.(*events.TimestampRejected); rej.Status != "refused" || rej.Refusal != "incomplete" || !strings.Contains(rej.Reason, "body could not be read") {
		t.Errorf("recorded %+v", rej)
	}
	if v := metric(t, srv, `chronolog_timestamps_total{outcome="refused"}`); v != "1" {
		t.Errorf("refused = %s, want 1", v)
	}
}

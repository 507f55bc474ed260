package httpapi_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/chronolog/chronolog/adapters/clock/system"
	"github.com/chronolog/chronolog/adapters/eventstore/sqlite"
	"github.com/chronolog/chronolog/adapters/httpapi"
	"github.com/chronolog/chronolog/adapters/ids"
	"github.com/chronolog/chronolog/domain/rfc3161"
	"github.com/chronolog/chronolog/domain/tsa"
	"github.com/chronolog/chronolog/internal/testpki"
)

// testSigner is a token signer with a throwaway CA's TSA certificate.
func testSigner(t *testing.T) *rfc3161.TokenSigner {
	t.Helper()
	leaf := testpki.New(t).TSA(t, testpki.Subject("httpapi test TSA"))
	signer, err := rfc3161.NewTokenSigner(rfc3161.SigningIdentity{Signer: leaf.Key, Certificate: leaf.Cert})
	if err != nil {
		t.Fatal(err)
	}
	return signer
}

// newServer wires the real service to a real SQLite store.
func newServer(t *testing.T) (*httptest.Server, *sqlite.Store) {
	t.Helper()
	return newServerWith(t, func(s *sqlite.Store) tsa.Recorder { return s })
}

// newServerWith records through what wrap makes of the store.
func newServerWith(t *testing.T, wrap func(*sqlite.Store) tsa.Recorder) (*httptest.Server, *sqlite.Store) {
	t.Helper()
	signer := testSigner(t)
	store, err := sqlite.New(context.Background(), sqlite.Config{Path: filepath.Join(t.TempDir(), "events.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc, err := tsa.New(tsa.Config{Name: "default", Policy: []int{1, 3, 6, 1, 4, 1, 32473, 3161, 1}},
		tsa.Ports{Clock: system.Clock{}, Serials: ids.Source{}, IDs: ids.Source{}, Rand: rand.Reader, Signer: signer, Recorder: wrap(store), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	h, err := httpapi.New(httpapi.Config{Routes: httpapi.Routes{"/tsa": svc}, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv, store
}

func validQuery(t *testing.T) []byte {
	q, err := rfc3161.NewTimeStampReq(rfc3161.SHA256, make([]byte, 32), big.NewInt(7), nil, true)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := q.Marshal()
	return der
}

func TestTransport(t *testing.T) {
	srv, store := newServer(t)
	tests := []struct {
		name, method, contentType string
		body                      []byte
		status                    int
	}{
		{"granted", "POST", "application/timestamp-query", validQuery(t), 200},
		{"rejection is still 200", "POST", "application/timestamp-query", []byte("junk"), 200},
		{"GET", "GET", "", nil, 405},
		{"PUT", "PUT", "application/timestamp-query", validQuery(t), 405},
		{"wrong type", "POST", "application/json", validQuery(t), 415},
		{"no type", "POST", "", validQuery(t), 415},
		{"too large", "POST", "application/timestamp-query", bytes.Repeat([]byte{0}, httpapi.DefaultMaxBody+1), 413},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, srv.URL+"/tsa", bytes.NewReader(tt.body))
			if tt.contentType != "" {
				req.Header.Set("Content-Type", tt.contentType)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != tt.status {
				t.Fatalf("HTTP %d, want %d", res.StatusCode, tt.status)
			}
			if tt.status == 200 {
				if ct := res.Header.Get("Content-Type"); ct != httpapi.ReplyType {
					t.Fatalf("Content-Type %q", ct)
				}
				if cl := res.Header.Get("Content-Length"); cl != strconv.Itoa(len(body)) {
					t.Fatalf("Content-Length %q for %d bytes", cl, len(body))
				}
			}
		})
	}
	all, err := store.ReadAll(context.Background(), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	streams := map[string]bool{}
	for _, e := range all {
		streams[e.Stream] = true
	}
	if len(streams) != len(tests) {
		t.Fatalf("%d request streams recorded, want one per request (%d)", len(streams), len(tests))
	}
}

// TestClosedStoreFailsClosed: with the real store unable to append, the
// client gets systemFailure and no token.
func TestClosedStoreFailsClosed(t *testing.T) {
	srv, store := newServer(t)
	store.Close()
	res, err := http.Post(srv.URL+"/tsa", httpapi.QueryType, bytes.NewReader(validQuery(t)))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	resp, err := rfc3161.ParseTimeStampResp(body)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 200 || resp.Token != nil || resp.FailInfo == nil || *resp.FailInfo != rfc3161.SystemFailure {
		t.Fatalf("HTTP %d, %+v: want systemFailure without a token", res.StatusCode, resp)
	}
}

// BenchmarkTimestamp measures the whole path over loopback HTTP: parse,
// filters, sign, record durably, answer. Client and server share the CPUs.
func BenchmarkTimestamp(b *testing.B) {
	t := &testing.T{}
	srv, _ := newServer(t)
	defer srv.Close()
	der := validQuery(t)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 128}}
	b.SetParallelism(32)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			res, err := client.Post(srv.URL+"/tsa", httpapi.QueryType, bytes.NewReader(der))
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "tokens/s")
}

package httpapi

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/chronolog/chronolog/domain/tsa"
)

// seen is a service that remembers what the transport handed it. A fake
// is enough here: the test is of the routing, not of the service.
type seen struct {
	name         string
	authenticode bool
	last         tsa.Request
	via          string
}

func (s *seen) Name() string { return s.name }
func (s *seen) Handle(ctx context.Context, r tsa.Request) tsa.Outcome {
	if r.Protocol == tsa.ProtocolAuthenticode && !s.authenticode {
		return s.Refuse(ctx, r, tsa.RefusedMediaType, "")
	}
	s.last, s.via = r, r.Protocol
	return tsa.Outcome{Kind: tsa.Granted, Protocol: r.Protocol, Token: []byte{0x30, 0}, Recorded: true}
}
func (s *seen) Refuse(_ context.Context, r tsa.Request, refusal tsa.Refusal, _ string) tsa.Outcome {
	s.last, s.via = r, "refused"
	return tsa.Outcome{Kind: tsa.Refused, Refusal: refusal, Recorded: true}
}
func (s *seen) Undelivered(context.Context, string, string) error { return nil }

// switchable is a router whose routes a test replaces, as a reload does.
type switchable struct{ atomic.Pointer[Routes] }

func (s *switchable) Route(path string) (Service, bool) { return s.Load().Route(path) }

func TestDispatch(t *testing.T) {
	a := &seen{name: "a", authenticode: true}
	b := &seen{name: "b"}
	sw := &switchable{}
	sw.Store(&Routes{"/a": a, "/b": b})
	h, err := New(Config{Routes: sw})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path, ct, auth string
		svc                  *seen
		status               int
		via, replyType       string
	}{
		{"rfc3161", "/a", QueryType, "", a, 200, "rfc3161", ReplyType},
		{"authenticode where enabled", "/a", "application/octet-stream", "", a, 200, "authenticode", "application/octet-stream"},
		{"authenticode where not enabled", "/b", "application/octet-stream", "", b, 415, "refused", ""},
		{"other content type", "/a", "text/plain", "", a, 415, "refused", ""},
		{"bearer passed on", "/b", QueryType, "Bearer k-123", b, 200, "rfc3161", ReplyType},
		{"bearer scheme any case", "/b", QueryType, "bEaReR k-456", b, 200, "rfc3161", ReplyType},
		{"unknown path", "/c", QueryType, "", nil, 404, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPost, tt.path, strings.NewReader("x"))
			req.Header.Set("Content-Type", tt.ct)
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d", rec.Code, tt.status)
			}
			if tt.svc == nil {
				return
			}
			if tt.svc.via != tt.via || tt.svc.last.Transport != "http" {
				t.Fatalf("handled via %q (transport %q), want %q", tt.svc.via, tt.svc.last.Transport, tt.via)
			}
			if tt.replyType != "" && rec.Header().Get("Content-Type") != tt.replyType {
				t.Fatalf("content type %q", rec.Header().Get("Content-Type"))
			}
			if tt.auth != "" && tt.svc.last.Bearer != tt.auth[7:] {
				t.Fatalf("bearer %q", tt.svc.last.Bearer)
			}
		})
	}

	// The router is asked at each request: what a reload puts in force
	// is what the next request finds.
	sw.Store(&Routes{"/c": b})
	for path, want := range map[string]int{"/a": 404, "/c": 200} {
		req := httptest.NewRequest(http.MethodPost, path, strings.NewReader("x"))
		req.Header.Set("Content-Type", QueryType)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != want {
			t.Errorf("%s after reload: %d, want %d", path, rec.Code, want)
		}
	}
	if _, err := New(Config{}); err == nil {
		t.Error("a handler without routes is made")
	}
}

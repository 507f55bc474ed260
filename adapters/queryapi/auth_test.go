package queryapi

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestBearerTokensAndRoles(t *testing.T) {
	digest := func(s string) string { sum := sha256.Sum256([]byte(s)); return "sha256:" + hex.EncodeToString(sum[:]) }
	h, err := New([]Token{{Name: "a", SHA256: digest("chl_a"), Roles: []string{"auditor"}}, {Name: "b", SHA256: digest("chl_b"), Roles: []string{"billing", "operator"}}},
		[]Route{{"GET /api/v1/x", []string{"auditor", "operator"}, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(204) }}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		header string
		want   int
	}{
		{"", 401}, {"Bearer ", 401}, {"Bearer chl_c", 401}, {"Basic chl_a", 401}, {"Bearer chl_a", 204}, {"Bearer chl_b", 204},
	} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, "/api/v1/x", nil)
		if tc.header != "" {
			req.Header.Set("Authorization", tc.header)
		}
		h.ServeHTTP(rec, req)
		if rec.Code != tc.want {
			t.Errorf("%q: %d, want %d", tc.header, rec.Code, tc.want)
		}
		if rec.Code == 401 && rec.Header().Get("WWW-Authenticate") == "" {
			t.Errorf("%q: 401 without WWW-Authenticate", tc.header)
		}
	}
	h2, _ := New([]Token{{Name: "c", SHA256: digest("chl_c"), Roles: []string{"billing"}}},
		[]Route{{"GET /api/v1/x", []string{"auditor"}, func(w http.ResponseWriter, _ *http.Request) {}}})
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/api/v1/x", nil)
	req.Header.Set("Authorization", "Bearer chl_c")
	h2.ServeHTTP(rec, req)
	if rec.Code != 403 || rec.Header().Get("Content-Type") != "application/problem+json" {
		t.Fatalf("a token without the role: %d %s", rec.Code, rec.Header().Get("Content-Type"))
	}
	if _, err := New([]Token{{Name: "x", SHA256: "chl_plain"}}, nil); err == nil {
		t.Fatal("a token in clear was accepted")
	}
}

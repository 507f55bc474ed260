// Package queryapi serves the read side under /api/v1/: the projections'
// read models (archive, billing, renewal-due, clock) and their lag, to
// bearer tokens with roles. It reads; it never writes the record.
package queryapi

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/chronolog/chronolog/domain/filter"
)

// Token is a bearer token admitted, by the SHA-256 digest of its text.
type Token struct {
	Name   string
	SHA256 string // "sha256:<hex>"
	Roles  []string
}

// Route is one endpoint and the roles any of which admits a caller.
type Route struct {
	Pattern string
	Roles   []string
	Handler http.HandlerFunc
}

// Handler authenticates every request, then checks its roles.
type Handler struct {
	mux    *http.ServeMux
	tokens map[[32]byte]Token
}

// New builds the handler for routes, admitting tokens.
func New(tokens []Token, routes []Route) (*Handler, error) {
	h := &Handler{mux: http.NewServeMux(), tokens: map[[32]byte]Token{}}
	for _, t := range tokens {
		d, err := filter.ParseAPIKeyHash(t.SHA256)
		if err != nil {
			return nil, fmt.Errorf("query API token %s: %w", t.Name, err)
		}
		h.tokens[d] = t
	}
	for _, r := range routes {
		h.mux.Handle(r.Pattern, h.guard(r))
	}
	return h, nil
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// guard answers 401 without a known bearer token and 403 without a role
// the route admits.
func (h *Handler) guard(rt Route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		bearer, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		t, known := h.tokens[sha256.Sum256([]byte(strings.TrimSpace(bearer)))]
		if !ok || !known {
			w.Header().Set("WWW-Authenticate", `Bearer realm="chronolog"`)
			problem(w, http.StatusUnauthorized, "a bearer token of the query API is needed")
			return
		}
		if !slices.ContainsFunc(t.Roles, func(role string) bool { return slices.Contains(rt.Roles, role) }) {
			problem(w, http.StatusForbidden, fmt.Sprintf("token %s lacks the role %s", t.Name, strings.Join(rt.Roles, " or ")))
			return
		}
		rt.Handler(w, r)
	})
}

// problem answers an RFC 9457 problem document.
func problem(w http.ResponseWriter, status int, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(struct {
		Status int    `json:"status"`
		Title  string `json:"title"`
		Detail string `json:"detail"`
	}{status, http.StatusText(status), detail})
}

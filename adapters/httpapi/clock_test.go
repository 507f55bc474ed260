package httpapi

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chronolog/chronolog/domain/clock"
)

func TestHealthAndMetricsReportTheClock(t *testing.T) {
	now := time.Now().UTC()
	for _, tc := range []struct {
		name    string
		a       clock.Assessment
		sampled bool
		status  int
		health  string
		metric  string
	}{
		{"not sampled yet", clock.Assessment{}, false, 503, "clock: not synchronised", "chronolog_clock_synchronised 0"},
		{"unsynchronised", clock.Assessment{At: now, Reason: "0 of 1 sources agree"}, true, 503, "clock: not synchronised: 0 of 1 sources agree", "chronolog_clock_synchronised 0"},
		{"synchronised", clock.Assessment{At: now, Synchronised: true, Bound: 1500 * time.Microsecond, Agreeing: 2, Sources: 3}, true, 200,
			"clock: synchronised within 1.5ms", "chronolog_clock_bound_seconds 0.0015"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := New(Config{Routes: Routes{"/tsa": &seen{name: "a"}}, Clock: func() (clock.Assessment, bool) { return tc.a, tc.sampled }})
			if err != nil {
				t.Fatal(err)
			}
			get := func(path string) (int, string) {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
				b, _ := io.ReadAll(rec.Result().Body)
				return rec.Code, string(b)
			}
			code, body := get("/healthz")
			if code != tc.status || !strings.Contains(body, tc.health) {
				t.Fatalf("healthz %d:\n%s", code, body)
			}
			if _, body = get("/metrics"); !strings.Contains(body, tc.metric+"\n") || !strings.Contains(body, "chronolog_clock_sample_age_seconds") {
				t.Fatalf("metrics lack %q:\n%s", tc.metric, body)
			}
		})
	}
}

package httpapi

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestOpenAPIDescribesEveryRoute keeps schemas/openapi.yaml and the
// served routes in step.
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	raw, err := os.ReadFile("../../schemas/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var documented []string
	for _, m := range regexp.MustCompile(`(?m)^  (/[^:]*):$`).FindAllStringSubmatch(string(raw), -1) {
		// The query API's routes are held to it by adapters/queryapi.
		if !strings.HasPrefix(m[1], "/api/") {
			documented = append(documented, m[1])
		}
	}
	served := []string{"/tsa", "/healthz", "/metrics", "/log/v1/tiles/{path}"}
	for p := range (&LogAPI{}).routes() {
		served = append(served, p)
	}
	slices.Sort(documented)
	slices.Sort(served)
	if !slices.Equal(documented, served) {
		t.Fatalf("openapi.yaml documents %v\nthe server serves %v", documented, served)
	}
}

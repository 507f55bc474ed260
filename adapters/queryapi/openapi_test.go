package queryapi

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestOpenAPIDescribesEveryRoute keeps schemas/openapi.yaml's /api/ paths
// and the routes served in step.
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	raw, err := os.ReadFile("../../schemas/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var documented, served []string
	for _, m := range regexp.MustCompile(`(?m)^  (/api/[^:]*):$`).FindAllStringSubmatch(string(raw), -1) {
		documented = append(documented, m[1])
	}
	for _, r := range Routes(Sources{}) {
		_, path, _ := strings.Cut(r.Pattern, " ")
		served = append(served, path)
	}
	slices.Sort(documented)
	slices.Sort(served)
	if !slices.Equal(documented, served) {
		t.Fatalf("openapi.yaml documents %v\nthe API serves %v", documented, served)
	}
}

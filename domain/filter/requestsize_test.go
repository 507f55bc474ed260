package filter

import (
	"testing"

	"github.com/chronolog/chronolog/domain/rfc3161"
)

func TestRequestSize(t *testing.T) {
	tests := []struct {
		name string
		max  int64
		size int64
		want verdict
	}{
		{"small", 1024, 60, accepts("within the limit of 1024 bytes")},
		{"at the limit", 1024, 1024, accepts("1024")},
		{"one over", 1024, 1025, denies(rfc3161.BadRequest, "1025 bytes, over this service's limit of 1024")},
		{"huge", 1024, 1 << 40, denies(rfc3161.BadRequest, "1099511627776 bytes")},
		{"nothing allowed", 0, 1, denies(rfc3161.BadRequest, "limit of 0")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := NewRequestSize(tt.max)
			if f.Name() != "request-size" {
				t.Fatal(f.Name())
			}
			check(t, f.Decide(Request{BodySize: tt.size}), tt.want)
		})
	}
}

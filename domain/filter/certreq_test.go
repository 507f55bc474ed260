package filter

import (
	"testing"

	"github.com/chronolog/chronolog/domain/rfc3161"
)

func TestCertReqForced(t *testing.T) {
	tests := []struct {
		name string
		q    *rfc3161.TimeStampReq
		want verdict
	}{
		{"client asked", query(nil, true), accepts("certReq true")},
		{"client did not ask", query(nil, false), accepts("certReq false")},
		{"no query", nil, accepts("certReq false")},
	}
	f := NewCertReqForced()
	if f.Name() != "cert-req" {
		t.Fatal(f.Name())
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := f.Decide(Request{Query: tt.q})
			check(t, d, tt.want)
			check(t, d, accepts("included"))
			if !d.ForceCertReq {
				t.Fatal("certificate not forced")
			}
		})
	}
	if res := (Chain{f}).Run(Request{Query: query(nil, false)}); !res.ForceCertReq {
		t.Fatal("the chain dropped ForceCertReq")
	}
}

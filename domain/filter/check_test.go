package filter

import (
	"strings"
	"testing"

	"github.com/chronolog/chronolog/domain/rfc3161"
)

// verdict is what a table expects of a decision: accepted or the failInfo
// of the denial, and a fragment the reason must contain.
type verdict struct {
	accepted bool
	failInfo rfc3161.FailInfo
	reason   string
}

func accepts(reason string) verdict { return verdict{accepted: true, reason: reason} }

func denies(f rfc3161.FailInfo, reason string) verdict { return verdict{failInfo: f, reason: reason} }

func check(t *testing.T, d Decision, want verdict) {
	t.Helper()
	switch {
	case d.Accepted != want.accepted:
		t.Fatalf("accepted %v (%q), want %v", d.Accepted, d.Reason, want.accepted)
	case d.Reason == "":
		t.Fatal("empty reason")
	case !strings.Contains(d.Reason, want.reason):
		t.Fatalf("reason %q does not say %q", d.Reason, want.reason)
	case !d.Accepted && d.FailInfo != want.failInfo:
		t.Fatalf("failInfo %s, want %s (%q)", d.FailInfo, want.failInfo, d.Reason)
	case !d.Accepted && (d.Identity != nil || d.ForceCertReq):
		t.Fatalf("a denial carries an identity or forces certReq: %+v", d)
	}
}

func query(nonce []byte, certReq bool) *rfc3161.TimeStampReq {
	return &rfc3161.TimeStampReq{Version: 1, Nonce: nonce, CertReq: certReq}
}

package e2e

import (
	"testing"

	"github.com/chronolog/chronolog/adapters/clock/ntp/ntptest"
)

// verifiedClock gives tsad a clock source (an NTP responder serving this
// machine's own time), so its tokens declare the accuracy the gate
// guarantees. Without one, tsad dev runs unverified and declares none.
func verifiedClock(t testing.TB) []string {
	t.Helper()
	r := ntptest.Start(t)
	return []string{"--clock", "ntp:" + r.Addr(), "--clock-period", "2s"}
}

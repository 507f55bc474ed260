package app

import (
	"log/slog"
	"time"

	"github.com/chronolog/chronolog/domain/clock"
	"github.com/chronolog/chronolog/domain/tsa"
)

// Wiring is what every service of a generation shares.
type Wiring struct {
	// Node names this server in the record; Crypto says who computes
	// signatures with a key file's key: auto, openssl or go.
	Node, Crypto string
	// WarnDays: a TSA certificate expiring within this many days is
	// warned of and recorded.
	WarnDays int
	// Retired maps the fingerprints of retired keys to the reason
	// (RetiredKeys reads them from the record).
	Retired  map[string]string
	Recorder tsa.Recorder
	// Gate holds every service to its declared accuracy; nil when the
	// clock runs unverified.
	Gate *clock.Gate
	Log  *slog.Logger
	// Now is when the generation is built: certificates are judged then.
	Now time.Time
}

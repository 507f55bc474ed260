package httpapi

import (
	"fmt"
	"io"
	"sync/atomic"

	"github.com/chronolog/chronolog/domain/tsa"
)

// Tally counts answers by the outcome the record gives them, so that
// /metrics agrees with the record: every answer counted under an outcome
// is a request recorded with it. Every transport of the server feeds the
// same Tally.
type Tally struct {
	granted, rejected, refused, forwarded atomic.Uint64
	unrecorded, undelivered               atomic.Uint64
}

// Answered counts one answer.
func (t *Tally) Answered(o tsa.Outcome) {
	if !o.Recorded {
		t.unrecorded.Add(1)
		return
	}
	switch o.Kind {
	case tsa.Granted:
		t.granted.Add(1)
	case tsa.Rejected, tsa.Failed:
		t.rejected.Add(1)
	case tsa.Refused:
		t.refused.Add(1)
	case tsa.Forwarded:
		t.forwarded.Add(1)
	}
}

// Undelivered counts an answer the client is known not to have received.
func (t *Tally) Undelivered() { t.undelivered.Add(1) }

func (t *Tally) write(w io.Writer) {
	fmt.Fprintf(w, "# HELP chronolog_timestamps_total Timestamp requests answered and recorded, by the outcome on the record.\n")
	fmt.Fprintf(w, "# TYPE chronolog_timestamps_total counter\n")
	for _, o := range []struct {
		name string
		n    *atomic.Uint64
	}{{"granted", &t.granted}, {"rejected", &t.rejected}, {"refused", &t.refused}, {"forwarded", &t.forwarded}} {
		fmt.Fprintf(w, "chronolog_timestamps_total{outcome=%q} %d\n", o.name, o.n.Load())
	}
	fmt.Fprintf(w, "# HELP chronolog_unrecorded_total Answers whose events could not be made durable (systemFailure, no token left, nothing on the record).\n")
	fmt.Fprintf(w, "# TYPE chronolog_unrecorded_total counter\n")
	fmt.Fprintf(w, "chronolog_unrecorded_total %d\n", t.unrecorded.Load())
	fmt.Fprintf(w, "# HELP chronolog_undelivered_total Answers the client did not receive: its connection closed before the answer was written, or writing failed.\n")
	fmt.Fprintf(w, "# TYPE chronolog_undelivered_total counter\n")
	fmt.Fprintf(w, "chronolog_undelivered_total %d\n", t.undelivered.Load())
}

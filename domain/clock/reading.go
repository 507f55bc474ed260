// Package clock judges whether the TSA's clock may be trusted: sources'
// readings become an Assessment (synchronised or not, and by how much the
// local clock may be off UTC), and the Gate admits a request only while
// that bound, grown by the drift since the sample, is within the service's
// declared accuracy. It does no I/O: readings are handed to it.
package clock

import "time"

// Leap is a leap-second warning as a source announced it: the leap takes
// place at the end of the current UTC day.
type Leap int

const (
	LeapNone Leap = iota
	// LeapInsert announces 23:59:60 at the end of the day.
	LeapInsert
	// LeapDelete announces that 23:59:59 is skipped at the end of the day.
	LeapDelete
	// LeapAlarm is NTP's leap indicator 3: the source is not synchronised.
	LeapAlarm
)

func (l Leap) String() string {
	switch l {
	case LeapNone:
		return "none"
	case LeapInsert:
		return "insert"
	case LeapDelete:
		return "delete"
	case LeapAlarm:
		return "alarm"
	}
	return "unknown"
}

// Source kinds.
const (
	SourceNTP    = "ntp"
	SourceChrony = "chrony"
	SourceKernel = "kernel"
)

// Reading is what one clock source said in one sampling round.
type Reading struct {
	// Source is the kind (SourceNTP, SourceChrony, SourceKernel); Name
	// tells which one: a server's host:port, chrony's command address or
	// socket, "adjtimex".
	Source string
	Name   string
	// At is the local time at which the answer arrived.
	At time.Time
	// Offset is the reference's time minus the local clock's: positive
	// when the local clock is behind.
	Offset time.Duration
	// RoundTrip is the NTP exchange's round-trip delay; zero otherwise.
	RoundTrip time.Duration
	// RootDistance is the source's own bound on how far its time may be
	// from UTC: for NTP, round trip/2 + root delay/2 + root dispersion;
	// for chrony, root delay/2 + root dispersion; for the kernel, its
	// maximum error.
	RootDistance time.Duration
	// EstimatedError is the kernel's estimated error; zero otherwise.
	EstimatedError time.Duration
	// Stratum is the NTP stratum (chrony's too); zero for the kernel.
	Stratum int
	Leap    Leap
	// Synchronised is the source's own claim: NTP leap indicator not 3
	// and stratum 1–15; chrony's leap status not "not synchronised"; the
	// kernel's STA_UNSYNC clear.
	Synchronised bool
	// ReferenceID is the NTP reference id (hex or ASCII), when known.
	ReferenceID string
	// Err is set when the source did not answer usefully; the fields
	// above are then zero, except Source, Name and At.
	Err string
}

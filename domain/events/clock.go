package events

import "time"

// Wire names of the clock-quality events.
const (
	TypeClockSampled        = "ClockSampled.v1"
	TypeClockSyncLost       = "ClockSyncLost.v1"
	TypeClockSyncRegained   = "ClockSyncRegained.v1"
	TypeLeapSecondAnnounced = "LeapSecondAnnounced.v1"
)

// ClockStream holds the clock's samples and state changes.
const ClockStream = "tsa-clock"

// ClockReading is what one source said in a sampling round. Durations are
// integer nanoseconds, so any language reads them exactly.
type ClockReading struct {
	// Source is ntp, chrony or kernel; Name the server, command address
	// or "adjtimex".
	Source string    `json:"source"`
	Name   string    `json:"name"`
	At     time.Time `json:"at"`
	// OffsetNs is the reference's time minus the local clock's.
	OffsetNs         int64  `json:"offsetNs"`
	RoundTripNs      int64  `json:"roundTripNs,omitempty"`
	RootDistanceNs   int64  `json:"rootDistanceNs"`
	EstimatedErrorNs int64  `json:"estimatedErrorNs,omitempty"`
	Stratum          int    `json:"stratum,omitempty"`
	Leap             string `json:"leap"`
	Synchronised     bool   `json:"synchronised"`
	ReferenceID      string `json:"referenceId,omitempty"`
	// Error is set when the source did not answer usefully.
	Error string `json:"error,omitempty"`
}

// ClockSampled records one sampling round and its judgement. Its event id
// is what TimestampIssued.ClockSample names.
type ClockSampled struct {
	At           time.Time `json:"at"`
	Synchronised bool      `json:"synchronised"`
	Reason       string    `json:"reason,omitempty"`
	// BoundNs is how far the local clock may be from UTC at At; OffsetNs
	// the median offset of the agreeing sources.
	BoundNs  int64 `json:"boundNs"`
	OffsetNs int64 `json:"offsetNs"`
	Agreeing int   `json:"agreeing"`
	Sources  int   `json:"sources"`
	Quorum   int   `json:"quorum"`
	// DriftPPM is the drift the gate adds per second of the sample's age.
	DriftPPM float64        `json:"driftPpm"`
	Leap     string         `json:"leap"`
	LeapAt   *time.Time     `json:"leapAt,omitempty"`
	Readings []ClockReading `json:"readings"`
}

func (ClockSampled) EventType() string { return TypeClockSampled }

// ClockSyncLost records that a service's declared accuracy stopped being
// met: from At on, its requests are answered timeNotAvailable.
type ClockSyncLost struct {
	Service    string `json:"service"`
	AccuracyNs int64  `json:"accuracyNs"`
	// Sample is the ClockSampled event that showed it; BoundNs its bound
	// (zero when the clock was not synchronised at all).
	Sample  string    `json:"sample"`
	BoundNs int64     `json:"boundNs"`
	Reason  string    `json:"reason"`
	At      time.Time `json:"at"`
}

func (ClockSyncLost) EventType() string { return TypeClockSyncLost }

// ClockSyncRegained records that a service's declared accuracy is met
// again, and for how long it was not.
type ClockSyncRegained struct {
	Service    string    `json:"service"`
	AccuracyNs int64     `json:"accuracyNs"`
	Sample     string    `json:"sample"`
	BoundNs    int64     `json:"boundNs"`
	At         time.Time `json:"at"`
	// LostAt is when it was lost (absent when the server started without
	// it); OutageNs the time between.
	LostAt   *time.Time `json:"lostAt,omitempty"`
	OutageNs int64      `json:"outageNs,omitempty"`
}

func (ClockSyncRegained) EventType() string { return TypeClockSyncRegained }

// LeapSecondAnnounced records a leap second the clock sources announced.
type LeapSecondAnnounced struct {
	// Leap is insert or delete; At the instant (the end of the UTC day).
	Leap   string    `json:"leap"`
	At     time.Time `json:"at"`
	Sample string    `json:"sample"`
	// Sources names the sources announcing it.
	Sources []string `json:"sources"`
	// Refused tells whether requests are refused within WindowNs of At.
	Refused  bool  `json:"refused"`
	WindowNs int64 `json:"windowNs"`
}

func (LeapSecondAnnounced) EventType() string { return TypeLeapSecondAnnounced }

package ntp

import (
	"testing"

	"github.com/beevik/ntp"

	"github.com/chronolog/chronolog/domain/clock"
)

func TestLeapOf(t *testing.T) {
	tests := []struct {
		li   ntp.LeapIndicator
		want clock.Leap
	}{
		{ntp.LeapNoWarning, clock.LeapNone},
		{ntp.LeapAddSecond, clock.LeapInsert},
		{ntp.LeapDelSecond, clock.LeapDelete},
		{ntp.LeapNotInSync, clock.LeapAlarm},
	}
	for _, tt := range tests {
		if got := leapOf(tt.li); got != tt.want {
			t.Errorf("leapOf(%d) = %v, want %v", tt.li, got, tt.want)
		}
	}
}

func TestReferenceID(t *testing.T) {
	tests := []struct {
		stratum uint8
		id      uint32
		want    string
	}{
		{1, 0x47505300, "GPS"},       // NUL-padded clock name
		{1, 0x4c4f434c, "LOCL"},      // four letters
		{0, 0x52415445, "RATE"},      // kiss code
		{1, 0x7f000001, "7F000001"},  // not printable: hex
		{1, 0, "00000000"},           // empty: hex
		{1, 0x00475053, "00475053"},  // leading NUL: hex
		{2, 0x4c4f434c, "4C4F434C"},  // an address above stratum 1, even if printable
		{3, 0xc0000201, "C0000201"},  // 192.0.2.1
		{16, 0x494e4954, "494E4954"}, // INIT at stratum 16: hex
	}
	for _, tt := range tests {
		if got := referenceID(tt.stratum, tt.id); got != tt.want {
			t.Errorf("referenceID(%d, %#x) = %q, want %q", tt.stratum, tt.id, got, tt.want)
		}
	}
}

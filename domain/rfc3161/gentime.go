package rfc3161

import (
	"fmt"
	"time"
)

// genTimeLayout is DER GeneralizedTime (X.690 §11.7): UTC, "Z", fractional
// seconds without trailing zeros and no '.' when whole.
const genTimeLayout = "20060102150405.999999999Z"

// FormatGeneralizedTime renders t in DER GeneralizedTime form.
func FormatGeneralizedTime(t time.Time) string { return t.UTC().Format(genTimeLayout) }

// ParseGeneralizedTime parses the strict DER form only.
func ParseGeneralizedTime(s string) (time.Time, error) {
	t, err := time.Parse(genTimeLayout, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("GeneralizedTime %q: %w", s, err)
	}
	if FormatGeneralizedTime(t) != s {
		return time.Time{}, fmt.Errorf("GeneralizedTime %q is not in DER form", s)
	}
	return t, nil
}

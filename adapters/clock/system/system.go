// Package system reads the machine's clock. Its quality is sampled and
// gated elsewhere (clock-quality events); this adapter only tells the time.
package system

import "time"

// Clock implements tsa.Clock with time.Now.
type Clock struct{}

// Now returns the current time in UTC.
func (Clock) Now() time.Time { return time.Now().UTC() }

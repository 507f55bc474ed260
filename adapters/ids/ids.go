// Package ids draws event ids and token serial numbers from UUIDv7
// (RFC 9562): time-ordered, with 74 random bits, so that serials drawn on
// different nodes do not collide and sort roughly by issue time. The event
// store is the final guard: a request stream is created with NoStream.
package ids

import (
	"fmt"
	"math/big"

	"github.com/google/uuid"
)

// Source implements tsa.SerialSource and tsa.IDSource.
type Source struct{}

// NewID returns a UUIDv7 string, or panics when the system's randomness
// fails — a TSA that cannot draw random bits must not go on.
func (Source) NewID() string {
	return uuid.Must(uuid.NewV7()).String()
}

// NextSerial returns a UUIDv7 read as a big-endian integer: 16 octets,
// positive (its leading bits are the Unix time in milliseconds).
func (Source) NextSerial() (*big.Int, error) {
	u, err := uuid.NewV7()
	if err != nil {
		return nil, fmt.Errorf("draw UUIDv7 serial: %w", err)
	}
	return new(big.Int).SetBytes(u[:]), nil
}

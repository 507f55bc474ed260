//go:build !linux

package kernel

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"time"

	"github.com/chronolog/chronolog/domain/clock"
)

// Source would read the kernel clock's state; adjtimex is Linux's.
type Source struct{}

// New returns a Source whose reads fail: adjtimex is Linux's.
func New() *Source { return &Source{} }

// Name is what readings are named.
func (s *Source) Name() string { return "adjtimex" }

// Read returns an error: there is no adjtimex on this system.
func (s *Source) Read(context.Context) (clock.Reading, error) {
	err := fmt.Errorf("kernel adjtimex: not on %s: %w", runtime.GOOS, errors.ErrUnsupported)
	return clock.Reading{Source: clock.SourceKernel, Name: s.Name(), At: time.Now(), Err: err.Error()}, err
}

// Package ntp samples one NTP server as a clock source: one Read is one
// client/server exchange (github.com/beevik/ntp), turned into a
// clock.Reading. It neither filters nor combines samples: judging them is
// the domain's work (domain/clock), so an answer is reported as the server
// gave it, or refused with the reason when the server says it cannot be
// used.
package ntp

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/beevik/ntp"

	"github.com/chronolog/chronolog/adapters/clock/internal/hostport"
	"github.com/chronolog/chronolog/domain/clock"
)

// DefaultPort is NTP's port, used when the server is given without one.
const DefaultPort = 123

// ErrInvalidAnswer marks an answer that arrived but must not be used: a
// malformed packet or one not answering our request, a kiss of death,
// stratum 0 or 16, leap indicator 3, a stale or too dispersed clock
// (beevik's Response.Validate). The wrapped chain also holds beevik's own
// sentinel (ntp.ErrKissOfDeath, ...).
var ErrInvalidAnswer = errors.New("invalid answer")

// Source asks one NTP server for the time. It holds no connection between
// reads, so it is safe for concurrent use.
type Source struct {
	addr    string        // host:port; dialled, and the readings' Name
	timeout time.Duration // bounds one exchange: resolution, send, wait
}

// New returns a Source for server, a host or host:port (an IPv6 address
// with a port in brackets); the port defaults to 123. timeout bounds each
// Read, on top of the deadline of Read's context.
func New(server string, timeout time.Duration) (*Source, error) {
	addr, err := hostport.Normalize(server, DefaultPort)
	if err != nil {
		return nil, fmt.Errorf("ntp source %q: %w", server, err)
	}
	if timeout <= 0 {
		return nil, fmt.Errorf("ntp source %s: timeout %v is not positive", addr, timeout)
	}
	return &Source{addr: addr, timeout: timeout}, nil
}

// Name is the server's host:port, as readings name it.
func (s *Source) Name() string { return s.addr }

// Read makes one exchange with the server. Without a usable answer (none
// within the timeout or before ctx ends, or an invalid one, see
// ErrInvalidAnswer) it returns an error and a Reading with only Source,
// Name, At and Err set, as clock.Reading's contract requires.
func (s *Source) Read(ctx context.Context) (clock.Reading, error) {
	r := clock.Reading{Source: clock.SourceNTP, Name: s.addr}
	fail := func(at time.Time, err error) (clock.Reading, error) {
		err = fmt.Errorf("ntp %s: %w", s.addr, err)
		r.At, r.Err = at, err.Error()
		return r, err
	}
	if err := ctx.Err(); err != nil {
		return fail(time.Now(), fmt.Errorf("not sent: %w", err))
	}
	// beevik's query takes no context: its own timeout is cut to the
	// context's deadline, and a cancellation closes the socket under it
	// (the Dialer below), which ends the wait at once.
	timeout := s.timeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(dl))
	}
	if timeout <= 0 {
		// Zero would be beevik's "default" (5 s), not "none left".
		return fail(time.Now(), fmt.Errorf("not sent: %w", context.DeadlineExceeded))
	}
	var stop func() bool
	resp, err := ntp.QueryWithOptions(s.addr, ntp.QueryOptions{
		Timeout: timeout,
		Dialer: func(_, remote string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, "udp", remote)
			if err != nil {
				return nil, err
			}
			stop = context.AfterFunc(ctx, func() { c.Close() })
			return c, nil
		},
	})
	if stop != nil {
		stop()
	}
	if err != nil {
		ne, isNet := errors.AsType[net.Error](err)
		switch {
		case ctx.Err() != nil:
			err = fmt.Errorf("no answer: %w (%w)", ctx.Err(), err)
		case isNet && ne.Timeout():
			err = fmt.Errorf("no answer within %v: %w", timeout, err)
		case isNet: // unresolvable, unreachable, refused
			err = fmt.Errorf("no answer: %w", err)
		default: // beevik refused the packet: wrong mode, not our request's...
			err = fmt.Errorf("%w: %w", ErrInvalidAnswer, err)
		}
		return fail(time.Now(), err)
	}
	// The local clock read when the answer arrived: the kernel's receive
	// timestamp where the socket gives one.
	at := resp.Timestamps.ClientRecv
	if err := resp.Validate(); err != nil {
		detail := fmt.Sprintf("stratum %d, leap indicator %d", resp.Stratum, resp.Leap)
		if resp.IsKissOfDeath() {
			detail += fmt.Sprintf(", kiss code %q", resp.KissCode)
		}
		return fail(at, fmt.Errorf("%w (%s): %w", ErrInvalidAnswer, detail, err))
	}

	r.At = at
	// ClockOffset is ((t2-t1)+(t3-t4))/2: the server's time minus ours,
	// positive when the local clock is behind, as Reading.Offset means.
	r.Offset = resp.ClockOffset
	r.RoundTrip = resp.RTT
	// beevik v1.6.0 computes RootDistance as (RTT+RootDelay)/2 +
	// RootDispersion, which is the RTT/2 + RootDelay/2 + RootDispersion
	// that Reading.RootDistance asks for (RFC 5905's root distance without
	// the peer dispersion and jitter a single sample cannot have). A test
	// pins this, in case a later version adds terms.
	r.RootDistance = resp.RootDistance
	r.Stratum = int(resp.Stratum)
	r.Leap = leapOf(resp.Leap)
	// Validate has already refused leap indicator 3 and stratum 0 or
	// 16+; the claim is still stated here as Reading defines it, so it
	// does not hang on what the library happens to check.
	r.Synchronised = resp.Leap != ntp.LeapNotInSync && resp.Stratum >= 1 && resp.Stratum <= 15
	r.ReferenceID = referenceID(resp.Stratum, resp.ReferenceID)
	return r, nil
}

// leapOf maps NTP's leap indicator (0 none, 1 insert, 2 delete, 3 alarm)
// to the domain's Leap, which numbers them alike but is its own type.
func leapOf(li ntp.LeapIndicator) clock.Leap {
	switch li {
	case ntp.LeapNoWarning:
		return clock.LeapNone
	case ntp.LeapAddSecond:
		return clock.LeapInsert
	case ntp.LeapDelSecond:
		return clock.LeapDelete
	}
	return clock.LeapAlarm
}

// referenceID formats the reference id: at stratum 0 and 1 it is ASCII (a
// kiss code, or the reference clock's name such as "GPS"), shown as text
// when printable; otherwise (an IPv4 address or a hash of an IPv6 one) as
// eight hex digits, the way chronyc shows reference ids.
func referenceID(stratum uint8, id uint32) string {
	if stratum <= 1 {
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], id)
		s := strings.TrimRight(string(b[:]), "\x00")
		printable := s != ""
		for i := 0; i < len(s); i++ {
			if s[i] < 0x20 || s[i] > 0x7e {
				printable = false
			}
		}
		if printable {
			return s
		}
	}
	return fmt.Sprintf("%08X", id)
}

// Package chrony reads chronyd's own view of the clock, its tracking
// report (what `chronyc tracking` shows), as a clock.Reading. Where the ntp
// adapter takes one sample of one server, chronyd has combined many, and
// knows how far the local clock is from them.
//
// It speaks chronyd's command protocol itself (one REQ_TRACKING datagram,
// one reply) over UDP to the command port, where chronyd answers monitoring
// commands from hosts its cmdallow admits, or over the Unix command socket
// (/run/chrony/chronyd.sock), which needs to be root or in chrony's group.
// A client library exists (github.com/facebook/time/ntp/chrony), but its
// module would bring dozens of others into the build for two packets.
package chrony

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/chronolog/chronolog/adapters/clock/internal/hostport"
	"github.com/chronolog/chronolog/domain/clock"
)

// DefaultPort is chronyd's command port.
const DefaultPort = 323

// Source reads chronyd's tracking report. It opens a socket per Read and
// holds none between, so it is safe for concurrent use.
type Source struct {
	network string // "udp" or "unixgram"
	addr    string // host:port, or the socket's path; the readings' Name
	timeout time.Duration
}

// New returns a Source for chronyd at addr: host:port of its command port
// (UDP; the port defaults to 323), or the absolute path of its Unix
// command socket. timeout bounds each Read, on top of the deadline of
// Read's context.
func New(addr string, timeout time.Duration) (*Source, error) {
	if timeout <= 0 {
		return nil, fmt.Errorf("chrony source %q: timeout %v is not positive", addr, timeout)
	}
	if strings.HasPrefix(addr, "/") {
		return &Source{network: "unixgram", addr: filepath.Clean(addr), timeout: timeout}, nil
	}
	hp, err := hostport.Normalize(addr, DefaultPort)
	if err != nil {
		return nil, fmt.Errorf("chrony source %q: %w", addr, err)
	}
	return &Source{network: "udp", addr: hp, timeout: timeout}, nil
}

// Name is chronyd's address as readings name it: host:port or the
// socket's path.
func (s *Source) Name() string { return s.addr }

// Read asks chronyd for its tracking report. Without an answer (none
// within the timeout or before ctx ends, or a refusal) it returns an error
// and a Reading with only Source, Name, At and Err set. An answer that
// chronyd is not synchronised is an answer: a Reading with Synchronised
// false and Leap clock.LeapAlarm, and no error.
func (s *Source) Read(ctx context.Context) (clock.Reading, error) {
	r := clock.Reading{Source: clock.SourceChrony, Name: s.addr}
	tr, at, err := s.query(ctx)
	if err != nil {
		err = fmt.Errorf("chrony %s: %w", s.addr, err)
		r.At, r.Err = at, err.Error()
		return r, err
	}
	correction, err1 := seconds(tr.correction)
	rootDelay, err2 := seconds(tr.rootDelay)
	rootDisp, err3 := seconds(tr.rootDispersion)
	if err := errors.Join(err1, err2, err3); err != nil {
		err = fmt.Errorf("chrony %s: tracking report: %w", s.addr, err)
		r.At, r.Err = at, err.Error()
		return r, err
	}
	r.At = at
	// chronyd's current correction is what chronyc prints as "System
	// time: x seconds slow of NTP time" when positive and "fast" when
	// negative: positive means the local clock is behind, which is the
	// sign of Reading.Offset (reference minus local). So Offset is the
	// correction itself; a clock that is fast gets a negative Offset.
	r.Offset = correction
	// chronyd's root distance, without the round trip of an exchange:
	// its report already folds its sources' delays into the root delay.
	r.RootDistance = rootDelay/2 + rootDisp
	r.Stratum = int(tr.stratum)
	r.Leap = clock.Leap(tr.leap) // same numbering: 0 none … 3 alarm
	r.Synchronised = tr.leap != 3
	r.ReferenceID = fmt.Sprintf("%08X", tr.refID) // as chronyc shows it
	return r, nil
}

// query sends one tracking request and waits for its reply. at is the
// local time the reply arrived, or when the wait ended.
func (s *Source) query(ctx context.Context) (tr tracking, at time.Time, err error) {
	if err := ctx.Err(); err != nil {
		return tracking{}, time.Now(), fmt.Errorf("not sent: %w", err)
	}
	wait := s.timeout
	if dl, ok := ctx.Deadline(); ok {
		wait = min(wait, time.Until(dl))
	}
	deadline := time.Now().Add(wait)
	conn, cleanup, err := s.dial(ctx)
	if err != nil {
		return tracking{}, time.Now(), err
	}
	defer cleanup()
	// A cancelled context ends the wait at once, by closing the socket.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if err := conn.SetDeadline(deadline); err != nil {
		return tracking{}, time.Now(), err
	}

	var seqb [4]byte
	_, _ = rand.Read(seqb[:]) // never fails (crypto/rand panics instead)
	seq := binary.BigEndian.Uint32(seqb[:])
	if _, err := conn.Write(trackingRequest(seq)); err != nil {
		return tracking{}, time.Now(), s.noAnswer(ctx, wait, err)
	}
	buf := make([]byte, 1024)
	for {
		n, err := conn.Read(buf)
		at = time.Now()
		if err != nil {
			return tracking{}, at, s.noAnswer(ctx, wait, err)
		}
		tr, err := parseTracking(buf[:n], seq)
		if errors.Is(err, errOtherReply) {
			continue // a stray datagram; ours may still come
		}
		return tr, at, err
	}
}

// noAnswer explains why no reply came: the context's end, the timeout, or
// the socket's error (on loopback, a stopped chronyd is a refused port).
func (s *Source) noAnswer(ctx context.Context, wait time.Duration, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("no answer: %w (%w)", ctxErr, err)
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("no answer within %v (is chronyd running, and does its cmdallow admit this host?): %w", wait, err)
	}
	return fmt.Errorf("no answer (is chronyd running?): %w", err)
}

// dial connects to chronyd. Over the Unix socket the client needs an
// address of its own for the reply: a socket bound next to chronyd's (as
// chronyc does), removed by cleanup.
func (s *Source) dial(ctx context.Context) (net.Conn, func(), error) {
	if s.network == "udp" {
		c, err := (&net.Dialer{}).DialContext(ctx, "udp", s.addr)
		if err != nil {
			return nil, nil, fmt.Errorf("dial: %w", err)
		}
		return c, func() { c.Close() }, nil
	}
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	local := filepath.Join(filepath.Dir(s.addr), "chronolog."+strconv.Itoa(os.Getpid())+"."+hex.EncodeToString(rnd[:])+".sock")
	c, err := net.DialUnix("unixgram",
		&net.UnixAddr{Name: local, Net: "unixgram"},
		&net.UnixAddr{Name: s.addr, Net: "unixgram"})
	if err != nil {
		os.Remove(local) // bound before the connect failed
		return nil, nil, fmt.Errorf("no answer (is chronyd running?): %w", err)
	}
	cleanup := func() {
		c.Close()
		os.Remove(local)
	}
	// chronyd may have dropped root for its own user, which must be able
	// to send to this socket; chronyc opens its socket the same way.
	if err := os.Chmod(local, 0o666); err != nil {
		cleanup()
		return nil, nil, fmt.Errorf("open reply socket: %w", err)
	}
	return c, cleanup, nil
}

// Package ntptest runs a small NTP server for tests, on a UDP port of
// 127.0.0.1: it answers NTPv1–4 client requests with server-mode packets
// it encodes itself, from a clock that can be shifted from the machine's,
// and announces whatever leap, stratum and root delay/dispersion the test
// sets. It exists so that clients (the ntp adapter, a real chronyd polling
// it) can be tested against a server whose errors are known, which no
// public server or the unsynchronised clock of a test machine gives.
package ntptest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/chronolog/chronolog/domain/clock"
)

// Responder is a running test NTP server. Its setters may be called from
// any goroutine, while it serves.
type Responder struct {
	conn *net.UDPConn
	done chan struct{} // closed when serve returns

	mu        sync.Mutex
	offset    time.Duration
	silent    bool
	leap      clock.Leap
	stratum   int
	rootDelay time.Duration
	rootDisp  time.Duration
	requests  int
}

// Start serves on 127.0.0.1 at a free port, as a synchronised stratum 1
// server on the machine's clock, until t ends.
func Start(t testing.TB) *Responder {
	t.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatalf("ntptest: listen on 127.0.0.1: %v", err)
	}
	r := &Responder{conn: conn, done: make(chan struct{}), stratum: 1}
	go r.serve()
	t.Cleanup(r.close)
	return r
}

// Addr is the server's host:port.
func (r *Responder) Addr() string { return r.conn.LocalAddr().String() }

// SetOffset shifts the served clock: it serves time.Now()+d, so clients
// see their clock d behind (d > 0) or ahead (d < 0).
func (r *Responder) SetOffset(d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.offset = d
}

// SetSilent makes the server stop answering (true) or answer again
// (false). It keeps its port and still counts requests, so a client sees
// a timeout rather than a refused port.
func (r *Responder) SetSilent(silent bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.silent = silent
}

// SetLeap sets the leap indicator of the answers; clock.LeapAlarm is
// indicator 3, "not synchronised".
func (r *Responder) SetLeap(l clock.Leap) {
	if l < clock.LeapNone || l > clock.LeapAlarm {
		panic(fmt.Sprintf("ntptest: no leap indicator for %v", l))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.leap = l
}

// SetStratum sets the stratum of the answers (0–255): 0 is a kiss of death
// (kiss code RATE), 16 and above unsynchronised.
func (r *Responder) SetStratum(n int) {
	if n < 0 || n > 255 {
		panic(fmt.Sprintf("ntptest: stratum %d does not fit the packet", n))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stratum = n
}

// SetRootDelay sets the root delay the answers announce. The packet
// carries it in units of 2^-16 s (about 15 µs), rounded.
func (r *Responder) SetRootDelay(d time.Duration) {
	checkShort(d)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rootDelay = d
}

// SetRootDispersion sets the root dispersion the answers announce, in
// units of 2^-16 s like the root delay.
func (r *Responder) SetRootDispersion(d time.Duration) {
	checkShort(d)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rootDisp = d
}

// Requests is the number of well-formed client requests received so far,
// answered or not (silent).
func (r *Responder) Requests() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.requests
}

func (r *Responder) close() {
	r.conn.Close()
	<-r.done
}

func (r *Responder) serve() {
	defer close(r.done)
	// Requests are 48 bytes, plus extension fields or a MAC the responder
	// ignores; anything longer than this is truncated, and still answered.
	buf := make([]byte, 2048)
	for {
		n, client, err := r.conn.ReadFromUDP(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		received := time.Now()
		req, err := parseRequest(buf[:n])
		if err != nil {
			continue // not a client request: a real server drops it too
		}
		r.mu.Lock()
		r.requests++
		a := answer{
			silent:    r.silent,
			offset:    r.offset,
			leap:      r.leap,
			stratum:   uint8(r.stratum),
			rootDelay: r.rootDelay,
			rootDisp:  r.rootDisp,
		}
		r.mu.Unlock()
		if a.silent {
			continue
		}
		pkt := a.encode(req, received.Add(a.offset), time.Now().Add(a.offset))
		// A failed send is the client's loss, as on a real network.
		_, _ = r.conn.WriteToUDP(pkt[:], client)
	}
}

// The NTP packet header (RFC 5905, figure 8): LI|VN|Mode, stratum, poll,
// precision, root delay, root dispersion, reference id, and the reference,
// originate, receive and transmit timestamps.
const (
	headerLen  = 48
	modeClient = 3
	modeServer = 4
	// precision is log2 of the served clock's resolution: 2^-20 s, about
	// a microsecond, what time.Now gives on Linux, give or take.
	precision = -20
	// ntpEpochOffset is 1900-01-01 to 1970-01-01 in seconds.
	ntpEpochOffset = 2208988800
)

// request is what an answer needs from a client's packet.
type request struct {
	version  uint8
	poll     int8
	transmit uint64 // the client's transmit timestamp, echoed as originate
}

var errNotClientRequest = errors.New("not an NTP client request")

// parseRequest reads the header of a client's packet. What follows the 48
// bytes (extension fields, a MAC) is ignored; NTPv5, whose header differs,
// is refused.
func parseRequest(b []byte) (request, error) {
	if len(b) < headerLen {
		return request{}, fmt.Errorf("%w: %d bytes, want at least %d", errNotClientRequest, len(b), headerLen)
	}
	mode, version := b[0]&7, b[0]>>3&7
	if mode != modeClient {
		return request{}, fmt.Errorf("%w: mode %d", errNotClientRequest, mode)
	}
	if version < 1 || version > 4 {
		return request{}, fmt.Errorf("%w: version %d", errNotClientRequest, version)
	}
	return request{
		version:  version,
		poll:     int8(b[2]),
		transmit: binary.BigEndian.Uint64(b[40:48]),
	}, nil
}

// answer is the responder's state for one reply.
type answer struct {
	silent              bool
	offset              time.Duration
	leap                clock.Leap
	stratum             uint8
	rootDelay, rootDisp time.Duration
}

// encode builds the server-mode reply to req, received at rx and sent at
// tx (both on the served, shifted clock).
func (a answer) encode(req request, rx, tx time.Time) [headerLen]byte {
	var p [headerLen]byte
	p[0] = byte(a.leap)<<6 | req.version<<3 | modeServer
	p[1] = a.stratum
	p[2] = byte(req.poll)         // RFC 5905 servers echo the client's poll
	p[3] = byte(precision & 0xff) // two's complement
	binary.BigEndian.PutUint32(p[4:], shortFormat(a.rootDelay))
	binary.BigEndian.PutUint32(p[8:], shortFormat(a.rootDisp))
	binary.BigEndian.PutUint32(p[12:], referenceID(a.stratum))
	// The clock was "last set" when the request came: always fresh.
	binary.BigEndian.PutUint64(p[16:], timestamp(rx))
	binary.BigEndian.PutUint64(p[24:], req.transmit)
	binary.BigEndian.PutUint64(p[32:], timestamp(rx))
	binary.BigEndian.PutUint64(p[40:], timestamp(tx))
	return p
}

// referenceID is a kiss code at stratum 0, the local clock's name at
// stratum 1, and 127.0.0.1 as the upstream's address above.
func referenceID(stratum uint8) uint32 {
	switch stratum {
	case 0:
		return binary.BigEndian.Uint32([]byte("RATE"))
	case 1:
		return binary.BigEndian.Uint32([]byte("LOCL"))
	}
	return 0x7f000001
}

// timestamp is t in NTP's 64-bit format: seconds since 1900 in the high
// 32 bits (modulo 2^32, so era 1 from 2036 wraps as the protocol wants)
// and the fraction of a second in the low 32.
func timestamp(t time.Time) uint64 {
	secs := uint64(t.Unix() + ntpEpochOffset)
	frac := uint64(t.Nanosecond()) << 32 / uint64(time.Second)
	return secs<<32 | frac
}

// maxShort is the largest duration NTP's 32-bit short format (16.16
// seconds) holds.
const maxShort = time.Duration(1<<32-1) * time.Second >> 16

func checkShort(d time.Duration) {
	if d < 0 || d > maxShort {
		panic(fmt.Sprintf("ntptest: %v does not fit NTP's short format (0 to %v)", d, maxShort))
	}
}

// shortFormat is d in NTP's short format, rounded to the nearest 2^-16 s.
func shortFormat(d time.Duration) uint32 {
	return uint32((uint64(d)<<16 + uint64(time.Second)/2) / uint64(time.Second))
}

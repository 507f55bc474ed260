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

// clientPacket is a client request with the given first byte and transmit
// timestamp, padded to n bytes.
func clientPacket(first byte, transmit uint64, n int) []byte {
	b := make([]byte, max(n, headerLen))
	b[0] = first
	b[2] = 6 // poll 2^6 s
	binary.BigEndian.PutUint64(b[40:], transmit)
	return b[:n]
}

func TestParseRequest(t *testing.T) {
	const xmit = 0x0123456789abcdef
	tests := []struct {
		name    string
		pkt     []byte
		want    request
		wantErr bool
	}{
		{"v4 client", clientPacket(4<<3|3, xmit, 48), request{version: 4, poll: 6, transmit: xmit}, false},
		{"v3 client", clientPacket(3<<3|3, xmit, 48), request{version: 3, poll: 6, transmit: xmit}, false},
		{"v1 client", clientPacket(1<<3|3, xmit, 48), request{version: 1, poll: 6, transmit: xmit}, false},
		{"leap bits ignored", clientPacket(3<<6|4<<3|3, xmit, 48), request{version: 4, poll: 6, transmit: xmit}, false},
		{"extension fields ignored", clientPacket(4<<3|3, xmit, 68), request{version: 4, poll: 6, transmit: xmit}, false},
		{"short", clientPacket(4<<3|3, xmit, 47), request{}, true},
		{"empty", nil, request{}, true},
		{"server mode", clientPacket(4<<3|4, xmit, 48), request{}, true},
		{"symmetric active", clientPacket(4<<3|1, xmit, 48), request{}, true},
		{"broadcast", clientPacket(4<<3|5, xmit, 48), request{}, true},
		{"version 0", clientPacket(0<<3|3, xmit, 48), request{}, true},
		{"version 5", clientPacket(5<<3|3, xmit, 48), request{}, true},
		{"version 7", clientPacket(7<<3|3, xmit, 48), request{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseRequest(tt.pkt)
			if tt.wantErr {
				if !errors.Is(err, errNotClientRequest) {
					t.Fatalf("parseRequest = %+v, %v; want errNotClientRequest", got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("parseRequest = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestTimestamp(t *testing.T) {
	tests := []struct {
		t    time.Time
		want uint64
	}{
		{time.Unix(0, 0), ntpEpochOffset << 32},
		{time.Unix(1, 500_000_000), (ntpEpochOffset+1)<<32 | 1<<31},
		{time.Unix(0, 250_000_000), ntpEpochOffset<<32 | 1<<30},
		// Era 1 starts on 2036-02-07T06:28:16Z: the seconds wrap to 0.
		{time.Date(2036, 2, 7, 6, 28, 16, 0, time.UTC), 0},
		{time.Date(2036, 2, 7, 6, 28, 17, 0, time.UTC), 1 << 32},
	}
	for _, tt := range tests {
		if got := timestamp(tt.t); got != tt.want {
			t.Errorf("timestamp(%v) = %#x, want %#x", tt.t, got, tt.want)
		}
	}
}

func TestShortFormat(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want uint32
	}{
		{0, 0},
		{time.Second, 1 << 16},
		{time.Second / 64, 1 << 10},
		{1500 * time.Millisecond, 3 << 15},
		{15 * time.Microsecond, 1}, // 0.98 units, rounded up
		{7 * time.Microsecond, 0},  // 0.46 units, rounded down
		{maxShort, 1<<32 - 1},
	}
	for _, tt := range tests {
		if got := shortFormat(tt.d); got != tt.want {
			t.Errorf("shortFormat(%v) = %#x, want %#x", tt.d, got, tt.want)
		}
	}
}

// errNoAnswer is exchange's timeout.
var errNoAnswer = errors.New("no answer")

// exchange sends a v4 client request to r and returns the answer's header,
// or errNoAnswer if none came within wait. It does not fail t, so that
// other goroutines may call it.
func exchange(r *Responder, wait time.Duration) (p [headerLen]byte, xmit uint64, sent, got time.Time, err error) {
	c, err := net.Dial("udp", r.Addr())
	if err != nil {
		return p, 0, sent, got, err
	}
	defer c.Close()
	xmit = 0xfeedfacecafebeef
	sent = time.Now()
	if _, err := c.Write(clientPacket(4<<3|3, xmit, headerLen)); err != nil {
		return p, xmit, sent, got, err
	}
	c.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 512)
	n, err := c.Read(buf)
	got = time.Now()
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		return p, xmit, sent, got, errNoAnswer
	}
	if err != nil {
		return p, xmit, sent, got, err
	}
	if n != headerLen {
		return p, xmit, sent, got, fmt.Errorf("answer is %d bytes, want %d", n, headerLen)
	}
	copy(p[:], buf[:n])
	return p, xmit, sent, got, nil
}

// fromTimestamp is timestamp's inverse, for era 0.
func fromTimestamp(ts uint64) time.Time {
	secs := int64(ts>>32) - ntpEpochOffset
	nanos := int64((ts & (1<<32 - 1)) * uint64(time.Second) >> 32)
	return time.Unix(secs, nanos)
}

func TestAnswer(t *testing.T) {
	tests := []struct {
		name      string
		offset    time.Duration
		leap      clock.Leap
		stratum   int
		rootDelay time.Duration
		rootDisp  time.Duration
		refID     string
	}{
		{"defaults", 0, clock.LeapNone, 1, 0, 0, "LOCL"},
		{"ahead", 3 * time.Second, clock.LeapNone, 2, time.Second / 64, time.Second / 128, "\x7f\x00\x00\x01"},
		{"behind", -90 * time.Minute, clock.LeapInsert, 3, 0, 0, "\x7f\x00\x00\x01"},
		{"leap delete", 0, clock.LeapDelete, 1, 0, 0, "LOCL"},
		{"alarm", 0, clock.LeapAlarm, 16, 0, 0, "\x7f\x00\x00\x01"},
		{"kiss of death", 0, clock.LeapAlarm, 0, 0, 0, "RATE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Start(t)
			r.SetOffset(tt.offset)
			r.SetLeap(tt.leap)
			r.SetStratum(tt.stratum)
			r.SetRootDelay(tt.rootDelay)
			r.SetRootDispersion(tt.rootDisp)
			p, xmit, sent, got, err := exchange(r, 2*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if li, vn, mode := p[0]>>6, p[0]>>3&7, p[0]&7; li != byte(tt.leap) || vn != 4 || mode != modeServer {
				t.Errorf("LI/VN/mode = %d/%d/%d, want %d/4/4", li, vn, mode, tt.leap)
			}
			if p[1] != byte(tt.stratum) {
				t.Errorf("stratum = %d, want %d", p[1], tt.stratum)
			}
			if p[2] != 6 {
				t.Errorf("poll = %d, want the request's 6", p[2])
			}
			if d, want := binary.BigEndian.Uint32(p[4:]), shortFormat(tt.rootDelay); d != want {
				t.Errorf("root delay = %#x, want %#x", d, want)
			}
			if d, want := binary.BigEndian.Uint32(p[8:]), shortFormat(tt.rootDisp); d != want {
				t.Errorf("root dispersion = %#x, want %#x", d, want)
			}
			if id := string(p[12:16]); id != tt.refID {
				t.Errorf("reference id = %q, want %q", id, tt.refID)
			}
			if o := binary.BigEndian.Uint64(p[24:]); o != xmit {
				t.Errorf("originate = %#x, want the request's transmit %#x", o, xmit)
			}
			rx := fromTimestamp(binary.BigEndian.Uint64(p[32:]))
			tx := fromTimestamp(binary.BigEndian.Uint64(p[40:]))
			// Both on the shifted clock, between sending and receiving
			// (give or take the 1 ns the fraction loses).
			lo, hi := sent.Add(tt.offset-time.Microsecond), got.Add(tt.offset+time.Microsecond)
			if rx.Before(lo) || tx.Before(rx) || tx.After(hi) {
				t.Errorf("receive %v, transmit %v: want lo %v <= rx <= tx <= hi %v", rx, tx, lo, hi)
			}
			if ref := fromTimestamp(binary.BigEndian.Uint64(p[16:])); ref.After(tx) {
				t.Errorf("reference time %v after transmit %v", ref, tx)
			}
			if r.Requests() != 1 {
				t.Errorf("Requests = %d, want 1", r.Requests())
			}
		})
	}
}

func TestSilent(t *testing.T) {
	r := Start(t)
	r.SetSilent(true)
	if _, _, _, _, err := exchange(r, 100*time.Millisecond); !errors.Is(err, errNoAnswer) {
		t.Fatalf("silent responder: exchange = %v, want errNoAnswer", err)
	}
	r.SetSilent(false)
	if _, _, _, _, err := exchange(r, 2*time.Second); err != nil {
		t.Fatalf("once no longer silent: %v", err)
	}
	if n := r.Requests(); n != 2 {
		t.Errorf("Requests = %d, want 2 (silence still counts)", n)
	}
}

func TestIgnoresNonRequests(t *testing.T) {
	r := Start(t)
	c, err := net.Dial("udp", r.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, pkt := range [][]byte{{1, 2, 3}, clientPacket(4<<3|4, 1, headerLen)} {
		if _, err := c.Write(pkt); err != nil {
			t.Fatal(err)
		}
	}
	// Then a real request, whose answer must be the first thing back.
	if _, _, _, _, err := exchange(r, 2*time.Second); err != nil {
		t.Fatalf("request after the junk: %v", err)
	}
	if n := r.Requests(); n != 1 {
		t.Errorf("Requests = %d, want 1", n)
	}
}

// TestConcurrentUse changes the settings while clients ask; run with -race.
func TestConcurrentUse(t *testing.T) {
	r := Start(t)
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for j := range 20 {
				r.SetOffset(time.Duration(i*j) * time.Millisecond)
				r.SetStratum(1 + j%15)
				r.SetLeap(clock.Leap(j % 3))
				r.SetRootDelay(time.Duration(j) * time.Millisecond)
				r.SetRootDispersion(time.Duration(j) * time.Millisecond)
				_ = r.Requests()
			}
		}()
		go func() {
			defer wg.Done()
			for range 5 {
				if _, _, _, _, err := exchange(r, 2*time.Second); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if n := r.Requests(); n != 20 {
		t.Errorf("Requests = %d, want 20", n)
	}
}

func TestSettersRefuseWhatDoesNotFit(t *testing.T) {
	r := Start(t)
	tests := []struct {
		name string
		set  func()
	}{
		{"stratum -1", func() { r.SetStratum(-1) }},
		{"stratum 256", func() { r.SetStratum(256) }},
		{"leap 4", func() { r.SetLeap(clock.Leap(4)) }},
		{"negative root delay", func() { r.SetRootDelay(-time.Nanosecond) }},
		{"huge root dispersion", func() { r.SetRootDispersion(maxShort + time.Nanosecond) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			tt.set()
		})
	}
}

// FuzzParseRequest feeds the request parser arbitrary datagrams: it must
// not panic, and what it accepts must get a well-formed answer that echoes
// the client's transmit timestamp.
func FuzzParseRequest(f *testing.F) {
	f.Add(clientPacket(4<<3|3, 42, headerLen))
	f.Add(clientPacket(3<<3|3, 1, headerLen+20))
	f.Add(clientPacket(5<<3|3, 1, headerLen))
	f.Add(clientPacket(4<<3|4, 1, headerLen))
	f.Add([]byte{0x23})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		req, err := parseRequest(b)
		if err != nil {
			if !errors.Is(err, errNotClientRequest) {
				t.Fatalf("error %v does not wrap errNotClientRequest", err)
			}
			return
		}
		if len(b) < headerLen || b[0]&7 != modeClient {
			t.Fatalf("accepted %x", b)
		}
		now := time.Now()
		p := answer{stratum: 2}.encode(req, now, now)
		if p[0]&7 != modeServer || p[0]>>3&7 != b[0]>>3&7 {
			t.Errorf("answer mode/version byte %#x to request byte %#x", p[0], b[0])
		}
		if o := binary.BigEndian.Uint64(p[24:]); o != binary.BigEndian.Uint64(b[40:48]) {
			t.Errorf("originate %#x, want %#x", o, binary.BigEndian.Uint64(b[40:48]))
		}
	})
}

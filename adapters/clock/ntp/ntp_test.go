package ntp_test

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	beevik "github.com/beevik/ntp"

	"github.com/chronolog/chronolog/adapters/clock/ntp"
	"github.com/chronolog/chronolog/adapters/clock/ntp/ntptest"
	"github.com/chronolog/chronolog/domain/clock"
)

// abs is |d|.
func abs(d time.Duration) time.Duration { return max(d, -d) }

func TestReadGoodAnswers(t *testing.T) {
	tests := []struct {
		name      string
		offset    time.Duration
		leap      clock.Leap
		stratum   int
		rootDelay time.Duration
		rootDisp  time.Duration
		refID     string
	}{
		{"in step", 0, clock.LeapNone, 1, 0, 0, "LOCL"},
		{"server ahead", 2 * time.Second, clock.LeapNone, 2, 0, 0, "7F000001"},
		{"server behind", -3500 * time.Millisecond, clock.LeapNone, 3, 0, 0, "7F000001"},
		{"an hour ahead", time.Hour, clock.LeapNone, 1, 0, 0, "LOCL"},
		{"leap insert", 0, clock.LeapInsert, 1, 0, 0, "LOCL"},
		{"leap delete", 0, clock.LeapDelete, 15, 0, 0, "7F000001"},
		// 2^-6 s and 2^-7 s are exact in the packet's 16.16 format.
		{"root delay and dispersion", 0, clock.LeapNone, 2, time.Second / 64, time.Second / 128, "7F000001"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := ntptest.Start(t)
			srv.SetOffset(tt.offset)
			srv.SetLeap(tt.leap)
			srv.SetStratum(tt.stratum)
			srv.SetRootDelay(tt.rootDelay)
			srv.SetRootDispersion(tt.rootDisp)
			src, err := ntp.New(srv.Addr(), 2*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			before := time.Now()
			r, err := src.Read(context.Background())
			after := time.Now()
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			if r.Source != clock.SourceNTP || r.Name != srv.Addr() || r.Err != "" {
				t.Errorf("Source, Name, Err = %q, %q, %q", r.Source, r.Name, r.Err)
			}
			// Loopback: the offset is the shift, give or take scheduling.
			if d := r.Offset - tt.offset; abs(d) > 5*time.Millisecond {
				t.Errorf("Offset = %v, want %v ± 5ms", r.Offset, tt.offset)
			}
			if r.RoundTrip < 0 || r.RoundTrip > after.Sub(before) {
				t.Errorf("RoundTrip = %v, outside [0, %v]", r.RoundTrip, after.Sub(before))
			}
			// Reading.RootDistance's definition, to the nanosecond the
			// halvings may round away.
			want := r.RoundTrip/2 + tt.rootDelay/2 + tt.rootDisp
			if d := r.RootDistance - want; abs(d) > time.Nanosecond {
				t.Errorf("RootDistance = %v, want RTT/2 + rootDelay/2 + rootDisp = %v", r.RootDistance, want)
			}
			if r.Stratum != tt.stratum || r.Leap != tt.leap || !r.Synchronised {
				t.Errorf("Stratum, Leap, Synchronised = %d, %v, %v; want %d, %v, true", r.Stratum, r.Leap, r.Synchronised, tt.stratum, tt.leap)
			}
			if r.ReferenceID != tt.refID {
				t.Errorf("ReferenceID = %q, want %q", r.ReferenceID, tt.refID)
			}
			// At is the local clock (not the server's) when the answer came.
			if r.At.Before(before.Add(-time.Millisecond)) || r.At.After(after.Add(time.Millisecond)) {
				t.Errorf("At = %v, outside [%v, %v]", r.At, before, after)
			}
			if r.EstimatedError != 0 {
				t.Errorf("EstimatedError = %v, want 0", r.EstimatedError)
			}
		})
	}
}

func TestReadInvalidAnswers(t *testing.T) {
	tests := []struct {
		name    string
		leap    clock.Leap
		stratum int
		want    error // beevik's reason, wrapped
		text    string
	}{
		{"leap alarm", clock.LeapAlarm, 1, beevik.ErrInvalidLeapSecond, "leap indicator 3"},
		{"stratum 16", clock.LeapNone, 16, beevik.ErrInvalidStratum, "stratum 16"},
		{"unsynchronised", clock.LeapAlarm, 16, beevik.ErrInvalidStratum, "stratum 16, leap indicator 3"},
		{"kiss of death", clock.LeapAlarm, 0, beevik.ErrKissOfDeath, `kiss code "RATE"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := ntptest.Start(t)
			srv.SetLeap(tt.leap)
			srv.SetStratum(tt.stratum)
			src, err := ntp.New(srv.Addr(), 2*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			r, err := src.Read(context.Background())
			if !errors.Is(err, ntp.ErrInvalidAnswer) || !errors.Is(err, tt.want) {
				t.Fatalf("Read error = %v; want ErrInvalidAnswer and %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.text) || !strings.Contains(err.Error(), srv.Addr()) {
				t.Errorf("error %q does not name the server and %q", err, tt.text)
			}
			checkFailed(t, r, err, srv.Addr())
		})
	}
}

// checkFailed checks a Reading returned with err: only Source, Name, At
// and Err set.
func checkFailed(t *testing.T, r clock.Reading, err error, name string) {
	t.Helper()
	if r.Err != err.Error() {
		t.Errorf("Reading.Err = %q, want the error %q", r.Err, err)
	}
	if r.At.IsZero() || time.Since(r.At) > time.Minute {
		t.Errorf("At = %v, want about now", r.At)
	}
	want := clock.Reading{Source: clock.SourceNTP, Name: name, At: r.At, Err: r.Err}
	if r != want {
		t.Errorf("Reading = %+v, want only Source, Name, At and Err set", r)
	}
}

func TestReadSilentServerTimesOut(t *testing.T) {
	srv := ntptest.Start(t)
	srv.SetSilent(true)
	src, err := ntp.New(srv.Addr(), 150*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	r, err := src.Read(context.Background())
	if took := time.Since(start); took > time.Second {
		t.Errorf("Read took %v with a 150ms timeout", took)
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read error = %v, want a timeout", err)
	}
	if !strings.Contains(err.Error(), "no answer within 150ms") {
		t.Errorf("error %q does not say what happened", err)
	}
	checkFailed(t, r, err, srv.Addr())
	if srv.Requests() != 1 {
		t.Errorf("server got %d requests, want 1", srv.Requests())
	}
}

func TestReadHonoursContext(t *testing.T) {
	tests := []struct {
		name     string
		ctx      func() (context.Context, context.CancelFunc)
		want     []error // any of
		requests int
		maxTime  time.Duration
	}{
		{
			name: "already cancelled",
			ctx: func() (context.Context, context.CancelFunc) {
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				return ctx, cancel
			},
			want:    []error{context.Canceled},
			maxTime: 50 * time.Millisecond,
		},
		{
			name: "cancelled while waiting",
			ctx: func() (context.Context, context.CancelFunc) {
				ctx, cancel := context.WithCancel(context.Background())
				time.AfterFunc(100*time.Millisecond, cancel)
				return ctx, cancel
			},
			want:     []error{context.Canceled},
			requests: 1,
			maxTime:  time.Second,
		},
		{
			name: "deadline shorter than the timeout",
			ctx: func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), 100*time.Millisecond)
			},
			// The socket's deadline and the context's end together; either
			// may be seen first.
			want:     []error{context.DeadlineExceeded, os.ErrDeadlineExceeded},
			requests: 1,
			maxTime:  time.Second,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := ntptest.Start(t)
			srv.SetSilent(true)
			src, err := ntp.New(srv.Addr(), 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := tt.ctx()
			defer cancel()
			start := time.Now()
			r, err := src.Read(ctx)
			if took := time.Since(start); took > tt.maxTime {
				t.Errorf("Read took %v, want at most %v", took, tt.maxTime)
			}
			matched := false
			for _, w := range tt.want {
				matched = matched || errors.Is(err, w)
			}
			if !matched {
				t.Fatalf("Read error = %v, want one of %v", err, tt.want)
			}
			checkFailed(t, r, err, srv.Addr())
			if n := srv.Requests(); n != tt.requests {
				t.Errorf("server got %d requests, want %d", n, tt.requests)
			}
		})
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		server  string
		timeout time.Duration
		want    string // Name; "" for an error
	}{
		{"time.example.org", time.Second, "time.example.org:123"},
		{"time.example.org:4123", time.Second, "time.example.org:4123"},
		{"192.0.2.1", time.Second, "192.0.2.1:123"},
		{"192.0.2.1:123", time.Second, "192.0.2.1:123"},
		{"2001:db8::1", time.Second, "[2001:db8::1]:123"},
		{"[2001:db8::1]", time.Second, "[2001:db8::1]:123"},
		{"[2001:db8::1]:1123", time.Second, "[2001:db8::1]:1123"},
		{"[fe80::1%eth0]:123", time.Second, "[fe80::1%eth0]:123"},
		{"", time.Second, ""},
		{"host:", time.Second, ""},
		{"host:0", time.Second, ""},
		{"host:65536", time.Second, ""},
		{"host:ntp", time.Second, ""},
		{":123", time.Second, ""},
		{"[2001:db8::1", time.Second, ""},
		{"a:b:c", time.Second, ""},
		{"bad host", time.Second, ""},
		{"time.example.org", 0, ""},
		{"time.example.org", -time.Second, ""},
	}
	for _, tt := range tests {
		s, err := ntp.New(tt.server, tt.timeout)
		switch {
		case tt.want == "" && err == nil:
			t.Errorf("New(%q, %v) = %q, want an error", tt.server, tt.timeout, s.Name())
		case tt.want != "" && err != nil:
			t.Errorf("New(%q, %v): %v", tt.server, tt.timeout, err)
		case tt.want != "" && s.Name() != tt.want:
			t.Errorf("New(%q, %v).Name() = %q, want %q", tt.server, tt.timeout, s.Name(), tt.want)
		}
	}
}

// rawServer answers each datagram on a loopback port with what reply
// makes of the request.
func rawServer(t *testing.T, reply func(req []byte) []byte) string {
	t.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { conn.Close(); <-done })
	go func() {
		defer close(done)
		buf := make([]byte, 512)
		for {
			n, from, err := conn.ReadFromUDP(buf)
			if err != nil {
				return
			}
			_, _ = conn.WriteToUDP(reply(buf[:n]), from)
		}
	}()
	return conn.LocalAddr().String()
}

// serverPacket is a plausible stratum 1 answer to req, then edited.
func serverPacket(req []byte, edit func(p []byte)) []byte {
	p := make([]byte, 48)
	p[0] = 4<<3 | 4
	p[1] = 1
	now := uint64(time.Now().Unix()+2208988800) << 32
	binary.BigEndian.PutUint64(p[16:], now)
	copy(p[24:32], req[40:48])
	binary.BigEndian.PutUint64(p[32:], now)
	binary.BigEndian.PutUint64(p[40:], now)
	edit(p)
	return p
}

func TestReadMalformedAnswers(t *testing.T) {
	tests := []struct {
		name string
		edit func(p []byte)
		want error
	}{
		{"plausible", func([]byte) {}, nil},
		{"not the answer to our request", func(p []byte) { p[24] ^= 0xff }, beevik.ErrServerResponseMismatch},
		{"client mode", func(p []byte) { p[0] = 4<<3 | 3 }, beevik.ErrInvalidMode},
		{"no transmit time", func(p []byte) { clear(p[40:48]) }, beevik.ErrInvalidTransmitTime},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := rawServer(t, func(req []byte) []byte { return serverPacket(req, tt.edit) })
			src, err := ntp.New(addr, 2*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			r, err := src.Read(context.Background())
			if tt.want == nil {
				if err != nil || !r.Synchronised || r.Stratum != 1 {
					t.Fatalf("Read = %+v, %v; want a synchronised stratum 1 reading", r, err)
				}
				return
			}
			if !errors.Is(err, ntp.ErrInvalidAnswer) || !errors.Is(err, tt.want) {
				t.Fatalf("Read error = %v; want ErrInvalidAnswer and %v", err, tt.want)
			}
			checkFailed(t, r, err, addr)
		})
	}
}

func TestReadRefused(t *testing.T) {
	// A port nobody listens on: loopback refuses at once.
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	addr := conn.LocalAddr().String()
	conn.Close()
	src, err := ntp.New(addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	r, err := src.Read(context.Background())
	if took := time.Since(start); took > time.Second {
		t.Errorf("Read took %v", took)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, ntp.ErrInvalidAnswer) || !strings.Contains(err.Error(), "no answer") {
		t.Fatalf("Read error = %v, want a refused port's", err)
	}
	checkFailed(t, r, err, addr)
}

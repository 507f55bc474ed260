package tcpapi_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/chronolog/chronolog/adapters/tcpapi"
	"github.com/chronolog/chronolog/domain/rfc3161"
	"github.com/chronolog/chronolog/domain/tsa"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeService answers "req…" bodies with "resp:" + body, anything else with
// a badDataFormat rejection, as the real service would for garbage. It
// records what it is given.
type fakeService struct {
	mu      sync.Mutex
	handled []tsa.Request
	refused []refusal
	// block, when set, holds Handle until it is closed; started gets one
	// value per blocked call.
	block       chan struct{}
	started     chan struct{}
	undelivered []string
}

type refusal struct {
	req     tsa.Request
	refusal tsa.Refusal
	reason  string
}

func (f *fakeService) Name() string { return "fake" }

func (f *fakeService) Handle(ctx context.Context, r tsa.Request) tsa.Outcome {
	f.mu.Lock()
	f.handled = append(f.handled, r)
	block := f.block
	f.mu.Unlock()
	if block != nil {
		f.started <- struct{}{}
		<-block
	}
	if string(r.Body) == "panic" {
		panic("fake service: asked to panic")
	}
	if bytes.HasPrefix(r.Body, []byte("req")) {
		// The answer carries the request back: a forwarded upstream's
		// bytes go out as received.
		return tsa.Outcome{Kind: tsa.Forwarded, Response: append([]byte("resp:"), r.Body...), Recorded: true}
	}
	return tsa.Outcome{Kind: tsa.Rejected, Rejection: rfc3161.Reject(rfc3161.BadDataFormat, "not a TimeStampReq"), Recorded: true}
}

func (f *fakeService) Refuse(ctx context.Context, r tsa.Request, refused tsa.Refusal, reason string) tsa.Outcome {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.refused = append(f.refused, refusal{r, refused, reason})
	return tsa.Outcome{Kind: tsa.Refused, Refusal: refused, Recorded: true}
}

func (f *fakeService) Undelivered(_ context.Context, serial, reason string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.undelivered = append(f.undelivered, serial+": "+reason)
	return nil
}

func (f *fakeService) records() ([]tsa.Request, []refusal) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]tsa.Request(nil), f.handled...), append([]refusal(nil), f.refused...)
}

type rig struct {
	svc  *fakeService
	srv  *tcpapi.Server
	addr string
	// serveErr is Serve's answer, once served is closed.
	served   chan struct{}
	serveErr error
}

func start(t *testing.T, cfg tcpapi.Config) *rig {
	t.Helper()
	r := &rig{svc: &fakeService{}, served: make(chan struct{})}
	if cfg.Service == nil {
		cfg.Service = r.svc
	}
	if cfg.Path == "" {
		cfg.Path = "tcp:/tsa"
	}
	cfg.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := tcpapi.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.srv, r.addr = srv, ln.Addr().String()
	go func() {
		r.serveErr = srv.Serve(ln)
		close(r.served)
	}()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop shuts the server down and checks Serve's answer; it may be called
// more than once.
func (r *rig) stop(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.srv.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	select {
	case <-r.served:
		if !errors.Is(r.serveErr, tcpapi.ErrServerClosed) {
			t.Errorf("Serve: %v", r.serveErr)
		}
	case <-time.After(5 * time.Second):
		t.Error("Serve did not return after Shutdown")
	}
}

func (r *rig) dial(t *testing.T) *net.TCPConn {
	t.Helper()
	c, err := net.Dial("tcp", r.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c.(*net.TCPConn)
}

func send(t *testing.T, c net.Conn, flag byte, value []byte) {
	t.Helper()
	if err := tcpapi.WriteFrame(c, flag, value); err != nil {
		t.Fatal(err)
	}
}

func recv(t *testing.T, c net.Conn) (byte, []byte) {
	t.Helper()
	flag, value, err := tcpapi.ReadFrame(c, 1<<20)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	return flag, value
}

func expectAnswer(t *testing.T, c net.Conn, body string) {
	t.Helper()
	flag, value := recv(t, c)
	if flag != tcpapi.FlagFinalMsgRep || string(value) != "resp:"+body {
		t.Fatalf("answer %s %q, want finalMsgRep %q", tcpapi.FlagName(flag), value, "resp:"+body)
	}
}

// expectClosed: the server closed the connection (end of stream, or a
// reset after it).
func expectClosed(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var b [1]byte
	n, err := c.Read(b[:])
	if n != 0 || err == nil || isTimeout(err) {
		t.Fatalf("connection still open: read %d, %v", n, err)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func TestHappyPath(t *testing.T) {
	r := start(t, tcpapi.Config{})
	c := r.dial(t)
	send(t, c, tcpapi.FlagTSAMsg, []byte("req-1"))
	expectAnswer(t, c, "req-1")
	handled, refused := r.svc.records()
	if len(handled) != 1 || len(refused) != 0 {
		t.Fatalf("%d handled, %d refused", len(handled), len(refused))
	}
	got := handled[0]
	if got.Method != "TCP" || got.Path != "tcp:/tsa" || got.ContentType != "application/timestamp-query" ||
		got.Source != c.LocalAddr().String() || got.BodySize != 5 || string(got.Body) != "req-1" ||
		!strings.HasPrefix(got.CorrelationID, "tcp-") {
		t.Fatalf("request recorded as %+v", got)
	}
	if a := r.srv.Addr(); a == nil || a.String() != r.addr {
		t.Fatalf("Addr %v, want %s", a, r.addr)
	}
}

func TestReplyWithTSAMsg(t *testing.T) {
	r := start(t, tcpapi.Config{ReplyWithTSAMsg: true})
	c := r.dial(t)
	send(t, c, tcpapi.FlagTSAMsg, []byte("req"))
	if flag, value := recv(t, c); flag != tcpapi.FlagTSAMsg || string(value) != "resp:req" {
		t.Fatalf("answer %s %q", tcpapi.FlagName(flag), value)
	}
}

func TestCloseAfterReply(t *testing.T) {
	r := start(t, tcpapi.Config{CloseAfterReply: true})
	c := r.dial(t)
	send(t, c, tcpapi.FlagTSAMsg, []byte("req"))
	expectAnswer(t, c, "req")
	// A client that reads until the TSA closes (systemd-timestampd) gets
	// its end of stream right away.
	expectClosed(t, c)
}

func TestKeepAlive(t *testing.T) {
	r := start(t, tcpapi.Config{})
	c := r.dial(t)
	for i := range 5 {
		body := fmt.Sprintf("req-%d", i)
		send(t, c, tcpapi.FlagTSAMsg, []byte(body))
		expectAnswer(t, c, body)
	}
	// Pipelined: three frames in one write, answered in order.
	var batch []byte
	for i := range 3 {
		batch = tcpapi.AppendFrame(batch, tcpapi.FlagTSAMsg, fmt.Appendf(nil, "req-p%d", i))
	}
	if _, err := c.Write(batch); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		expectAnswer(t, c, fmt.Sprintf("req-p%d", i))
	}
	handled, _ := r.svc.records()
	ids := map[string]bool{}
	conn := strings.TrimSuffix(handled[0].CorrelationID, ".1")
	for _, h := range handled {
		ids[h.CorrelationID] = true
		if !strings.HasPrefix(h.CorrelationID, conn+".") {
			t.Fatalf("correlation %q is not on connection %q", h.CorrelationID, conn)
		}
	}
	if len(handled) != 8 || len(ids) != 8 {
		t.Fatalf("%d requests, %d correlation IDs", len(handled), len(ids))
	}
}

func TestIdleTimeout(t *testing.T) {
	r := start(t, tcpapi.Config{IdleTimeout: 100 * time.Millisecond})
	c := r.dial(t)
	send(t, c, tcpapi.FlagTSAMsg, []byte("req"))
	expectAnswer(t, c, "req")
	began := time.Now()
	expectClosed(t, c)
	if d := time.Since(began); d > 3*time.Second {
		t.Fatalf("idle connection closed after %s", d)
	}
	r.stop(t)
	if handled, refused := r.svc.records(); len(handled) != 1 || len(refused) != 0 {
		t.Fatalf("%d handled, %d refused: an idle close is no request", len(handled), len(refused))
	}
}

// TestGarbageDER: a tsaMsg that is not a TimeStampReq goes to the service
// like any request, and its rejection is the final answer.
func TestGarbageDER(t *testing.T) {
	r := start(t, tcpapi.Config{})
	c := r.dial(t)
	send(t, c, tcpapi.FlagTSAMsg, []byte{0x30, 0x03, 0xff})
	flag, value := recv(t, c)
	resp, err := rfc3161.ParseTimeStampResp(value)
	if flag != tcpapi.FlagFinalMsgRep || err != nil || resp.Status != rfc3161.Rejected {
		t.Fatalf("answer %s %v %+v", tcpapi.FlagName(flag), err, resp)
	}
	// The connection carries on.
	send(t, c, tcpapi.FlagTSAMsg, []byte("req"))
	expectAnswer(t, c, "req")
	if handled, refused := r.svc.records(); len(handled) != 2 || len(refused) != 0 {
		t.Fatalf("%d handled, %d refused", len(handled), len(refused))
	}
}

func TestBadInput(t *testing.T) {
	const max = 1024
	tests := []struct {
		name string
		// in is written; then the write side is shut when closeWrite.
		in         []byte
		closeWrite bool
		// stream, when set, keeps writing after in (a body arriving).
		stream   bool
		refusal  tsa.Refusal
		reason   string // in the recorded reason
		text     string // the errorMsgRep's fixed text
		body     string // recorded body
		bodySize int64
		keepOpen bool
	}{
		{name: "length 0", in: frame(0), refusal: tsa.RefusedIncomplete, reason: "length 0", text: tcpapi.TextMalformedFrame},
		{name: "over MaxMessage", in: frame(max + 2), refusal: tsa.RefusedTooLarge, reason: "exceeds the 1024-octet limit", text: tcpapi.TextTooLarge, bodySize: max + 1},
		{name: "over MaxMessage while the value streams in", in: frame(1<<30, 0x00), stream: true, refusal: tsa.RefusedTooLarge, reason: "limit", text: tcpapi.TextTooLarge, bodySize: 1<<30 - 1},
		{name: "HTTP on the port", in: []byte("POST /tsa HTTP/1.1\r\nHost: x\r\n\r\n"), refusal: tsa.RefusedTooLarge, reason: "limit", text: tcpapi.TextTooLarge, bodySize: 0x504f5354 - 1},
		{name: "unsupported flag", in: frame(3, 0x07, 'h', 'i'), refusal: tsa.RefusedMessageType, reason: "unsupported flag 0x07", text: tcpapi.TextUnsupportedFlag, body: "hi", bodySize: 2, keepOpen: true},
		{name: "finalMsgRep from a client", in: frame(2, 0x05, 'x'), refusal: tsa.RefusedMessageType, reason: "unsupported flag 0x05 (finalMsgRep)", text: tcpapi.TextUnsupportedFlag, body: "x", bodySize: 1, keepOpen: true},
		{name: "pollReq", in: frame(5, 0x02, 0, 0, 0, 1), refusal: tsa.RefusedMessageType, reason: "unknown polling reference", text: tcpapi.TextNoPolling, body: "\x00\x00\x00\x01", bodySize: 4, keepOpen: true},
		{name: "value cut", in: frame(10, 0x00, 'a', 'b'), closeWrite: true, refusal: tsa.RefusedIncomplete, reason: "cut short", text: tcpapi.TextMalformedFrame, body: "ab", bodySize: 9},
		{name: "header cut", in: []byte{0, 0}, closeWrite: true, refusal: tsa.RefusedIncomplete, reason: "cut short", text: tcpapi.TextMalformedFrame},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := start(t, tcpapi.Config{MaxMessage: max})
			c := r.dial(t)
			if _, err := c.Write(tt.in); err != nil {
				t.Fatal(err)
			}
			if tt.stream {
				done := make(chan struct{})
				defer func() { c.Close(); <-done }()
				go func() {
					defer close(done)
					chunk := make([]byte, 32<<10)
					for {
						if _, err := c.Write(chunk); err != nil {
							return
						}
					}
				}()
			}
			if tt.closeWrite {
				c.CloseWrite()
			}
			flag, value := recv(t, c)
			if flag != tcpapi.FlagErrorMsgRep || string(value) != tt.text {
				t.Fatalf("answer %s %q, want errorMsgRep %q", tcpapi.FlagName(flag), value, tt.text)
			}
			handled, refused := r.svc.records()
			if len(handled) != 0 || len(refused) != 1 {
				t.Fatalf("%d handled, %d refused, want one refusal", len(handled), len(refused))
			}
			got := refused[0]
			if got.refusal != tt.refusal || !strings.Contains(got.reason, tt.reason) || string(got.req.Body) != tt.body ||
				got.req.BodySize != tt.bodySize || got.req.Method != "TCP" || got.req.Path != "tcp:/tsa" ||
				got.req.Source != c.LocalAddr().String() {
				t.Fatalf("recorded %s %q body %q size %d %+v", got.refusal, got.reason, got.req.Body, got.req.BodySize, got.req)
			}
			if tt.keepOpen {
				send(t, c, tcpapi.FlagTSAMsg, []byte("req-after"))
				expectAnswer(t, c, "req-after")
			} else if !tt.stream {
				expectClosed(t, c)
			}
		})
	}
}

func TestReadTimeout(t *testing.T) {
	r := start(t, tcpapi.Config{ReadTimeout: 150 * time.Millisecond})
	c := r.dial(t)
	// The first request is answered, then the next one stalls mid-frame.
	send(t, c, tcpapi.FlagTSAMsg, []byte("req"))
	expectAnswer(t, c, "req")
	c.Write(frame(10, 0x00, 'a'))
	flag, value := recv(t, c)
	if flag != tcpapi.FlagErrorMsgRep || string(value) != tcpapi.TextTooSlow {
		t.Fatalf("answer %s %q", tcpapi.FlagName(flag), value)
	}
	expectClosed(t, c)
	_, refused := r.svc.records()
	if len(refused) != 1 || refused[0].refusal != tsa.RefusedTooSlow || string(refused[0].req.Body) != "a" || refused[0].req.BodySize != 9 {
		t.Fatalf("refusals %+v", refused)
	}

	// A connection that sends nothing at all is closed unrecorded.
	c2 := r.dial(t)
	expectClosed(t, c2)
	r.stop(t)
	if _, refused := r.svc.records(); len(refused) != 1 {
		t.Fatalf("%d refusals: a silent connection is no request", len(refused))
	}
}

// TestSilentClose: connect and close, or close between requests: nothing
// to record.
func TestSilentClose(t *testing.T) {
	r := start(t, tcpapi.Config{})
	r.dial(t).Close()
	c := r.dial(t)
	send(t, c, tcpapi.FlagTSAMsg, []byte("req"))
	expectAnswer(t, c, "req")
	c.Close()
	r.stop(t)
	if handled, refused := r.svc.records(); len(handled) != 1 || len(refused) != 0 {
		t.Fatalf("%d handled, %d refused", len(handled), len(refused))
	}
}

// TestConcurrentClients: 50 clients, one of which sends garbage of every
// kind; each good client gets its own answers and nothing else.
func TestConcurrentClients(t *testing.T) {
	r := start(t, tcpapi.Config{MaxMessage: 1024})
	const clients, rounds = 50, 4
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", r.addr)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(20 * time.Second))
			if i == 0 {
				// The bad client: a bad flag, garbage DER, then a
				// huge length, reconnecting after each close.
				c.Write(frame(2, 0x09, 'x'))
				c.Write(frame(4, 0x00, 0xde, 0xad, 0xbf))
				c.Write(frame(1 << 31))
				io.Copy(io.Discard, c)
				c2, err := net.Dial("tcp", r.addr)
				if err == nil {
					c2.Write(frame(0))
					io.Copy(io.Discard, c2)
					c2.Close()
				}
				return
			}
			for j := range rounds {
				body := fmt.Sprintf("req-%d-%d", i, j)
				if err := tcpapi.WriteFrame(c, tcpapi.FlagTSAMsg, []byte(body)); err != nil {
					errs <- err
					return
				}
				flag, value, err := tcpapi.ReadFrame(c, 1<<20)
				if err != nil || flag != tcpapi.FlagFinalMsgRep || string(value) != "resp:"+body {
					errs <- fmt.Errorf("client %d: %s %q %v", i, tcpapi.FlagName(flag), value, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	r.stop(t)
	handled, refused := r.svc.records()
	if len(handled) != (clients-1)*rounds+1 || len(refused) != 3 {
		t.Fatalf("%d handled, %d refused", len(handled), len(refused))
	}
}

// TestShutdownLetsInFlightFinish: Shutdown closes idle connections and
// stops accepting at once, but waits for a request being handled, whose
// client gets its answer.
func TestShutdownLetsInFlightFinish(t *testing.T) {
	r := start(t, tcpapi.Config{})
	idle := r.dial(t)
	send(t, idle, tcpapi.FlagTSAMsg, []byte("req-idle"))
	expectAnswer(t, idle, "req-idle")

	block := make(chan struct{})
	r.svc.mu.Lock()
	r.svc.block, r.svc.started = block, make(chan struct{}, 1)
	r.svc.mu.Unlock()
	busy := r.dial(t)
	send(t, busy, tcpapi.FlagTSAMsg, []byte("req-busy"))
	<-r.svc.started

	shut := make(chan error, 1)
	go func() { shut <- r.srv.Shutdown(context.Background()) }()
	expectClosed(t, idle)
	for deadline := time.Now().Add(5 * time.Second); ; {
		c, err := net.DialTimeout("tcp", r.addr, time.Second)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("still accepting after Shutdown")
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v with a request in flight", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(block)
	expectAnswer(t, busy, "req-busy")
	expectClosed(t, busy)
	if err := <-shut; err != nil {
		t.Fatal(err)
	}
	<-r.served
	if !errors.Is(r.serveErr, tcpapi.ErrServerClosed) {
		t.Fatalf("Serve: %v", r.serveErr)
	}
}

// TestShutdownDeadline: when ctx ends first, every connection is closed
// and ctx's error returned.
func TestShutdownDeadline(t *testing.T) {
	r := start(t, tcpapi.Config{})
	block := make(chan struct{})
	r.svc.mu.Lock()
	r.svc.block, r.svc.started = block, make(chan struct{}, 1)
	r.svc.mu.Unlock()
	defer close(block)
	c := r.dial(t)
	send(t, c, tcpapi.FlagTSAMsg, []byte("req"))
	<-r.svc.started
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := r.srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown: %v", err)
	}
	expectClosed(t, c)
}

// TestMaxConns: past MaxConns, a new client waits until a connection closes.
func TestMaxConns(t *testing.T) {
	r := start(t, tcpapi.Config{MaxConns: 2})
	a, b := r.dial(t), r.dial(t)
	for _, c := range []net.Conn{a, b} {
		send(t, c, tcpapi.FlagTSAMsg, []byte("req"))
		expectAnswer(t, c, "req")
	}
	third := r.dial(t)
	send(t, third, tcpapi.FlagTSAMsg, []byte("req-3"))
	third.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if _, _, err := tcpapi.ReadFrame(third, 1<<20); !isTimeout(err) {
		t.Fatalf("third connection served past MaxConns: %v", err)
	}
	a.Close()
	third.SetReadDeadline(time.Now().Add(5 * time.Second))
	expectAnswer(t, third, "req-3")
}

// TestPanicClosesOnlyItsConnection.
func TestPanicClosesOnlyItsConnection(t *testing.T) {
	r := start(t, tcpapi.Config{})
	other := r.dial(t)
	send(t, other, tcpapi.FlagTSAMsg, []byte("req-1"))
	expectAnswer(t, other, "req-1")
	bad := r.dial(t)
	send(t, bad, tcpapi.FlagTSAMsg, []byte("panic"))
	expectClosed(t, bad)
	send(t, other, tcpapi.FlagTSAMsg, []byte("req-2"))
	expectAnswer(t, other, "req-2")
	fresh := r.dial(t)
	send(t, fresh, tcpapi.FlagTSAMsg, []byte("req-3"))
	expectAnswer(t, fresh, "req-3")
}

func TestNewValidates(t *testing.T) {
	if _, err := tcpapi.New(tcpapi.Config{Path: "tcp:/tsa"}); err == nil {
		t.Fatal("no service accepted")
	}
	if _, err := tcpapi.New(tcpapi.Config{Service: &fakeService{}}); err == nil {
		t.Fatal("no path accepted")
	}
	srv, err := tcpapi.New(tcpapi.Config{Service: &fakeService{}, Path: "tcp:/tsa"})
	if err != nil {
		t.Fatal(err)
	}
	if srv.Addr() != nil {
		t.Fatal("Addr before Serve")
	}
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(ln); !errors.Is(err, tcpapi.ErrServerClosed) {
		t.Fatalf("Serve after Shutdown: %v", err)
	}
}

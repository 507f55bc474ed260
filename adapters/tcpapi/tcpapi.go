// Package tcpapi serves RFC 3161 over the socket based protocol of RFC 3161
// §3.3: each message is a 4-octet big-endian length, a flag octet and a
// value, the length counting the flag and the value.
//
// # Answers
//
// A tsaMsg (flag 00) is a DER TimeStampReq. It goes to Service.Handle
// whatever it holds, as an HTTP body does in httpapi: garbage gets the
// service's rejection TimeStampResp, recorded like any other request. The
// TimeStampResp goes back as finalMsgRep (05), the RFC's "final (and
// possibly sole) response to initial message" and its exchange (a): "entity
// sends tsaMsg and receives one of pollRep, negPollRep, partialMsgRep, or
// finalMsgRep". tsaMsg is not among those answers. The clients that read the
// flag agree: systemd-timestampd and EldoS SecureBlackbox's
// TElSocketTSPClient take only finalMsgRep (or errorMsgRep) and refuse a
// tsaMsg answer; cryptlib's TSA answered finalMsgRep, while its client
// takes tsaMsg as well, because "some buggy implementations use the request
// message type for any normal communication". Clients written against such
// a TSA may want 00 back: Config.ReplyWithTSAMsg answers that way.
//
// Transport problems are answered with errorMsgRep (06), whose value RFC
// 3161 makes a "human readable error message": UTF-8 text here, which is
// what systemd-timestampd and SecureBlackbox display (a DER PKIFreeText
// would reach their users as binary). Each is recorded through
// Service.Refuse first, with the HTTP status it would have had:
//
//   - length 0: 400, then the connection closes;
//   - a value over MaxMessage: 413, then the connection closes, without
//     reading the value (BodySize is the size declared);
//   - a flag other than tsaMsg: 400 (a pollReq is answered "unknown polling
//     reference": this TSA answers at once and never hands one out). The
//     frame was whole, so the stream is still in step: the connection stays
//     open for the next request;
//   - a frame cut by the client closing: 400; by ReadTimeout: 408. An
//     errorMsgRep is attempted and the connection closes.
//
// A connection that closes or goes idle between frames, before any octet of
// the next one, sent no request: nothing is recorded.
//
// # Connections
//
// A connection carries requests one after the other, answered in order,
// until the client closes it or IdleTimeout passes without the first octet
// of a next request (Config.CloseAfterReply closes after each answer
// instead). Each connection is served on its own goroutine: a client's bad
// input, slowness or a panic in the service closes that connection only.
// MaxConns bounds the connections open at once; past it, Serve stops
// accepting until one closes, and the kernel's backlog holds new clients.
package tcpapi

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chronolog/chronolog/domain/rfc3161"
	"github.com/chronolog/chronolog/domain/tsa"
)

// Recorded request fields that HTTP takes from the request line and headers.
const (
	// Method is tsa.Request.Method for every request over this transport.
	Method = "TCP"
	// ContentType is tsa.Request.ContentType: a tsaMsg is a TimeStampReq.
	ContentType = rfc3161.MediaTypeQuery
)

// Defaults for the zero values of Config.
const (
	DefaultMaxMessage     = 64 << 10
	DefaultMaxConns       = 1024
	DefaultReadTimeout    = 30 * time.Second
	DefaultWriteTimeout   = 30 * time.Second
	DefaultIdleTimeout    = 10 * time.Second
	DefaultRequestTimeout = 5 * time.Second
)

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("tcpapi: server closed")

// Service is one timestamp service as the transport sees it.
type Service = tsa.Handler

// Tally counts answers for the server's metrics (httpapi.Tally).
type Tally interface {
	Answered(tsa.Outcome)
	Undelivered()
}

// Texts of errorMsgRep answers: fixed, the cause being on the record.
const (
	TextMalformedFrame  = "malformed frame"
	TextTooLarge        = "message too large"
	TextTooSlow         = "frame not received in time"
	TextNoPolling       = "polling is not supported: send a TimeStampReq as tsaMsg"
	TextUnsupportedFlag = "unsupported message type: send a TimeStampReq as tsaMsg"
	TextNoAnswer        = "the time-stamp authority could not answer"
)

type noTally struct{}

func (noTally) Answered(tsa.Outcome) {}
func (noTally) Undelivered()         {}

// Config describes the TCP surface.
type Config struct {
	Service Service
	// Path is recorded as tsa.Request.Path, e.g. "tcp:/tsa"; it is what
	// filters and the events see in place of a URL path.
	Path string
	// MaxMessage bounds the value of a frame, the DER TimeStampReq (the
	// length field minus the flag octet), like httpapi's MaxBody; zero
	// means DefaultMaxMessage.
	MaxMessage int64
	// ReadTimeout bounds the reading of one frame: from accepting the
	// connection for the first, from a frame's first octet for the next
	// ones. Zero means DefaultReadTimeout.
	ReadTimeout time.Duration
	// WriteTimeout bounds the writing of one answer; zero means
	// DefaultWriteTimeout.
	WriteTimeout time.Duration
	// IdleTimeout is how long a connection waits for the next request
	// after an answer; zero means DefaultIdleTimeout. It is short because
	// no known client reuses a connection, and one reads until the TSA
	// closes (see CloseAfterReply).
	IdleTimeout time.Duration
	// RequestTimeout bounds the handling of one request, the wait for its
	// events to be durable included; zero means DefaultRequestTimeout.
	RequestTimeout time.Duration
	// MaxConns bounds the connections open at once; zero means
	// DefaultMaxConns.
	MaxConns int
	// ReplyWithTSAMsg answers a tsaMsg with a tsaMsg (00) instead of
	// finalMsgRep (05), for clients written against TSAs that do.
	ReplyWithTSAMsg bool
	// CloseAfterReply closes the connection after each answer instead of
	// waiting IdleTimeout for another request. systemd-timestampd reads
	// its answer until the TSA closes the connection: without this, it
	// gets it only when IdleTimeout passes.
	CloseAfterReply bool
	// Tally counts the answers with the server's other transports; nil
	// counts nothing.
	Tally Tally
	Log   *slog.Logger
}

// Server serves RFC 3161 §3.3 on one or more listeners.
type Server struct {
	cfg       Config
	replyFlag byte
	slots     chan struct{}
	// prefix makes correlation IDs unique across servers and restarts.
	prefix  string
	connSeq atomic.Uint64

	mu        sync.Mutex
	listeners map[*net.Listener]struct{}
	conns     map[*conn]struct{}
	addr      net.Addr
	closing   bool
	done      chan struct{} // closed by Shutdown
	drained   chan struct{} // closed when closing and no connection is left
}

// New validates cfg and returns the server.
func New(cfg Config) (*Server, error) {
	if cfg.Service == nil {
		return nil, errors.New("tcpapi: no timestamp service")
	}
	if cfg.Path == "" {
		return nil, errors.New("tcpapi: no path to record requests under")
	}
	if cfg.MaxMessage <= 0 {
		cfg.MaxMessage = DefaultMaxMessage
	}
	if cfg.ReadTimeout <= 0 {
		cfg.ReadTimeout = DefaultReadTimeout
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Tally == nil {
		cfg.Tally = noTally{}
	}
	var p [4]byte
	if _, err := rand.Read(p[:]); err != nil {
		return nil, fmt.Errorf("tcpapi: correlation prefix: %w", err)
	}
	s := &Server{
		cfg:       cfg,
		replyFlag: FlagFinalMsgRep,
		slots:     make(chan struct{}, cfg.MaxConns),
		prefix:    "tcp-" + hex.EncodeToString(p[:]),
		listeners: map[*net.Listener]struct{}{},
		conns:     map[*conn]struct{}{},
		done:      make(chan struct{}),
		drained:   make(chan struct{}),
	}
	if cfg.ReplyWithTSAMsg {
		s.replyFlag = FlagTSAMsg
	}
	return s, nil
}

// Addr is the address of the listener Serve was last given, nil until
// Serve has started: a caller that runs Serve on a goroutine and prints
// the address at once should print its listener's Addr instead.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// Serve accepts connections on ln until Shutdown (it then returns
// ErrServerClosed) or until ln fails. It closes ln when it returns.
func (s *Server) Serve(ln net.Listener) error {
	l := &ln
	if !s.trackListener(l, true) {
		ln.Close()
		return ErrServerClosed
	}
	defer func() {
		s.trackListener(l, false)
		ln.Close()
	}()
	var backoff time.Duration
	for {
		select {
		case s.slots <- struct{}{}:
		case <-s.done:
			return ErrServerClosed
		}
		nc, err := ln.Accept()
		if err != nil {
			<-s.slots
			if s.isClosing() {
				return ErrServerClosed
			}
			var te interface{ Temporary() bool }
			if errors.As(err, &te) && te.Temporary() {
				// Out of file descriptors and the like: wait and retry,
				// as net/http does.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.cfg.Log.Warn("tcpapi: accept failed; retrying", "err", err, "in", backoff)
				select {
				case <-time.After(backoff):
				case <-s.done:
					return ErrServerClosed
				}
				continue
			}
			return err
		}
		backoff = 0
		c := &conn{
			s:      s,
			nc:     nc,
			source: nc.RemoteAddr().String(),
			id:     s.prefix + "-" + strconv.FormatUint(s.connSeq.Add(1), 10),
		}
		if !s.trackConn(c, true) {
			nc.Close()
			<-s.slots
			return ErrServerClosed
		}
		go c.serve()
	}
}

// Shutdown stops accepting, closes the connections waiting for a request,
// lets the exchanges under way finish (each connection then closes), and
// returns when none is left. If ctx ends first, it closes every connection
// and returns ctx's error: a frame then half read is recorded as a refusal;
// a request in Service.Handle is still recorded by the service, but its
// answer is lost.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if !s.closing {
		s.closing = true
		close(s.done)
		if len(s.conns) == 0 {
			close(s.drained)
		}
	}
	for l := range s.listeners {
		(*l).Close()
	}
	for c := range s.conns {
		if !c.active {
			c.nc.Close()
		}
	}
	s.mu.Unlock()
	select {
	case <-s.drained:
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		for c := range s.conns {
			c.nc.Close()
		}
		s.mu.Unlock()
		return ctx.Err()
	}
}

func (s *Server) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

func (s *Server) trackListener(l *net.Listener, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !add {
		delete(s.listeners, l)
		return true
	}
	if s.closing {
		return false
	}
	s.listeners[l] = struct{}{}
	s.addr = (*l).Addr()
	return true
}

func (s *Server) trackConn(c *conn, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if add {
		if s.closing {
			return false
		}
		s.conns[c] = struct{}{}
		return true
	}
	delete(s.conns, c)
	if s.closing && len(s.conns) == 0 {
		close(s.drained)
	}
	return true
}

// setActive marks c as in the middle of an exchange (Shutdown lets it
// finish) or waiting for the next request (Shutdown closes it). It reports
// false when the server is shutting down: the connection must end.
func (s *Server) setActive(c *conn, active bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		// Between frames, or a first octet that raced Shutdown's sweep
		// of idle connections: either way, no exchange is under way.
		return false
	}
	c.active = active
	return true
}

// conn is one client connection.
type conn struct {
	s      *Server
	nc     net.Conn
	source string
	id     string
	active bool // guarded by s.mu
	reqs   int
	// linger: an answer was just written before closing.
	linger bool
}

func (c *conn) serve() {
	s := c.s
	defer func() {
		if p := recover(); p != nil {
			s.cfg.Log.Error("tcpapi: panic serving a connection; it is closed", "source", c.source, "correlation", c.id, "panic", p, "stack", string(debug.Stack()))
		}
		if c.linger {
			c.closeAfterAnswer()
		} else {
			c.nc.Close()
		}
		s.trackConn(c, false)
		<-s.slots
	}()
	// The buffer usually takes a whole frame in one read; Peek tells the
	// wait for a request's first octet (IdleTimeout) from the reading of
	// the rest (ReadTimeout).
	r := bufio.NewReaderSize(c.nc, 4096)
	for {
		if !s.setActive(c, false) {
			// Shutting down: an answer just written must still arrive.
			c.linger = c.reqs > 0
			return
		}
		wait := s.cfg.IdleTimeout
		if c.reqs == 0 {
			wait = s.cfg.ReadTimeout
		}
		c.nc.SetReadDeadline(time.Now().Add(wait))
		if _, err := r.Peek(1); err != nil {
			// Closed, idle or gone between requests: no request to record.
			if c.reqs == 0 && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				s.cfg.Log.Debug("tcpapi: connection sent nothing", "source", c.source, "err", err)
			}
			return
		}
		if !s.setActive(c, true) {
			return
		}
		c.reqs++
		if c.reqs > 1 {
			c.nc.SetReadDeadline(time.Now().Add(s.cfg.ReadTimeout))
		}
		if !c.exchange(r) || s.cfg.CloseAfterReply {
			c.linger = true
			return
		}
	}
}

// exchange reads one frame and answers it. It reports whether the
// connection may carry another request.
func (c *conn) exchange(r io.Reader) bool {
	s := c.s
	flag, value, err := ReadFrame(r, s.cfg.MaxMessage)
	req := tsa.Request{
		Body:          value,
		Method:        Method,
		Path:          s.cfg.Path,
		ContentType:   ContentType,
		Source:        c.source,
		BodySize:      int64(len(value)),
		CorrelationID: c.id + "." + strconv.Itoa(c.reqs),
		Transport:     "tcp",
	}
	var (
		tooLarge  *FrameTooLargeError
		truncated *TruncatedError
	)
	switch {
	case err == nil:
	case errors.Is(err, ErrZeroLength):
		c.refuse(req, tsa.RefusedIncomplete, TextMalformedFrame, "frame length 0: the length counts the flag octet, so it is at least 1")
		return false
	case errors.As(err, &tooLarge):
		req.BodySize = int64(tooLarge.Length) - 1
		c.refuse(req, tsa.RefusedTooLarge, TextTooLarge, fmt.Sprintf("message of %d octets exceeds the %d-octet limit", req.BodySize, s.cfg.MaxMessage))
		return false
	case errors.As(err, &truncated):
		if truncated.Declared >= 0 {
			req.BodySize = truncated.Declared
		}
		if isTimeout(err) {
			c.refuse(req, tsa.RefusedTooSlow, TextTooSlow, fmt.Sprintf("frame not received within %s: %d octets arrived", s.cfg.ReadTimeout, truncated.Got))
		} else {
			c.refuse(req, tsa.RefusedIncomplete, TextMalformedFrame, fmt.Sprintf("frame cut short: %d octets arrived (%v)", truncated.Got, truncated.Err))
		}
		return false
	default:
		c.refuse(req, tsa.RefusedIncomplete, TextMalformedFrame, "frame could not be read: "+err.Error())
		return false
	}

	switch flag {
	case FlagTSAMsg:
	case FlagPollReq:
		c.refuse(req, tsa.RefusedMessageType, TextNoPolling, "pollReq: unknown polling reference (this TSA answers every tsaMsg at once and hands out none)")
		return true
	default:
		name := ""
		if flag <= FlagErrorMsgRep {
			name = " (" + FlagName(flag) + ")"
		}
		c.refuse(req, tsa.RefusedMessageType, TextUnsupportedFlag, fmt.Sprintf("unsupported flag %#02x%s: send a TimeStampReq as tsaMsg (00)", flag, name))
		return true
	}

	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.RequestTimeout)
	defer cancel()
	o := s.cfg.Service.Handle(ctx, req)
	s.cfg.Tally.Answered(o)
	var resp []byte
	switch o.Kind {
	case tsa.Granted:
		resp = rfc3161.GrantedResponse(o.Token)
	case tsa.Rejected, tsa.Failed:
		resp = rfc3161.RejectionResponse(o.Rejection)
	case tsa.Forwarded:
		resp = o.Response
	default:
		// Not a TSP answer: the service refused what it was given.
		s.cfg.Log.Error("tcpapi: service answered without a TimeStampResp", "serial", o.Serial, "outcome", o.Kind, "correlation", req.CorrelationID)
		c.deliver(ctx, o, FlagErrorMsgRep, []byte(TextNoAnswer))
		return false
	}
	return c.deliver(ctx, o, s.replyFlag, resp)
}

// refuse records a frame the transport would not take, then answers it
// with errorMsgRep carrying text (best effort: the client may be gone);
// reason goes to the record.
func (c *conn) refuse(req tsa.Request, refusal tsa.Refusal, text, reason string) {
	s := c.s
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.RequestTimeout)
	defer cancel()
	o := s.cfg.Service.Refuse(ctx, req, refusal, reason)
	s.cfg.Tally.Answered(o)
	s.cfg.Log.Debug("tcpapi: refused", "source", c.source, "refusal", refusal, "reason", reason,
		"serial", o.Serial, "recorded", o.Recorded, "correlation", req.CorrelationID)
	c.deliver(ctx, o, FlagErrorMsgRep, []byte(text))
}

// deliver sends an answer and records it undelivered when the write fails.
// It reports whether the answer was sent.
func (c *conn) deliver(ctx context.Context, o tsa.Outcome, flag byte, value []byte) bool {
	err := c.send(flag, value)
	if err == nil {
		return true
	}
	c.s.cfg.Tally.Undelivered()
	if o.Recorded && o.Serial != "" {
		if rerr := c.s.cfg.Service.Undelivered(ctx, o.Serial, "the answer could not be written: "+err.Error()); rerr != nil {
			c.s.cfg.Log.Error("tcpapi: undelivered answer not recorded", "serial", o.Serial, "err", rerr)
		}
	}
	return false
}

func (c *conn) send(flag byte, value []byte) error {
	c.nc.SetWriteDeadline(time.Now().Add(c.s.cfg.WriteTimeout))
	err := WriteFrame(c.nc, flag, value)
	if err != nil {
		c.s.cfg.Log.Debug("tcpapi: answer not delivered", "source", c.source, "flag", FlagName(flag), "err", err)
	}
	return err
}

// Lingering close bounds: see closeAfterAnswer.
const (
	lingerTime  = 500 * time.Millisecond
	lingerBytes = 256 << 10
)

// closeAfterAnswer closes a connection whose last answer must reach the
// client. Closing a socket with unread input makes the kernel reset the
// connection, and a reset can destroy the answer before the client reads
// it: that is the case of a frame refused for its size while its value is
// still arriving. So the write side is shut first (the client reads the
// answer, then end of stream), and input is drained for a short while
// before the close, as net/http does.
func (c *conn) closeAfterAnswer() {
	cw, ok := c.nc.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil {
		c.nc.Close()
		return
	}
	c.nc.SetReadDeadline(time.Now().Add(lingerTime))
	_, _ = io.Copy(io.Discard, io.LimitReader(c.nc, lingerBytes))
	c.nc.Close()
}

func isTimeout(err error) bool {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

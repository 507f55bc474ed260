package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/url"
	"strconv"
	"time"

	"github.com/chronolog/chronolog/domain/rfc3161"
)

// benchConn is one keep-alive HTTP/1.1 connection of the load generator.
// It speaks just enough HTTP to post a query and read a reply with a
// Content-Length, so that the generator spends its CPU on the server's
// behalf as little as a C tool like wrk would: on a shared 2-core machine
// every microsecond the client saves is one the server gets.
type benchConn struct {
	target *url.URL
	dial   func() (net.Conn, error)
	conn   net.Conn
	r      *bufio.Reader
	// head is the request line and headers up to the Content-Length value.
	head []byte
	out  []byte
	body []byte
}

func newBenchDialer(target *url.URL, timeout time.Duration) (func() (net.Conn, error), error) {
	host := target.Host
	switch target.Scheme {
	case "http":
		if target.Port() == "" {
			host = net.JoinHostPort(target.Hostname(), "80")
		}
		return func() (net.Conn, error) { return net.DialTimeout("tcp", host, timeout) }, nil
	case "https":
		if target.Port() == "" {
			host = net.JoinHostPort(target.Hostname(), "443")
		}
		cfg := &tls.Config{ServerName: target.Hostname(), MinVersion: tls.VersionTLS12}
		return func() (net.Conn, error) {
			return tls.DialWithDialer(&net.Dialer{Timeout: timeout}, "tcp", host, cfg)
		}, nil
	default:
		return nil, fmt.Errorf("URL scheme %q: want http or https", target.Scheme)
	}
}

func newBenchConn(target *url.URL, dial func() (net.Conn, error), bearer string) *benchConn {
	path := target.RequestURI()
	auth := ""
	if bearer != "" {
		auth = "Authorization: Bearer " + bearer + "\r\n"
	}
	head := fmt.Appendf(nil, "POST %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: tsactl-bench\r\n%sContent-Type: %s\r\nContent-Length: ",
		path, target.Host, auth, rfc3161.MediaTypeQuery)
	return &benchConn{target: target, dial: dial, head: head}
}

// roundTrip posts one query and returns the reply body, valid until the
// next call. A broken connection is redialled on the next call.
func (c *benchConn) roundTrip(query []byte, deadline time.Time) ([]byte, error) {
	if c.conn == nil {
		conn, err := c.dial()
		if err != nil {
			return nil, fmt.Errorf("dial: %w", err)
		}
		c.conn = conn
		if c.r == nil {
			c.r = bufio.NewReaderSize(conn, 8<<10)
		} else {
			c.r.Reset(conn)
		}
	}
	c.conn.SetDeadline(deadline)
	c.out = append(c.out[:0], c.head...)
	c.out = strconv.AppendInt(c.out, int64(len(query)), 10)
	c.out = append(c.out, "\r\n\r\n"...)
	c.out = append(c.out, query...)
	if _, err := c.conn.Write(c.out); err != nil {
		c.close()
		return nil, fmt.Errorf("send: %w", err)
	}
	body, keep, err := c.readReply()
	if err != nil || !keep {
		c.close()
	}
	return body, err
}

// readReply reads a status line, headers and a Content-Length body. It
// insists on 200 and application/timestamp-reply: anything else is an
// error naming what came.
func (c *benchConn) readReply() (body []byte, keepAlive bool, err error) {
	line, err := c.r.ReadSlice('\n')
	if err != nil {
		return nil, false, fmt.Errorf("read status: %w", err)
	}
	// "HTTP/1.1 200 OK\r\n"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return nil, false, fmt.Errorf("bad status line %q", line)
	}
	status := string(line[9:12])
	length, keepAlive, typ := -1, true, ""
	for {
		h, err := c.r.ReadSlice('\n')
		if err != nil {
			return nil, false, fmt.Errorf("read headers: %w", err)
		}
		h = bytes.TrimRight(h, "\r\n")
		if len(h) == 0 {
			break
		}
		name, value, ok := bytes.Cut(h, []byte(":"))
		if !ok {
			return nil, false, fmt.Errorf("bad header %q", h)
		}
		value = bytes.TrimSpace(value)
		switch {
		case asciiEqualFold(name, "Content-Length"):
			n, err := strconv.Atoi(string(value))
			if err != nil || n < 0 || n > 1<<20 {
				return nil, false, fmt.Errorf("bad Content-Length %q", value)
			}
			length = n
		case asciiEqualFold(name, "Connection"):
			keepAlive = !asciiEqualFold(value, "close")
		case asciiEqualFold(name, "Content-Type"):
			typ = string(value)
		}
	}
	if length < 0 {
		return nil, false, errors.New("reply has no Content-Length")
	}
	if cap(c.body) < length {
		c.body = make([]byte, length)
	}
	c.body = c.body[:length]
	if _, err := io.ReadFull(c.r, c.body); err != nil {
		return nil, false, fmt.Errorf("read body: %w", err)
	}
	if status != "200" {
		return nil, keepAlive, fmt.Errorf("HTTP %s", status)
	}
	if typ != rfc3161.MediaTypeReply {
		return nil, keepAlive, fmt.Errorf("content type %q", typ)
	}
	return c.body, keepAlive, nil
}

func (c *benchConn) close() {
	if c.conn != nil {
		c.conn.Close()
		c.conn = nil
	}
}

func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		x, y := b[i], s[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// queryMaker makes distinct queries cheaply: it encodes one TimeStampReq
// with an 8-octet nonce once, then overwrites the digest and the nonce with
// fresh random bytes for each query. The nonce's first octet stays in
// 0x01–0x7f, so the INTEGER stays positive and minimal.
type queryMaker struct {
	template          []byte
	digestAt, nonceAt int
	digestLen         int
	rng               *rand.ChaCha8
	// fixed, when set, is sent every time instead.
	fixed []byte
}

const benchNonceLen = 8

func newQueryMaker(alg rfc3161.HashAlgorithm, certReq bool, seed [32]byte) (*queryMaker, error) {
	digest := bytes.Repeat([]byte{0xd1}, alg.Size)
	nonce := bytes.Repeat([]byte{0x6e}, benchNonceLen)
	q, err := rfc3161.NewTimeStampReq(alg, digest, nil, nil, certReq)
	if err != nil {
		return nil, err
	}
	q.Nonce = nonce
	der, err := q.Marshal()
	if err != nil {
		return nil, err
	}
	m := &queryMaker{template: der, digestLen: alg.Size, rng: rand.NewChaCha8(seed)}
	m.digestAt = bytes.Index(der, digest)
	m.nonceAt = bytes.LastIndex(der, nonce)
	if m.digestAt < 0 || m.nonceAt < m.digestAt+alg.Size {
		return nil, errors.New("bench: cannot place digest and nonce in the query template")
	}
	return m, nil
}

// next writes a fresh query into m.template and returns it with the
// nonce's and the digest's bytes inside it (valid until the next call).
func (m *queryMaker) next() (query, digest, nonce []byte) {
	if m.fixed != nil {
		return m.fixed, nil, nil
	}
	digest = m.template[m.digestAt : m.digestAt+m.digestLen]
	nonce = m.template[m.nonceAt : m.nonceAt+benchNonceLen]
	// A math/rand source: Read never fails.
	_, _ = m.rng.Read(digest)
	_, _ = m.rng.Read(nonce)
	nonce[0] = nonce[0]&0x7f | 0x01
	return m.template, digest, nonce
}

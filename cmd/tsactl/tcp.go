package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/chronolog/chronolog/adapters/tcpapi"
)

// tcpTimeout bounds a whole exchange over the socket protocol: connecting,
// sending the query, reading the reply.
const tcpTimeout = 30 * time.Second

// tcpMaxReply bounds the reply, as post does for HTTP.
const tcpMaxReply = 1 << 20

// checkTransport refuses --url and --tcp together: the query goes one way.
func checkTransport(fs *flag.FlagSet, tcpAddr string) error {
	if tcpAddr == "" {
		return nil
	}
	urlSet := false
	fs.Visit(func(f *flag.Flag) { urlSet = urlSet || f.Name == "url" })
	if urlSet {
		return errors.New("--url and --tcp both given: choose HTTP or the socket protocol")
	}
	return nil
}

// exchangeTCP sends one query over the socket based protocol of RFC 3161
// §3.3 (a tsaMsg frame) and returns the TimeStampResp of the answer. The
// TSA answers with finalMsgRep; a tsaMsg answer, which some TSAs send, is
// taken too. errorMsgRep is returned as an error with the TSA's text.
// Polling (pollRep, partialMsgRep) is not done: the TSA must answer at
// once.
func exchangeTCP(addr string, der []byte) ([]byte, error) {
	addr = withDefaultPort(addr)
	c, err := net.DialTimeout("tcp", addr, tcpTimeout)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", addr, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(tcpTimeout))
	if err := tcpapi.WriteFrame(c, tcpapi.FlagTSAMsg, der); err != nil {
		return nil, fmt.Errorf("send to %s: %w", addr, err)
	}
	flag, value, err := tcpapi.ReadFrame(c, tcpMaxReply)
	switch {
	case errors.Is(err, io.EOF):
		return nil, fmt.Errorf("%s closed the connection without answering", addr)
	case err != nil:
		return nil, fmt.Errorf("read the reply from %s: %w", addr, err)
	}
	switch flag {
	case tcpapi.FlagFinalMsgRep, tcpapi.FlagTSAMsg:
		return value, nil
	case tcpapi.FlagErrorMsgRep:
		return nil, fmt.Errorf("%s: errorMsgRep: %s", addr, tcpapi.ErrorMessage(value))
	case tcpapi.FlagPollRep, tcpapi.FlagPartialMsgRep:
		return nil, fmt.Errorf("%s answered %s: it asks to be polled later, which tsactl does not do", addr, tcpapi.FlagName(flag))
	case tcpapi.FlagNegPollRep:
		return nil, fmt.Errorf("%s answered negPollRep: no response to come", addr)
	}
	return nil, fmt.Errorf("%s answered with %s, not a TimeStampResp", addr, tcpapi.FlagName(flag))
}

// withDefaultPort adds RFC 3161's port 318 to an address that has none.
func withDefaultPort(addr string) string {
	if _, _, err := net.SplitHostPort(addr); err == nil {
		return addr
	}
	host := strings.TrimSuffix(strings.TrimPrefix(addr, "["), "]")
	return net.JoinHostPort(host, strconv.Itoa(tcpapi.DefaultPort))
}

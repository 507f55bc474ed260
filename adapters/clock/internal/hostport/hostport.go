// Package hostport reads the address of a clock source as the
// configuration gives it: a host name, an IPv4 address, or an IPv6 address
// with or without brackets, and an optional numeric port.
package hostport

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// Normalize returns addr as host:port, with defaultPort when addr names
// none. The port must be a number: a service name would be resolved by
// the system.
func Normalize(addr string, defaultPort int) (string, error) {
	if addr == "" {
		return "", errors.New("empty address")
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		// No port: a host name, an IPv4 address, or an IPv6 address with or
		// without brackets.
		if strings.HasPrefix(addr, "[") != strings.HasSuffix(addr, "]") {
			return "", fmt.Errorf("unbalanced brackets in %q", addr)
		}
		host = strings.TrimSuffix(strings.TrimPrefix(addr, "["), "]")
		port = strconv.Itoa(defaultPort)
	}
	if host == "" {
		return "", errors.New("no host")
	}
	if strings.ContainsAny(host, "[] \t/") {
		return "", fmt.Errorf("invalid host %q", host)
	}
	// A colon left in the host can only be an IPv6 address's.
	if strings.Contains(host, ":") {
		if _, err := netip.ParseAddr(host); err != nil {
			return "", fmt.Errorf("invalid host %q: %w", host, err)
		}
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil || p == 0 {
		return "", fmt.Errorf("invalid port %q", port)
	}
	return net.JoinHostPort(host, strconv.FormatUint(p, 10)), nil
}

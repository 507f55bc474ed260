// Package chronytest runs a real chronyd for tests: one daemon per test, on
// free loopback ports, with its configuration, pidfile, drift file, command
// socket and log in the test's temporary directory. It serves NTP from its
// own clock ("local stratum N") or from upstream servers, and answers
// monitoring commands (chronyc, the chrony adapter) on its command port.
//
// chronyd runs with -x, so it never adjusts the system clock: it only
// tracks it. It must be started as root (chronyd refuses otherwise, even
// with -x), and needs /usr/sbin/chronyd and chronyc (apt-get install
// chrony). Without them a test skips, saying so; under CI=true it fails
// instead, because CI must never pass by skipping (.ci/run installs chrony).
package chronytest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// DefaultStratum is the stratum chronyd serves its own clock at when
// Options.Stratum is zero.
const DefaultStratum = 10

// Options configures a daemon.
type Options struct {
	// Stratum (1–15) is what chronyd announces while it serves its own
	// clock ("local stratum N"): always without upstreams, and with them
	// until it has synchronised. Zero means DefaultStratum.
	Stratum int
	// Upstreams are NTP servers (host:port) chronyd polls. They are polled
	// every 1/16 s, so that chronyd synchronises within a second or two
	// rather than minutes.
	Upstreams []string
}

// Daemon is a running chronyd.
type Daemon struct {
	t       testing.TB
	chronyc string
	dir     string
	pidfile string
	logfile string
	ntpAddr string
	cmdAddr string
	socket  string

	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd.Wait has returned
	stop   sync.Once
}

// binaries where Debian's chrony package puts them.
const (
	chronydPath = "/usr/sbin/chronyd"
	chronycPath = "/usr/bin/chronyc"
)

// startTimeout bounds the wait for chronyd to answer on its command port.
const startTimeout = 10 * time.Second

// Start runs chronyd for t, waits until it answers on its command port,
// and stops it when t ends.
func Start(t testing.TB, opts Options) *Daemon {
	t.Helper()
	chronyd := findBinary(chronydPath, "chronyd")
	chronyc := findBinary(chronycPath, "chronyc")
	switch {
	case chronyd == "" || chronyc == "":
		unavailable(t, "chronyd or chronyc is not installed (looked for %s and %s, and on PATH): apt-get install chrony", chronydPath, chronycPath)
	case os.Geteuid() != 0:
		unavailable(t, "chronyd refuses to run as a user other than root (even with -x, which keeps it off the system clock)")
	}
	if opts.Stratum == 0 {
		opts.Stratum = DefaultStratum
	}
	if opts.Stratum < 1 || opts.Stratum > 15 {
		t.Fatalf("chronyd: stratum %d, want 1 to 15", opts.Stratum)
	}
	var upstreams []upstream
	for _, u := range opts.Upstreams {
		up, err := parseUpstream(u)
		if err != nil {
			t.Fatalf("chronyd: upstream %q: %v", u, err)
		}
		upstreams = append(upstreams, up)
	}

	// A port picked free can be taken by someone else before chronyd
	// binds it; chronyd then logs it and runs on, deaf. A few tries with
	// fresh ports make that race harmless.
	var err error
	for range 3 {
		var d *Daemon
		d, err = start(t, chronyd, chronyc, opts.Stratum, upstreams)
		if err == nil {
			return d
		}
		if !errors.Is(err, errPortTaken) {
			break
		}
	}
	t.Fatalf("chronyd: %v", err)
	return nil
}

var errPortTaken = errors.New("a port was taken before chronyd could bind it")

func start(t testing.TB, chronyd, chronyc string, stratum int, upstreams []upstream) (*Daemon, error) {
	dir := t.TempDir()
	// chronyd opens its Unix command socket only in a directory closed to
	// others ("Wrong permissions"), and t.TempDir's is 0755 under the
	// usual umask.
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, err
	}
	ports, err := freeUDPPorts(2)
	if err != nil {
		return nil, err
	}
	d := &Daemon{
		t:       t,
		chronyc: chronyc,
		dir:     dir,
		pidfile: filepath.Join(dir, "chronyd.pid"),
		logfile: filepath.Join(dir, "chronyd.log"),
		ntpAddr: net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0])),
		cmdAddr: net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[1])),
		socket:  filepath.Join(dir, "chronyd.sock"),
		exited:  make(chan struct{}),
	}
	conf := filepath.Join(dir, "chrony.conf")
	if err := os.WriteFile(conf, []byte(d.config(ports[0], ports[1], stratum, upstreams)), 0o600); err != nil {
		return nil, fmt.Errorf("write %s: %w", conf, err)
	}
	logf, err := os.Create(d.logfile)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	// -d: foreground, logging to stderr; -x: never touch the system
	// clock; -u root: stay root rather than switch to a "chrony" user who
	// could not read the temporary directory.
	d.cmd = exec.Command(chronyd, "-x", "-d", "-u", "root", "-f", conf)
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	if err := d.cmd.Start(); err != nil {
		return nil, fmt.Errorf("run %s: %w", chronyd, err)
	}
	go func() {
		_ = d.cmd.Wait() // the exit status of a killed daemon says nothing
		close(d.exited)
	}()
	// Registered before Stop, so that it runs after it, on the whole log.
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("chronyd log (%s):\n%s", d.logfile, d.log())
		}
	})
	t.Cleanup(d.Stop)

	if err := d.waitReady(); err != nil {
		d.Stop()
		return nil, err
	}
	// Both sockets are opened before the command port answers: a failure
	// to bind either is in the log by now.
	if log := d.log(); strings.Contains(log, "Could not open") {
		d.Stop()
		return nil, fmt.Errorf("%w:\n%s", errPortTaken, log)
	} else if strings.Contains(log, "Disabled command socket") {
		d.Stop()
		return nil, fmt.Errorf("chronyd did not open its command socket %s:\n%s", d.socket, log)
	}
	return d, nil
}

// config is the chrony.conf of a daemon that serves NTP and commands on
// loopback only, and keeps every file it writes in its directory.
func (d *Daemon) config(ntpPort, cmdPort, stratum int, upstreams []upstream) string {
	var b strings.Builder
	fmt.Fprintf(&b, "port %d\n", ntpPort)
	b.WriteString("bindaddress 127.0.0.1\n")
	b.WriteString("allow 127.0.0.1\n")
	// Serve its own clock when it has nothing better: the test machine's
	// clock is not synchronised, and chronyd would otherwise not answer.
	fmt.Fprintf(&b, "local stratum %d\n", stratum)
	fmt.Fprintf(&b, "cmdport %d\n", cmdPort)
	b.WriteString("bindcmdaddress 127.0.0.1\n")
	// The Unix command socket, else chronyd would take (or fail on) the
	// system's /run/chrony/chronyd.sock.
	fmt.Fprintf(&b, "bindcmdaddress %s\n", d.socket)
	b.WriteString("cmdallow 127.0.0.1\n")
	fmt.Fprintf(&b, "pidfile %s\n", d.pidfile)
	fmt.Fprintf(&b, "driftfile %s\n", filepath.Join(d.dir, "chronyd.drift"))
	for _, u := range upstreams {
		fmt.Fprintf(&b, "server %s port %d iburst minpoll -4 maxpoll -4\n", u.host, u.port)
	}
	return b.String()
}

// waitReady waits until chronyc gets a tracking report from the daemon,
// or the daemon dies, or startTimeout passes.
func (d *Daemon) waitReady() error {
	deadline := time.Now().Add(startTimeout)
	for {
		select {
		case <-d.exited:
			return fmt.Errorf("chronyd exited at start:\n%s", d.log())
		default:
		}
		if strings.Contains(d.log(), "Could not open") {
			return fmt.Errorf("%w:\n%s", errPortTaken, d.log())
		}
		_, err := d.Chronyc("-c", "tracking")
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("chronyd does not answer on %s after %v: %v\n%s", d.cmdAddr, startTimeout, err, d.log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// NTPAddr is the host:port chronyd serves NTP on.
func (d *Daemon) NTPAddr() string { return d.ntpAddr }

// CmdAddr is the host:port of chronyd's command port (UDP), where it
// answers monitoring commands from 127.0.0.1.
func (d *Daemon) CmdAddr() string { return d.cmdAddr }

// SocketPath is chronyd's Unix command socket, in the test's directory.
func (d *Daemon) SocketPath() string { return d.socket }

// Chronyc runs chronyc against the daemon's command port with args (such
// as "-c", "tracking") and returns its output: an independent reading to
// compare an adapter's with.
func (d *Daemon) Chronyc(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, port, _ := net.SplitHostPort(d.cmdAddr)
	// -n: no DNS lookups of addresses.
	cmd := exec.CommandContext(ctx, d.chronyc, append([]string{"-n", "-h", "127.0.0.1", "-p", port}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("chronyc %s: %w: %s%s", strings.Join(args, " "), err, out, stderr.Bytes())
	}
	return string(out), nil
}

// Stop stops the daemon and waits until it has exited. It runs when the
// test ends, and may be called before, to test what a stopped chronyd
// looks like; later calls do nothing.
func (d *Daemon) Stop() {
	d.stop.Do(func() {
		select {
		case <-d.exited:
			return
		default:
		}
		// chronyd writes its PID to its pidfile (and removes the file on a
		// clean exit). The signal goes to that PID only when it is the
		// process started here, and through the handle exec gave (a pidfd
		// on Linux), so that a stale pidfile, or the PID reused, can never
		// make a test signal another process.
		pid := d.cmd.Process.Pid
		if b, err := os.ReadFile(d.pidfile); err == nil {
			if p, err := strconv.Atoi(strings.TrimSpace(string(b))); err != nil || p != pid {
				d.t.Errorf("chronyd: pidfile %s holds %q, but the daemon started is %d; stopping %d", d.pidfile, bytes.TrimSpace(b), pid, pid)
			}
		}
		_ = d.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-d.exited:
		case <-time.After(5 * time.Second):
			d.t.Errorf("chronyd (pid %d) did not exit on SIGTERM within 5s; killing it", pid)
			_ = d.cmd.Process.Kill()
			<-d.exited
		}
	})
}

func (d *Daemon) log() string {
	b, err := os.ReadFile(d.logfile)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	return string(b)
}

type upstream struct {
	host string
	port int
}

func parseUpstream(s string) (upstream, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return upstream{}, err
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil || p == 0 || host == "" || strings.ContainsAny(host, " \t\n") {
		return upstream{}, fmt.Errorf("want host:port")
	}
	return upstream{host: host, port: int(p)}, nil
}

// freeUDPPorts finds n distinct UDP ports free on 127.0.0.1 by binding
// them all at once, then releasing them for chronyd.
func freeUDPPorts(n int) ([]int, error) {
	var ports []int
	for range n {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			return nil, fmt.Errorf("find a free UDP port: %w", err)
		}
		defer c.Close()
		ports = append(ports, c.LocalAddr().(*net.UDPAddr).Port)
	}
	return ports, nil
}

// findBinary is path if it is executable, else name on PATH, else "".
func findBinary(path, name string) string {
	if fi, err := os.Stat(path); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
		return path
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	return ""
}

// unavailable skips t because something it needs is missing, or fails it
// under CI=true.
func unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s; CI must not skip (.ci/run installs chrony and runs as root)", msg)
		return
	}
	t.Skip(msg)
}

package trilliantest

import (
	"os/exec"
	"syscall"
)

// setDeathSignal has the kernel kill the server if the test binary dies
// without running its cleanups (a panic, a -timeout), so that no Trillian
// outlives it. Best effort: the signal follows the thread that started the
// process, which the Go runtime seldom ends.
func setDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

//go:build !linux

package trilliantest

import "os/exec"

// setDeathSignal does nothing where the kernel cannot kill a child with
// its parent: a test binary killed outright leaves its servers running.
func setDeathSignal(*exec.Cmd) {}

//go:build !linux

package e2e

import "syscall"

// serverSysProcAttr has no parent-death signal to ask for outside Linux: a
// server can outlive a test binary that dies without running its cleanups.
func serverSysProcAttr() *syscall.SysProcAttr { return nil }

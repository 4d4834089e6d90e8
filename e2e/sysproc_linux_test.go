package e2e

import "syscall"

// serverSysProcAttr makes the kernel kill the server if the test binary dies
// without running its cleanups (go test -timeout panics, or the binary is
// killed), so no server outlives its test holding a port. Pdeathsig fires when
// the thread that started the child exits; Go keeps its threads for the life
// of the process unless a goroutine exits locked to one, which nothing here does.
func serverSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

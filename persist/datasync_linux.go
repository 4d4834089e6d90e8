//go:build linux

package persist

import (
	"errors"
	"io/fs"
	"syscall"
)

// Datasync is fdatasync(2): the file's data and size, not its times. The
// call is retried on EINTR, as os.File.Sync does.
func (f osFile) Datasync() error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var derr error
	// Control holds the descriptor open: a concurrent Close waits for it.
	if err := rc.Control(func(fd uintptr) {
		for {
			derr = syscall.Fdatasync(int(fd))
			if !errors.Is(derr, syscall.EINTR) {
				return
			}
		}
	}); err != nil {
		return err
	}
	if derr != nil {
		return &fs.PathError{Op: "fdatasync", Path: f.Name(), Err: derr}
	}
	return nil
}

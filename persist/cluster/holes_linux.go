package cluster

import (
	"os"

	"golang.org/x/sys/unix"
)

// holesReported: Linux reports a file's holes (lseek SEEK_HOLE and
// SEEK_DATA; a file system that keeps none reports the whole file as
// data, so boltStore then fills nothing).
const holesReported = true

// seekHole returns the offset of the first hole at or after off; the end
// of the file counts as one.
func seekHole(f *os.File, off int64) (int64, error) {
	return unix.Seek(int(f.Fd()), off, unix.SEEK_HOLE)
}

// seekData returns the offset of the first data at or after off, or
// ENXIO if there is none before the end of the file.
func seekData(f *os.File, off int64) (int64, error) {
	return unix.Seek(int(f.Fd()), off, unix.SEEK_DATA)
}

// datasync makes f's data durable, and what reading it back needs,
// retrying on EINTR as os.File.Sync does.
func datasync(f *os.File) error {
	for {
		err := unix.Fdatasync(int(f.Fd()))
		if err != unix.EINTR {
			return err
		}
	}
}

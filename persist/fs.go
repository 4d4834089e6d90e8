package persist

import (
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// FS is the file system seam: every byte PyKV writes to disk, and every
// fsync, goes through it. The real one is the OS; tests use one that loses
// what was not fsynced, or fails the Nth operation.
type FS interface {
	// OpenFile opens a file like os.OpenFile.
	OpenFile(name string, flag int, perm fs.FileMode) (File, error)
	// ReadDir lists a folder's names, sorted.
	ReadDir(dir string) ([]string, error)
	Rename(oldpath, newpath string) error
	Remove(name string) error
	MkdirAll(dir string, perm fs.FileMode) error
	// SyncDir makes a folder's entries (creates, renames, removes) durable.
	SyncDir(dir string) error
}

// File is an open file of an FS.
//
// The log writes its records with WriteAt into space zero-filled ahead of
// them and makes them durable with Datasync; snapshots and kept tails are
// written with Write and made durable with Sync.
type File interface {
	io.Reader
	io.Writer
	// WriteAt writes at an offset, as os.File.WriteAt does: the file must
	// not be opened with O_APPEND.
	io.WriterAt
	io.Closer
	// Sync makes the file's data and metadata durable (fsync).
	Sync() error
	// Datasync makes the file's data durable, and the metadata needed to
	// read it back (its size), but not its times (fdatasync on Linux, Sync
	// elsewhere). Overwriting bytes already on disk changes no such
	// metadata, so Datasync then commits no file system journal: the log's
	// records go into zero-filled space for that reason.
	Datasync() error
	Truncate(size int64) error
	Size() (int64, error)
}

// OSFS is the operating system's file system.
type OSFS struct{}

type osFile struct{ *os.File }

func (f osFile) Size() (int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

func (OSFS) OpenFile(name string, flag int, perm fs.FileMode) (File, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}

func (OSFS) ReadDir(dir string) ([]string, error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(des))
	for i, de := range des {
		names[i] = de.Name()
	}
	return names, nil
}

func (OSFS) Rename(oldpath, newpath string) error        { return os.Rename(oldpath, newpath) }
func (OSFS) Remove(name string) error                    { return os.Remove(name) }
func (OSFS) MkdirAll(dir string, perm fs.FileMode) error { return os.MkdirAll(dir, perm) }

func (OSFS) SyncDir(dir string) error {
	d, err := os.Open(filepath.Clean(dir))
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

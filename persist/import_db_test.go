package persist_test

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/pykv/pykv/persist"
)

// TestDB_ImportReopens: an import big enough to be logged in pieces is
// all there after a reopen.
func TestDB_ImportReopens(t *testing.T) {
	dir := t.TempDir()
	db := mustOpen(t, dir, persist.Options{})
	var body bytes.Buffer
	body.WriteString("{")
	const n = 10_000
	for i := range n {
		if i > 0 {
			body.WriteString(",")
		}
		fmt.Fprintf(&body, `"key-%05d":"value %d"`, i, i)
	}
	body.WriteString("}")
	res, err := db.Import(&body, persist.ImportMerge)
	if err != nil || res.Added != n {
		t.Fatalf("import: %+v %v", res, err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = mustOpen(t, dir, persist.Options{})
	if db.Store().Len() != n || db.Store().Rev() != res.Rev {
		t.Fatalf("after reopen: %d keys at revision %d, want %d at %d", db.Store().Len(), db.Store().Rev(), n, res.Rev)
	}
	if e, err := db.Store().Get("key-09999"); err != nil || e.Value != "value 9999" {
		t.Errorf("key-09999 after reopen: %+v %v", e, err)
	}
}

// pieceFS is the real file system, recording the largest single write to
// a log segment and failing the write numbered failAt (1-based; 0: none).
type pieceFS struct {
	persist.OSFS
	mu      sync.Mutex
	largest int
	writes  int
	failAt  int
}

type pieceFile struct {
	persist.File
	fs *pieceFS
}

func (f *pieceFS) OpenFile(name string, flag int, perm fs.FileMode) (persist.File, error) {
	file, err := f.OSFS.OpenFile(name, flag, perm)
	if err != nil || !strings.Contains(filepath.Base(name), "wal-") {
		return file, err
	}
	return &pieceFile{File: file, fs: f}, nil
}

// WriteAt counts the log's writes of records; its zero-fills (all-zero
// writes) are not records and pass.
func (f *pieceFile) WriteAt(p []byte, off int64) (int, error) {
	if len(bytes.Trim(p, "\x00")) == 0 {
		return f.File.WriteAt(p, off)
	}
	f.fs.mu.Lock()
	f.fs.writes++
	f.fs.largest = max(f.fs.largest, len(p))
	fail := f.fs.writes == f.fs.failAt
	f.fs.mu.Unlock()
	if fail {
		n, _ := f.File.WriteAt(p[:len(p)/2], off)
		return n, errors.New("injected write failure")
	}
	return f.File.WriteAt(p, off)
}

// flatFile returns a flat import file of n keys.
func flatFile(n int) []byte {
	var b bytes.Buffer
	b.WriteString("{")
	for i := range n {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `"key-%06d":"%s"`, i, strings.Repeat("v", 50))
	}
	b.WriteString("}")
	return b.Bytes()
}

// TestDB_ImportLoggedInPieces: an import's record (here about 2.5 MB) is
// written to the log in pieces of about a mebibyte, not encoded whole
// (which doubled the memory an import needs), and it stays all or
// nothing: a write failing halfway leaves neither the store nor, after a
// reopen, the log with any of it.
func TestDB_ImportLoggedInPieces(t *testing.T) {
	const n = 40_000
	body := flatFile(n)
	dir := t.TempDir()
	pfs := &pieceFS{}
	db := mustOpen(t, dir, persist.Options{FS: pfs, Sync: persist.SyncNever})
	res, err := db.Import(bytes.NewReader(body), persist.ImportMerge)
	if err != nil || res.Added != n {
		t.Fatalf("import: %+v %v", res, err)
	}
	if pfs.writes < 2 || pfs.largest > 1<<20+4096 {
		t.Errorf("the import's record went to the log in %d writes, the largest %d bytes; want pieces of about 1 MiB", pfs.writes, pfs.largest)
	}
	db.Close()

	dir = t.TempDir()
	pfs = &pieceFS{failAt: 2}
	db = mustOpen(t, dir, persist.Options{FS: pfs, Sync: persist.SyncNever})
	if _, err := db.Import(bytes.NewReader(body), persist.ImportMerge); err == nil {
		t.Fatal("import with a failing write: no error")
	}
	if db.Store().Len() != 0 || db.Store().Rev() != 0 {
		t.Errorf("a failed import left %d keys, revision %d", db.Store().Len(), db.Store().Rev())
	}
	db.Close()
	db = mustOpen(t, dir, persist.Options{})
	if db.Store().Len() != 0 {
		t.Errorf("after a failed import and a reopen: %d keys", db.Store().Len())
	}
}

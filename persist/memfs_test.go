package persist_test

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path"
	"slices"
	"strings"
	"sync"
	"syscall"

	"github.com/pykv/pykv/persist"
)

// memFS is an in-memory file system that models what survives a power
// loss. A file's content and length as of its last Sync or Datasync
// survive; of what was written since, any part may survive or not (see
// crashLocked): its pages reach the disk in any order. A folder's creates,
// renames and removes survive only once SyncDir ran after them; before that,
// each one may or may not survive, independently of the others (file
// systems reorder metadata).
//
// Sync (fsync) and Datasync (fdatasync) make the same things durable here,
// exactly as on Linux for what this model holds: fdatasync writes the data
// and the metadata needed to read it, which includes the length (grown or
// cut), and skips only times, which the model has not. Neither makes the
// file's folder entry durable: that takes SyncDir.
//
// It also injects faults: fault is called before every operation that
// changes something and may fail it.
type memFS struct {
	mu      sync.Mutex
	files   map[string]*node // what is visible now
	durable map[string]*node // the folder as of the last SyncDir
	pending []dirOp          // folder changes since the last SyncDir
	ops     int              // count of changing operations so far
	fault   func(op string, n int, name string) error
	// short, when set by fault, makes the next write store only half its
	// bytes before failing with the fault's error.
	short bool
}

type node struct {
	data   []byte // what reads see now
	synced []byte // what a power loss leaves for sure: data and length as of the last sync
}

type dirOp struct {
	kind     string // create, rename, remove
	from, to string
	n        *node
}

func newMemFS() *memFS {
	return &memFS{files: map[string]*node{}, durable: map[string]*node{}}
}

// step counts a changing operation and asks the fault hook about it.
func (m *memFS) step(op, name string) error {
	m.ops++
	if m.fault != nil {
		return m.fault(op, m.ops, name)
	}
	return nil
}

func (m *memFS) OpenFile(name string, flag int, perm fs.FileMode) (persist.File, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	name = path.Clean(name)
	n := m.files[name]
	if n != nil && flag&os.O_EXCL != 0 {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrExist}
	}
	if n == nil {
		if flag&os.O_CREATE == 0 {
			return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
		}
		if err := m.step("create", name); err != nil {
			return nil, &fs.PathError{Op: "open", Path: name, Err: err}
		}
		n = &node{}
		m.files[name] = n
		m.pending = append(m.pending, dirOp{kind: "create", to: name, n: n})
	}
	if flag&os.O_TRUNC != 0 {
		if err := m.step("truncate", name); err != nil {
			return nil, &fs.PathError{Op: "open", Path: name, Err: err}
		}
		n.data = nil
	}
	return &memFile{fs: m, n: n, name: name, append: flag&os.O_APPEND != 0}, nil
}

func (m *memFS) ReadDir(dir string) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var names []string
	for name := range m.files {
		if path.Dir(name) == path.Clean(dir) {
			names = append(names, path.Base(name))
		}
	}
	slices.Sort(names)
	return names, nil
}

func (m *memFS) Rename(from, to string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	from, to = path.Clean(from), path.Clean(to)
	n := m.files[from]
	if n == nil {
		return &fs.PathError{Op: "rename", Path: from, Err: fs.ErrNotExist}
	}
	if err := m.step("rename", from); err != nil {
		return &os.LinkError{Op: "rename", Old: from, New: to, Err: err}
	}
	delete(m.files, from)
	m.files[to] = n
	m.pending = append(m.pending, dirOp{kind: "rename", from: from, to: to, n: n})
	return nil
}

func (m *memFS) Remove(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	name = path.Clean(name)
	if m.files[name] == nil {
		return &fs.PathError{Op: "remove", Path: name, Err: fs.ErrNotExist}
	}
	if err := m.step("remove", name); err != nil {
		return &fs.PathError{Op: "remove", Path: name, Err: err}
	}
	delete(m.files, name)
	m.pending = append(m.pending, dirOp{kind: "remove", from: name})
	return nil
}

func (m *memFS) MkdirAll(string, fs.FileMode) error { return nil }

func (m *memFS) SyncDir(dir string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.step("syncdir", dir); err != nil {
		return err
	}
	m.durable = make(map[string]*node, len(m.files))
	for k, v := range m.files {
		m.durable[k] = v
	}
	m.pending = nil
	return nil
}

// crashLocked returns the file system as a power loss at this moment could
// leave it, choosing among the possible outcomes with rng. The caller holds
// mu: it is called from a fault hook, in the middle of a file operation.
func (m *memFS) crashLocked(rng *rand.Rand) *memFS {
	dir := make(map[string]*node, len(m.durable))
	for k, v := range m.durable {
		dir[k] = v
	}
	for _, op := range m.pending { // each unsynced folder change may or may not have landed
		if rng.IntN(2) == 0 {
			continue
		}
		switch op.kind {
		case "create":
			if _, ok := dir[op.to]; !ok {
				dir[op.to] = op.n
			}
		case "rename":
			if n, ok := dir[op.from]; ok && n == op.n {
				delete(dir, op.from)
				dir[op.to] = n
			}
		case "remove":
			delete(dir, op.from)
		}
	}
	out := newMemFS()
	for name, n := range dir {
		data := crashFile(n, rng)
		cp := &node{data: data, synced: bytes.Clone(data)}
		out.files[name] = cp
		out.durable[name] = cp
	}
	return out
}

// tornGranule is the unit in which unsynced writes reach the disk or not in
// the model: smaller than a sector, so records tear in their middle too.
const tornGranule = 16

// crashFile returns what a power loss may leave of a file: its synced
// content, with its length as of the last sync or (if it changed since) the
// new one or, for a file that grew, any length in between; and of the bytes
// written since the sync, nothing, the granules up to some point (a prefix,
// as appends usually tear), or any subset. Bytes that did not reach the
// disk read as what the disk held before: the synced bytes, or zeros past
// the synced length.
func crashFile(n *node, rng *rand.Rand) []byte {
	size := len(n.synced)
	switch {
	case len(n.data) > size && rng.IntN(2) == 0:
		size += rng.IntN(len(n.data) - size + 1)
	case len(n.data) < size && rng.IntN(2) == 0:
		size = len(n.data)
	}
	out := make([]byte, size)
	copy(out, n.synced)
	mode, stop := rng.IntN(3), rng.IntN(size+1)
	for g := 0; g < min(size, len(n.data)); g += tornGranule {
		end := min(g+tornGranule, size, len(n.data))
		if bytes.Equal(out[g:end], n.data[g:end]) {
			continue
		}
		if mode == 1 && g < stop || mode == 2 && rng.IntN(2) == 0 {
			copy(out[g:end], n.data[g:end])
		}
	}
	return out
}

// contents returns every file's bytes, to check that something changed
// nothing.
func (m *memFS) contents() map[string]string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]string{}
	for k, n := range m.files {
		out[k] = string(n.data)
	}
	return out
}

type memFile struct {
	fs     *memFS
	n      *node
	name   string
	append bool
	pos    int64
	closed bool
}

func (f *memFile) Read(p []byte) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.pos >= int64(len(f.n.data)) {
		return 0, io.EOF
	}
	n := copy(p, f.n.data[f.pos:])
	f.pos += int64(n)
	return n, nil
}

func (f *memFile) Write(p []byte) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.fs.step("write", f.name); err != nil {
		if !f.fs.short {
			return 0, err
		}
		f.fs.short = false
		p = p[:len(p)/2]
		f.n.data = append(f.n.data, p...)
		f.pos = int64(len(f.n.data))
		return len(p), err
	}
	if f.append {
		f.pos = int64(len(f.n.data))
	}
	f.n.data = append(f.n.data[:f.pos], p...) // writes here never overwrite the middle of a file
	f.pos += int64(len(p))
	return len(p), nil
}

func (f *memFile) WriteAt(p []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.append {
		return 0, fmt.Errorf("memFS: WriteAt on a file opened with O_APPEND")
	}
	err := f.fs.step("write", f.name)
	if err != nil && !f.fs.short {
		return 0, err
	}
	n := len(p)
	if err != nil {
		// A short write stores half the bytes and, as os.File.WriteAt
		// does when pwrite wrote some and then failed, reports none.
		f.fs.short = false
		p, n = p[:len(p)/2], 0
	}
	if end := off + int64(len(p)); end > int64(len(f.n.data)) {
		f.n.data = append(f.n.data, make([]byte, end-int64(len(f.n.data)))...)
	}
	copy(f.n.data[off:], p)
	return n, err
}

// Datasync makes the same things durable as Sync: see memFS.
func (f *memFile) Datasync() error { return f.Sync() }

func (f *memFile) Sync() error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.fs.step("sync", f.name); err != nil {
		return err
	}
	f.n.synced = bytes.Clone(f.n.data)
	return nil
}

func (f *memFile) Truncate(size int64) error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.fs.step("truncate", f.name); err != nil {
		return err
	}
	if size > int64(len(f.n.data)) {
		return fmt.Errorf("memFS cannot grow a file by truncating")
	}
	f.n.data = f.n.data[:size:size]
	return nil
}

func (f *memFile) Size() (int64, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	return int64(len(f.n.data)), nil
}

func (f *memFile) Close() error { f.closed = true; return nil }

// errIO and errNoSpace are the injected failures.
var (
	errIO      = syscall.EIO
	errNoSpace = syscall.ENOSPC
)

// describe is a short form of the folder for failure messages.
func (m *memFS) describe() string {
	var b strings.Builder
	for name, data := range m.contents() {
		fmt.Fprintf(&b, "%s (%d bytes)\n", name, len(data))
	}
	return b.String()
}

package persist

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pykv/pykv/engine"
	"github.com/pykv/pykv/persist/codec"
)

// SyncMode says when the log is fsynced.
type SyncMode string

const (
	// SyncAlways fsyncs before a write is acknowledged (the default).
	// Writers that arrive together share one fsync (group commit).
	SyncAlways SyncMode = "always"
	// SyncEverySec fsyncs once a second: a crash loses at most the last
	// second of acknowledged writes.
	SyncEverySec SyncMode = "everysec"
	// SyncNever leaves flushing to the operating system: a power loss can
	// lose recent writes; a process crash does not.
	SyncNever SyncMode = "never"
)

// ParseSyncMode parses "always", "everysec" or "never" ("" means always).
func ParseSyncMode(s string) (SyncMode, error) {
	switch m := SyncMode(s); m {
	case "":
		return SyncAlways, nil
	case SyncAlways, SyncEverySec, SyncNever:
		return m, nil
	}
	return "", fmt.Errorf("unknown fsync mode %q: want always, everysec or never", s)
}

// ErrFailed is returned for every write after an fsync failed: the kernel
// may have dropped the unsynced pages and reported the error once, so a
// retried fsync could succeed without the data being on disk. Only reopening
// the store (which replays what really is on disk) is safe.
var ErrFailed = errors.New("store refuses writes after an I/O failure; restart it to recover")

// Log segment names: wal-<first revision, 20 digits>.jsonl.
const (
	segPrefix = "wal-"
	segSuffix = ".jsonl"
)

func segName(firstRev int64) string { return fmt.Sprintf("%s%020d%s", segPrefix, firstRev, segSuffix) }

// parseSegName returns the first revision a segment file name holds.
func parseSegName(name string) (int64, bool) {
	if !strings.HasPrefix(name, segPrefix) || !strings.HasSuffix(name, segSuffix) {
		return 0, false
	}
	n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimPrefix(name, segPrefix), segSuffix), 10, 64)
	return n, err == nil && n > 0
}

// Log is the append-only log: the engine's Journal. Each Append writes the
// group's records with one write and, in SyncAlways mode, one fdatasync.
//
// A segment is zero-filled ahead of its records: each write overwrites
// zeros that are already on disk, so the fdatasync that makes it durable
// changes no file size or block map and commits no file system journal
// (on this project's disk, ext4, 86 µs instead of 154 µs for 4.5 KB). The
// file is its records followed by a zero tail; recovery takes the first
// NUL byte where a record should start for the end. When a write reaches
// the end of the zeros, the log writes more (up to prealloc bytes at a
// time) before that write's fdatasync, which then also makes the new size
// durable: once per chunk, a write pays for a slower sync.
type Log struct {
	fs        FS
	dir       string
	mode      SyncMode
	observe   func(time.Duration)
	syncEvery time.Duration // SyncEverySec's interval
	prealloc  int64         // most zeros written ahead at a time

	mu      sync.Mutex
	f       File
	name    string // current segment's file name
	size    int64  // bytes of the current segment known to be whole records: where the next one goes
	alloc   int64  // the current segment's length: from size up to here it holds zeros
	older   int64  // bytes of older segments' records not yet compacted away
	dirty   bool   // written since the last fsync
	failed  error  // sticky: set when an fsync or an undo failed
	fsyncs  int64
	syncAvg atomic.Int64 // recent fsync latency in ns, a moving average: see CommitDelay
	buf     []byte
	stop    chan struct{}
	stopped chan struct{}
}

// openLog opens (or creates) the segment name for writing at size, the end
// of its records: recovery has checked that only zeros follow them. older
// is the size of the records of the segments before it; opts gives the sync
// mode, interval, observer and preallocation. A segment with no zeros ahead
// of its records (new, cut by recovery, or written before segments were
// zero-filled) is zero-filled now and, unless the mode is SyncNever,
// fdatasynced, so the first write does not pay for it; a full disk leaves
// that to the first write.
func openLog(fsys FS, dir, name string, size, older int64, opts Options) (*Log, error) {
	mode := opts.Sync
	f, err := fsys.OpenFile(filepath.Join(dir, name), os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open log %s: %w", name, err)
	}
	alloc, err := f.Size()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("stat log %s: %w", name, err)
	}
	if alloc < size {
		f.Close()
		return nil, fmt.Errorf("open log %s: %d bytes, shorter than its %d bytes of records", name, alloc, size)
	}
	l := &Log{fs: fsys, dir: dir, mode: mode, observe: opts.SyncObserver, syncEvery: opts.SyncInterval,
		prealloc: opts.LogPrealloc, f: f, name: name, size: size, alloc: alloc, older: older,
		stop: make(chan struct{}), stopped: make(chan struct{})}
	if l.prealloc <= 0 {
		l.prealloc = DefaultLogPrealloc
	}
	if alloc == size {
		// No other goroutine has l yet. A full disk does not keep the
		// store from opening: the zeros are only ahead of time, and the
		// first write that needs them tries again (and fails clearly).
		if err := l.zeroFillLocked(size); err != nil {
			if opts.Logger != nil {
				opts.Logger.Warn("could not zero-fill the log ahead of its records; writes will try again", "file", name, "err", err)
			}
		} else if mode != SyncNever {
			// Not counted as a log fsync: it says nothing of a write's.
			if err := f.Datasync(); err != nil {
				f.Close()
				return nil, fmt.Errorf("fdatasync log %s after zero-filling it: %w", name, err)
			}
			l.dirty = false
		}
	}
	if mode == SyncEverySec {
		go l.syncLoop()
	} else {
		close(l.stopped)
	}
	return l, nil
}

// DefaultLogPrealloc is the most zeros the log writes ahead of its records
// at a time: a new segment starts with minPrealloc of them, and each
// extension writes as many as the segment's records fill, up to this. At
// 4 MiB an extension and its fdatasync took 2 ms (median; 12 ms at most)
// on this project's disk, against 1 ms for 1 MiB: paid once per 4 MiB of
// records, it is a few hundred nanoseconds a kilobyte.
const DefaultLogPrealloc = 4 << 20

// minPrealloc is the zeros a new segment starts with (or prealloc, if
// smaller): small stores and segments cut short by compaction stay small.
const minPrealloc = 64 << 10

// zeros is what zero-filling copies from.
var zeros [64 << 10]byte

// writeZeros writes zeros over [from, to) of f.
func writeZeros(f File, from, to int64) error {
	for from < to {
		n, err := f.WriteAt(zeros[:min(int64(len(zeros)), to-from)], from)
		from += int64(n)
		if err != nil {
			return err
		}
	}
	return nil
}

// zeroFillLocked writes zeros after end, the end of the current segment's
// records (or after its current length, if that is further), so that at
// least one chunk of zeros lies ahead of end: as many bytes as the records
// (at least minPrealloc, at most prealloc). It does not sync: the next
// sync of the segment makes the zeros and the new length durable with the
// records. On failure (a full disk) alloc is unchanged and whatever part
// of the zeros reached the file is harmless: zeros past the records are
// the end of the log. The caller holds mu (or has the only reference).
func (l *Log) zeroFillLocked(end int64) error {
	chunk := min(l.prealloc, max(min(minPrealloc, l.prealloc), end))
	from := max(l.alloc, end)
	if err := writeZeros(l.f, from, end+chunk); err != nil {
		return err
	}
	l.alloc = end + chunk
	l.dirty = true
	return nil
}

// offsetWriter writes to f from off on, through WriteAt. tried is the end
// of what it may have written: os.File.WriteAt reports 0 bytes when the
// system call wrote part of them and then failed (a disk filling up).
type offsetWriter struct {
	f          File
	off, tried int64
}

func (w *offsetWriter) Write(p []byte) (int, error) {
	w.tried = max(w.tried, w.off+int64(len(p)))
	n, err := w.f.WriteAt(p, w.off)
	w.off += int64(n)
	return n, err
}

// Commands with more changes than streamChanges in one Append are written
// in pieces of about streamChunk bytes (see WriteRecord).
const (
	streamChanges = 4096
	streamChunk   = 1 << 20
)

// changes counts the changes of cmds.
func changes(cmds []engine.Command) int {
	n := 0
	for i := range cmds {
		n += len(cmds[i].Changes)
	}
	return n
}

// Append writes cmds as log records at the end of the current segment's
// records, over the zeros ahead of them, writing more zeros when it reaches
// their end. In SyncAlways mode it returns only once they are fdatasynced.
// On a failed or short write (or a failed zero-fill) it overwrites what it
// wrote with zeros again, so no partial record stays behind, and returns
// the error (which wraps syscall.ENOSPC for a full disk); the store stays
// writable. A failed fdatasync, or a failed undo, makes this and every
// later Append fail with ErrFailed.
func (l *Log) Append(cmds []engine.Command) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.failed != nil {
		return l.failed
	}
	var n int64     // bytes written
	var tried int64 // the end of what may have reached the file, even on a failure
	var err error
	if changes(cmds) <= streamChanges {
		l.buf = l.buf[:0]
		for i := range cmds {
			l.buf = codec.AppendRecord(l.buf, &cmds[i])
		}
		var wn int
		tried = l.size + int64(len(l.buf))
		wn, err = l.f.WriteAt(l.buf, l.size)
		n = int64(wn)
		if err == nil && wn != len(l.buf) {
			err = fmt.Errorf("short write: %d of %d bytes", wn, len(l.buf))
		}
	} else {
		// A huge command (an import) is written in pieces: encoded whole
		// it would need as much memory again as the data it holds. A
		// crash between the pieces leaves a torn last line, which
		// recovery cuts off: the command is all there or not at all.
		w := &offsetWriter{f: l.f, off: l.size}
		for i := range cmds {
			var wn int64
			wn, l.buf, err = codec.WriteRecord(w, &cmds[i], l.buf, streamChunk)
			n += wn
			if err != nil {
				break
			}
		}
		tried = w.tried
	}
	if cap(l.buf) > 4*streamChunk {
		l.buf = nil // do not keep a huge group's buffer for good
	}
	if err == nil && l.size+n > l.alloc {
		if err = l.zeroFillLocked(l.size + n); err != nil {
			err = fmt.Errorf("zero-fill ahead of the records: %w", err)
		}
	}
	if err != nil {
		werr := fmt.Errorf("append to log %s: %w", l.name, err)
		if uerr := l.undoLocked(tried); uerr != nil {
			l.failed = fmt.Errorf("%w: %v; removing the partial record failed: %v", ErrFailed, werr, uerr)
			return l.failed
		}
		return werr
	}
	l.size += n
	l.dirty = true
	if l.mode == SyncAlways {
		return l.syncLocked()
	}
	return nil
}

// undoLocked removes what a failed Append may have written, up to tried
// (however much the write reported): zeros go back over it up to alloc,
// where they were already on disk, so this needs no new space on a full
// disk; past alloc the file is cut back to alloc. Until the next write
// overwrites them, the zeros end the log again.
//
// The undo is fdatasynced before the failed write is answered, in every
// mode: the kernel may have written the refused bytes back already, and
// zeros only in memory would let a power loss bring back a write answered
// as not made, or mix its bytes with a later write's over the same range
// (a line that fails its checks, with the refused records after it, which
// recovery refuses). The caller holds mu.
func (l *Log) undoLocked(tried int64) error {
	if tried <= l.size {
		return nil
	}
	if err := writeZeros(l.f, l.size, min(tried, l.alloc)); err != nil {
		return err
	}
	if tried > l.alloc {
		if err := l.f.Truncate(l.alloc); err != nil {
			return err
		}
	}
	if err := l.f.Datasync(); err != nil {
		return fmt.Errorf("fdatasync the undo: %w", err)
	}
	l.dirty = false
	return nil
}

// syncLocked fdatasyncs the current segment: its records, the zeros after
// them and its length (the metadata a read needs) become durable. The
// caller holds mu.
func (l *Log) syncLocked() error {
	if !l.dirty {
		return nil
	}
	start := time.Now()
	err := l.f.Datasync()
	took := time.Since(start)
	if l.observe != nil {
		l.observe(took)
	}
	avg := l.syncAvg.Load()
	l.syncAvg.Store(avg + (int64(took)-avg)/8)
	l.fsyncs++
	if err != nil {
		l.failed = fmt.Errorf("%w: fsync log %s: %v", ErrFailed, l.name, err)
		return l.failed
	}
	l.dirty = false
	return nil
}

// maxCommitDelay bounds CommitDelay: on a disk whose fsyncs take longer,
// writers queue up during each fsync anyway, and holding groups open would
// only add to every write's latency.
const maxCommitDelay = 2 * time.Millisecond

// minCommitDelay is CommitDelay's floor: the time writers take to come
// back is CPU time as much as disk time. With 32 HTTP writers on this
// project's two cores, the group answered needs about half a millisecond
// of CPU (its answers written, the next requests read) before all of it
// is back; the zero-filled log's fdatasync takes about 0.14 ms under that
// load, so three of them (0.4 ms) closed groups before the last writers
// came and split them: 22-23 writes per sync. With this floor, 31.8 at
// the same rate (interleaved wrk runs, 4 rounds of 4 s, medians 45.4k and
// 46.4k PUT/s). The hold still ends as soon as the writers expected have
// joined; a writer that stops costs one hold, at most this long.
const minCommitDelay = time.Millisecond

// CommitDelay tells the store's committer how long it may hold a group of
// writes open for more writers to share its fsync (engine.GroupDelayer):
// three times the recent fsync latency (a moving average of the last
// several), at least minCommitDelay and at most maxCommitDelay, in
// SyncAlways mode; 0 in the others, whose writers do not wait for an
// fsync.
//
// Why three: with 32 HTTP clients (wrk) on this project's two cores,
// interleaved runs gave about 16 writes per fsync when holding for one
// fsync latency, 22-25 for two, 26-28 for two and a half or three, at the
// same rate or better (with fsyncs of about 0.3 ms); each fsync also
// costs 60-100 µs of CPU, which the writers share. A writer that just
// missed a group already waits for that fsync and its own, two latencies,
// without any hold.
func (l *Log) CommitDelay() time.Duration {
	if l.mode != SyncAlways {
		return 0
	}
	return min(max(3*time.Duration(l.syncAvg.Load()), minCommitDelay), maxCommitDelay)
}

// syncLoop fsyncs once a second in SyncEverySec mode.
func (l *Log) syncLoop() {
	defer close(l.stopped)
	t := time.NewTicker(l.syncEvery)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			l.mu.Lock()
			if l.failed == nil {
				_ = l.syncLocked() // a failure is sticky and reported to the next writer
			}
			l.mu.Unlock()
		}
	}
}

// rotate starts a new segment whose first record will be firstRev: the
// current one is fsynced and closed, the new one created and its name made
// durable. It runs between two Appends (inside engine.Store.Checkpoint).
func (l *Log) rotate(firstRev int64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.failed != nil {
		return l.failed
	}
	if err := l.syncLocked(); err != nil {
		return err
	}
	name := segName(firstRev)
	if name == l.name && l.size == 0 {
		return nil // nothing written since the last rotation: already there
	}
	f, err := l.fs.OpenFile(filepath.Join(l.dir, name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("create log %s: %w", name, err)
	}
	// The new segment starts zero-filled, its zeros durable before its
	// name: recovery takes an empty or all-zero segment for one no write
	// reached yet.
	chunk := min(minPrealloc, l.prealloc)
	err = writeZeros(f, 0, chunk)
	if err == nil && l.mode != SyncNever {
		err = f.Datasync()
	}
	if err != nil {
		// Writes go on in the current segment; the new file is removed.
		f.Close()
		l.fs.Remove(filepath.Join(l.dir, name))
		l.fs.SyncDir(l.dir)
		return fmt.Errorf("zero-fill new log %s: %w", name, err)
	}
	if err := l.fs.SyncDir(l.dir); err != nil {
		// Writes go on in the current segment. The new one is removed,
		// but if the removal does not reach the disk either, recovery
		// finds an empty segment after the current one, which it allows.
		f.Close()
		l.fs.Remove(filepath.Join(l.dir, name))
		l.fs.SyncDir(l.dir)
		return fmt.Errorf("sync folder for log %s: %w", name, err)
	}
	l.f.Close() // already fsynced; a close error loses nothing
	l.f, l.name, l.older, l.size, l.alloc = f, name, l.older+l.size, 0, chunk
	return nil
}

// dropOlder notes that the segments before the current one were removed.
func (l *Log) dropOlder() {
	l.mu.Lock()
	l.older = 0
	l.mu.Unlock()
}

// sizes returns the bytes of records in the current segment and in older
// ones (the zeros ahead of the records do not count).
func (l *Log) sizes() (cur, older int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.size, l.older
}

// Err returns the sticky failure, if any.
func (l *Log) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.failed
}

// Close fdatasyncs and closes the log. The zeros ahead of the records stay:
// the next Open writes on over them.
func (l *Log) Close() error {
	close(l.stop)
	<-l.stopped
	l.mu.Lock()
	defer l.mu.Unlock()
	var err error
	if l.failed == nil {
		err = l.syncLocked()
	}
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		l.failed = ErrClosedLog
	}
	return err
}

// ErrClosedLog is returned by Append after Close.
var ErrClosedLog = errors.New("log is closed")

func (l *Log) fsyncCount() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.fsyncs
}

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
// group's records with one write and, in SyncAlways mode, one fsync.
type Log struct {
	fs        FS
	dir       string
	mode      SyncMode
	observe   func(time.Duration)
	syncEvery time.Duration // SyncEverySec's interval

	mu      sync.Mutex
	f       File
	name    string // current segment's file name
	size    int64  // bytes of the current segment known to be whole records
	older   int64  // bytes of older segments not yet compacted away
	dirty   bool   // written since the last fsync
	failed  error  // sticky: set when an fsync or an undo failed
	fsyncs  int64
	syncAvg atomic.Int64 // recent fsync latency in ns, a moving average: see CommitDelay
	buf     []byte
	stop    chan struct{}
	stopped chan struct{}
}

// openLog opens (or creates) the segment name for appending at size. older
// is the size of the segments before it; opts gives the sync mode, interval
// and observer.
func openLog(fsys FS, dir, name string, size, older int64, opts Options) (*Log, error) {
	mode := opts.Sync
	f, err := fsys.OpenFile(filepath.Join(dir, name), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open log %s: %w", name, err)
	}
	l := &Log{fs: fsys, dir: dir, mode: mode, observe: opts.SyncObserver, syncEvery: opts.SyncInterval,
		f: f, name: name, size: size, older: older, stop: make(chan struct{}), stopped: make(chan struct{})}
	if mode == SyncEverySec {
		go l.syncLoop()
	} else {
		close(l.stopped)
	}
	return l, nil
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

// Append writes cmds as log records. In SyncAlways mode it returns only once
// they are fsynced. On a failed or short write it cuts the file back to where
// it was, so no partial record stays behind, and returns the error (which
// wraps syscall.ENOSPC for a full disk); the store stays writable. A failed
// fsync, or a failed cut, makes this and every later Append fail with
// ErrFailed.
func (l *Log) Append(cmds []engine.Command) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.failed != nil {
		return l.failed
	}
	var n int64
	var err error
	if changes(cmds) <= streamChanges {
		l.buf = l.buf[:0]
		for i := range cmds {
			l.buf = codec.AppendRecord(l.buf, &cmds[i])
		}
		var wn int
		wn, err = l.f.Write(l.buf)
		n = int64(wn)
		if err == nil && wn != len(l.buf) {
			err = fmt.Errorf("short write: %d of %d bytes", wn, len(l.buf))
		}
	} else {
		// A huge command (an import) is written in pieces: encoded whole
		// it would need as much memory again as the data it holds. A
		// crash between the pieces leaves a torn last line, which
		// recovery cuts off: the command is all there or not at all.
		for i := range cmds {
			var wn int64
			wn, l.buf, err = codec.WriteRecord(l.f, &cmds[i], l.buf, streamChunk)
			n += wn
			if err != nil {
				break
			}
		}
	}
	if cap(l.buf) > 4*streamChunk {
		l.buf = nil // do not keep a huge group's buffer for good
	}
	if err != nil {
		werr := fmt.Errorf("append to log %s: %w", l.name, err)
		if n > 0 {
			if terr := l.f.Truncate(l.size); terr != nil {
				l.failed = fmt.Errorf("%w: %v; cutting the partial record failed: %v", ErrFailed, werr, terr)
				return l.failed
			}
			l.dirty = true // the cut reaches the disk with the next fsync
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

// syncLocked fsyncs the current segment. The caller holds mu.
func (l *Log) syncLocked() error {
	if !l.dirty {
		return nil
	}
	start := time.Now()
	err := l.f.Sync()
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

// CommitDelay tells the store's committer how long it may hold a group of
// writes open for more writers to share its fsync (engine.GroupDelayer):
// three times the recent fsync latency (a moving average of the last
// several), at most maxCommitDelay, in SyncAlways mode; 0 in the others,
// whose writers do not wait for an fsync.
//
// Why three: with 32 HTTP clients (wrk) on this project's two cores,
// interleaved runs gave about 16 writes per fsync when holding for one
// fsync latency, 22-25 for two, 26-28 for two and a half or three, at the
// same rate or better; each fsync also costs 60-100 µs of CPU, which the
// writers share. A writer that just missed a group already waits for that
// fsync and its own, two latencies, without any hold.
func (l *Log) CommitDelay() time.Duration {
	if l.mode != SyncAlways {
		return 0
	}
	return min(3*time.Duration(l.syncAvg.Load()), maxCommitDelay)
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
	f, err := l.fs.OpenFile(filepath.Join(l.dir, name), os.O_WRONLY|os.O_APPEND|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("create log %s: %w", name, err)
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
	l.f, l.name, l.older, l.size = f, name, l.older+l.size, 0
	return nil
}

// dropOlder notes that the segments before the current one were removed.
func (l *Log) dropOlder() {
	l.mu.Lock()
	l.older = 0
	l.mu.Unlock()
}

// sizes returns the bytes in the current segment and in older ones.
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

// Close fsyncs and closes the log.
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

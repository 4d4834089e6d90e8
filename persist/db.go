package persist

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pykv/pykv/engine"
	"github.com/pykv/pykv/persist/codec"
)

// File names in a data folder.
const (
	snapshotName = "snapshot.json"
	snapshotTemp = "snapshot.json.tmp"
)

// ErrLocked: another process has the data folder open.
var ErrLocked = errors.New("data folder is in use by another process")

// DefaultCompactMinBytes is the log size below which compaction never runs.
const DefaultCompactMinBytes = 4 << 20

// Options configure a DB. The zero value gives the defaults.
type Options struct {
	Sync   SyncMode       // default SyncAlways
	Engine engine.Options // limits and clock; Journal is set by Open
	Logger *slog.Logger   // default: discard
	FS     FS             // default OSFS
	// SyncObserver, when set, is called with the latency of every fsync.
	SyncObserver func(time.Duration)
	// SyncInterval is how often SyncEverySec fsyncs (default one second).
	SyncInterval time.Duration
	// The log is compacted once it is larger than both CompactMinBytes
	// (default 4 MiB) and the last snapshot.
	CompactMinBytes int64
	// LogPrealloc is the most zeros the log writes ahead of its records
	// at a time (default DefaultLogPrealloc, 4 MiB); see Log.
	LogPrealloc int64
	// NoLock skips the folder lock (for tests on a fake FS only).
	NoLock bool
}

// Recovery describes what Open found and did.
type Recovery struct {
	SnapshotRev     int64 `json:"snapshot_rev"`
	SnapshotEntries int   `json:"snapshot_entries"`
	LogRecords      int   `json:"log_records"`
	TruncatedBytes  int64 `json:"truncated_bytes"`
	// KeptTail is the file holding the bytes cut off the log's end, kept
	// beside it in the data folder (PyKV never deletes it).
	KeptTail string `json:"kept_tail,omitempty"`
	// PossibleCorruption is set when the cut record was a complete line
	// that failed its checks: a crash during a write leaves a line without
	// its end, so a whole line that fails points at the disk instead.
	PossibleCorruption bool          `json:"possible_corruption,omitempty"`
	Warning            string        `json:"warning,omitempty"`
	Duration           time.Duration `json:"duration_ns"`
}

// Status is a DB's state for /v1/status and /metrics.
type Status struct {
	Dir           string   `json:"dir"`
	Sync          SyncMode `json:"fsync"`
	Rev           int64    `json:"rev"`
	Keys          int      `json:"keys"`
	LogBytes      int64    `json:"log_bytes"`
	SnapshotBytes int64    `json:"snapshot_bytes"`
	SnapshotRev   int64    `json:"snapshot_rev"`
	Compactions   int64    `json:"compactions"`
	Fsyncs        int64    `json:"fsyncs"`
	Failed        string   `json:"failed,omitempty"`
	// KeptTails names the files of log bytes a recovery cut off, still in
	// the data folder: each needs an operator's look (and removal, which
	// ends its mention here).
	KeptTails []string `json:"kept_tails,omitempty"`
	Recovery  Recovery `json:"recovery"`
}

// DB is a store kept in a data folder: a snapshot plus a log, recovered on
// Open and compacted in the background.
type DB struct {
	dir    string
	opts   Options
	fs     FS
	log    *Log
	store  *engine.Store
	logger *slog.Logger
	unlock func() error

	recovery    Recovery
	snapBytes   atomic.Int64
	snapRev     atomic.Int64
	compactions atomic.Int64

	compactMu sync.Mutex // one compaction at a time
	kick      chan struct{}
	stop      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// Open opens the data folder dir, creating it if needed, and recovers the
// store: the snapshot, then the log. A damaged last record (torn by a crash
// during a write, or a whole line that fails its checks, reported as
// possible corruption) is cut off with a warning in the Recovery report;
// its bytes are kept in a file beside the log (see Status.KeptTails). Anything else that
// fails its checks is refused with a *CorruptError naming the file and
// offset, and nothing on disk is changed. Another process holding the folder
// gives ErrLocked.
func Open(dir string, opts Options) (*DB, error) {
	start := time.Now()
	if opts.Sync == "" {
		opts.Sync = SyncAlways
	}
	if _, err := ParseSyncMode(string(opts.Sync)); err != nil {
		return nil, err
	}
	if opts.FS == nil {
		opts.FS = OSFS{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.CompactMinBytes <= 0 {
		opts.CompactMinBytes = DefaultCompactMinBytes
	}
	if opts.SyncInterval <= 0 {
		opts.SyncInterval = time.Second
	}
	db := &DB{dir: dir, opts: opts, fs: opts.FS, logger: opts.Logger,
		kick: make(chan struct{}, 1), stop: make(chan struct{}), unlock: func() error { return nil }}
	if err := db.fs.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create data folder: %w", err)
	}
	if !opts.NoLock {
		unlock, err := lockDir(dir)
		if err != nil {
			return nil, err
		}
		db.unlock = unlock
	}
	if err := db.recover(); err != nil {
		db.unlock()
		return nil, err
	}
	db.recovery.Duration = time.Since(start)
	db.logger.Info("store opened", "dir", dir, "rev", db.store.Rev(), "keys", db.store.Len(),
		"snapshot_entries", db.recovery.SnapshotEntries, "log_records", db.recovery.LogRecords,
		"took", db.recovery.Duration.Round(time.Millisecond))
	db.wg.Add(1)
	go db.compactLoop()
	return db, nil
}

// plan is what recovery found in the folder.
type plan struct {
	segments []string // log segments, oldest first
	firsts   []int64  // their first revisions
	stale    []string // leftovers to remove once open succeeded
}

func (db *DB) scan() (plan, error) {
	var p plan
	names, err := db.fs.ReadDir(db.dir)
	if err != nil {
		return p, fmt.Errorf("list data folder: %w", err)
	}
	for _, n := range names { // ReadDir sorts, and the names sort by revision
		if first, ok := parseSegName(n); ok {
			p.segments = append(p.segments, n)
			p.firsts = append(p.firsts, first)
		} else if n == snapshotTemp {
			p.stale = append(p.stale, n)
		}
	}
	return p, nil
}

func (db *DB) recover() error {
	p, err := db.scan()
	if err != nil {
		return err
	}
	eopts := db.opts.Engine
	eopts.Journal = journal{db} // used only after recovery, once db.log is open
	store, err := engine.Restore(eopts, func(l *engine.Loader) error {
		if err := db.loadSnapshot(l); err != nil {
			return err
		}
		var lastSize, olderSize int64
		var truncate func() error // the one change recovery may make: cutting a torn tail
		for i, name := range p.segments {
			// A torn tail may end the last segment holding anything:
			// blank segments after it (empty or all zeros) are new ones
			// a crash caught before their first write (or a rotation
			// whose undo did not reach the disk). It is asked only when
			// a segment turns out damaged.
			tornOK := func() (bool, error) {
				for _, later := range p.segments[i+1:] {
					if blank, err := db.blank(later); err != nil || !blank {
						return false, err
					}
				}
				return true, nil
			}
			size, cut, err := db.replay(l, name, p.firsts[i], tornOK)
			if err != nil {
				return err
			}
			if cut != nil {
				truncate = cut
			}
			switch {
			case i == len(p.segments)-1:
				lastSize = size
			case p.firsts[i+1] <= db.recovery.SnapshotRev+1:
				// Wholly covered by the snapshot: a compaction stopped
				// before removing it.
				p.stale = append(p.stale, name)
			default:
				olderSize += size
			}
		}
		if truncate != nil {
			if err := truncate(); err != nil {
				return err
			}
		}
		// Writes go on in the last segment, or in a new one after the snapshot.
		name := segName(l.Rev() + 1)
		if len(p.segments) > 0 {
			name = p.segments[len(p.segments)-1]
		}
		log, err := openLog(db.fs, db.dir, name, lastSize, olderSize, db.opts)
		if err != nil {
			return err
		}
		if len(p.segments) == 0 {
			if err := db.fs.SyncDir(db.dir); err != nil {
				log.Close()
				return fmt.Errorf("sync data folder: %w", err)
			}
		}
		db.log = log
		return nil
	})
	if err != nil {
		return err
	}
	db.store = store
	// Leftovers of an interrupted compaction; removing them loses nothing.
	for _, n := range p.stale {
		db.fs.Remove(filepath.Join(db.dir, n))
	}
	return nil
}

// journal hands the store's writes to the log opened during recovery.
type journal struct{ db *DB }

// CommitDelay passes on the log's (engine.GroupDelayer).
func (j journal) CommitDelay() time.Duration { return j.db.log.CommitDelay() }

func (j journal) Append(cmds []engine.Command) error {
	if err := j.db.log.Append(cmds); err != nil {
		return err
	}
	j.db.maybeCompact()
	return nil
}

// loadSnapshot loads snapshot.json, if there is one.
func (db *DB) loadSnapshot(l *engine.Loader) error {
	f, err := db.fs.OpenFile(filepath.Join(db.dir, snapshotName), os.O_RDONLY, 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("open snapshot: %w", err)
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return fmt.Errorf("stat snapshot: %w", err)
	}
	rev, entries, err := codec.ReadSnapshot(f, filepath.Join(db.dir, snapshotName))
	if err != nil {
		return err
	}
	if err := l.Load(rev, entries); err != nil {
		return &CorruptError{File: filepath.Join(db.dir, snapshotName), Offset: 0, Err: err}
	}
	db.recovery.SnapshotRev = rev
	db.recovery.SnapshotEntries = len(entries)
	db.snapRev.Store(rev)
	db.snapBytes.Store(size)
	return nil
}

// replay applies the records of one log segment that are newer than what is
// loaded. It returns the end of the segment's records (the zeros after them,
// written ahead by the log, are not records) and, for a damaged tail of the
// last segment holding records (tornOK says whether this is it), a function
// that cuts it off. Any other damage, or a gap in revisions, is a
// *CorruptError.
//
// A segment is records, then zeros to its end. What may follow the last
// valid record instead:
//   - a line without its end, or a line or run of zeros holding a NUL byte
//     among other bytes: a write a crash interrupted. Its pages reached the
//     disk in any order, so parts of it read as the zeros they overwrote
//     (no record holds a NUL byte). Every byte from there on is cut and
//     kept; if a valid record follows, the report flags possible
//     corruption (a crash leaves records after a hole only when they were
//     never synced, but a disk that zeroed a synced sector looks the same).
//   - a whole line that fails its checks, with no valid record after it:
//     cut and kept, flagged as possible corruption (a crash does not
//     change a whole line).
//   - anything else (a damaged line with a valid record after it, damage
//     in an older segment): refused.
func (db *DB) replay(l *engine.Loader, name string, first int64, tornOK func() (bool, error)) (int64, func() error, error) {
	path := filepath.Join(db.dir, name)
	f, err := db.fs.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return 0, nil, fmt.Errorf("open log: %w", err)
	}
	defer f.Close()
	lr := codec.NewLineReader(f)
	readErr := func(off int64, err error) (int64, func() error, error) {
		return 0, nil, fmt.Errorf("read log %s at offset %d: %w", path, off, err)
	}
	for {
		off := lr.Offset()
		z, err := lr.SkipZeros()
		if err != nil {
			return readErr(lr.Offset(), err)
		}
		line, err := lr.Next()
		if err == io.EOF {
			return off, nil, nil // the end of the records: zeros, or nothing, after them
		}
		if err != nil {
			return readErr(lr.Offset(), err)
		}
		var cmd engine.Command
		switch {
		case z > 0:
			err = fmt.Errorf("%w: zero bytes where a record should start", ErrMalformed)
		case line[len(line)-1] != '\n':
			err = fmt.Errorf("%w: record has no end of line", ErrMalformed)
		default:
			cmd, err = codec.DecodeRecord(line)
		}
		if err != nil {
			whole := line[len(line)-1] == '\n'
			torn := z > 0 || !whole || bytes.IndexByte(line, 0) >= 0
			validAfter, end, serr := scanRest(lr, line, z > 0)
			if serr != nil {
				return readErr(lr.Offset(), serr)
			}
			ok, terr := tornOK()
			if terr != nil {
				return 0, nil, terr
			}
			if !ok || !torn && validAfter {
				return 0, nil, &CorruptError{File: path, Offset: off, Err: err}
			}
			// The end of the log: a crash cut the last write short
			// (torn), or the disk changed it. Either way the bytes are
			// cut so the store opens, and kept.
			keep := filepath.Join(db.dir, keptTailName(name, off))
			n := end - off
			db.recovery.TruncatedBytes = n
			db.recovery.KeptTail = keep
			db.recovery.PossibleCorruption = !torn || validAfter
			switch {
			case !torn:
				db.recovery.Warning = fmt.Sprintf("possible corruption: the last record of %s, at offset %d, is a complete line that fails its checks (%v), which a crash does not cause; its %d bytes were cut off and kept in %s",
					path, off, err, n, keep)
				db.logger.Warn("recovery cut a complete but damaged last record off the log: possible disk corruption",
					"file", path, "offset", off, "bytes", n, "kept_in", keep, "err", err)
			case validAfter:
				db.recovery.Warning = fmt.Sprintf("possible corruption: the record of %s at offset %d is missing bytes (%v) and valid records follow it: either a crash interrupted a write whose later pages reached the disk (those records were never synced, so never acknowledged with fsync always) or the disk lost synced data; the %d bytes from there on were cut off and kept in %s",
					path, off, err, n, keep)
				db.logger.Warn("recovery cut a record with missing bytes, and the records after it, off the log: a torn write or possible disk corruption",
					"file", path, "offset", off, "bytes", n, "kept_in", keep, "err", err)
			default:
				db.recovery.Warning = fmt.Sprintf("cut a torn record (a write a crash interrupted) of %d bytes off the end of %s at offset %d (%v); the bytes are kept in %s",
					n, path, off, err, keep)
				db.logger.Warn("recovery cut a torn record off the log", "file", path, "offset", off, "bytes", n, "kept_in", keep, "err", err)
			}
			return off, func() error { return db.cut(path, off, end, keep) }, nil
		}
		if cmd.Rev < first {
			return 0, nil, &CorruptError{File: path, Offset: off, Err: fmt.Errorf("%w: revision %d in a segment starting at %d", ErrMalformed, cmd.Rev, first)}
		}
		if cmd.Rev <= l.Rev() {
			continue // already in the snapshot
		}
		if err := l.Apply(cmd); err != nil {
			return 0, nil, &CorruptError{File: path, Offset: off, Err: err}
		}
		db.recovery.LogRecords++
	}
}

// scanRest reads lr to its end after a damaged line (line, just read; after
// zeros when afterZeros). It reports whether a valid record follows the
// damage (the line itself counts when zeros came before it: it may be a
// whole record after a hole) and the offset just past the last non-zero
// byte: the end of what a cut has to keep.
func scanRest(lr *codec.LineReader, line []byte, afterZeros bool) (validAfter bool, end int64, err error) {
	valid := func(line []byte) bool {
		if line[len(line)-1] != '\n' {
			return false
		}
		_, err := codec.DecodeRecord(line)
		return err == nil
	}
	nonZeroEnd := func(line []byte) int64 {
		return lr.Offset() - int64(len(line)) + int64(len(bytes.TrimRight(line, "\x00")))
	}
	validAfter = afterZeros && valid(line)
	end = nonZeroEnd(line)
	for {
		if _, err := lr.SkipZeros(); err != nil {
			return false, 0, err
		}
		line, err := lr.Next()
		if err == io.EOF {
			return validAfter, end, nil
		}
		if err != nil {
			return false, 0, err
		}
		validAfter = validAfter || valid(line)
		if e := nonZeroEnd(line); e > lr.Offset()-int64(len(line)) {
			end = e
		}
	}
}

// blank reports whether the log segment name holds no records: it is empty
// or all zeros (a new segment no write reached).
func (db *DB) blank(name string) (bool, error) {
	f, err := db.fs.OpenFile(filepath.Join(db.dir, name), os.O_RDONLY, 0)
	if err != nil {
		return false, fmt.Errorf("open log: %w", err)
	}
	defer f.Close()
	lr := codec.NewLineReader(f)
	if _, err := lr.SkipZeros(); err != nil {
		return false, fmt.Errorf("read log %s: %w", name, err)
	}
	_, err = lr.Next()
	if err == io.EOF {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("read log %s: %w", name, err)
	}
	return false, nil
}

// keptTailMark is in the name of every file of cut log bytes.
const keptTailMark = ".tail-at-"

// keptTailName names the file that keeps the bytes cut off segment at off:
// "wal-….jsonl.tail-at-OFFSET-TIME", which no other code of PyKV reads,
// removes or takes for a segment.
func keptTailName(segment string, off int64) string {
	return fmt.Sprintf("%s%s%d-%s", segment, keptTailMark, off, time.Now().UTC().Format("20060102T150405.000000000Z"))
}

// cut keeps the bytes of the log file path from off to end in the file
// keep, durably, then truncates the log at off and makes that durable (the
// log then zero-fills from off on: a later write that is shorter than the
// cut bytes must not leave some of them after it, to be read as records).
// The copy comes first: a crash between the two leaves both, and the next
// recovery cuts (and keeps) the same bytes again.
func (db *DB) cut(path string, off, end int64, keep string) error {
	if err := db.keepTail(path, off, end, keep); err != nil {
		return err
	}
	w, err := db.fs.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("open log to cut its damaged tail: %w", err)
	}
	err = w.Truncate(off)
	if err == nil {
		err = w.Sync()
	}
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("cut damaged tail of %s: %w", path, err)
	}
	return nil
}

// keepTail copies path's bytes from off to end to the new file keep and
// makes it durable (the file and its folder entry).
func (db *DB) keepTail(path string, off, end int64, keep string) error {
	r, err := db.fs.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return fmt.Errorf("open log to keep its damaged tail: %w", err)
	}
	defer r.Close()
	if _, err := io.CopyN(io.Discard, r, off); err != nil {
		return fmt.Errorf("read log %s up to its damaged tail: %w", path, err)
	}
	w, err := db.fs.OpenFile(keep, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("create %s to keep the damaged tail of the log: %w", keep, err)
	}
	_, err = io.CopyN(w, r, end-off)
	if err == nil {
		err = w.Sync()
	}
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = db.fs.SyncDir(db.dir)
	}
	if err != nil {
		return fmt.Errorf("keep the damaged tail of the log in %s: %w", keep, err)
	}
	return nil
}

// keptTails lists the files of cut log bytes in the data folder.
func (db *DB) keptTails() []string {
	names, err := db.fs.ReadDir(db.dir)
	if err != nil {
		return nil
	}
	var kept []string
	for _, n := range names {
		if strings.Contains(n, keptTailMark) {
			kept = append(kept, n)
		}
	}
	return kept
}

// Store returns the store; its writes go through the log.
func (db *DB) Store() *engine.Store { return db.store }

// Err returns nil while the store accepts writes, or an error wrapping
// ErrFailed once an I/O failure made it refuse them.
func (db *DB) Err() error {
	if err := db.log.Err(); err != nil && !errors.Is(err, ErrClosedLog) {
		return err
	}
	return nil
}

// Status reports sizes, revisions and the last recovery.
func (db *DB) Status() Status {
	cur, older := db.log.sizes()
	st := Status{
		Dir:           db.dir,
		Sync:          db.opts.Sync,
		Rev:           db.store.Rev(),
		Keys:          db.store.Len(),
		LogBytes:      cur + older,
		SnapshotBytes: db.snapBytes.Load(),
		SnapshotRev:   db.snapRev.Load(),
		Compactions:   db.compactions.Load(),
		Fsyncs:        db.log.fsyncCount(),
		KeptTails:     db.keptTails(),
		Recovery:      db.recovery,
	}
	if err := db.Err(); err != nil {
		st.Failed = err.Error()
	}
	return st
}

// Close stops the store and compaction, fsyncs the log and releases the
// folder. Writes after Close fail with engine.ErrClosed.
func (db *DB) Close() error {
	db.closeOnce.Do(func() {
		close(db.stop)
		db.store.Close() // answers queued writes; no Append runs after this
		db.wg.Wait()
		// The log is closed under compactMu so that a compaction called
		// directly (Compact) finishes its rotation and snapshot first and
		// never writes to a closed log.
		db.compactMu.Lock()
		db.closeErr = db.log.Close()
		db.compactMu.Unlock()
		if err := db.unlock(); db.closeErr == nil {
			db.closeErr = err
		}
	})
	return db.closeErr
}

package persist

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/pykv/pykv/engine"
	"github.com/pykv/pykv/persist/codec"
)

// compactRetry is the pause after a failed compaction (a full disk, say).
const compactRetry = 5 * time.Second

// maybeCompact wakes the compactor when the log has outgrown the snapshot.
// It is called after every append, so it only compares two numbers.
func (db *DB) maybeCompact() {
	cur, older := db.log.sizes()
	logBytes := cur + older
	if logBytes < db.opts.CompactMinBytes || logBytes < db.snapBytes.Load() {
		return
	}
	select {
	case db.kick <- struct{}{}:
	default: // already kicked
	}
}

func (db *DB) compactLoop() {
	defer db.wg.Done()
	for {
		select {
		case <-db.stop:
			return
		case <-db.kick:
			err := db.Compact()
			// Writes during the compaction kicked again while the old
			// segments still counted; look afresh now they are gone.
			select {
			case <-db.kick:
			default:
			}
			if err == nil {
				db.maybeCompact()
			}
			if err != nil && !errors.Is(err, engine.ErrClosed) {
				db.logger.Error("compaction failed; the log keeps growing until one succeeds", "err", err)
				// Wait before trying again: each attempt starts a segment.
				select {
				case <-db.stop:
					return
				case <-time.After(compactRetry):
				}
			}
		}
	}
}

// Compact writes a new snapshot and drops the log it makes redundant. The
// steps are ordered so that a crash at any point leaves a folder that
// recovers to the same state:
//
//  1. Between two writes, the log moves to a new segment starting right
//     after revision R, and the state at R is captured (pointer copies).
//  2. The snapshot of R is written to snapshot.json.tmp, fsynced, renamed
//     over snapshot.json, and the folder is fsynced.
//  3. Only then are the segments before R+1 removed.
//
// Until step 2 completes the old snapshot and every segment are intact;
// after it, the old segments hold only revisions the snapshot covers, which
// recovery skips. Writers wait only during step 1.
func (db *DB) Compact() error {
	db.compactMu.Lock()
	defer db.compactMu.Unlock()
	names, err := db.fs.ReadDir(db.dir)
	if err != nil {
		return fmt.Errorf("compact: list data folder: %w", err)
	}
	rev, entries, err := db.store.Checkpoint(func(rev int64) error { return db.log.rotate(rev + 1) })
	if err != nil {
		return fmt.Errorf("compact: %w", err)
	}
	size, err := db.writeSnapshot(rev, entries)
	if err != nil {
		return err
	}
	db.snapBytes.Store(size)
	db.snapRev.Store(rev)
	newSeg := segName(rev + 1)
	for _, n := range names {
		if _, ok := parseSegName(n); ok && n < newSeg {
			if err := db.fs.Remove(filepath.Join(db.dir, n)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("compact: remove old log %s: %w", n, err)
			}
		}
	}
	db.log.dropOlder()
	if err := db.fs.SyncDir(db.dir); err != nil {
		return fmt.Errorf("compact: sync data folder: %w", err)
	}
	db.compactions.Add(1)
	db.logger.Info("compacted", "rev", rev, "keys", len(entries), "snapshot_bytes", size)
	return nil
}

// writeSnapshot writes snapshot.json atomically: a temporary file, fsync,
// rename, fsync of the folder. It returns the snapshot's size.
func (db *DB) writeSnapshot(rev int64, entries []*engine.Entry) (int64, error) {
	tmp := filepath.Join(db.dir, snapshotTemp)
	f, err := db.fs.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return 0, fmt.Errorf("compact: create %s: %w", tmp, err)
	}
	fail := func(step string, err error) (int64, error) {
		f.Close()
		db.fs.Remove(tmp)
		return 0, fmt.Errorf("compact: %s %s: %w", step, tmp, err)
	}
	if err := codec.WriteSnapshot(f, rev, entries); err != nil {
		return fail("write", err)
	}
	if err := f.Sync(); err != nil {
		return fail("fsync", err)
	}
	size, err := f.Size()
	if err != nil {
		return fail("stat", err)
	}
	if err := f.Close(); err != nil {
		db.fs.Remove(tmp)
		return 0, fmt.Errorf("compact: close %s: %w", tmp, err)
	}
	if err := db.fs.Rename(tmp, filepath.Join(db.dir, snapshotName)); err != nil {
		db.fs.Remove(tmp)
		return 0, fmt.Errorf("compact: rename snapshot: %w", err)
	}
	if err := db.fs.SyncDir(db.dir); err != nil {
		return 0, fmt.Errorf("compact: sync data folder after rename: %w", err)
	}
	return size, nil
}

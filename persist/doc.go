// Package persist makes an engine.Store durable: a JSON snapshot plus an
// append-only log of checksummed JSON lines in a data folder.
//
// # Basics
//
// Open locks the folder, loads snapshot.json, replays the log segments
// (wal-<first revision>.jsonl) and returns a DB whose store writes through
// the log. With SyncAlways every write is fsynced before it is answered,
// and concurrent writers share fsyncs (the engine's committer hands the log
// whole groups). Compact, run in the background once the log outgrows the
// snapshot, writes a new snapshot atomically and drops the log it covers.
//
// The format itself (log records, snapshots, import and export) is the
// subpackage persist/codec, which has no file system in it; the browser
// copy uses it to keep the same format in localStorage. persist names the
// codec's errors (CorruptError, ErrChecksum, ErrMalformed, ErrBadImport)
// too, so a program using persist needs no second import to check them.
//
// # Caveats
//
// Recovery cuts a torn last record off the newest segment, and refuses
// anything else that fails a check with a *CorruptError naming the file and
// offset, changing nothing. After a failed fsync every write fails with
// ErrFailed until the DB is reopened. All file access goes through FS, so
// tests substitute a disk that loses unsynced data or fails on demand.
package persist

// Package persist makes an engine.Store durable: a JSON snapshot plus an
// append-only log of checksummed JSON lines in a data folder.
//
// # Basics
//
// Open locks the folder, loads snapshot.json, replays the log segments
// (wal-<first revision>.jsonl) and returns a DB whose store writes through
// the log. With SyncAlways every write is made durable (fdatasync) before
// it is answered, and concurrent writers share syncs (the engine's
// committer hands the log whole groups). Segments are zero-filled ahead of
// their records, so a sync changes no file metadata (see Log). Compact, run in the background once the log outgrows the
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
// A segment is its records followed by zeros; recovery takes a NUL byte
// where a record would start for the end of the records. It cuts a torn
// last record (a line without its end, or one with NUL bytes: a write over
// zeros whose pages did not all reach the disk) off the newest segment
// holding records, with any records after it, and refuses anything else
// that fails a check with a *CorruptError naming the file and offset,
// changing nothing. After a failed fsync every write fails with
// ErrFailed until the DB is reopened. All file access goes through FS, so
// tests substitute a disk that loses unsynced data or fails on demand.
package persist

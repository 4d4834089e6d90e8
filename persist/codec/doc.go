// Package codec is PyKV's file format, with no file system in it: the log
// record, the snapshot entry, the snapshot reader and writer, and the
// import and export of a store. persist writes these bytes to disk; the
// browser's offline copy (wasm/) keeps the same bytes in localStorage and
// imports only this package, so the format is one and the browser build
// never reaches persist's disk code (wasm's TestBuild_BrowserReachesOnlyTheCodec
// checks it).
//
// # Basics
//
// AppendRecord and DecodeRecord write and read one log line, a command
// with a CRC-32C over the bytes before its checksum. WriteSnapshot and
// ReadSnapshot write and read a whole snapshot, one entry per line, with
// a CRC-32C of everything before the last line; WriteRecord writes a huge
// command (an import) in pieces. ReadImport reads, as a stream, a
// snapshot (checked whatever its whitespace: its checksum is computed over
// the entries as WriteSnapshot writes them) or the original PyKV flat
// file; ExportStore writes a store, and ImportStore writes an import into
// one as a single write (merge or replace, unchanged keys skipped;
// ImportThrough for a store whose writes go through a cluster's log).
// LineReader reads lines of any length, tracking offsets, for persist's
// log replay.
//
// The hand-written JSON encoders (log records, snapshot entries, the watch
// stream's events in web, the browser copy's sync item in wasm) write
// every field through the field writers of fields.go (AppendKey,
// AppendValue, AppendRev, AppendExpiresAt, …), so a field is named and
// spelled in one place. Each writes exactly what encoding/json would; the
// tests compare them.
//
// # Caveats
//
// Damage is reported as a *CorruptError naming the input and the byte
// offset, wrapping ErrChecksum or ErrMalformed; an import that is not
// PyKV's gives an error wrapping ErrBadImport. The readers check
// everything they read, but a caller writing a snapshot must pass entries
// of distinct keys: WriteSnapshot sorts them and does not deduplicate.
package codec

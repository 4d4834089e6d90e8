package persist

import (
	"io"

	"github.com/pykv/pykv/persist/codec"
)

// ImportResult tells what an import did: the format read, the mode, how
// many keys the file held, the revision its writes got and what became of
// each key (added, changed, unchanged, deleted, expired).
type ImportResult = codec.ImportResult

// ImportMode says what an import does to the keys its file does not hold:
// ImportMerge keeps them (the default), ImportReplace deletes them.
type ImportMode = codec.ImportMode

// The import modes.
const (
	ImportMerge   = codec.ImportMerge
	ImportReplace = codec.ImportReplace
)

// ParseImportMode parses "merge" or "replace" ("" means merge).
func ParseImportMode(s string) (ImportMode, error) { return codec.ParseImportMode(s) }

// ErrBadImport: an import file is neither a snapshot nor a flat object of
// string values; the message says what is wrong with it.
var ErrBadImport = codec.ErrBadImport

// Import formats, as ImportResult.Format reports them.
const (
	FormatSnapshot = codec.FormatSnapshot // the snapshot format, as Export writes it
	FormatFlat     = codec.FormatFlat     // the original PyKV data file: {"key": "value", ...}
)

// Export writes the store's state, consistent at one revision, to w in the
// snapshot format.
func (db *DB) Export(w io.Writer) error {
	return codec.ExportStore(db.store, w)
}

// Import reads a snapshot or a flat PyKV file from r, streaming, and
// writes it into the store as one write (see codec.ImportStore): keys whose
// value and expiry are unchanged are skipped, and in ImportReplace mode
// every key the file does not hold is deleted, so the store ends up equal
// to the file. It is all or nothing: a malformed file (an error wrapping
// ErrBadImport) or a failed log write changes nothing.
func (db *DB) Import(r io.Reader, mode ImportMode) (ImportResult, error) {
	return codec.ImportStore(db.store, r, mode)
}

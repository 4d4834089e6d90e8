package persist

import (
	"io"

	"github.com/pykv/pykv/persist/codec"
)

// ImportResult tells what an import did: the format read, how many keys it
// wrote and the revision they got.
type ImportResult = codec.ImportResult

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

// Import reads a snapshot or a flat PyKV file from r and puts every key in
// it, atomically: all under one revision, or nothing. Values and expiry
// times come from the file (entries already expired are skipped); revisions
// are the store's own. Malformed input gives an error wrapping ErrBadImport.
func (db *DB) Import(r io.Reader) (ImportResult, error) {
	return codec.ImportStore(db.store, r)
}

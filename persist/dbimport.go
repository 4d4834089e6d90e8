package persist

import "io"

// ImportFile reads a snapshot or a flat PyKV file from r, streaming, and
// writes it into the store as one write: keys whose value and expiry are
// unchanged are skipped, and in ImportReplace mode every key the file does
// not hold is deleted, so the store ends up equal to the file. It is all
// or nothing: a malformed file (an error wrapping ErrBadImport) or a
// failed log write changes nothing.
func (db *DB) ImportFile(r io.Reader, mode ImportMode) (FileImportResult, error) {
	return ImportFile(db.store, r, mode)
}

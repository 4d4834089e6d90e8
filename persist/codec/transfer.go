package codec

import (
	"errors"
	"io"

	"github.com/pykv/pykv/engine"
)

// ErrBadImport: an import file is neither a snapshot nor a flat object of
// string values; the message says what is wrong with it.
var ErrBadImport = errors.New("bad import file")

// Import formats.
const (
	FormatSnapshot = "snapshot" // the snapshot format, as ExportStore writes it
	FormatFlat     = "flat"     // the original PyKV data file: {"key": "value", ...}
)

// ExportStore writes s's state, consistent at one revision, to w in the
// snapshot format.
func ExportStore(s *engine.Store, w io.Writer) error {
	rev, entries, err := s.Checkpoint(func(int64) error { return nil })
	if err != nil {
		return err
	}
	return WriteSnapshot(w, rev, entries)
}

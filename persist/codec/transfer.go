package codec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

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

// ImportResult tells what an import did.
type ImportResult struct {
	Format string `json:"format"`
	Keys   int    `json:"keys"`
	Rev    int64  `json:"rev"` // the revision the import's writes got
}

// ExportStore writes s's state, consistent at one revision, to w in the
// snapshot format.
func ExportStore(s *engine.Store, w io.Writer) error {
	rev, entries, err := s.Checkpoint(func(int64) error { return nil })
	if err != nil {
		return err
	}
	return WriteSnapshot(w, rev, entries)
}

// ImportStore reads a snapshot or a flat PyKV file from r and puts every
// key in it into s, atomically: all under one revision, or nothing. Values
// and expiry times come from the file (entries already expired are
// skipped); revisions are the store's own. Malformed input gives an error
// wrapping ErrBadImport.
func ImportStore(s *engine.Store, r io.Reader) (ImportResult, error) {
	return ImportWith(r, s.Rev(), s.Bulk)
}

// ImportWith reads an import file from r and hands its live entries to
// bulk as puts, all at once (a replicated store sends them through its
// log); rev is the store's revision, reported when nothing is imported.
// Malformed input gives an error wrapping ErrBadImport; bulk's errors are
// returned as they are, except a refused key, which is ErrBadImport too.
func ImportWith(r io.Reader, rev int64, bulk func([]engine.Op) (engine.TxnResult, error)) (ImportResult, error) {
	format, entries, err := ReadImport(r)
	if err != nil {
		return ImportResult{}, err
	}
	res := ImportResult{Format: format, Rev: rev}
	now := time.Now().UnixMilli()
	ops := make([]engine.Op, 0, len(entries))
	for _, e := range entries {
		if e.ExpiresAt != 0 && e.ExpiresAt <= now {
			continue // expired already
		}
		// Expiry times are kept as they are, not turned into TTLs.
		ops = append(ops, engine.Op{Type: engine.OpPut, Key: e.Key, Value: e.Value, ExpiresAt: e.ExpiresAt})
	}
	if len(ops) == 0 {
		return res, nil
	}
	tr, err := bulk(ops)
	if err != nil {
		var oe *engine.OpError
		if errors.As(err, &oe) {
			return ImportResult{}, fmt.Errorf("%w: key %q: %w", ErrBadImport, oe.Key, oe.Err)
		}
		return ImportResult{}, err
	}
	res.Keys, res.Rev = len(ops), tr.Rev
	return res, nil
}

// ReadImport decodes an import file: a snapshot (checked as strictly as on
// recovery when it has the exact layout Export writes, otherwise any JSON
// document with the snapshot's fields), or a flat object mapping keys to
// string values. Entries come back in key order.
func ReadImport(r io.Reader) (format string, entries []engine.Entry, err error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return "", nil, err
	}
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return "", nil, fmt.Errorf("%w: want a JSON object", ErrBadImport)
	}
	if bytes.HasPrefix(data, []byte(`{"format":"`+SnapshotFormat+`"`)) && bytes.Contains(data, []byte(`,"crc":"`)) {
		// Blank lines or spaces after the document (an editor's doing)
		// are not damage.
		data = append(bytes.TrimRight(data, " \t\r\n"), '\n')
		_, entries, err := ReadSnapshot(bytes.NewReader(data), "import")
		if err != nil {
			return "", nil, fmt.Errorf("%w: %w", ErrBadImport, err)
		}
		return FormatSnapshot, entries, nil
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil {
		return "", nil, fmt.Errorf("%w: %v", ErrBadImport, err)
	}
	if f, ok := fields["format"]; ok && bytes.Equal(bytes.TrimSpace(f), []byte(`"`+SnapshotFormat+`"`)) {
		var doc struct {
			snapshotHeader
			Entries []engine.Entry `json:"entries"`
		}
		if err := json.Unmarshal(data, &doc); err != nil {
			return "", nil, fmt.Errorf("%w: snapshot: %v", ErrBadImport, err)
		}
		if doc.Version != SnapshotVersion {
			return "", nil, fmt.Errorf("%w: snapshot version %d, this PyKV reads version %d", ErrBadImport, doc.Version, SnapshotVersion)
		}
		slices.SortFunc(doc.Entries, func(a, b engine.Entry) int { return strings.Compare(a.Key, b.Key) })
		for i := 1; i < len(doc.Entries); i++ {
			if doc.Entries[i].Key == doc.Entries[i-1].Key {
				return "", nil, fmt.Errorf("%w: key %q appears twice", ErrBadImport, doc.Entries[i].Key)
			}
		}
		return FormatSnapshot, doc.Entries, nil
	}
	entries = make([]engine.Entry, 0, len(fields))
	for k, raw := range fields {
		var v string
		if err := json.Unmarshal(raw, &v); err != nil {
			return "", nil, fmt.Errorf("%w: the value of key %q is not a string (the flat format maps keys to string values)", ErrBadImport, k)
		}
		entries = append(entries, engine.Entry{Key: k, Value: v})
	}
	slices.SortFunc(entries, func(a, b engine.Entry) int { return strings.Compare(a.Key, b.Key) })
	return FormatFlat, entries, nil
}

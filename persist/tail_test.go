package persist_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pykv/pykv/persist"
)

// TestDB_TailKept: bytes recovery cuts off the end of the log are kept
// beside it in the data folder, named in the warning and in Status until
// an operator removes the file. A complete last line whose checksum fails
// is reported as possible corruption, not as a torn write.
func TestDB_TailKept(t *testing.T) {
	for _, tc := range []struct {
		name    string
		damage  func(last string) string // the last line, newline included
		corrupt bool
	}{
		{"complete line with a changed byte", func(l string) string {
			i := strings.Index(l, "value-last") + len("value-")
			return l[:i] + "X" + l[i+1:]
		}, true},
		{"torn line", func(l string) string { return l[:len(l)/2] }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			db, err := persist.Open(dir, persist.Options{})
			if err != nil {
				t.Fatal(err)
			}
			mustPut(t, db.Store(), "kept", "value-1")
			mustPut(t, db.Store(), "last", "value-last")
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			segs, _ := filepath.Glob(filepath.Join(dir, "wal-*.jsonl"))
			if len(segs) != 1 {
				t.Fatalf("log segments %v, want one", segs)
			}
			data, err := os.ReadFile(segs[0])
			if err != nil {
				t.Fatal(err)
			}
			start := strings.LastIndex(strings.TrimSuffix(string(data), "\n"), "\n") + 1
			tail := tc.damage(string(data[start:]))
			if err := os.WriteFile(segs[0], append(data[:start:start], tail...), 0o644); err != nil {
				t.Fatal(err)
			}

			db, err = persist.Open(dir, persist.Options{})
			if err != nil {
				t.Fatalf("Open with a damaged last record: %v", err)
			}
			defer db.Close()
			if _, err := db.Store().Get("kept"); err != nil {
				t.Errorf("the record before the damaged one is gone: %v", err)
			}
			st := db.Status()
			rec := st.Recovery
			if rec.KeptTail == "" || filepath.Dir(rec.KeptTail) != dir {
				t.Fatalf("recovery %+v: want the cut bytes kept in a file of the data folder", rec)
			}
			kept, err := os.ReadFile(rec.KeptTail)
			if err != nil || string(kept) != tail {
				t.Errorf("kept file %s holds %q (%v), want the %d bytes cut: %q", rec.KeptTail, kept, err, len(tail), tail)
			}
			if !strings.Contains(rec.Warning, rec.KeptTail) {
				t.Errorf("warning %q does not name the kept file %s", rec.Warning, rec.KeptTail)
			}
			if rec.PossibleCorruption != tc.corrupt || strings.Contains(rec.Warning, "torn") == tc.corrupt {
				t.Errorf("recovery %+v: possible corruption %v, want %v (and the warning saying so)", rec, rec.PossibleCorruption, tc.corrupt)
			}
			if len(st.KeptTails) != 1 || st.KeptTails[0] != filepath.Base(rec.KeptTail) {
				t.Errorf("Status kept tails %v, want [%s]", st.KeptTails, filepath.Base(rec.KeptTail))
			}
			// Compaction leaves the kept file alone; only the operator removes it.
			mustPut(t, db.Store(), "after", "v")
			if err := db.Compact(); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(rec.KeptTail); err != nil {
				t.Errorf("kept file after a compaction: %v", err)
			}
			if err := os.Remove(rec.KeptTail); err != nil {
				t.Fatal(err)
			}
			if st := db.Status(); len(st.KeptTails) != 0 {
				t.Errorf("Status kept tails %v after the operator removed the file, want none", st.KeptTails)
			}
		})
	}
}

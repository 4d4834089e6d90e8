package persist_test

import (
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"slices"
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
			recs := records(string(data))
			start := strings.LastIndex(strings.TrimSuffix(recs, "\n"), "\n") + 1
			tail := tc.damage(recs[start:])
			// The damage is in the records; the zeros after them stay.
			damaged := recs[:start] + tail + strings.Repeat("\x00", len(data)-start-len(tail))
			if err := os.WriteFile(segs[0], []byte(damaged), 0o644); err != nil {
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

// damagedLogFS returns a memFS whose data folder holds a log with two
// records, the last one changed by a byte (a complete line that fails its
// checksum), and that last line.
func damagedLogFS(t *testing.T) (*memFS, string) {
	t.Helper()
	m := newMemFS()
	db, err := persist.Open(dir, memOpts(m))
	if err != nil {
		t.Fatal(err)
	}
	mustPut(t, db.Store(), "kept", "value-1")
	mustPut(t, db.Store(), "last", "value-last")
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	var tail string
	for name, n := range m.files {
		if !strings.HasPrefix(path.Base(name), "wal-") || len(n.data) == 0 {
			continue
		}
		data := string(n.data)
		start := strings.LastIndex(strings.TrimSuffix(records(data), "\n"), "\n") + 1
		i := strings.Index(data[start:], "value-last") + start + len("value-")
		data = data[:i] + "X" + data[i+1:]
		n.data, n.synced = []byte(data), []byte(data)
		tail = records(data)[start:]
	}
	if tail == "" {
		t.Fatalf("no log segment with records in\n%s", m.describe())
	}
	return m, tail
}

// TestDB_TailKeptPowerLoss cuts the power at every file operation of the
// recovery that cuts a damaged last record off the log, with several random
// outcomes for what the disk kept. Whatever the image, opening it must
// leave the cut bytes, whole, in a kept file: either the crash came before
// the cut reached the disk and this recovery cuts and keeps them again, or
// the copy reached the disk first.
//
// It goes red if the kept copy is not fsynced before the log is cut, or its
// folder entry is not (each checked by planting the bug: a power loss just
// after the recovery then finds the log cut and the copy empty or gone).
// TestDB_TailKept goes red if the tail is cut without a copy (planted).
func TestDB_TailKeptPowerLoss(t *testing.T) {
	m, tail := damagedLogFS(t)
	before := m.ops
	db, err := persist.Open(dir, memOpts(m))
	if err != nil {
		t.Fatal(err)
	}
	total := m.ops - before // the recovery's operations
	if db.Status().Recovery.KeptTail == "" {
		t.Fatalf("recovery %+v kept no tail", db.Status().Recovery)
	}
	db.Close()
	points := 0
	// crashAt total+1 is a power loss just after the recovery: what it
	// made durable is all that is left.
	for crashAt := 1; crashAt <= total+1; crashAt++ {
		for seed := range 8 {
			points++
			rng := rand.New(rand.NewPCG(uint64(crashAt), uint64(seed)))
			m, _ := damagedLogFS(t)
			var img *memFS
			base := m.ops
			m.fault = func(op string, n int, name string) error {
				if n-base < crashAt {
					return nil
				}
				if n-base == crashAt {
					img = m.crashLocked(rng)
				}
				return errIO
			}
			if db, err := persist.Open(dir, memOpts(m)); err == nil {
				if img == nil {
					m.mu.Lock()
					img = m.crashLocked(rng)
					m.mu.Unlock()
				}
				db.Close()
			}
			if img == nil {
				t.Fatalf("crash point %d of the recovery was never reached", crashAt)
			}
			db, err := persist.Open(dir, memOpts(img))
			if err != nil {
				t.Fatalf("power loss at recovery operation %d (seed %d): Open = %v\nfiles:\n%s", crashAt, seed, err, img.describe())
			}
			if _, err := db.Store().Get("kept"); err != nil {
				t.Errorf("power loss at recovery operation %d (seed %d): the good record is gone: %v", crashAt, seed, err)
			}
			kept := db.Status().KeptTails
			db.Close()
			found := false
			for name, data := range img.contents() {
				if slices.Contains(kept, path.Base(name)) && data == tail {
					found = true
				}
			}
			if !found {
				t.Fatalf("power loss at recovery operation %d (seed %d): no kept file (of %v) holds the %d bytes cut off the log\nfiles:\n%s", crashAt, seed, kept, len(tail), img.describe())
			}
		}
	}
	t.Logf("%d crash points over %d recovery operations", points, total)
}

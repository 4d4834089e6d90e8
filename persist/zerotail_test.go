package persist_test

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pykv/pykv/engine"
	"github.com/pykv/pykv/persist"
)

// TestDB_ZeroTail: a log segment is its records followed by zeros (written
// ahead by the log). Recovery takes the zeros for the end, takes damage
// that holds NUL bytes for a write a crash tore (its pages reach the disk
// in any order), keeps refusing other damage, and leaves only zeros after
// the records it recovered, so that nothing cut can come back as a record.
func TestDB_ZeroTail(t *testing.T) {
	files, states := folderWithLog(t, 6, false)
	seg := lastSegment(files)
	log := records(files[seg])
	lines := strings.SplitAfter(log, "\n") // six records and ""
	z := func(n int) string { return strings.Repeat("\x00", n) }
	// A write of the fifth and sixth records whose middle page did not
	// reach the disk: the fifth has a hole, the sixth is whole.
	five := lines[4]
	holed := five[:10] + z(len(five)-20) + five[len(five)-10:]
	before5 := strings.Join(lines[:4], "")

	for _, tc := range []struct {
		name     string
		content  string
		rev      int64  // the revision recovered
		cut      string // the bytes cut and kept ("" none)
		possible bool   // flagged as possible corruption
	}{
		{"zeros after the records", log + z(300), 6, "", false},
		{"records only", log, 6, "", false},
		{"torn record then zeros", before5 + five[:20] + z(300), 4, five[:20], false},
		{"hole in a record, a whole record after it", before5 + holed + lines[5] + z(200), 4, holed + lines[5], true},
		{"zeros, then a page that landed, then zeros", before5 + z(32) + five[32:] + z(100), 4, z(32) + five[32:], false},
		{"zeros, then a whole record", before5 + z(len(five)) + lines[5] + z(100), 4, z(len(five)) + lines[5], true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := image(map[string]string{seg: tc.content})
			db, err := persist.Open(dir, memOpts(m))
			if err != nil {
				t.Fatalf("Open = %v", err)
			}
			if got := db.Store().Rev(); got != tc.rev || !reflect.DeepEqual(state(t, db.Store()), states[tc.rev]) {
				t.Fatalf("recovered revision %d, want the state at %d", got, tc.rev)
			}
			rec := db.Status().Recovery
			if rec.TruncatedBytes != int64(len(tc.cut)) || (rec.KeptTail != "") != (tc.cut != "") || rec.PossibleCorruption != tc.possible {
				t.Fatalf("recovery %+v, want %d bytes cut and kept, possible corruption %v", rec, len(tc.cut), tc.possible)
			}
			if tc.cut != "" && m.contents()[rec.KeptTail] != tc.cut {
				t.Fatalf("kept %q, want %q", m.contents()[rec.KeptTail], tc.cut)
			}
			if st := db.Status(); st.LogBytes != int64(len(strings.Join(lines[:tc.rev], ""))) {
				t.Errorf("log bytes %d, want the %d bytes of the records (zeros do not count)", st.LogBytes, len(strings.Join(lines[:tc.rev], "")))
			}
			// Writing on: the new record goes right after the recovered
			// ones, and only zeros follow it.
			e := mustPut(t, db.Store(), "after", "x")
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			got := m.contents()[seg]
			want := strings.Join(lines[:tc.rev], "")
			if !strings.HasPrefix(got, want) {
				t.Fatalf("the recovered records changed")
			}
			zeroTail(t, got, want+strings.SplitAfter(got[len(want):], "\n")[0], "after a write on the recovered log")
			db = mustOpen(t, dir, memOpts(m))
			if r, err := db.Store().Get("after"); err != nil || r.ModRev != e.ModRev || db.Store().Rev() != tc.rev+1 {
				t.Fatalf("reopened: %+v %v at revision %d, want the write at revision %d", r, err, db.Store().Rev(), tc.rev+1)
			}
			if rec := db.Status().Recovery; rec.TruncatedBytes != 0 || rec.Warning != "" {
				t.Fatalf("reopened: recovery %+v, want nothing cut", rec)
			}
		})
	}

	// Damage that is not a torn write is refused as before: a whole line
	// failing its checks with a valid record after it, even with zeros
	// after both.
	bad := []byte(log)
	bad[len(lines[0])+5] ^= 1
	m := image(map[string]string{seg: string(bad) + z(100)})
	var ce *persist.CorruptError
	if _, err := persist.Open(dir, memOpts(m)); !errors.As(err, &ce) || ce.Offset != int64(len(lines[0])) {
		t.Fatalf("a damaged record mid-log before a zero tail: Open = %v, want a CorruptError at %d", err, len(lines[0]))
	}
}

// TestDB_ZeroTailOlderSegment: segments before the newest may end in zeros
// (a compaction rotated away from them); damage in them is refused even
// when it holds NUL bytes, since they were synced whole before the next
// segment began.
func TestDB_ZeroTailOlderSegment(t *testing.T) {
	m := newMemFS()
	opts := memOpts(m)
	opts.CompactMinBytes = 1 << 40
	db := mustOpen(t, dir, opts)
	for i := range 4 {
		mustPut(t, db.Store(), "k", strings.Repeat("v", i))
	}
	// A failed snapshot write leaves the rotation: two segments.
	m.fault = func(op string, n int, name string) error {
		if strings.HasSuffix(name, ".tmp") && op == "write" {
			return errNoSpace
		}
		return nil
	}
	if err := db.Compact(); err == nil {
		t.Fatal("compaction with a failing snapshot write succeeded")
	}
	m.fault = nil
	mustPut(t, db.Store(), "k", "last")
	want := state(t, db.Store())
	db.Close()
	files := m.contents()
	var segs []string
	for name := range files {
		if strings.Contains(name, "/wal-") {
			segs = append(segs, name)
		}
	}
	if len(segs) != 2 {
		t.Fatalf("segments %v, want two", segs)
	}
	first := min(segs[0], segs[1])
	if records(files[first]) == files[first] {
		t.Fatalf("the older segment has no zero tail")
	}
	db = mustOpen(t, dir, memOpts(image(files)))
	if got := state(t, db.Store()); !reflect.DeepEqual(got, want) {
		t.Fatalf("state %v, want %v", got, want)
	}
	db.Close()
	recs := records(files[first])
	cut := strings.Index(recs, "\n") + 1
	holed := recs[:cut+5] + strings.Repeat("\x00", 16) + recs[cut+21:]
	files[first] = holed + files[first][len(recs):]
	var ce *persist.CorruptError
	if _, err := persist.Open(dir, memOpts(image(files))); !errors.As(err, &ce) || ce.File != first || ce.Offset != int64(cut) {
		t.Fatalf("a hole in an older segment: Open = %v, want a CorruptError at %s:%d", err, first, cut)
	}
}

// TestMemFS_Datasync checks the model against what fdatasync makes durable
// on Linux: the data and the size, grown or cut; and what a power loss
// leaves of what was written after it: the synced bytes (zeros past the
// synced size), some of the new ones, or a mix of the two, never anything
// else.
func TestMemFS_Datasync(t *testing.T) {
	m := newMemFS()
	f, err := m.OpenFile("/d/f", os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	m.SyncDir("/d")
	zeros := strings.Repeat("\x00", 256)
	f.WriteAt([]byte(zeros), 0)
	if err := f.Datasync(); err != nil {
		t.Fatal(err)
	}
	rec := strings.Repeat("r", 100)
	f.WriteAt([]byte(rec), 50)
	outcomes := map[string]bool{}
	for seed := range uint64(200) {
		m.mu.Lock()
		img := m.crashLocked(rand.New(rand.NewPCG(seed, 9)))
		m.mu.Unlock()
		got := img.contents()["/d/f"]
		if len(got) != 256 {
			t.Fatalf("seed %d: a power loss changed the synced size to %d", seed, len(got))
		}
		for i := range 256 {
			if got[i] != 0 && !(i >= 50 && i < 150 && got[i] == 'r') {
				t.Fatalf("seed %d: byte %d is %q: neither the synced zero nor the new write", seed, i, got[i])
			}
		}
		outcomes[got] = true
	}
	if !outcomes[zeros] || !outcomes[zeros[:50]+rec+zeros[150:]] || len(outcomes) < 4 {
		t.Fatalf("%d different outcomes; want nothing written, all written and mixes among them", len(outcomes))
	}
	// After Datasync, all of it survives, and a grown size does too.
	f.WriteAt([]byte("end"), 300)
	if err := f.Datasync(); err != nil {
		t.Fatal(err)
	}
	for seed := range uint64(20) {
		m.mu.Lock()
		img := m.crashLocked(rand.New(rand.NewPCG(seed, 10)))
		m.mu.Unlock()
		if got, want := img.contents()["/d/f"], zeros[:50]+rec+zeros[150:]+zeros[:44]+"end"; got != want {
			t.Fatalf("seed %d: after Datasync a power loss left %q, want %q", seed, got, want)
		}
	}
}

// TestDB_FailedWriteLeavesZeros fails the record write, or the zero-fill
// after it, of puts with a short write that reports no bytes written (as
// os.File.WriteAt does when pwrite wrote some and then met a full disk):
// each time the put fails, the segment is again its records and zeros,
// later puts succeed, and a reopen cuts nothing and has every acknowledged
// write.
func TestDB_FailedWriteLeavesZeros(t *testing.T) {
	m := newMemFS()
	db := mustOpen(t, dir, memOpts(m))
	var seg string
	armed, failed := 0, 0
	m.fault = func(op string, n int, name string) error {
		if op == "write" && strings.Contains(name, "/wal-") {
			seg = name
			if armed > 0 {
				if armed--; armed == 0 {
					failed++
					m.short = true
					return errNoSpace
				}
			}
		}
		return nil
	}
	var recs string // the records the segment must hold
	for i := range 40 {
		armed = 1 + i%2 // the record write, or the write after it (a zero-fill, when there is one)
		before := failed
		_, err := db.Store().Put(fmt.Sprintf("k%d", i%3), strings.Repeat("v", i))
		armed = 0
		got := m.contents()[seg]
		if failed > before {
			if err == nil {
				t.Fatalf("put %d: the log write failed, the put succeeded", i)
			}
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("put %d: %v, want ENOSPC", i, err)
			}
			zeroTail(t, got, recs, fmt.Sprintf("put %d after its failed write", i))
			continue
		}
		if err != nil {
			t.Fatalf("put %d: %v", i, err)
		}
		recs = records(got)
	}
	if failed < 25 {
		t.Fatalf("only %d puts met a failing write", failed)
	}
	want := state(t, db.Store())
	db.Close()
	m.fault = nil
	db = mustOpen(t, dir, memOpts(m))
	if rec := db.Status().Recovery; rec.TruncatedBytes != 0 || rec.Warning != "" {
		t.Fatalf("reopened: recovery %+v, want nothing to cut", rec)
	}
	if got := state(t, db.Store()); !reflect.DeepEqual(got, want) {
		t.Fatalf("reopened: %v, want %v", got, want)
	}
}

// TestDB_FailedWriteNotResurrected: a write the log refused (the disk
// filled up while it zero-filled ahead of the record) must not come back
// after a power loss. The kernel may write dirty pages back at any moment,
// so the refused record can be on disk before the zeros of the undo go over
// it in memory: unless the undo is made durable before the write is
// answered, a power loss brings back a write answered "the disk is full;
// the write was not made" (with fsync always), or a state that never
// existed (with everysec, under the acknowledged write that followed it).
func TestDB_FailedWriteNotResurrected(t *testing.T) {
	for _, mode := range []persist.SyncMode{persist.SyncAlways, persist.SyncEverySec} {
		t.Run(string(mode), func(t *testing.T) {
			m := newMemFS()
			opts := memOpts(m)
			opts.Sync, opts.SyncInterval = mode, time.Hour
			db := mustOpen(t, dir, opts)
			mustPut(t, db.Store(), "before", "1")
			armed := true
			m.fault = func(op string, n int, name string) error {
				// The write after the record's: the zero-fill ahead of it.
				if nd := m.files[name]; armed && op == "write" && nd != nil && bytes.Contains(nd.data, []byte("doomed")) {
					armed = false
					nd.synced = bytes.Clone(nd.data) // the kernel's writeback of the dirty pages
					return errNoSpace
				}
				return nil
			}
			if _, err := db.Store().Put("doomed", strings.Repeat("d", 300)); !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("put across the zeros on a full disk: %v, want ENOSPC", err)
			}
			if armed {
				t.Fatal("the zero-fill after the record was never attempted")
			}
			wants := []map[string]engine.Entry{state(t, db.Store())}
			if mode == persist.SyncEverySec {
				mustPut(t, db.Store(), "after", "2")
				wants = append(wants, state(t, db.Store()))
			}
			for seed := range uint64(64) {
				m.mu.Lock()
				img := m.crashLocked(rand.New(rand.NewPCG(seed, 11)))
				m.mu.Unlock()
				re, err := persist.Open(dir, memOpts(img))
				if err != nil {
					t.Fatalf("seed %d: power loss after a refused write: Open = %v", seed, err)
				}
				got := state(t, re.Store())
				re.Close()
				if !slices.ContainsFunc(wants, func(w map[string]engine.Entry) bool { return reflect.DeepEqual(got, w) }) {
					t.Fatalf("seed %d: power loss after a refused write recovered %v, want one of %v", seed, got, wants)
				}
			}
		})
	}
}

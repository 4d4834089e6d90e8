package persist_test

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"syscall"
	"testing"

	"github.com/pykv/pykv/engine"
	"github.com/pykv/pykv/persist"
)

// TestDB_Faults fails the Nth file operation of a workload, for every N, in
// four ways: once with EIO, from then on with EIO, with a short write, and
// with ENOSPC. No failed write may be answered with success or show in
// memory; after a restart every acknowledged write must be there and the
// state must be exactly that of some revision. Writes that fail at write(2)
// leave the store writable; a failed fsync makes it refuse writes
// (ErrFailed) until reopened.
func TestDB_Faults(t *testing.T) {
	kinds := []struct {
		name  string
		fail  func(n, at int) bool
		err   error
		short bool
	}{
		{"EIOOnce", func(n, at int) bool { return n == at }, errIO, false},
		{"EIOForever", func(n, at int) bool { return n >= at }, errIO, false},
		{"ShortWrite", func(n, at int) bool { return n == at }, errNoSpace, true},
		{"ENOSPC", func(n, at int) bool { return n == at }, errNoSpace, false},
	}
	total := 0
	{
		m := newMemFS()
		faultWorkload(t, m, 0)
		total = m.ops
	}
	t.Logf("failing each of %d file operations in %d ways", total+1, len(kinds))
	for _, kind := range kinds {
		t.Run(kind.name, func(t *testing.T) {
			for at := 1; at <= total+1; at++ {
				m := newMemFS()
				var failedOp string
				m.fault = func(op string, n int, name string) error {
					if kind.fail(n, at) {
						failedOp = op
						m.short = kind.short && op == "write"
						return kind.err
					}
					return nil
				}
				states, acked := faultWorkload(t, m, at)
				m.fault = nil
				db, err := persist.Open(dir, memOpts(m))
				if err != nil {
					t.Fatalf("fault at operation %d (%s): reopen = %v\nfiles:\n%s", at, failedOp, err, m.describe())
				}
				rev, got := db.Store().Rev(), state(t, db.Store())
				db.Close()
				if rev < acked || rev >= int64(len(states))+1 {
					t.Fatalf("fault at operation %d (%s): reopened at revision %d; acknowledged %d, attempted %d", at, failedOp, rev, acked, len(states))
				}
				if rev < int64(len(states)) && !reflect.DeepEqual(got, states[rev]) {
					t.Fatalf("fault at operation %d (%s): state at revision %d is %v, want %v", at, failedOp, rev, got, states[rev])
				}
			}
		})
	}
}

// faultWorkload writes through a DB on m and checks each answer against
// memory. It returns the states after each acknowledged revision and the
// last acknowledged revision.
func faultWorkload(t *testing.T, m *memFS, at int) ([]map[string]engine.Entry, int64) {
	t.Helper()
	opts := memOpts(m)
	opts.CompactMinBytes = 1 << 40
	db, err := persist.Open(dir, opts)
	if err != nil {
		if at == 0 {
			t.Fatal(err)
		}
		return []map[string]engine.Entry{{}}, 0
	}
	defer db.Close()
	s := db.Store()
	states := []map[string]engine.Entry{{}}
	var acked int64
	failedSync := false
	for i := range 30 {
		k := fmt.Sprintf("k%d", i%4)
		before := state(t, s)
		e, err := s.Put(k, fmt.Sprint("v", i))
		if err != nil {
			if at == 0 {
				t.Fatalf("write %d without faults: %v", i, err)
			}
			if after := state(t, s); !reflect.DeepEqual(after, before) {
				t.Fatalf("fault at %d: a failed write changed memory: %v -> %v", at, before, after)
			}
			if errors.Is(err, persist.ErrFailed) {
				failedSync = true
				if db.Err() == nil {
					t.Fatalf("fault at %d: store refused a write with ErrFailed but Err() is nil", at)
				}
			} else if failedSync {
				t.Fatalf("fault at %d: after ErrFailed a write got %v", at, err)
			}
			if errors.Is(err, syscall.ENOSPC) && errors.Is(err, persist.ErrFailed) {
				t.Fatalf("fault at %d: a full disk made the store refuse all writes: %v", at, err)
			}
			continue
		}
		if failedSync {
			t.Fatalf("fault at %d: a write succeeded after the store reported ErrFailed", at)
		}
		acked = e.ModRev
		states = append(states, state(t, s))
		if i%10 == 9 {
			db.Compact() // may fail under faults; the store goes on
		}
	}
	return states, acked
}

// TestDB_RecoveryFaults opens a folder that needs repair (a torn tail to cut)
// with the Nth operation of the recovery failing, for every N: Open either
// fails with an error or succeeds, and a later clean Open finds everything.
func TestDB_RecoveryFaults(t *testing.T) {
	files, states := folderWithLog(t, 6, true)
	seg := lastSegment(files)
	torn := `{"rev":7,"ops":[{"op":"put","key":"torn"` // a crash mid-write, over the zeros
	files[seg] = records(files[seg]) + torn + strings.Repeat("\x00", 100)
	for at := 1; at < 20; at++ {
		m := image(files)
		m.fault = func(op string, n int, name string) error {
			if n == at {
				return errIO
			}
			return nil
		}
		db, err := persist.Open(dir, memOpts(m))
		if err == nil {
			db.Close()
		}
		m.fault = nil
		db, err = persist.Open(dir, memOpts(m))
		if err != nil {
			t.Fatalf("fault at recovery operation %d, then a clean open: %v", at, err)
		}
		if got := state(t, db.Store()); !reflect.DeepEqual(got, states[6]) {
			t.Fatalf("fault at recovery operation %d: state %v, want %v", at, got, states[6])
		}
		db.Close()
	}
}

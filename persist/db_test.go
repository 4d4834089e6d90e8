package persist_test

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/pykv/pykv/engine"
	"github.com/pykv/pykv/persist"
)

const dir = "/data" // the folder on a memFS

// mustOpen opens a DB and closes it at cleanup.
func mustOpen(tb testing.TB, dir string, opts persist.Options) *persist.DB {
	tb.Helper()
	db, err := persist.Open(dir, opts)
	if err != nil {
		tb.Fatalf("Open(%s): %v", dir, err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// memOpts opens a DB on m. The log zero-fills 200 bytes ahead at a time
// (a few records), so the crash tests cut the power around extensions too.
func memOpts(m *memFS) persist.Options {
	return persist.Options{FS: m, NoLock: true, LogPrealloc: 200, Engine: engine.Options{ExpireInterval: time.Hour}}
}

// state returns every entry of a store as a map.
func state(tb testing.TB, s *engine.Store) map[string]engine.Entry {
	tb.Helper()
	_, entries, err := s.Checkpoint(func(int64) error { return nil })
	if err != nil {
		tb.Fatal(err)
	}
	out := map[string]engine.Entry{}
	for _, e := range entries {
		out[e.Key] = *e
	}
	return out
}

func mustPut(tb testing.TB, s *engine.Store, k, v string) engine.Entry {
	tb.Helper()
	e, err := s.Put(k, v)
	if err != nil {
		tb.Fatalf("Put(%s): %v", k, err)
	}
	return e
}

// workload does a mix of writes and returns nothing; callers compare states.
func workload(tb testing.TB, s *engine.Store, n int) {
	tb.Helper()
	for i := range n {
		k := fmt.Sprintf("k%03d", i%23)
		switch i % 7 {
		case 3:
			s.Delete(k) // may be ErrNotFound: no revision then
		case 5:
			if _, err := s.Txn([]engine.Op{{Type: engine.OpPut, Key: k, Value: "t"}, {Type: engine.OpPut, Key: k + "/x", Value: "u", TTL: time.Hour}}); err != nil {
				tb.Fatal(err)
			}
		default:
			mustPut(tb, s, k, fmt.Sprintf("v%d", i))
		}
	}
}

func TestDB_Reopen(t *testing.T) {
	for _, mode := range []persist.SyncMode{persist.SyncAlways, persist.SyncEverySec, persist.SyncNever} {
		t.Run(string(mode), func(t *testing.T) {
			dir := t.TempDir()
			opts := persist.Options{Sync: mode}
			db, err := persist.Open(dir, opts)
			if err != nil {
				t.Fatal(err)
			}
			workload(t, db.Store(), 200)
			if err := db.Compact(); err != nil {
				t.Fatalf("Compact: %v", err)
			}
			workload(t, db.Store(), 100)
			want, wantRev := state(t, db.Store()), db.Store().Rev()
			if err := db.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			db = mustOpen(t, dir, opts)
			if got := state(t, db.Store()); !reflect.DeepEqual(got, want) || db.Store().Rev() != wantRev {
				t.Fatalf("after reopen rev %d, state %v; want rev %d, %v", db.Store().Rev(), got, wantRev, want)
			}
			st := db.Status()
			if st.Recovery.SnapshotRev == 0 || st.Recovery.LogRecords == 0 {
				t.Fatalf("recovery used snapshot rev %d and %d log records; want both", st.Recovery.SnapshotRev, st.Recovery.LogRecords)
			}
			// Revisions go on from where they were.
			if e := mustPut(t, db.Store(), "new", "1"); e.ModRev != wantRev+1 {
				t.Fatalf("first write after reopen got revision %d, want %d", e.ModRev, wantRev+1)
			}
		})
	}
}

func TestDB_BackgroundCompaction(t *testing.T) {
	m := newMemFS()
	opts := memOpts(m)
	opts.CompactMinBytes = 2000
	db := mustOpen(t, dir, opts)
	workload(t, db.Store(), 600)
	deadline := time.Now().Add(5 * time.Second)
	for db.Status().Compactions == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	st := db.Status()
	if st.Compactions == 0 {
		t.Fatalf("no compaction after %d log bytes with a 2000-byte threshold", st.LogBytes)
	}
	want := state(t, db.Store())
	db.Close()
	db2 := mustOpen(t, dir, opts)
	if got := state(t, db2.Store()); !reflect.DeepEqual(got, want) {
		t.Fatalf("state after compactions and reopen differs:\n got %v\nwant %v", got, want)
	}
	names, _ := m.ReadDir(dir)
	segs := 0
	for _, n := range names {
		if len(n) > 4 && n[:4] == "wal-" {
			segs++
		}
	}
	if segs > 2 {
		t.Fatalf("%d log segments left after compactions: %v", segs, names)
	}
}

func TestDB_Locked(t *testing.T) {
	dir := t.TempDir()
	mustOpen(t, dir, persist.Options{})
	if _, err := persist.Open(dir, persist.Options{}); !errors.Is(err, persist.ErrLocked) {
		t.Fatalf("second Open of %s = %v, want ErrLocked", dir, err)
	}
}

func TestParseSyncMode(t *testing.T) {
	for in, want := range map[string]persist.SyncMode{"": persist.SyncAlways, "always": persist.SyncAlways, "everysec": persist.SyncEverySec, "never": persist.SyncNever} {
		if got, err := persist.ParseSyncMode(in); err != nil || got != want {
			t.Errorf("ParseSyncMode(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := persist.ParseSyncMode("sometimes"); err == nil {
		t.Error("ParseSyncMode(sometimes) succeeded")
	}
}

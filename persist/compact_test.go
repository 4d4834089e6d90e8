package persist_test

import (
	"testing"
	"time"

	"github.com/pykv/pykv/engine"
	"github.com/pykv/pykv/persist"
)

// Review: a second compaction with no write since the last checkpoint tries
// to create the current segment again (O_EXCL) and fails.
func TestDB_CompactTwiceWithoutWrites(t *testing.T) {
	m := newMemFS()
	db := mustOpen(t, dir, persist.Options{FS: m, NoLock: true, Engine: engine.Options{ExpireInterval: time.Hour}})
	mustPut(t, db.Store(), "a", "1")
	if err := db.Compact(); err != nil {
		t.Fatal(err)
	}
	if err := db.Compact(); err != nil {
		t.Errorf("second compaction without writes: %v", err)
	}
}

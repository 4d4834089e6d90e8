package persist_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/pykv/pykv/persist"
)

// Review: a compaction whose folder fsync fails after creating the new
// segment removes that segment without making the removal durable, and the
// store keeps writing the old segment. A power loss during a later write can
// then leave the empty new segment on disk (its create landed, its remove
// did not) after an old segment with a torn (unacknowledged) tail: recovery
// treats the old segment as a middle one and refuses to open.
func TestDB_FailedRotateThenPowerLoss(t *testing.T) {
	refused := 0
	for seed := range uint64(64) {
		m := newMemFS()
		var img *memFS
		failDirSync, crashNext := false, false
		rng := rand.New(rand.NewPCG(seed, 1))
		m.fault = func(op string, n int, name string) error {
			switch {
			case img != nil:
				return errIO // the machine is down
			case failDirSync && op == "syncdir":
				failDirSync = false
				return errIO
			case crashNext && op == "sync":
				img = m.crashLocked(rng)
				return errIO
			}
			return nil
		}
		opts := memOpts(m)
		opts.CompactMinBytes = 1 << 40
		db, err := persist.Open(dir, opts)
		if err != nil {
			t.Fatal(err)
		}
		s := db.Store()
		for i := range 5 {
			mustPut(t, s, fmt.Sprintf("k%d", i), "v")
		}
		failDirSync = true
		if err := db.Compact(); err == nil {
			t.Fatal("compaction should have failed")
		}
		for i := range 3 {
			mustPut(t, s, fmt.Sprintf("after%d", i), "v") // acknowledged, in the old segment
		}
		crashNext = true
		s.Put("torn", strings.Repeat("x", 200)) // power lost before its fsync
		db.Close()
		if img == nil {
			t.Fatal("no crash image")
		}
		img.fault = nil
		db2, err := persist.Open(dir, memOpts(img))
		if err != nil {
			var ce *persist.CorruptError
			if errors.As(err, &ce) {
				refused++
				if refused == 1 {
					t.Logf("seed %d: %v\nfiles:\n%s", seed, err, img.describe())
				}
				continue
			}
			t.Fatal(err)
		}
		db2.Close()
	}
	if refused > 0 {
		t.Errorf("%d of 64 power-loss images of acknowledged-consistent states refuse to open", refused)
	}
}

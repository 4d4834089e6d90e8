package main

import (
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pykv/pykv/engine"
	"github.com/pykv/pykv/persist"
	"github.com/pykv/pykv/persist/codec"
)

// testOptions are options with a fixed clock and no background expiry, so
// every storage write comes from the test.
func testOptions() options {
	now := time.UnixMilli(1_800_000_000_000)
	return options{Name: "t", Engine: engine.Options{
		ExpireInterval: time.Hour,
		Now:            func() time.Time { return now },
	}}
}

func mustOpenDB(tb testing.TB, st storage, opts options) *localDB {
	tb.Helper()
	db, err := openDB(st, opts)
	if err != nil {
		tb.Fatalf("openDB: %v", err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

func mustPut(tb testing.TB, db *localDB, key, value string) engine.Entry {
	tb.Helper()
	e, err := db.Put(key, value, 0, 0)
	if err != nil {
		tb.Fatalf("Put(%q, %q): %v", key, value, err)
	}
	return e
}

// contents returns every live key's value.
func contents(db *localDB) map[string]string {
	entries, _ := db.List("", "", 0)
	m := make(map[string]string, len(entries))
	for _, e := range entries {
		m[e.Key] = e.Value
	}
	return m
}

// clone copies a memStorage, as a tab closed at that moment leaves it.
func (m *memStorage) clone() *memStorage {
	m.mu.Lock()
	defer m.mu.Unlock()
	return &memStorage{items: maps.Clone(m.items), used: m.used, quota: m.quota}
}

func TestLocalDB_Reopen(t *testing.T) {
	st := newMemStorage(0)
	opts := testOptions()
	opts.FoldMinUnits = 2 << 10
	db := mustOpenDB(t, st, opts)
	want := make(map[string]string)
	for i := range 300 {
		k := fmt.Sprintf("k%03d", i%97)
		v := strings.Repeat("v", i%13) + "ü"
		mustPut(t, db, k, v)
		want[k] = v
		if i%7 == 0 {
			if _, err := db.Delete(k, 0); err != nil {
				t.Fatalf("Delete(%q): %v", k, err)
			}
			delete(want, k)
		}
	}
	if _, err := db.Put("ttl", "x", time.Hour, 0); err != nil {
		t.Fatal(err)
	}
	want["ttl"] = "x"
	rev := db.current().Rev()
	st1 := db.Status()
	if st1.LogItems > 100 {
		t.Errorf("log has %d items after 300 writes with folding; want it folded", st1.LogItems)
	}
	if _, ok := st.GetItem("pykv/t/snapshot"); !ok {
		t.Error("no snapshot item after folding")
	}
	db.Close()

	db2 := mustOpenDB(t, st, opts)
	if got := contents(db2); !reflect.DeepEqual(got, want) {
		t.Fatalf("after reopen: %v\nwant %v", got, want)
	}
	if got := db2.current().Rev(); got != rev {
		t.Errorf("after reopen rev = %d, want %d", got, rev)
	}
	if e, _ := db2.Get("ttl"); e.ExpiresAt == 0 {
		t.Error("reopen lost the TTL")
	}
	if r := db2.Status().Recovery; len(r.SetAside) != 0 {
		t.Errorf("clean reopen set items aside: %+v", r.SetAside)
	}
}

// TestLocalDB_FoldWhenIdle: during writes the copy folds only once its log
// is foldPressFactor times past due; FoldIfDue, which the page calls once
// writes stop, folds as soon as it is due, and not before.
func TestLocalDB_FoldWhenIdle(t *testing.T) {
	st := newMemStorage(0)
	opts := testOptions()
	opts.FoldMinUnits = 1000
	db := mustOpenDB(t, st, opts)
	put := func(i int) { mustPut(t, db, fmt.Sprintf("k%02d", i%40), strings.Repeat("v", 20)) }
	i := 0
	for ; db.Status().LogUnits <= opts.FoldMinUnits; i++ {
		put(i)
	}
	if err := db.FoldIfDue(); err != nil {
		t.Fatal(err)
	}
	if s := db.Status(); s.LogItems != 0 || s.SnapUnits == 0 {
		t.Fatalf("FoldIfDue with a log past due did not fold: %+v", s)
	}
	snap := db.Status().SnapUnits
	// Past due (larger than the minimum and the snapshot): writes do not fold.
	for ; db.Status().LogUnits <= max(opts.FoldMinUnits, snap); i++ {
		put(i)
	}
	item := 0 // units of a log item, as the last put stored
	for ; ; i++ {
		before := db.Status()
		put(i)
		after := db.Status()
		if after.SnapUnits != snap {
			if log := before.LogUnits + item; log <= foldPressFactor*max(opts.FoldMinUnits, snap) {
				t.Fatalf("a write folded a log of %d units; want more than %d x max(%d, %d)", log, foldPressFactor, opts.FoldMinUnits, snap)
			}
			break
		}
		item = after.LogUnits - before.LogUnits
		if after.LogUnits > 2*foldPressFactor*max(opts.FoldMinUnits, snap) {
			t.Fatalf("log of %d units and still no fold (snapshot %d units)", after.LogUnits, snap)
		}
	}
	// Not due: FoldIfDue leaves the log alone.
	put(i)
	items := db.Status().LogItems
	if err := db.FoldIfDue(); err != nil {
		t.Fatal(err)
	}
	if got := db.Status().LogItems; got != items || items == 0 {
		t.Fatalf("FoldIfDue with %d log items not due: %d after", items, got)
	}
}

// TestLocalDB_FoldPressMax: during writes the log never grows past
// FoldPressMaxUnits (once it is due), however large foldPressFactor times
// the minimum would allow.
func TestLocalDB_FoldPressMax(t *testing.T) {
	opts := testOptions()
	opts.FoldMinUnits, opts.FoldPressMaxUnits = 1000, 1500
	db := mustOpenDB(t, newMemStorage(0), opts)
	item := 0
	for i := 0; ; i++ {
		before := db.Status()
		mustPut(t, db, fmt.Sprintf("k%03d", i), strings.Repeat("v", 20))
		after := db.Status()
		if after.SnapUnits != 0 {
			if log := before.LogUnits + item; log <= opts.FoldPressMaxUnits || log > foldPressFactor*opts.FoldMinUnits {
				t.Fatalf("a write folded a log of %d units; want more than %d and at most %d", log, opts.FoldPressMaxUnits, foldPressFactor*opts.FoldMinUnits)
			}
			return
		}
		item = after.LogUnits - before.LogUnits
		if after.LogUnits > 2*foldPressFactor*opts.FoldMinUnits {
			t.Fatalf("log of %d units and still no fold", after.LogUnits)
		}
	}
}

// TestLocalDB_FoldIfDueStale: a tab behind another one's writes leaves the
// fold to later and reports no error for it.
func TestLocalDB_FoldIfDueStale(t *testing.T) {
	st := newMemStorage(0)
	opts := testOptions()
	opts.FoldMinUnits = 500
	a := mustOpenDB(t, st, opts)
	b := mustOpenDB(t, st, opts)
	for i := 0; b.Status().LogUnits <= opts.FoldMinUnits; i++ {
		mustPut(t, b, fmt.Sprintf("k%03d", i), "value")
	}
	if _, err := a.CatchUp(false); err != nil {
		t.Fatal(err)
	}
	mustPut(t, b, "last", "from b") // a is behind again
	if err := a.FoldIfDue(); err != nil {
		t.Fatalf("stale a.FoldIfDue() = %v, want nil", err)
	}
	if s := a.Status(); s.FoldError != "" || s.SnapUnits != 0 {
		t.Fatalf("stale a after FoldIfDue: %+v; want no fold and no fold error", s)
	}
	if _, err := a.CatchUp(false); err != nil {
		t.Fatal(err)
	}
	if err := a.FoldIfDue(); err != nil {
		t.Fatal(err)
	}
	if s := a.Status(); s.SnapUnits == 0 || s.LogItems != 0 {
		t.Fatalf("a caught up, FoldIfDue did not fold: %+v", s)
	}
}

// countingStorage counts SetItem calls and the units they store.
type countingStorage struct {
	*memStorage
	sets, units int
}

func (c *countingStorage) SetItem(k, v string) error {
	c.sets++
	c.units += jsLen(k) + jsLen(v)
	return c.memStorage.SetItem(k, v)
}

// TestLocalDB_WriteCost checks that a write stores one small item, not the
// whole copy.
func TestLocalDB_WriteCost(t *testing.T) {
	st := &countingStorage{memStorage: newMemStorage(0)}
	db := mustOpenDB(t, st, testOptions())
	for i := range 500 {
		mustPut(t, db, fmt.Sprintf("key%04d", i), "some value")
	}
	st.sets, st.units = 0, 0
	mustPut(t, db, "key0001", "changed")
	if st.sets != 1 || st.units > 120 {
		t.Fatalf("one put of a 500-key copy stored %d items, %d units; want 1 small item", st.sets, st.units)
	}
}

// recordingStorage keeps a copy of the storage after every change, with the
// number of writes whose log item was stored by then.
type recordingStorage struct {
	*memStorage
	writes int // log items stored so far
	states []*memStorage
	acked  []int
}

func (r *recordingStorage) SetItem(k, v string) error {
	if err := r.memStorage.SetItem(k, v); err != nil {
		return err
	}
	if strings.Contains(k, "/log/") {
		r.writes++
	}
	r.record()
	return nil
}

func (r *recordingStorage) RemoveItem(k string) {
	r.memStorage.RemoveItem(k)
	r.record()
}

func (r *recordingStorage) record() {
	r.states = append(r.states, r.memStorage.clone())
	r.acked = append(r.acked, r.writes)
}

// TestLocalDB_CloseAtEveryStep closes the tab (keeps the storage as it is)
// after every single storage change of a workload with many folds, and
// checks that each such storage reopens to exactly the writes stored by
// then, with nothing set aside.
func TestLocalDB_CloseAtEveryStep(t *testing.T) {
	st := &recordingStorage{memStorage: newMemStorage(0)}
	opts := testOptions()
	opts.FoldMinUnits = 600
	db := mustOpenDB(t, st, opts)
	rng := rand.New(rand.NewPCG(1, 2))
	models := []map[string]string{{}} // models[n]: the state after n writes
	model := map[string]string{}
	for range 200 {
		k := fmt.Sprintf("k%d", rng.IntN(20))
		if rng.IntN(4) == 0 && model[k] != "" {
			if _, err := db.Delete(k, 0); err != nil {
				t.Fatal(err)
			}
			delete(model, k)
		} else {
			v := fmt.Sprintf("v%d", rng.IntN(1000))
			mustPut(t, db, k, v)
			model[k] = v
		}
		models = append(models, maps.Clone(model))
	}
	if db.Status().Recovery.SnapshotRev != 0 || !strings.Contains(fmt.Sprint(st.Keys()), "snapshot") {
		t.Fatal("the workload never folded")
	}
	for i, s := range st.states {
		db2, err := openDB(s.clone(), opts)
		if err != nil {
			t.Fatalf("step %d: open: %v", i, err)
		}
		got, want := contents(db2), models[st.acked[i]]
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("closed after storage change %d (%d writes stored): reopened to\n%v\nwant\n%v", i, st.acked[i], got, want)
		}
		if r := db2.Status().Recovery; len(r.SetAside) != 0 {
			t.Fatalf("step %d: set aside %+v", i, r.SetAside)
		}
		if n := len(db2.Pending()); n != len(want) {
			t.Fatalf("step %d: %d pending changes, want %d (every key, never synced)", i, n, len(want))
		}
		db2.Close()
	}
}

// TestLocalDB_Corrupt damages the stored copy in several ways: opening it
// never fails, the damaged items (and log items after them) are moved to
// corrupt/… unchanged, the copy holds what the good items hold, and it
// takes writes and reopens cleanly afterwards.
func TestLocalDB_Corrupt(t *testing.T) {
	opts := testOptions()
	opts.FoldMinUnits = 1 << 30 // keep every write in its own log item
	build := func(t *testing.T) (*memStorage, []string) {
		st := newMemStorage(0)
		db := mustOpenDB(t, st, opts)
		for i := range 5 {
			mustPut(t, db, fmt.Sprintf("s%d", i), "in the snapshot")
		}
		if err := db.Fold(); err != nil {
			t.Fatal(err)
		}
		var logs []string
		for i := range 4 {
			mustPut(t, db, fmt.Sprintf("l%d", i), "in the log")
			logs = append(logs, db.logKey(int64(6+i)))
		}
		db.Close()
		return st, logs
	}
	snapKeys := []string{"s0", "s1", "s2", "s3", "s4"}
	tests := []struct {
		name     string
		damage   func(st *memStorage, logs []string)
		aside    func(logs []string) []string
		wantKeys []string
	}{
		{"FlippedByteInLog", func(st *memStorage, logs []string) {
			v, _ := st.GetItem(logs[1])
			st.SetItem(logs[1], strings.Replace(v, "in the log", "in thE log", 1))
		}, func(logs []string) []string { return logs[1:] }, append(slices.Clone(snapKeys), "l0")},
		{"TornLog", func(st *memStorage, logs []string) {
			v, _ := st.GetItem(logs[3])
			st.SetItem(logs[3], v[:len(v)/2])
		}, func(logs []string) []string { return logs[3:] }, append(slices.Clone(snapKeys), "l0", "l1", "l2")},
		{"ForeignLog", func(st *memStorage, logs []string) {
			st.SetItem(logs[0], `{"not":"a record"}`+"\n")
		}, func(logs []string) []string { return logs }, snapKeys},
		{"GapInLog", func(st *memStorage, logs []string) {
			st.RemoveItem(logs[2])
		}, func(logs []string) []string { return logs[3:] }, append(slices.Clone(snapKeys), "l0", "l1")},
		{"GarbledSnapshot", func(st *memStorage, logs []string) {
			st.SetItem("pykv/t/snapshot", "{garbage")
		}, func(logs []string) []string { return []string{"pykv/t/snapshot"} }, []string{"l0", "l1", "l2", "l3"}},
		{"GarbledSnapshotLogDeletes", func(st *memStorage, logs []string) {
			st.SetItem("pykv/t/snapshot", "{garbage")
			// A record deleting a key of the lost snapshot no longer fits.
			rec := codec.AppendRecord(nil, &engine.Command{Rev: 7, Changes: []engine.Change{{Op: engine.OpDelete, Key: "s1"}}})
			st.SetItem(logs[1], string(rec))
		}, func(logs []string) []string { return append([]string{"pykv/t/snapshot"}, logs[1:]...) }, []string{"l0"}},
		{"ForeignItems", func(st *memStorage, logs []string) {
			st.SetItem("pykv/t/mine", "what")
			st.SetItem("pykv/t/log/12", "short name")
			st.SetItem("someone-else", "not under the prefix: left alone")
		}, func([]string) []string { return []string{"pykv/t/log/12", "pykv/t/mine"} },
			append(slices.Clone(snapKeys), "l0", "l1", "l2", "l3")},
		{"BadSync", func(st *memStorage, logs []string) {
			st.SetItem("pykv/t/sync", `{"server_rev":-4}`)
		}, func([]string) []string { return []string{"pykv/t/sync"} },
			append(slices.Clone(snapKeys), "l0", "l1", "l2", "l3")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, logs := build(t)
			tt.damage(st, logs)
			before := st.clone()
			db := mustOpenDB(t, st, opts)
			keys := slices.Sorted(maps.Keys(contents(db)))
			slices.Sort(tt.wantKeys)
			if !slices.Equal(keys, tt.wantKeys) && !(len(keys) == 0 && len(tt.wantKeys) == 0) {
				t.Errorf("keys after recovery = %v, want %v", keys, tt.wantKeys)
			}
			var aside []string
			for _, sa := range db.Status().Recovery.SetAside {
				aside = append(aside, sa.Key)
				moved, ok := st.GetItem(sa.MovedTo)
				orig, _ := before.GetItem(sa.Key)
				if sa.MovedTo == "" || !ok || moved != orig {
					t.Errorf("%s not moved unchanged to %q", sa.Key, sa.MovedTo)
				}
				if _, still := st.GetItem(sa.Key); still {
					t.Errorf("%s still in place after being set aside", sa.Key)
				}
				if sa.Reason == "" {
					t.Errorf("%s set aside without a reason", sa.Key)
				}
			}
			slices.Sort(aside)
			want := tt.aside(logs)
			slices.Sort(want)
			if !slices.Equal(aside, want) {
				t.Errorf("set aside %v, want %v", aside, want)
			}
			if v, _ := st.GetItem("someone-else"); tt.name == "ForeignItems" && v == "" {
				t.Error("an item outside the prefix was touched")
			}
			// The copy goes on working, and reopens to the same state.
			mustPut(t, db, "after", "recovery")
			state := contents(db)
			db.Close()
			db2 := mustOpenDB(t, st, opts)
			if got := contents(db2); !reflect.DeepEqual(got, state) {
				t.Errorf("reopened to %v, want %v", got, state)
			}
			if r := db2.Status().Recovery; len(r.SetAside) != 0 {
				t.Errorf("second open set aside %+v", r.SetAside)
			}
		})
	}
}

// TestLocalDB_Quota fills the storage: the refused write changes nothing,
// in storage or in memory, says what was not saved and how much room is
// used, and writes work again once room is freed.
func TestLocalDB_Quota(t *testing.T) {
	st := newMemStorage(20_000)
	opts := testOptions()
	db := mustOpenDB(t, st, opts)
	st.SetItem("other-app/blob", strings.Repeat("x", 8_000))
	mustPut(t, db, "a", "first")
	var qe *QuotaError
	var i int
	for i = 0; ; i++ {
		_, err := db.Put(fmt.Sprintf("k%04d", i), strings.Repeat("y", 200), 0, 0)
		if err == nil {
			continue
		}
		if !errors.As(err, &qe) || !errors.Is(err, errQuota) {
			t.Fatalf("Put into a full storage = %v, want a *QuotaError", err)
		}
		break
	}
	for _, want := range []string{
		fmt.Sprintf("not saved: put %q (205 bytes)", fmt.Sprintf("k%04d", i)),
		"this copy uses " + kib(qe.Usage.Units),
		"other data of this site " + kib(jsLen("other-app/blob")+8000),
	} {
		if !strings.Contains(qe.Error(), want) {
			t.Errorf("quota error %q does not say %q", qe.Error(), want)
		}
	}
	if qe.Usage.OtherUnits != jsLen("other-app/blob")+8000 || qe.Usage.Units == 0 {
		t.Errorf("usage in the error = %+v", qe.Usage)
	}
	key := fmt.Sprintf("k%04d", i)
	if _, err := db.Get(key); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("refused key %s is in memory: %v", key, err)
	}
	before := st.clone()
	rev := db.current().Rev()
	if _, err := db.Put("a", strings.Repeat("z", 4000), 0, 0); !errors.As(err, &qe) {
		t.Fatalf("second refused Put = %v", err)
	}
	if e, _ := db.Get("a"); e.Value != "first" || db.current().Rev() != rev {
		t.Errorf("refused overwrite changed memory: %+v, rev %d (was %d)", e, db.current().Rev(), rev)
	}
	if !reflect.DeepEqual(st.clone().items, before.items) {
		t.Error("refused write changed storage")
	}

	st.RemoveItem("other-app/blob") // the user frees room
	if _, err := db.Put(key, "now it fits", 0, 0); err != nil {
		t.Fatalf("Put after room was freed: %v", err)
	}
	state := contents(db)
	db.Close()
	if got := contents(mustOpenDB(t, st, opts)); !reflect.DeepEqual(got, state) {
		t.Errorf("reopened to %d keys, want %d", len(got), len(state))
	}
}

// TestLocalDB_QuotaFold: a write that does not fit while the log is long
// is taken after folding the log, which frees the room it held.
func TestLocalDB_QuotaFold(t *testing.T) {
	const quota = 20_000
	st := newMemStorage(quota)
	opts := testOptions()
	opts.FoldMinUnits = 1 << 30 // only the quota makes it fold
	db := mustOpenDB(t, st, opts)
	for i := 0; db.Usage().Units+8_030 < quota; i++ {
		mustPut(t, db, "a", fmt.Sprintf("value %d", i))
	}
	if _, ok := st.GetItem("pykv/t/snapshot"); ok {
		t.Fatal("folded before the storage was full")
	}
	if _, err := db.Put("big", strings.Repeat("b", 8_000), 0, 0); err != nil {
		t.Fatalf("Put of 8000 bytes with %d units free and a long log: %v", quota-db.Usage().Units, err)
	}
	if _, ok := st.GetItem("pykv/t/snapshot"); !ok {
		t.Fatal("the write went through without folding")
	}
}

// TestLocalDB_Tabs opens two copies on the same storage, as two tabs do.
func TestLocalDB_Tabs(t *testing.T) {
	st := newMemStorage(0)
	opts := testOptions()
	opts.FoldMinUnits = 1 << 30
	a := mustOpenDB(t, st, opts)
	b := mustOpenDB(t, st, opts)
	var mu sync.Mutex
	var batches []Batch
	cancel := b.Subscribe(func(bt Batch) {
		mu.Lock()
		batches = append(batches, bt)
		mu.Unlock()
	})
	defer cancel()

	mustPut(t, a, "x", "from a")
	if !b.Stale() {
		t.Fatal("b does not notice a's write")
	}
	// b's write would clash with a's revision: it reloads and writes after it.
	mustPut(t, b, "y", "from b")
	if got := contents(b); got["x"] != "from a" || got["y"] != "from b" {
		t.Fatalf("b after its write: %v", got)
	}
	if reloaded, err := a.CatchUp(false); !reloaded || err != nil {
		t.Fatalf("a.CatchUp(false) = %v, %v", reloaded, err)
	}
	if got := contents(a); got["y"] != "from b" {
		t.Fatalf("a after catching up: %v", got)
	}
	// a folds past b's history: b notices through head.
	mustPut(t, a, "z", "folded")
	if err := a.Fold(); err != nil {
		t.Fatal(err)
	}
	if _, err := b.CatchUp(false); err != nil {
		t.Fatal(err)
	}
	if got := contents(b); got["z"] != "folded" {
		t.Fatalf("b after a's fold: %v", got)
	}
	// A stale tab never folds over another tab's writes.
	mustPut(t, a, "w", "a again")
	if err := b.Fold(); !errors.Is(err, ErrStale) {
		t.Fatalf("stale b.Fold() = %v, want ErrStale", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		seen := map[string]bool{}
		for _, bt := range batches {
			for _, ev := range bt.Events {
				seen[ev.Key] = true
			}
			if bt.Reset {
				seen["reset"] = true
			}
		}
		mu.Unlock()
		// A reset tells the subscriber to list everything again, which
		// covers every change before it; on a loaded machine the
		// subscriber may start after a reload and see only that.
		covered := func(k string) bool { return seen[k] || seen["reset"] }
		if covered("x") && covered("y") && covered("z") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("b's subscriber saw %v; want x, y and z (or a reset)", seen)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestLocalDB_PendingAndRebase goes offline on a copy loaded from the
// server, checks what sync would send, and rebases on a newer export.
func TestLocalDB_PendingAndRebase(t *testing.T) {
	server := mustOpenServer(t)
	srv := server.Store()
	for _, k := range []string{"a", "b", "c", "d"} {
		srv.Put(k, "server "+k)
	}
	db := mustOpenDB(t, newMemStorage(0), testOptions())
	if err := db.Rebase(export(t, srv), nil); err != nil {
		t.Fatal(err)
	}
	if got := contents(db); len(got) != 4 || got["a"] != "server a" || len(db.Pending()) != 0 {
		t.Fatalf("after loading the export: %v, pending %v", got, db.Pending())
	}
	ea, _ := srv.Get("a")
	eb, _ := srv.Get("b")
	ec, _ := srv.Get("c")

	// Offline: change a twice, delete b, create n, create and delete t.
	mustPut(t, db, "a", "mine 1")
	mustPut(t, db, "a", "mine 2")
	db.Delete("b", 0)
	mustPut(t, db, "n", "new")
	mustPut(t, db, "tmp", "x")
	db.Delete("tmp", 0)
	p := db.Pending()
	got := map[string]PendingChange{}
	for _, c := range p {
		got[c.Key] = c
	}
	if len(p) != 3 ||
		got["a"].Op != "put" || got["a"].Value != "mine 2" || got["a"].BaseRev != ea.ModRev ||
		got["b"].Op != "delete" || got["b"].BaseRev != eb.ModRev ||
		got["n"].Op != "put" || got["n"].BaseRev != 0 {
		t.Fatalf("Pending() = %+v", p)
	}

	// The server moves on meanwhile: c changes there.
	srv.Put("c", "server c2")
	// Sync sent a and n successfully (the server has them now); b is a
	// conflict left pending. Rebase on the server's export.
	srv.Put("a", "mine 2")
	srv.Put("n", "new")
	settled := map[string]int64{"a": got["a"].LocalRev, "n": got["n"].LocalRev}
	if err := db.Rebase(export(t, srv), settled); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"a": "mine 2", "c": "server c2", "d": "server d", "n": "new"}
	if got := contents(db); !reflect.DeepEqual(got, want) {
		t.Fatalf("after rebase: %v, want %v", got, want)
	}
	p = db.Pending()
	if len(p) != 1 || p[0].Key != "b" || p[0].Op != "delete" || p[0].BaseRev != eb.ModRev {
		t.Fatalf("Pending() after rebase = %+v, want only b's delete based on %d", p, eb.ModRev)
	}
	if e, _ := db.Get("c"); e.ModRev == ec.ModRev {
		t.Error("rebase kept c's old revision")
	} else if se, _ := srv.Get("c"); e.ModRev != se.ModRev {
		t.Errorf("c's revision %d, server's %d: untouched keys must carry the server's revisions", e.ModRev, se.ModRev)
	}
	if db.ServerRev() != srv.Rev() {
		t.Errorf("ServerRev = %d, want %d", db.ServerRev(), srv.Rev())
	}
	// It all survives a reload.
	state, pend := contents(db), db.Pending()
	if err := db.Reload(); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(contents(db), state) || !reflect.DeepEqual(db.Pending(), pend) {
		t.Fatalf("after reload: %v %+v", contents(db), db.Pending())
	}
	// Settling with an old local revision keeps a key changed since.
	db.Put("b", "again", 0, 0)
	if err := db.Rebase(export(t, srv), map[string]int64{"b": pend[0].LocalRev}); err != nil {
		t.Fatal(err)
	}
	if p := db.Pending(); len(p) != 1 || p[0].Value != "again" || p[0].BaseRev != eb.ModRev {
		t.Fatalf("a key changed after it was sent was dropped: %+v", p)
	}
	// A damaged export is refused and changes nothing.
	if err := db.Rebase("{not a snapshot", nil); err == nil {
		t.Fatal("Rebase of garbage succeeded")
	}
	if got := contents(db); got["b"] != "again" {
		t.Fatalf("refused rebase changed the copy: %v", got)
	}
}

func mustOpenServer(tb testing.TB) *persist.DB {
	tb.Helper()
	db, err := persist.Open(tb.TempDir(), persist.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

func export(tb testing.TB, s *engine.Store) string {
	tb.Helper()
	var b strings.Builder
	if err := codec.ExportStore(s, &b); err != nil {
		tb.Fatal(err)
	}
	return b.String()
}

// TestLocalDB_DoBatch: queued writes commit together, in order, each with
// Do's answer; a bad one gets its own error and the others still happen.
func TestLocalDB_DoBatch(t *testing.T) {
	st := &countingStorage{memStorage: newMemStorage(0)}
	db := mustOpenDB(t, st, testOptions())
	mustPut(t, db, "gone", "x")
	st.sets = 0
	ops := []engine.Op{
		{Type: engine.OpPut, Key: "a", Value: "1"},
		{Type: engine.OpPut, Key: "a", Value: "2"},
		{Type: engine.OpDelete, Key: "gone"},
		{Type: engine.OpDelete, Key: "never"},
		{Type: engine.OpPut, Key: "b", Value: "3"},
	}
	res := db.DoBatch(ops)
	if st.sets != 1 {
		t.Errorf("a batch of 5 writes stored %d items, want 1", st.sets)
	}
	if res[1].Entry.Value != "2" || res[1].Entry.Version != 2 || res[2].Err != nil || res[2].Entry.ModRev == 0 ||
		!errors.Is(res[3].Err, engine.ErrNotFound) || res[4].Err != nil {
		t.Fatalf("DoBatch = %+v", res)
	}
	if got := contents(db); !reflect.DeepEqual(got, map[string]string{"a": "2", "b": "3"}) {
		t.Fatalf("after DoBatch: %v", got)
	}
	// An invalid write in the run: the rest still happen, one by one.
	res = db.DoBatch([]engine.Op{
		{Type: engine.OpPut, Key: "c", Value: "4"},
		{Type: engine.OpPut, Key: "", Value: "no key"},
		{Type: engine.OpPut, Key: "a", Value: "5", IfRev: 99},
		{Type: engine.OpPut, Key: "d", Value: "6"},
	})
	var ce *engine.ConditionError
	if res[0].Err != nil || !errors.Is(res[1].Err, engine.ErrEmptyKey) || !errors.As(res[2].Err, &ce) || res[3].Err != nil {
		t.Fatalf("DoBatch with bad writes = %+v", res)
	}
	if got := contents(db); got["c"] != "4" || got["d"] != "6" || got["a"] != "2" {
		t.Fatalf("after DoBatch with bad writes: %v", got)
	}
}

// TestLocalDB_Locked: under the cross-tab lock writes skip their check
// (two getItems); outside it they check again.
func TestLocalDB_Locked(t *testing.T) {
	st := newMemStorage(0)
	db := mustOpenDB(t, st, testOptions())
	if _, err := db.CatchUp(true); err != nil {
		t.Fatal(err)
	}
	gets := &getCounter{memStorage: st}
	db.st = gets
	mustPut(t, db, "a", "1")
	if gets.n != 0 {
		t.Errorf("a write under the lock read %d items", gets.n)
	}
	db.Unlock()
	mustPut(t, db, "b", "2")
	if gets.n == 0 {
		t.Error("a write outside the lock did not check for other tabs")
	}
}

type getCounter struct {
	*memStorage
	n int
}

func (g *getCounter) GetItem(k string) (string, bool) {
	g.n++
	return g.memStorage.GetItem(k)
}

package engine_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pykv/pykv/engine"
)

func TestStore_DeletePrefix(t *testing.T) {
	modes(t, func(t *testing.T, opts engine.Options) {
		c := newClock()
		opts.Now = c.Now
		s := mustNew(t, opts)
		for _, k := range []string{"a/1", "a/2", "a/b/3", "a", "ab", "b/1"} {
			if _, err := s.Put(k, "v"); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.Do(engine.Op{Type: engine.OpPut, Key: "a/gone", Value: "v", TTL: time.Second}); err != nil {
			t.Fatal(err)
		}
		c.Advance(2 * time.Second) // a/gone is past its TTL, not swept yet
		before := s.Rev()
		w, err := s.Watch(before, "")
		if err != nil {
			t.Fatal(err)
		}

		rev, n, err := s.DeletePrefix("a/")
		if err != nil {
			t.Fatal(err)
		}
		if rev != before+1 || n != 3 {
			t.Fatalf("DeletePrefix(a/) = rev %d, %d removed; want rev %d, 3 removed", rev, n, before+1)
		}
		got, _ := s.List("", "", 0)
		var keys []string
		for _, e := range got {
			keys = append(keys, e.Key)
		}
		if want := []string{"a", "ab", "b/1"}; !slices.Equal(keys, want) {
			t.Errorf("keys left %q, want %q", keys, want)
		}
		evs := readEvents(t, w, 4)
		var seen []string
		for _, ev := range evs {
			if ev.Rev != rev {
				t.Errorf("event %s %s at rev %d, want all at %d", ev.Type, ev.Key, ev.Rev, rev)
			}
			seen = append(seen, string(ev.Type)+" "+ev.Key)
		}
		if want := []string{"delete a/1", "delete a/2", "delete a/b/3", "expire a/gone"}; !slices.Equal(seen, want) {
			t.Errorf("events %q, want %q", seen, want)
		}

		// Nothing under the prefix: no revision taken.
		rev, n, err = s.DeletePrefix("a/")
		if err != nil || n != 0 || rev != before+1 || s.Rev() != before+1 {
			t.Errorf("second DeletePrefix(a/) = %d, %d, %v (store at %d); want %d, 0, nil", rev, n, err, s.Rev(), before+1)
		}
		// The empty prefix is everything.
		if _, n, err = s.DeletePrefix(""); err != nil || n != 3 || s.Len() != 0 {
			t.Errorf("DeletePrefix(\"\") removed %d, %v; %d keys left; want 3 removed, none left", n, err, s.Len())
		}
	})
}

// TestStore_DeletePrefixConcurrent: a prefix delete racing puts under the
// prefix is atomic: afterwards every key under it either was written after
// the delete's revision, or does not exist.
func TestStore_DeletePrefixConcurrent(t *testing.T) {
	t.Run("InlineCommit", func(t *testing.T) {
		testDeletePrefixConcurrent(t, engine.Options{Journal: &memJournal{}, InlineCommit: true})
	})
	modes(t, testDeletePrefixConcurrent)
}

func testDeletePrefixConcurrent(t *testing.T, opts engine.Options) {
	s := mustNew(t, opts)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 200 {
				if _, err := s.Put(fmt.Sprintf("p/%d/%d", g, i), "v"); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	var rev int64
	wg.Go(func() {
		for range 20 {
			r, _, err := s.DeletePrefix("p/")
			if err != nil {
				t.Error(err)
				return
			}
			rev = r
		}
	})
	wg.Wait()
	left, _ := s.List("p/", "", 0)
	for _, e := range left {
		if e.ModRev <= rev {
			t.Fatalf("%s written at %d survived the prefix delete at %d", e.Key, e.ModRev, rev)
		}
	}
}

func TestStore_DeletePrefixInTxnGroup(t *testing.T) {
	// Keys put earlier in the same transaction are not indexed yet; the
	// prefix delete must see them too.
	modes(t, func(t *testing.T, opts engine.Options) {
		s := mustNew(t, opts)
		if _, err := s.Put("x/old", "v"); err != nil {
			t.Fatal(err)
		}
		res, err := s.Txn([]engine.Op{
			{Type: engine.OpPut, Key: "x/new", Value: "v"},
			{Type: engine.OpDeletePrefix, Key: "x/"},
			{Type: engine.OpPut, Key: "x/after", Value: "v"},
		})
		if err != nil {
			t.Fatal(err)
		}
		if got := res.Results[1].Removed; got != 2 {
			t.Errorf("removed %d keys, want 2 (x/old and x/new)", got)
		}
		left, _ := s.List("x/", "", 0)
		if len(left) != 1 || left[0].Key != "x/after" {
			t.Errorf("left %v, want only x/after", left)
		}
	})
}

func TestStore_CountAndFolders(t *testing.T) {
	s := mustNew(t, engine.Options{})
	rng := rand.New(rand.NewPCG(1, 2))
	model := map[string]bool{}
	segs := []string{"a", "b", "bb", "c/", "", "\u00e9", "z"}
	for range 3000 {
		k := ""
		for range 1 + rng.IntN(4) {
			k += segs[rng.IntN(len(segs))] + "/"[:rng.IntN(2)]
		}
		if k == "" {
			continue
		}
		if rng.IntN(5) == 0 {
			if _, err := s.Delete(k); err == nil {
				delete(model, k)
			}
			continue
		}
		if _, err := s.Put(k, "v"); err != nil {
			t.Fatal(err)
		}
		model[k] = true
	}
	prefixes := []string{"", "a", "a/", "b", "b/", "bb/", "c//", "\u00e9", "zzzz", "/"}
	for _, p := range prefixes {
		want := 0
		wantFolders := map[string]int{}
		for k := range model {
			if !strings.HasPrefix(k, p) {
				continue
			}
			want++
			if i := strings.IndexByte(k[len(p):], '/'); i >= 0 {
				wantFolders[k[:len(p)+i+1]]++
			}
		}
		if got := s.Count(p); got != want {
			t.Errorf("Count(%q) = %d, want %d", p, got, want)
		}
		// All folders, two at a time through the cursor.
		got := map[string]int{}
		var names []string
		after := ""
		for {
			fs, more, next, _ := s.Folders(p, after, 2, 0)
			for _, f := range fs {
				got[f.Name] = f.Keys
				names = append(names, f.Name)
			}
			if !more {
				break
			}
			after = next
		}
		if !slices.IsSorted(names) {
			t.Errorf("Folders(%q) not in key order: %q", p, names)
		}
		if fmt.Sprint(got) != fmt.Sprint(wantFolders) {
			t.Errorf("Folders(%q) = %v, want %v", p, got, wantFolders)
		}
	}
}

func TestStore_FoldersStepBound(t *testing.T) {
	s := mustNew(t, engine.Options{})
	for i := range 100 {
		if _, err := s.Put(fmt.Sprintf("flat%03d", i), "v"); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range []string{"zz/1", "flat050/inside", "flat0500"} {
		if _, err := s.Put(k, "v"); err != nil {
			t.Fatal(err)
		}
	}
	fs, more, next, _ := s.Folders("", "", 10, 50)
	if len(fs) != 0 || !more || next != "flat050" {
		t.Fatalf("Folders with 50 steps = %v, more %v, next %q; want none, more, next flat050", fs, more, next)
	}
	// Resuming after the loose key flat050 must still find the folder
	// flat050/ right after it.
	fs, more, _, _ = s.Folders("", next, 10, 100)
	want := []engine.Folder{{Name: "flat050/", Keys: 1}, {Name: "zz/", Keys: 1}}
	if !slices.Equal(fs, want) || more {
		t.Fatalf("Folders after flat050 = %v, more %v; want %v, no more", fs, more, want)
	}
	// A key equal to the prefix is a loose key too; resuming after it moves on.
	if _, err := s.Put("zz/", "v"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put("zz/a/1", "v"); err != nil {
		t.Fatal(err)
	}
	fs, more, next, _ = s.Folders("zz/", "", 10, 1)
	if len(fs) != 0 || !more || next != "zz/1" {
		t.Fatalf("Folders(zz/) with 1 step = %v, more %v, next %q; want none, more, next zz/1", fs, more, next)
	}
	fs, _, _, _ = s.Folders("zz/", "zz/", 10, 0)
	if len(fs) != 1 || fs[0].Name != "zz/a/" {
		t.Fatalf("Folders(zz/) after zz/ = %v; want [zz/a/]", fs)
	}
}

func TestStore_History(t *testing.T) {
	c := newClock()
	s := mustNew(t, engine.Options{Now: c.Now, History: 8})
	mustPut := func(k, v string) {
		t.Helper()
		if _, err := s.Put(k, v); err != nil {
			t.Fatal(err)
		}
	}
	mustPut("k", "one")
	c.Advance(time.Second)
	mustPut("other", "x")
	mustPut("k", "two")
	if _, err := s.Delete("k"); err != nil {
		t.Fatal(err)
	}
	mustPut("k", "three")

	revs, more, from := s.History("k", 0)
	var got []string
	for _, r := range revs {
		v := ""
		if r.Entry != nil {
			v = r.Entry.Value
		}
		got = append(got, fmt.Sprintf("%d %s %s", r.Rev, r.Type, v))
	}
	if want := []string{"5 put three", "4 delete ", "3 put two", "1 put one"}; !slices.Equal(got, want) {
		t.Errorf("History(k) = %q, want %q", got, want)
	}
	if more || from != 0 {
		t.Errorf("more %v, from %d; want false, 0", more, from)
	}
	if revs[3].Time != 1_700_000_000_000 || revs[0].Time != 1_700_000_001_000 {
		t.Errorf("times %d and %d, want the clock's at each write", revs[3].Time, revs[0].Time)
	}
	if revs, more, _ := s.History("k", 2); len(revs) != 2 || !more {
		t.Errorf("History(k, 2) = %d revisions, more %v; want 2, true", len(revs), more)
	}
	// The feed holds 8 events: older ones fall out, and from says so.
	for i := range 8 {
		mustPut("other", fmt.Sprint(i))
	}
	revs, _, from = s.History("k", 0)
	if len(revs) != 0 || from != 5 {
		t.Errorf("after 8 more events: %d revisions, from %d; want 0, from 5", len(revs), from)
	}
}

package engine_test

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/pykv/pykv/engine"
)

// TestStore_Import: a merge puts the entries that differ and leaves the
// rest alone (no new version for an unchanged key, nothing at all when no
// key changes); a replace also deletes every other key; each is one
// revision; watchers see the changes only.
func TestStore_Import(t *testing.T) {
	modes(t, func(t *testing.T, opts engine.Options) {
		clk := newClock()
		opts.Now = clk.Now
		s := mustNew(t, opts)
		now := clk.Now().UnixMilli()
		mustDo := func(op engine.Op) {
			t.Helper()
			if _, err := s.Do(op); err != nil {
				t.Fatal(err)
			}
		}
		mustDo(engine.Op{Type: engine.OpPut, Key: "same", Value: "1"})
		mustDo(engine.Op{Type: engine.OpPut, Key: "other-value", Value: "1"})
		mustDo(engine.Op{Type: engine.OpPut, Key: "other-expiry", Value: "1", ExpiresAt: now + 60_000})
		mustDo(engine.Op{Type: engine.OpPut, Key: "ran-out", Value: "1", TTL: time.Second})
		mustDo(engine.Op{Type: engine.OpPut, Key: "untouched", Value: "1"})
		clk.Advance(2 * time.Second)
		before := s.Rev()
		same, _ := s.Get("same")

		w, err := s.Watch(before, "")
		if err != nil {
			t.Fatal(err)
		}
		entries := []engine.ImportEntry{
			{Key: "new", Value: "n"},
			{Key: "old-entry", Value: "x", ExpiresAt: now}, // expired already
			{Key: "other-expiry", Value: "1", ExpiresAt: now + 120_000},
			{Key: "other-value", Value: "2"},
			{Key: "ran-out", Value: "back"},
			{Key: "same", Value: "1"},
		}
		res, err := s.Import(entries, false)
		if err != nil {
			t.Fatal(err)
		}
		want := engine.ImportResult{Rev: before + 1, Added: 2, Changed: 2, Unchanged: 1, Expired: 1}
		if res != want {
			t.Errorf("merge: %+v, want %+v", res, want)
		}
		if s.Rev() != before+1 {
			t.Errorf("merge: store at revision %d, want one revision after %d", s.Rev(), before)
		}
		if got, _ := s.Get("same"); got != same {
			t.Errorf("unchanged key became %+v, was %+v", got, same)
		}
		if got, _ := s.Get("other-value"); got.Value != "2" || got.Version != 2 || got.ModRev != before+1 {
			t.Errorf("changed key: %+v", got)
		}
		if got, err := s.Get("ran-out"); err != nil || got.Value != "back" || got.Version != 1 {
			t.Errorf("key whose TTL had run out: %+v %v; want a new key", got, err)
		}
		if _, err := s.Get("untouched"); err != nil {
			t.Errorf("a merge removed a key it does not hold: %v", err)
		}
		if _, err := s.Get("old-entry"); err == nil {
			t.Errorf("an entry whose expiry time had passed was put")
		}
		evs, err := w.Next(t.Context(), 0)
		if err != nil {
			t.Fatal(err)
		}
		var keys []string
		for _, ev := range evs {
			if ev.Type == engine.OpPut {
				keys = append(keys, ev.Key)
			}
		}
		if wantKeys := []string{"new", "other-expiry", "other-value", "ran-out"}; !reflect.DeepEqual(keys, wantKeys) {
			t.Errorf("merge put events for %v, want %v", keys, wantKeys)
		}

		// The same import again changes nothing and takes no revision.
		res, err = s.Import(entries, false)
		if err != nil {
			t.Fatal(err)
		}
		if want := (engine.ImportResult{Rev: before + 1, Unchanged: 5, Expired: 1}); res != want || s.Rev() != before+1 {
			t.Errorf("same import again: %+v at revision %d, want %+v and no new revision", res, s.Rev(), want)
		}

		// Replace: the store ends up holding exactly the entries.
		res, err = s.Import([]engine.ImportEntry{{Key: "new", Value: "n"}, {Key: "same", Value: "3"}}, true)
		if err != nil {
			t.Fatal(err)
		}
		if want := (engine.ImportResult{Rev: before + 2, Changed: 1, Unchanged: 1, Deleted: 4}); res != want {
			t.Errorf("replace: %+v, want %+v", res, want)
		}
		list, _ := s.List("", "", 0)
		if len(list) != 2 || list[0].Key != "new" || list[1].Key != "same" || list[1].Value != "3" || s.Rev() != before+2 {
			t.Errorf("after replace: %+v at revision %d", list, s.Rev())
		}
		res, err = s.Import(nil, true)
		if err != nil || res.Deleted != 2 || s.Len() != 0 {
			t.Errorf("replace with nothing: %+v, %v, %d keys left", res, err, s.Len())
		}
	})
}

// TestStore_ImportRefused: a bad entry anywhere refuses the whole import
// and names it; nothing changes.
func TestStore_ImportRefused(t *testing.T) {
	modes(t, func(t *testing.T, opts engine.Options) {
		opts.MaxValueBytes = 8
		s := mustNew(t, opts)
		if _, err := s.Put("keep", "v"); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			entries []engine.ImportEntry
			want    error
			key     string
		}{
			{[]engine.ImportEntry{{Key: "a", Value: "1"}, {Key: "a", Value: "2"}}, engine.ErrDuplicateKey, "a"},
			{[]engine.ImportEntry{{Key: "a", Value: "1"}, {Key: "b", Value: "\xff"}}, engine.ErrInvalidUTF8, "b"},
			{[]engine.ImportEntry{{Key: "a", Value: "123456789"}}, engine.ErrValueTooLarge, "a"},
			{[]engine.ImportEntry{{Key: "", Value: "1"}}, engine.ErrEmptyKey, ""},
		} {
			_, err := s.Import(tc.entries, true)
			var oe *engine.OpError
			if !errors.Is(err, tc.want) || !errors.As(err, &oe) || oe.Key != tc.key {
				t.Errorf("Import(%+v) = %v, want %v naming key %q", tc.entries, err, tc.want, tc.key)
			}
		}
		if _, err := s.Import([]engine.ImportEntry{{Key: "b"}, {Key: "a"}}, false); err == nil {
			t.Errorf("entries out of order were taken")
		}
		if got, err := s.Get("keep"); err != nil || got.Value != "v" || s.Rev() != 1 {
			t.Errorf("a refused import changed the store: %+v %v, revision %d", got, err, s.Rev())
		}
	})
}

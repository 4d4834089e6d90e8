package engine_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/pykv/pykv/engine"
)

// readEvents reads exactly n events from w, failing the test after a while.
func readEvents(tb testing.TB, w *engine.Watcher, n int) []engine.Event {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var out []engine.Event
	for len(out) < n {
		evs, err := w.Next(ctx, n-len(out))
		if err != nil {
			tb.Fatalf("after %d of %d events: %v", len(out), n, err)
		}
		out = append(out, evs...)
	}
	if len(out) != n {
		tb.Fatalf("read %d events, want %d", len(out), n)
	}
	return out
}

func TestStore_Watch(t *testing.T) {
	modes(t, func(t *testing.T, opts engine.Options) {
		s := mustNew(t, opts)
		s.Put("a", "1")
		w, err := s.Watch(0, "")
		if err != nil {
			t.Fatal(err)
		}
		s.Put("b", "1")
		s.Txn([]engine.Op{{Type: engine.OpPut, Key: "a", Value: "2"}, {Type: engine.OpDelete, Key: "b"}})
		evs := readEvents(t, w, 4)
		want := []struct {
			typ engine.ChangeType
			key string
			rev int64
		}{{engine.OpPut, "a", 1}, {engine.OpPut, "b", 2}, {engine.OpPut, "a", 3}, {engine.OpDelete, "b", 3}}
		for i, ev := range evs {
			if ev.Type != want[i].typ || ev.Key != want[i].key || ev.Rev != want[i].rev {
				t.Errorf("event %d = %s %s @%d, want %s %s @%d", i, ev.Type, ev.Key, ev.Rev, want[i].typ, want[i].key, want[i].rev)
			}
		}
		if evs[2].Prev == nil || evs[2].Prev.Value != "1" || evs[2].Entry.Value != "2" {
			t.Errorf("event 2 prev/entry = %+v/%+v, want 1 -> 2", evs[2].Prev, evs[2].Entry)
		}

		// Resuming from a revision skips what was already seen.
		w2, _ := s.Watch(2, "")
		evs = readEvents(t, w2, 2)
		if evs[0].Rev != 3 || evs[1].Rev != 3 {
			t.Fatalf("watch from 2 began with revisions %d, %d; want 3, 3", evs[0].Rev, evs[1].Rev)
		}
		// A prefix filters keys.
		w3, _ := s.Watch(0, "b")
		evs = readEvents(t, w3, 2)
		if evs[0].Key != "b" || evs[1].Key != "b" {
			t.Fatalf("watch of prefix b got %s, %s", evs[0].Key, evs[1].Key)
		}
		// Waiting watchers wake up for new writes.
		done := make(chan []engine.Event)
		go func() {
			evs, _ := w.Next(context.Background(), 0)
			done <- evs
		}()
		time.Sleep(10 * time.Millisecond)
		s.Put("c", "1")
		select {
		case evs := <-done:
			if len(evs) != 1 || evs[0].Key != "c" {
				t.Fatalf("woken watcher got %+v", evs)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("a waiting watcher was not woken by a write")
		}
	})
}

func TestStore_WatchCompacted(t *testing.T) {
	s := mustNew(t, engine.Options{History: 4})
	slow, _ := s.Watch(0, "")
	for i := range 10 {
		s.Put(fmt.Sprint("k", i), "v")
	}
	if _, err := s.Watch(3, ""); !errors.Is(err, engine.ErrCompacted) {
		t.Fatalf("Watch(3) with only the last 4 events kept = %v, want ErrCompacted", err)
	}
	w, err := s.Watch(6, "")
	if err != nil {
		t.Fatalf("Watch(6) with revisions 7..10 kept: %v", err)
	}
	if evs := readEvents(t, w, 4); evs[0].Rev != 7 {
		t.Fatalf("Watch(6) began at %d", evs[0].Rev)
	}
	if _, err := slow.Next(context.Background(), 0); !errors.Is(err, engine.ErrLagged) {
		t.Fatalf("a watcher left behind = %v, want ErrLagged", err)
	}
	// Writers were never held up by the slow watcher: all 10 writes landed.
	if s.Rev() != 10 {
		t.Fatalf("Rev = %d", s.Rev())
	}
}

func TestStore_WatchHistoryBytes(t *testing.T) {
	s := mustNew(t, engine.Options{HistoryBytes: 1000})
	big := string(make([]byte, 400))
	for i := range 5 {
		s.Put(fmt.Sprint("k", i), big)
	}
	if _, err := s.Watch(0, ""); !errors.Is(err, engine.ErrCompacted) {
		t.Fatalf("Watch(0) after 2000 bytes of values with a 1000-byte history = %v, want ErrCompacted", err)
	}
}

func TestStore_WatchClosed(t *testing.T) {
	s := engine.New(engine.Options{})
	w, _ := s.Watch(0, "")
	go func() {
		time.Sleep(10 * time.Millisecond)
		s.Close()
	}()
	if _, err := w.Next(context.Background(), 0); !errors.Is(err, engine.ErrClosed) {
		t.Fatalf("Next on a closing store = %v, want ErrClosed", err)
	}
}

// TestWatcher_ReadUpTo checks Read: no waiting, no event past the revision
// asked for, revisions kept whole past max, ErrLagged once left behind.
func TestWatcher_ReadUpTo(t *testing.T) {
	s := mustNew(t, engine.Options{History: 8})
	w, _ := s.Watch(0, "a")
	if evs, err := w.Read(100, 0); len(evs) != 0 || err != nil {
		t.Fatalf("Read with nothing written = %v, %v; want none at once", evs, err)
	}
	// Revisions 1 to 4: a1; b1 (another prefix); a2 and a3 together; a4.
	s.Put("a1", "v")
	s.Put("b1", "v")
	s.Txn([]engine.Op{{Type: engine.OpPut, Key: "a2", Value: "v"}, {Type: engine.OpPut, Key: "a3", Value: "v"}})
	s.Put("a4", "v")
	if evs, _ := w.Read(2, 0); len(evs) != 1 || evs[0].Rev != 1 {
		t.Fatalf("Read(2) = %v, want the event of rev 1", evs)
	}
	if evs, _ := w.Read(4, 1); len(evs) != 2 || evs[1].Rev != 3 {
		t.Fatalf("Read(4, max 1) = %v, want both events of rev 3", evs)
	}
	if evs, _ := w.Read(4, 0); len(evs) != 1 || evs[0].Rev != 4 {
		t.Fatalf("Read(4) = %v, want the event of rev 4", evs)
	}
	for i := range 10 {
		s.Put(fmt.Sprint("a", 10+i), "v")
	}
	if _, err := w.Read(100, 0); !errors.Is(err, engine.ErrLagged) {
		t.Fatalf("Read after the feed moved on = %v, want ErrLagged", err)
	}
}

// TestWatcher_WaitAndSkip checks Wait, and that a watcher moved with Skip to
// where another of the same prefix read from its position reads on alike.
func TestWatcher_WaitAndSkip(t *testing.T) {
	s := mustNew(t, engine.Options{})
	w1, _ := s.Watch(0, "a")
	w2, _ := s.Watch(0, "a")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := w1.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait with nothing written = %v, want the context's error", err)
	}
	go s.Put("b", "v") // any key wakes a waiter
	if err := w1.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	s.Put("a", "v")
	if w1.Pos() != w2.Pos() {
		t.Fatalf("watchers from the same revision at %d and %d", w1.Pos(), w2.Pos())
	}
	evs, _ := w1.Read(s.Rev(), 0)
	w2.Skip(w1.Pos())
	s.Put("a", "w")
	e1, _ := w1.Read(s.Rev(), 0)
	e2, _ := w2.Read(s.Rev(), 0)
	if len(evs) != 1 || len(e1) != 1 || len(e2) != 1 || e1[0].Rev != e2[0].Rev {
		t.Fatalf("read %v, then %v and after Skip %v; want one event each, the same after Skip", evs, e1, e2)
	}
	s.Close()
	if err := w1.Wait(context.Background()); !errors.Is(err, engine.ErrClosed) {
		t.Fatalf("Wait on a closed store = %v, want ErrClosed", err)
	}
}

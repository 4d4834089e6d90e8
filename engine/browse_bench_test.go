package engine_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/pykv/pykv/engine"
)

// million is a store of 1M keys in 100 folders of 10k ("t07/u004211"),
// built once for the benchmarks below through Restore (as a snapshot load).
var million = sync.OnceValue(func() *engine.Store {
	entries := make([]engine.Entry, 0, 1_000_000)
	for f := range 100 {
		for u := range 10_000 {
			entries = append(entries, engine.Entry{Key: fmt.Sprintf("t%02d/u%06d", f, u), Value: "v", CreateRev: 1, ModRev: 1, Version: 1})
		}
	}
	s, err := engine.Restore(engine.Options{}, func(l *engine.Loader) error { return l.Load(1, entries) })
	if err != nil {
		panic(err)
	}
	return s
})

// BenchmarkStore_Count1M counts the keys under a prefix of 10k keys in a
// store of 1M: ranks in the counted index, no key visited.
func BenchmarkStore_Count1M(b *testing.B) {
	s := million()
	for b.Loop() {
		if n := s.Count("t42/"); n != 10_000 {
			b.Fatalf("Count = %d", n)
		}
	}
}

// BenchmarkStore_Folders1M lists the 100 top folders of a 1M-key store
// with their counts, as the dashboard does on every page load.
func BenchmarkStore_Folders1M(b *testing.B) {
	s := million()
	for b.Loop() {
		fs, more, _, _ := s.Folders("", "", 100, 10_000)
		if len(fs) != 100 || more || fs[99].Keys != 10_000 {
			b.Fatalf("Folders = %d folders, more %v", len(fs), more)
		}
	}
}

// BenchmarkStore_History reads one key's changes from a full change feed
// (the default 10k events), as GET /v1/history does.
func BenchmarkStore_History(b *testing.B) {
	s := engine.New(engine.Options{})
	b.Cleanup(func() { s.Close() })
	for i := range engine.DefaultHistory {
		if _, err := s.Put(fmt.Sprintf("k%d", i%500), "value"); err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		if revs, _, _ := s.History("k7", 0); len(revs) != engine.DefaultHistory/500 {
			b.Fatalf("History = %d changes", len(revs))
		}
	}
}

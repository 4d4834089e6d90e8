//go:build linux

package cluster

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"go.etcd.io/bbolt"
)

// holes lists the file's holes as [start, end) pairs.
func holes(t *testing.T, f *os.File) [][2]int64 {
	t.Helper()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	var out [][2]int64
	for off := int64(0); off < fi.Size(); {
		h, err := seekHole(f, off)
		if err != nil {
			t.Fatal(err)
		}
		if h >= fi.Size() {
			break
		}
		d, err := seekData(f, h)
		if err != nil {
			d = fi.Size()
		}
		out = append(out, [2]int64{h, d})
		off = d
	}
	return out
}

func mustOpenBoltStore(t *testing.T, path string) *boltStore {
	t.Helper()
	b, err := openBoltStore(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The filler writes zeros into holes only: data around and between them
// stays as it was, and no hole is left.
func TestBoltStore_FillTurnFillsOnlyHoles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// data, a 3-block hole, data, a 5-block hole up to the end.
	block := int64(4096)
	data1 := bytes.Repeat([]byte{'a'}, int(block))
	data2 := bytes.Repeat([]byte{'b'}, int(2*block))
	f.WriteAt(data1, 0)
	f.WriteAt(data2, 4*block)
	if err := f.Truncate(11 * block); err != nil {
		t.Fatal(err)
	}
	if hs := holes(t, f); len(hs) != 2 {
		t.Fatalf("this file system reports holes as %v, not the two made", hs)
	}
	b := &boltStore{f: f}
	zeros := make([]byte, 2*block) // smaller than the holes: several turns
	turns := 0
	for {
		n, err := b.fillTurn(zeros, make([]byte, len(zeros)))
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if turns++; turns > 10 {
			t.Fatal("the filler does not finish")
		}
	}
	if hs := holes(t, f); len(hs) != 0 {
		t.Fatalf("holes left: %v", hs)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := make([]byte, 11*block)
	copy(want, data1)
	copy(want[4*block:], data2)
	if !bytes.Equal(got, want) {
		t.Fatal("the file's data changed")
	}
}

// A raft log growing while the filler works: every entry reads back as
// stored, before and after reopening, and the file is left without holes.
func TestBoltStore_GrowsWithoutHoles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "raft.db")
	open := func() *boltStore { return mustOpenBoltStore(t, path) }
	b := open()
	entry := func(i uint64) []byte {
		return bytes.Repeat([]byte(fmt.Sprintf("entry %d;", i)), 400) // about 4.5 KB
	}
	const n = 6000 // about 27 MB: bbolt grows the file several times
	for i := uint64(1); i <= n; i += 20 {
		var logs []*raft.Log
		for j := i; j < i+20; j++ {
			logs = append(logs, &raft.Log{Index: j, Term: 1, Type: raft.LogCommand, Data: entry(j)})
		}
		if err := b.StoreLogs(logs); err != nil {
			t.Fatal(err)
		}
	}
	check := func(b *boltStore) {
		t.Helper()
		for i := uint64(1); i <= n; i++ {
			var l raft.Log
			if err := b.GetLog(i, &l); err != nil {
				t.Fatalf("entry %d: %v", i, err)
			}
			if !bytes.Equal(l.Data, entry(i)) {
				t.Fatalf("entry %d reads back changed", i)
			}
		}
	}
	check(b)
	// The filler catches up with the last growth (waited for, not timed:
	// the deadline only stops a hang).
	for deadline := time.Now().Add(30 * time.Second); ; {
		if hs := holes(t, b.f); len(hs) == 0 {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("holes left: %v", hs)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b = open()
	defer b.Close()
	check(b)
}

// The filler racing appends, trims, term writes and reads: every entry
// reads back as stored, and bbolt's own check passes after (written by
// the change's reviewer).
func TestBoltStore_FillerStress(t *testing.T) {
	path := filepath.Join(t.TempDir(), "raft.db")
	open := func() *boltStore { return mustOpenBoltStore(t, path) }
	b := open()
	val := func(i uint64) []byte { return bytes.Repeat([]byte(fmt.Sprintf("%08d", i)), 64+int(i%700)) }
	var next uint64 = 1
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	first := uint64(1)
	wg.Add(1)
	go func() { // reader
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			mu.Lock()
			lo, hi := first, next
			mu.Unlock()
			for i := lo; i < hi; i += 37 {
				var l raft.Log
				if err := b.GetLog(i, &l); err != nil {
					continue // trimmed meanwhile
				}
				if !bytes.Equal(l.Data, val(i)) {
					t.Errorf("entry %d read back wrong", i)
					return
				}
			}
		}
	}()
	for round := 0; round < 400; round++ {
		var logs []*raft.Log
		for range 50 {
			logs = append(logs, &raft.Log{Index: next, Term: 1, Type: raft.LogCommand, Data: val(next)})
			mu.Lock()
			next++
			mu.Unlock()
		}
		if err := b.StoreLogs(logs); err != nil {
			t.Fatal(err)
		}
		if round%20 == 19 {
			mu.Lock()
			lo := first
			first = next - 500
			mu.Unlock()
			if err := b.DeleteRange(lo, next-501); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.SetUint64([]byte("CurrentTerm"), uint64(round)); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.View(func(tx *bbolt.Tx) error {
		for err := range tx.Check() {
			return err
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	b = open()
	defer b.Close()
	for i := first; i < next; i++ {
		var l raft.Log
		if err := b.GetLog(i, &l); err != nil || !bytes.Equal(l.Data, val(i)) {
			t.Fatalf("entry %d after reopen: %v", i, err)
		}
	}
}

//go:build linux

package cluster

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
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
		n, err := b.fillTurn(zeros)
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
	open := func() *boltStore {
		bs, err := raftboltdb.New(raftboltdb.Options{Path: path,
			BoltOptions: &bbolt.Options{Timeout: time.Second, NoFreelistSync: true, FreelistType: bbolt.FreelistMapType}})
		if err != nil {
			t.Fatal(err)
		}
		return newBoltStore(bs, path)
	}
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

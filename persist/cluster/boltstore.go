package cluster

import (
	"bytes"
	"errors"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"
)

// fillChunk is how many zero bytes one turn of boltStore's filler writes
// while it holds the store's lock (one raft log append waits at most
// for that much).
const fillChunk = 1 << 20

// boltStore is raft-boltdb's store (the raft log and the raft votes, in
// raft.db) with the file's holes filled with written zeros behind bbolt's
// back.
//
// Why: bbolt grows raft.db with ftruncate, which leaves a hole, and
// writes its new pages into it. A write into a hole makes the file system
// allocate blocks, so the commit's fdatasync must also write that
// allocation out (ext4 without a journal: bitmaps and the inode's block
// map, each one more request to the disk), and every member does two
// such fdatasyncs per commit while the leader's client waits. Over blocks
// already written, fdatasync writes the data alone. The raft log grows
// until the first snapshots let bbolt reuse the pages of the entries they
// cover, so this is every cluster's first hundred MiB or so, and what a
// benchmark on a fresh cluster measures: 3-member cluster, wrk -t1 -c32
// PUT on the leader, fresh cluster per round, 3 interleaved rounds of
// 5 s (2026-12-03 about 12:10 UTC): 8.4k against 7.7k writes/s, 140 against
// 152 us of CPU per write across the three processes.
//
// The zeros never change what bbolt reads: a hole reads as zeros. They
// must never land on a page bbolt has written, so they are only written
// into holes (found with SEEK_HOLE and SEEK_DATA), and with mu held, which
// every bbolt write transaction through this type also holds: between
// finding a hole and filling it, bbolt cannot write there. And a range is
// read back first and written only if it reads as zeros, so a file system
// that wrongly reports written data as a hole (OpenZFS 2.2.0-2.2.1 did,
// openzfs#15526) costs nothing but the fill. (raft's reads take no lock:
// they only read pages bbolt wrote.)
type boltStore struct {
	*raftboltdb.BoltStore

	mu     sync.Mutex // held by every write transaction and every fill turn
	f      *os.File   // raft.db, opened again for the zeros; nil: no filling
	filled int64      // no holes before this offset (a hint: rechecked)

	kick chan struct{} // the file grew; capacity 1
	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// openBoltStore opens raft.db at path.
func openBoltStore(path string) (*boltStore, error) {
	bs, err := raftboltdb.New(raftboltdb.Options{
		Path: path,
		// NoFreelistSync: a commit does not write bbolt's list of free
		// pages (it grows to hundreds of pages as old entries are
		// dropped after snapshots, and was written on every append);
		// Open rebuilds it by scanning the file, which holds at most
		// SnapshotThreshold+TrailingLogs entries. Every commit still
		// fdatasyncs its pages and then its meta page, so what was
		// stored survives a crash as before. The map freelist finds
		// free pages without scanning a sorted array.
		BoltOptions: &bbolt.Options{Timeout: time.Second, NoFreelistSync: true, FreelistType: bbolt.FreelistMapType},
	})
	if err != nil {
		return nil, err
	}
	return newBoltStore(bs, path), nil
}

// newBoltStore wraps bs, whose file is path, and starts filling the holes
// it has. Where the file cannot be opened again or the file system has no
// holes to report, it only wraps.
func newBoltStore(bs *raftboltdb.BoltStore, path string) *boltStore {
	b := &boltStore{BoltStore: bs, kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil || !holesReported {
		if f != nil {
			f.Close()
		}
		close(b.done)
		return b
	}
	b.f = f
	go b.fillLoop()
	b.kick <- struct{}{}
	return b
}

// write runs one bbolt write transaction under mu, and wakes the filler
// if the file reaches past what it has filled (bbolt grew it, leaving a
// hole).
func (b *boltStore) write(tx func() error) error {
	b.mu.Lock()
	err := tx()
	grew := false
	if b.f != nil {
		if fi, serr := b.f.Stat(); serr == nil && fi.Size() > b.filled {
			grew = true
		}
	}
	b.mu.Unlock()
	if grew {
		select {
		case b.kick <- struct{}{}:
		default:
		}
	}
	return err
}

// StoreLog stores one entry; see StoreLogs.
func (b *boltStore) StoreLog(l *raft.Log) error {
	return b.StoreLogs([]*raft.Log{l})
}

// StoreLogs stores entries in one bbolt commit.
func (b *boltStore) StoreLogs(logs []*raft.Log) error {
	return b.write(func() error { return b.BoltStore.StoreLogs(logs) })
}

// DeleteRange deletes entries in one bbolt commit.
func (b *boltStore) DeleteRange(lo, hi uint64) error {
	return b.write(func() error { return b.BoltStore.DeleteRange(lo, hi) })
}

// Set stores a raft vote or term.
func (b *boltStore) Set(k, v []byte) error {
	return b.write(func() error { return b.BoltStore.Set(k, v) })
}

// SetUint64 stores a raft vote or term.
func (b *boltStore) SetUint64(k []byte, v uint64) error {
	return b.write(func() error { return b.BoltStore.SetUint64(k, v) })
}

// Close stops the filler, then closes the store.
func (b *boltStore) Close() error {
	b.once.Do(func() { close(b.stop) })
	<-b.done
	if b.f != nil {
		b.f.Close()
	}
	return b.BoltStore.Close()
}

// fillLoop fills the file's holes each time it grows, a chunk per turn
// of the lock, each made durable outside it, so that no commit's
// fdatasync has to write the zeros' blocks (a commit between two turns
// flushes at most one chunk). A failed fill or sync is left to bbolt's
// own: its commits make whatever they wrote durable either way.
func (b *boltStore) fillLoop() {
	defer close(b.done)
	zeros := make([]byte, fillChunk)
	read := make([]byte, fillChunk)
	for {
		select {
		case <-b.kick:
		case <-b.stop:
			return
		}
		for {
			n, err := b.fillTurn(zeros, read)
			if err != nil || n == 0 {
				break
			}
			datasync(b.f)
			select {
			case <-b.stop:
				return
			default:
			}
		}
	}
}

// fillTurn writes zeros into the first hole at or after filled, at most
// len(zeros) bytes, and returns how many bytes it took care of (0: no
// hole left). read is a buffer as large as zeros.
func (b *boltStore) fillTurn(zeros, read []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	fi, err := b.f.Stat()
	if err != nil {
		return 0, err
	}
	size := fi.Size()
	if b.filled >= size {
		return 0, nil
	}
	hole, err := seekHole(b.f, b.filled)
	if err != nil || hole >= size {
		if err == nil {
			b.filled = size
		}
		return 0, err
	}
	end, err := seekData(b.f, hole)
	if errors.Is(err, syscall.ENXIO) { // no data after the hole: it runs to the end
		end, err = size, nil
	}
	if err != nil {
		return 0, err
	}
	n := int(min(end-hole, int64(len(zeros))))
	if _, err := b.f.ReadAt(read[:n], hole); err != nil {
		return 0, err
	}
	if !bytes.Equal(read[:n], zeros[:n]) {
		// Not a hole after all: the file system is wrong, leave it be.
		b.filled = hole + int64(n)
		return n, nil
	}
	if _, err := b.f.WriteAt(zeros[:n], hole); err != nil {
		return 0, err
	}
	b.filled = hole + int64(n)
	return n, nil
}

var (
	_ raft.LogStore    = (*boltStore)(nil)
	_ raft.StableStore = (*boltStore)(nil)
)

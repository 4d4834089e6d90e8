package persist_test

import (
	"io/fs"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pykv/pykv/engine"
	"github.com/pykv/pykv/persist"
)

// syncGateFS is the OS file system whose next fsync or fdatasync of a file blocks, once
// armed, until the gate opens: the committer is held in Append so that the
// writes arriving meanwhile are committed as one group.
type syncGateFS struct {
	persist.OSFS
	armed   atomic.Bool
	entered chan struct{}
	gate    chan struct{}
	once    sync.Once
}

type syncGateFile struct {
	persist.File
	fs *syncGateFS
}

func (g *syncGateFS) OpenFile(name string, flag int, perm fs.FileMode) (persist.File, error) {
	f, err := g.OSFS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return syncGateFile{f, g}, nil
}

func (f syncGateFile) Sync() error {
	f.wait()
	return f.File.Sync()
}

// Datasync is what the log calls to make its records durable.
func (f syncGateFile) Datasync() error {
	f.wait()
	return f.File.Datasync()
}

func (f syncGateFile) wait() {
	if f.fs.armed.Load() {
		f.fs.once.Do(func() { close(f.fs.entered); <-f.fs.gate })
	}
}

// Review: a put of an expired key and the background expiry of that key in
// the same committer group write an "expire" of a missing key to the log;
// the DB then refuses to open.
func TestDB_ExpiryInCommitGroupReopens(t *testing.T) {
	d := t.TempDir()
	ms := atomic.Int64{}
	ms.Store(1_700_000_000_000)
	now := func() time.Time { return time.UnixMilli(ms.Load()) }
	g := &syncGateFS{entered: make(chan struct{}), gate: make(chan struct{})}
	opts := persist.Options{FS: g, Engine: engine.Options{Now: now, ExpireInterval: time.Hour}}
	db, err := persist.Open(d, opts)
	if err != nil {
		t.Fatal(err)
	}
	s := db.Store()
	if _, err := s.Do(engine.Op{Type: engine.OpPut, Key: "lock", Value: "a", TTL: time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	ms.Add(1000) // the lock expired; the sweeper has not removed it yet

	g.armed.Store(true)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); s.Put("other", "x") }()
	<-g.entered // the committer is inside fsync
	wg.Add(2)
	go func() { defer wg.Done(); s.ExpireDue() }() // the background sweeper
	time.Sleep(100 * time.Millisecond)
	var putErr error
	go func() { // another client takes the expired lock
		defer wg.Done()
		_, putErr = s.Do(engine.Op{Type: engine.OpPut, Key: "lock", Value: "b", IfRev: engine.Absent})
	}()
	time.Sleep(100 * time.Millisecond)
	close(g.gate)
	wg.Wait()
	if putErr != nil {
		t.Fatalf("put: %v", putErr)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db2, err := persist.Open(d, persist.Options{Engine: engine.Options{Now: now, ExpireInterval: time.Hour}})
	if err != nil {
		t.Fatalf("reopening after acknowledged writes: %v", err)
	}
	db2.Close()
}

package cluster

import (
	"fmt"
	"sync"

	"github.com/hashicorp/raft"
)

// maxCachedEntryBytes is the largest raft log entry logCache keeps in
// memory: a batch of small writes fits, a large value or an import does
// not.
const maxCachedEntryBytes = maxBatchBytes

// logCache keeps the newest raft log entries in memory as they are stored,
// as raft.LogCache does, but only entries of at most maxCachedEntryBytes,
// so it holds at most logCacheEntries*maxCachedEntryBytes (32 MiB).
//
// Why not raft.LogCache: it keeps the newest entries whatever their size,
// and an entry's size is bounded only by the value and import limits, so
// writes of large values kept hundreds of MiB alive long after they were
// applied (TestNode_LogMemoryBounded). A large entry is read back from
// bbolt instead; its own size dwarfs that cost.
type logCache struct {
	store raft.LogStore
	mu    sync.RWMutex
	cache []*raft.Log
}

func newLogCache(capacity int, store raft.LogStore) *logCache {
	return &logCache{store: store, cache: make([]*raft.Log, capacity)}
}

// IsMonotonic passes on the store's raft.MonotonicLogStore answer.
func (c *logCache) IsMonotonic() bool {
	m, ok := c.store.(raft.MonotonicLogStore)
	return ok && m.IsMonotonic()
}

// GetLog returns entry idx from memory if cached, else from the store.
func (c *logCache) GetLog(idx uint64, l *raft.Log) error {
	c.mu.RLock()
	cached := c.cache[idx%uint64(len(c.cache))]
	c.mu.RUnlock()
	if cached != nil && cached.Index == idx {
		*l = *cached
		return nil
	}
	return c.store.GetLog(idx, l)
}

// StoreLog stores one entry; see StoreLogs.
func (c *logCache) StoreLog(l *raft.Log) error { return c.StoreLogs([]*raft.Log{l}) }

// StoreLogs stores entries, then caches those small enough; a large one
// clears its slot, so the slot never holds an entry older than the ring.
func (c *logCache) StoreLogs(logs []*raft.Log) error {
	if err := c.store.StoreLogs(logs); err != nil {
		return fmt.Errorf("unable to store logs within log store, err: %q", err)
	}
	c.mu.Lock()
	for _, l := range logs {
		slot := &c.cache[l.Index%uint64(len(c.cache))]
		if len(l.Data) <= maxCachedEntryBytes {
			*slot = l
		} else {
			*slot = nil
		}
	}
	c.mu.Unlock()
	return nil
}

// FirstIndex returns the store's first index.
func (c *logCache) FirstIndex() (uint64, error) { return c.store.FirstIndex() }

// LastIndex returns the store's last index.
func (c *logCache) LastIndex() (uint64, error) { return c.store.LastIndex() }

// DeleteRange empties the cache (a follower's conflicting entries, or
// entries a snapshot covers), then deletes from the store.
func (c *logCache) DeleteRange(lo, hi uint64) error {
	c.mu.Lock()
	clear(c.cache)
	c.mu.Unlock()
	return c.store.DeleteRange(lo, hi)
}

var (
	_ raft.LogStore          = (*logCache)(nil)
	_ raft.MonotonicLogStore = (*logCache)(nil)
)

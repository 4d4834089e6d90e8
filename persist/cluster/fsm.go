package cluster

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"sync"

	"github.com/hashicorp/raft"

	"github.com/pykv/pykv/engine"
	"github.com/pykv/pykv/persist/codec"
)

// fsm applies committed raft log entries to the store, one engine proposal
// per entry, in log order: the same entries give every member the same
// revisions, entries and change feed. Raft calls Apply, ApplyBatch,
// Snapshot and Restore from one goroutine.
type fsm struct {
	store *engine.Store

	mu      sync.Mutex
	members map[string]string // member ID → HTTP API address
	applied uint64            // index of the last entry applied (command or configuration)
	changed chan struct{}     // closed and replaced when applied moves
}

// applyResult is what Apply returns for a write: the proposer's future
// carries it back to the waiting writer.
type applyResult struct {
	res engine.TxnResult
	err error
}

func newFSM(store *engine.Store) *fsm {
	return &fsm{store: store, members: map[string]string{}, changed: make(chan struct{})}
}

// Apply applies one entry; see ApplyBatch.
func (f *fsm) Apply(l *raft.Log) any { return f.ApplyBatch([]*raft.Log{l})[0] }

// ApplyBatch applies committed entries in order. A write's result (or its
// failed condition) is returned for the proposer; a damaged entry is
// refused identically on every member and changes nothing.
func (f *fsm) ApplyBatch(logs []*raft.Log) []any {
	out := make([]any, len(logs))
	var last uint64
	for i, l := range logs {
		last = l.Index
		if l.Type != raft.LogCommand {
			continue // configuration entries: membership lives in raft's own configuration
		}
		e, err := decodeEntry(l.Data)
		if err != nil {
			out[i] = applyResult{err: err}
			continue
		}
		if e.Kind != kindBatch {
			out[i] = f.applyEntry(&e)
			continue
		}
		// A batch answers one result per write, in order: the leader's
		// batcher hands each to its writer.
		rs := make([]applyResult, len(e.Batch))
		for j := range e.Batch {
			rs[j] = f.applyEntry(&e.Batch[j])
		}
		out[i] = rs
	}
	if last != 0 {
		f.setApplied(last)
	}
	return out
}

// applyEntry applies one entry that is not a batch.
func (f *fsm) applyEntry(e *entry) applyResult {
	switch e.Kind {
	case kindWrite, kindExpire:
		res, err := f.store.ApplyProposal(e.proposal())
		return applyResult{res: res, err: err}
	case kindMember:
		f.mu.Lock()
		f.members[e.ID] = e.API
		f.mu.Unlock()
		return applyResult{}
	case kindForget:
		f.mu.Lock()
		delete(f.members, e.ID)
		f.mu.Unlock()
		return applyResult{}
	default:
		return applyResult{err: fmt.Errorf("%w: unknown kind %q", errBadEntry, e.Kind)}
	}
}

func (f *fsm) setApplied(idx uint64) {
	f.mu.Lock()
	f.applied = idx
	close(f.changed)
	f.changed = make(chan struct{})
	f.mu.Unlock()
}

// appliedIndex returns the last applied index and a channel closed when it
// moves on.
func (f *fsm) appliedIndex() (uint64, <-chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.applied, f.changed
}

// memberAPIs returns a copy of the member → API address map.
func (f *fsm) memberAPIs() map[string]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.members)
}

// snapshotHeader is the first line of a raft snapshot: what the cluster
// keeps beside the data. The rest is a PyKV snapshot in persist's format.
type snapshotHeader struct {
	Format  string            `json:"format"`
	Version int               `json:"version"`
	Applied uint64            `json:"applied"`
	Members map[string]string `json:"members"`
}

const (
	snapshotFormat  = "pykv.cluster"
	snapshotVersion = 1
)

// Snapshot captures the state between two applies: a pointer per key (the
// store never changes an entry it handed out), written out by Persist while
// applies go on.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	rev, entries, err := f.store.Checkpoint(func(int64) error { return nil })
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	hdr := snapshotHeader{Format: snapshotFormat, Version: snapshotVersion, Applied: f.applied, Members: maps.Clone(f.members)}
	f.mu.Unlock()
	return &fsmSnapshot{hdr: hdr, rev: rev, entries: entries}, nil
}

// Restore replaces the whole state with a snapshot's. Watchers of the old
// state end with engine.ErrCompacted. A damaged snapshot is refused and
// changes nothing.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	br := bufio.NewReader(rc)
	line, err := br.ReadBytes('\n')
	if err != nil {
		return fmt.Errorf("read raft snapshot header: %w", err)
	}
	var hdr snapshotHeader
	if err := json.Unmarshal(line, &hdr); err != nil {
		return fmt.Errorf("raft snapshot header: %w", err)
	}
	if hdr.Format != snapshotFormat || hdr.Version != snapshotVersion {
		return fmt.Errorf("raft snapshot is %q version %d, want %q version %d", hdr.Format, hdr.Version, snapshotFormat, snapshotVersion)
	}
	rev, entries, err := codec.ReadSnapshot(br, "raft snapshot")
	if err != nil {
		return err
	}
	if err := f.store.Replace(rev, entries); err != nil {
		return fmt.Errorf("restore raft snapshot: %w", err)
	}
	f.mu.Lock()
	f.members = hdr.Members
	if f.members == nil {
		f.members = map[string]string{}
	}
	f.mu.Unlock()
	f.setApplied(hdr.Applied)
	return nil
}

type fsmSnapshot struct {
	hdr     snapshotHeader
	rev     int64
	entries []*engine.Entry
}

// Persist writes the header line and the data in persist's snapshot format.
func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	err := json.NewEncoder(sink).Encode(s.hdr) // one line, ending in '\n'
	if err == nil {
		err = codec.WriteSnapshot(sink, s.rev, s.entries)
	}
	if err != nil {
		sink.Cancel()
		return fmt.Errorf("write raft snapshot: %w", err)
	}
	return sink.Close()
}

// Release lets go of the captured entries.
func (s *fsmSnapshot) Release() { s.entries = nil }

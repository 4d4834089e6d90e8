package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/pykv/pykv/engine"
)

// Limits of one batch entry (see batcher).
const (
	// maxBatchWrites bounds how many writes share one raft log entry.
	maxBatchWrites = 256
	// maxBatchBytes bounds a batch entry's encoded size; a write larger
	// than this (a large value, an import) goes alone. 64 KiB holds 256
	// writes of 100-byte values; it also bounds what one AppendEntries
	// RPC carries (MaxAppendEntries entries: 32 MiB, not 512 MiB, unless
	// single writes are larger) and what logCache keeps in memory.
	maxBatchBytes = 64 << 10
	// maxInFlight is how many batch entries the leader has proposed and
	// not yet seen committed at once. While they are out, new writes
	// gather into the next entry. Measured with 32 writers on 3 members
	// (wrk -t1 -c32 PUT on the leader, fresh cluster per round,
	// interleaved rounds of 5 s, CPU of the three processes per write),
	// 2026-12-03 about 12:05 UTC, with the hot loop in front: 1 gave 7.8k/s
	// (6.7k-8.2k) and 151 us, 2 gave 6.7k/s (6.7k-7.2k) and 203 us: a
	// second entry in flight splits the writers of one round into two
	// bbolt commits on every member, which costs more than the overlap
	// gains. (Before the hot loop, with the HTTP chain costing more, 2
	// had measured best: 1 gave 3.9k/s, 2 5.1k/s, 4 3.3k/s.)
	maxInFlight = 1
	// maxHold bounds how long after an entry commits the batcher waits for
	// its writers to come back before it proposes the next (see hold).
	maxHold = time.Millisecond
)

// batcher is the cluster's group commit: it gathers the writes proposed on
// the leader while earlier ones are being replicated into one raft log
// entry (kind "batch"), each still its own engine proposal with its own
// revision, applied in order by every member.
//
// Why: every raft log entry costs the leader and each follower a msgpack
// encode and decode, a bbolt put, a read back to send or apply it, and a
// future; and every time the leader's main loop stores what arrived it
// costs a bbolt commit (two fdatasyncs and the kernel's work for them) on
// the leader and then on each follower. hashicorp/raft stores whatever
// has arrived at once, so under load it stores many small groups, one
// after the other. With at most maxInFlight entries out, a write that
// arrives meanwhile waits for the next entry, whose commit carries all
// the writes that arrived during the last one: fewer, larger commits, the
// same durability (an entry is answered only once a majority stored it).
type batcher struct {
	n       *Node
	mu      sync.Mutex
	pending []*PendingWrite
	// expect is how many writes the next entry should carry: those
	// pending when the last entry was committed, and the last entry's own,
	// whose writers are likely to write again once answered (see hold).
	expect    int
	committed time.Time     // when the last entry committed: the hold counts from it
	maxHold   time.Duration // maxHold, but in tests
	wake      chan struct{} // a write is pending; capacity 1
	slots     chan struct{} // one per entry in flight; capacity maxInFlight
}

// PendingWrite is one write submitted to the leader (SubmitWrite): queued
// to be proposed, then answered on done. Wait for its outcome.
type PendingWrite struct {
	n    *Node
	data []byte // the write's entry, encoded
	done chan writeOutcome
	err  error // refused before it was queued (done is nil then)
}

type writeOutcome struct {
	res engine.TxnResult
	err error
}

func newBatcher(n *Node) *batcher {
	return &batcher{n: n, maxHold: maxHold, wake: make(chan struct{}, 1), slots: make(chan struct{}, maxInFlight)}
}

// add queues a write and returns it, to wait for its outcome.
func (b *batcher) add(data []byte) *PendingWrite {
	w := &PendingWrite{n: b.n, data: data, done: make(chan writeOutcome, 1)}
	b.mu.Lock()
	b.pending = append(b.pending, w)
	b.mu.Unlock()
	select {
	case b.wake <- struct{}{}:
	default:
	}
	return w
}

// take removes the next batch from the queue: up to maxBatchWrites and
// maxBatchBytes, but always at least one write.
func (b *batcher) take() []*PendingWrite {
	b.mu.Lock()
	defer b.mu.Unlock()
	n, size := 0, 0
	for n < len(b.pending) && n < maxBatchWrites {
		if n > 0 && size+len(b.pending[n].data) > maxBatchBytes {
			break
		}
		size += len(b.pending[n].data)
		n++
	}
	out := make([]*PendingWrite, n)
	copy(out, b.pending)
	b.pending = append(b.pending[:0:0], b.pending[n:]...)
	return out
}

// run proposes batches until the member stops; writes still queued then
// end with ErrOutcomeUnknown (they were never proposed, but the caller
// cannot tell a stop before from a stop after).
func (b *batcher) run() {
	defer b.n.wg.Done()
	for {
		select {
		case <-b.wake:
		case <-b.n.stop:
			b.failPending()
			return
		}
		for {
			select {
			case b.slots <- struct{}{}:
			case <-b.n.stop:
				b.failPending()
				return
			}
			if !b.hold() {
				b.failPending()
				return
			}
			ws := b.take()
			if len(ws) == 0 {
				<-b.slots
				break
			}
			f := b.n.raft.Apply(encodeBatch(ws), applyEnqueueTimeout)
			b.n.wg.Add(1)
			go b.finish(f, ws)
		}
	}
}

// hold waits until as many writes as expected are pending, or enough to
// fill an entry, but only until maxHold after the last entry committed;
// it reports false if the member stops meanwhile.
//
// Why: the writers of an entry are answered together once it commits,
// and a busy client writes again at once. Proposed at the commit, the
// next entry would carry only the writes that arrived during the last
// one, and the writers would settle into two halves taking turns, each
// entry half full: twice the bbolt commits per write on every member.
// Measured with 32 writers on 3 members (wrk -t1 -c32 PUT on the leader),
// entries carried 16.0 writes without the hold, 26-32 with it.
//
// Counted from the commit, not from the first write's arrival: a write
// that comes after maxHold (a client alone, or after a pause) does not
// wait at all. A hold that runs out teaches the batcher how many writers
// did come back, so it does not wait for the missing ones again.
func (b *batcher) hold() bool {
	b.mu.Lock()
	short := b.shortLocked()
	wait := b.maxHold - time.Since(b.committed)
	b.mu.Unlock()
	if !short || wait <= 0 {
		return true
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		select {
		case <-b.wake:
			b.mu.Lock()
			short = b.shortLocked()
			b.mu.Unlock()
			if !short {
				return true
			}
		case <-timer.C:
			b.mu.Lock()
			b.expect = len(b.pending)
			b.mu.Unlock()
			return true
		case <-b.n.stop:
			return false
		}
	}
}

// shortLocked reports whether fewer writes are pending than expected and
// they do not fill an entry yet (take stops at maxBatchWrites and
// maxBatchBytes: waiting longer could only delay them).
func (b *batcher) shortLocked() bool {
	if len(b.pending) >= b.expect || len(b.pending) >= maxBatchWrites {
		return false
	}
	size := 0
	for _, w := range b.pending {
		size += len(w.data)
	}
	return size < maxBatchBytes
}

func (b *batcher) failPending() {
	b.mu.Lock()
	ws := b.pending
	b.pending = nil
	b.mu.Unlock()
	for _, w := range ws {
		w.done <- writeOutcome{err: fmt.Errorf("%w: %v", ErrOutcomeUnknown, raft.ErrRaftShutdown)}
	}
}

// finish waits for a batch entry's commit and answers its writes.
func (b *batcher) finish(f raft.ApplyFuture, ws []*PendingWrite) {
	defer b.n.wg.Done()
	err := b.n.wait(f)
	b.mu.Lock()
	b.expect = len(ws) + len(b.pending)
	b.committed = time.Now()
	b.mu.Unlock()
	<-b.slots
	var results []applyResult
	if err == nil {
		switch r := f.Response().(type) {
		case applyResult:
			results = []applyResult{r}
		case []applyResult:
			results = r
		}
		if len(results) != len(ws) { // cannot happen: every member applies the entry it was given
			err = fmt.Errorf("%w: %d results for %d writes", errBadEntry, len(results), len(ws))
		}
	}
	for i, w := range ws {
		var o writeOutcome
		switch {
		case err == nil:
			o = writeOutcome{res: results[i].res, err: results[i].err}
		case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipTransferInProgress):
			o.err = b.n.notLeader() // never entered the log
		case errors.Is(err, raft.ErrEnqueueTimeout):
			o.err = fmt.Errorf("the leader is overloaded: %w", err) // not proposed
		default: // ErrLeadershipLost, ErrRaftShutdown: it may be in the log
			o.err = fmt.Errorf("%w: %v", ErrOutcomeUnknown, err)
		}
		w.done <- o
	}
}

// propose has the leader replicate one write's entry (see batcher) and
// returns what applying it did, once a majority stored it and this member
// applied it. A member that is not the leader proposes nothing and returns
// a *NotLeaderError.
func (n *Node) propose(ctx context.Context, data []byte) (engine.TxnResult, error) {
	return n.submit(data).Wait(ctx)
}

// submit queues one write's entry on the leader (see batcher) without
// waiting for it. A member that is not the leader queues nothing: the
// write's Wait returns a *NotLeaderError.
func (n *Node) submit(data []byte) *PendingWrite {
	if n.raft.State() != raft.Leader {
		return &PendingWrite{err: n.notLeader()}
	}
	return n.batch.add(data)
}

// Wait waits for the write's outcome and returns it as Write does: what
// applying it did, once a majority stored it and this member applied it,
// or the engine's error for a refused write; a *NotLeaderError when it was
// never proposed because this member did not lead (nothing was written:
// it may be sent to the leader); ErrOutcomeUnknown when leadership changed
// or the member stopped in flight, or ctx ended first. Call it once.
func (w *PendingWrite) Wait(ctx context.Context) (engine.TxnResult, error) {
	if w.done == nil {
		return engine.TxnResult{}, w.err
	}
	select {
	case o := <-w.done:
		return o.res, o.err
	case <-ctx.Done():
		return engine.TxnResult{}, fmt.Errorf("%w: %v", ErrOutcomeUnknown, ctx.Err())
	case <-w.n.stop:
		return engine.TxnResult{}, fmt.Errorf("%w: %v", ErrOutcomeUnknown, raft.ErrRaftShutdown)
	}
}

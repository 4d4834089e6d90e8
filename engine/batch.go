package engine

import "time"

// Batch gathers writes to be committed together on the caller's own
// goroutine, not the committer's: one journal Append (one fsync) for all
// of them, before any is answered. It is for an event loop that reads many
// connections' requests on one thread (web's poller): handing each write
// to the committer goroutine and waking the loop again for the answers
// costs two thread switches a group and, measured, a third of the
// throughput; committing in line costs none. Writes from other goroutines
// (Do, Txn, Submit) still go through the committer; the two take turns,
// one group at a time.
//
// A Batch is not safe for concurrent use. Its zero value is not usable:
// make one with Store.NewBatch.
type Batch struct {
	s    *Store
	reqs []*request
}

// NewBatch returns an empty batch of writes to s.
func (s *Store) NewBatch() *Batch { return &Batch{s: s} }

// Submit validates op (a put or delete) and adds it to b, to be carried out
// by Commit in the order submitted; the Pending's Wait gives its answer
// once Commit has returned (called before, it would wait for good). A
// store without a committer (no journal, or InlineCommit) carries the
// write out at once, as Store.Submit does. A replicated store refuses it
// with ErrReplicated, an invalid operation gets its validation error: all
// through Wait.
func (b *Batch) Submit(op Op) Pending {
	s := b.s
	if s.opts.Replicated || s.inbox == nil {
		return s.Submit(op)
	}
	ops := [1]Op{op}
	if err := s.validateAll(ops[:], 1); err != nil {
		return Pending{err: opErr(err)}
	}
	r := s.getRequest()
	r.one[0] = op
	r.ops = r.one[:]
	b.reqs = append(b.reqs, r)
	return Pending{s: s, r: r, op: op}
}

// Len returns how many writes wait for Commit.
func (b *Batch) Len() int { return len(b.reqs) }

// Commit carries out the writes submitted since the last Commit, as one
// group: resolved in order, recorded in one journal Append, applied, and
// then answered (their Pendings' Wait returns at once). It waits while the
// committer commits a group of its own. On a closed store every write is
// answered with ErrClosed.
func (b *Batch) Commit() {
	if len(b.reqs) == 0 {
		return
	}
	s := b.s
	defer func() {
		clear(b.reqs) // the requests are their writers' now
		b.reqs = b.reqs[:0]
	}()
	s.commitMu.Lock()
	defer s.commitMu.Unlock()
	if s.closed.Load() {
		for _, r := range b.reqs {
			r.err = ErrClosed
			r.finish()
		}
		return
	}
	s.commit(b.reqs)
}

// CommitDelay returns how long a group may be held open for more writers
// to join it: the journal's (see GroupDelayer), or 0 without one that
// waits for a sync. A Batch's owner holds its groups as the committer
// does: until the writers it expects have joined, at most this long.
func (s *Store) CommitDelay() time.Duration {
	if d, ok := s.opts.Journal.(GroupDelayer); ok {
		return d.CommitDelay()
	}
	return 0
}

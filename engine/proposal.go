package engine

import (
	"fmt"
	"time"
)

// Proposal is a write prepared for a replicated log: the operations as a
// caller asked for them, with their TTLs turned into absolute expiry times,
// and the proposer's clock reading. Every replica applies the same proposals
// in the same order with [Store.ApplyProposal], which checks conditions and
// assigns the revision at that moment against the state it meets, using At
// as "now": the result depends only on the state and the proposal, never on
// a replica's clock, so every replica computes the same revisions, entries
// and change feed.
type Proposal struct {
	// At is the proposer's clock, Unix milliseconds: the moment against
	// which expiry is judged when the proposal is applied.
	At int64
	// Ops is a transaction (TTLs already resolved into ExpiresAt); empty
	// for an expiry proposal.
	Ops []Op
	// Expire lists keys whose TTL had run out when the proposer looked;
	// applying removes those still due at At with their expiry unchanged.
	Expire []ExpiryKey
}

// ExpiryKey names a key and the expiry time it had when found due.
type ExpiryKey struct {
	Key string
	At  int64 // Unix milliseconds
}

// Prepare checks ops against the store's limits (maxOps bounds their
// number; Bulk's callers pass no limit) and returns the proposal that
// carries them out, reading the clock once: TTLs become absolute expiry
// times. Errors are those of Txn's checks (an *OpError, ErrEmptyTxn,
// ErrTxnTooLarge); nothing is changed.
func (s *Store) Prepare(ops []Op, maxOps int) (Proposal, error) {
	if maxOps <= 0 {
		maxOps = s.opts.MaxTxnOps
	}
	if err := s.validateAll(ops, maxOps); err != nil {
		return Proposal{}, err
	}
	p := Proposal{At: s.nowMs(), Ops: make([]Op, len(ops))}
	for i, op := range ops {
		if op.TTL > 0 {
			op.ExpiresAt = p.At + (op.TTL + time.Millisecond - 1).Milliseconds()
			op.TTL = 0
		}
		p.Ops[i] = op
	}
	return p, nil
}

// DueExpiry returns up to max keys whose TTL has run out at now (Unix
// milliseconds), for a proposer to put into an expiry Proposal.
func (s *Store) DueExpiry(now int64, max int) []ExpiryKey {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var due []ExpiryKey
	s.expiry.Scan(func(it expiryItem) bool {
		if it.at > now || len(due) == max {
			return false
		}
		due = append(due, ExpiryKey{Key: it.key, At: it.at})
		return true
	})
	return due
}

// ApplyProposal applies p to a store made with Options.Replicated: its
// conditions are checked and its revision assigned now, against the current
// state, with p.At as the time. It returns what the write did, or the
// *ConditionError of a failed condition (nothing changed, no revision
// taken), as any replica applying the same proposals in the same order
// would. A malformed proposal (which Prepare never makes) gives an error
// wrapping ErrCorrupt and changes nothing.
func (s *Store) ApplyProposal(p *Proposal) (TxnResult, error) {
	if !s.opts.Replicated {
		return TxnResult{}, fmt.Errorf("%w: ApplyProposal on a store that is not replicated", ErrCorrupt)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		return TxnResult{}, ErrClosed
	}
	v := view{s: s}
	if len(p.Ops) == 0 {
		if len(p.Expire) == 0 {
			return TxnResult{}, fmt.Errorf("%w: proposal has neither operations nor expiries", ErrCorrupt)
		}
		items := make([]expiryItem, len(p.Expire))
		for i, k := range p.Expire {
			items[i] = expiryItem{at: k.At, key: k.Key}
		}
		cmd := s.resolveExpiry(items, p.At, &v, s.rev+1)
		if len(cmd.Changes) == 0 {
			return TxnResult{Rev: s.rev}, nil
		}
		s.mustApply(&cmd)
		return TxnResult{Rev: cmd.Rev}, nil
	}
	// Limits are the proposer's business (replicas may be configured
	// differently while a cluster is upgraded); only what would break the
	// store's bookkeeping is checked here, identically everywhere.
	for i := range p.Ops {
		op := &p.Ops[i]
		bad := op.TTL != 0 || op.ExpiresAt < 0
		switch op.Type {
		case OpPut, OpDelete:
			bad = bad || op.Key == ""
		case OpDeletePrefix: // any prefix, the empty one too
			bad = bad || op.IfRev != 0 || op.ExpiresAt != 0
		default:
			bad = true
		}
		if bad {
			return TxnResult{}, fmt.Errorf("%w: proposal operation %d is malformed", ErrCorrupt, i)
		}
	}
	cmd, res, err := s.resolve(p.Ops, p.At, &v, s.rev+1, nil, nil)
	if err != nil {
		return TxnResult{}, err
	}
	if len(cmd.Changes) > 0 {
		s.mustApply(&cmd)
	}
	return res, nil
}

// Replace swaps the whole state of a replicated store for entries as of
// revision rev (a snapshot received from another replica). Watchers opened
// before get ErrCompacted: the events between their position and rev are
// not in the feed. Entries are checked as Loader.Load checks them; on error
// nothing changes.
func (s *Store) Replace(rev int64, entries []Entry) error {
	fresh := newStore(s.opts)
	if err := (&Loader{s: fresh}).Load(rev, entries); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m, s.index, s.expiry, s.rev = fresh.m, fresh.index, fresh.expiry, fresh.rev
	s.feed.reset(rev)
	s.feed.gen++
	s.feed.waiting.Store(true) // wake every waiter: their streams are over
	s.feed.wake()
	return nil
}

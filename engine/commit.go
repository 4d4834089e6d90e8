package engine

import (
	"fmt"
	"slices"
	"sync"
	"time"
)

// request is a write waiting for the committer.
type request struct {
	ops        []Op
	expire     []expiryItem                 // internal: keys whose TTL ran out
	checkpoint func(rev int64) error        // internal: see Checkpoint
	imp        func(now, rev int64) Command // internal: see Import; resolved alone, against the map
	entries    []*Entry                     // checkpoint's result
	removed    int                          // expire's result: keys removed
	res        TxnResult
	err        error
	done       chan struct{} // buffered (1): the committer's one answer, see finish
	one        [1]Op         // Do's operation, so it needs no slice of its own
	result     [1]Result     // a one-operation write's result
}

// newRequest returns a request whose done channel is ready for submit.
func newRequest() *request { return &request{done: make(chan struct{}, 1)} }

// finish answers r's writer. It never blocks: done holds one signal.
func (r *request) finish() { r.done <- struct{}{} }

// getRequest returns a request from s's pool, for Do and Txn, the hot
// write path: a request, its channel and its slices would otherwise be
// three to four allocations per write. A request goes back (putRequest)
// only once its writer has received the answer, after which the committer
// no longer touches it. The pool is the store's own, not a global one:
// channels belong to the testing/synctest bubble that made them, and a
// store made inside a bubble is used only there.
func (s *Store) getRequest() *request {
	if r, ok := s.requests.Get().(*request); ok {
		return r
	}
	return newRequest()
}

// putRequest resets r and returns it to s's pool.
func (s *Store) putRequest(r *request) {
	*r = request{done: r.done}
	s.requests.Put(r)
}

// maxGroup bounds how many writes the committer hands the journal at once.
const maxGroup = 4096

// inbox is the committer's queue of writes. Writers append to it under
// its mutex and then wait only on their own request's done channel: one
// goroutine switch per write (the answer's wake-up). With the unbuffered
// channel it replaces, a writer arriving while the committer was busy
// blocked on the send, was woken when the committer took its write, ran
// only to block again on done: two switches and two wake-ups per write,
// and while the committer held a group open every arrival woke it too.
// Now the committer says how many writes it waits for (want), and only the
// writer that brings the queue to that many wakes it.
type inbox struct {
	mu     sync.Mutex
	reqs   []*request
	want   int  // wake the committer once len(reqs) reaches this
	closed bool // set by the committer as it stops: later writers get ErrClosed
	// wake holds at most one token: "the queue may have reached want".
	// A token can be stale; the committer then finds too few and waits
	// again.
	wake chan struct{}
}

func newInbox() *inbox { return &inbox{want: 1, wake: make(chan struct{}, 1)} }

// submit hands r to the committer and waits for its answer.
func (s *Store) submit(r *request) error {
	if err := s.enqueue(r); err != nil {
		return err
	}
	<-r.done
	return nil
}

// enqueue hands r to the committer without waiting: r.done signals its
// answer. It fails with ErrClosed once the committer has stopped.
func (s *Store) enqueue(r *request) error {
	q := s.inbox
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return ErrClosed
	}
	q.reqs = append(q.reqs, r)
	signal := len(q.reqs) >= q.want
	q.mu.Unlock()
	if signal {
		select {
		case q.wake <- struct{}{}:
		default: // a token is there already
		}
	}
	return nil
}

// take appends to group the writes queued now, up to maxGroup in all, and
// sets how many more queued writes should wake the committer: want, or 1
// when want is 0 or less (then only a first write wakes it).
func (q *inbox) take(group []*request, want int) []*request {
	q.mu.Lock()
	n := min(len(q.reqs), maxGroup-len(group))
	group = append(group, q.reqs[:n]...)
	rest := copy(q.reqs, q.reqs[n:])
	clear(q.reqs[rest:]) // drop references to answered requests
	q.reqs = q.reqs[:rest]
	if cap(q.reqs) > 4*maxGroup {
		q.reqs = slices.Clone(q.reqs) // shed a burst's backing array
	}
	q.want = max(want, 1)
	q.mu.Unlock()
	return group
}

// queued returns how many writes wait in the inbox.
func (q *inbox) queued() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.reqs)
}

// close refuses later writes and answers those still queued with ErrClosed.
func (q *inbox) close() {
	q.mu.Lock()
	q.closed = true
	left := q.reqs
	q.reqs = nil
	q.mu.Unlock()
	for _, r := range left {
		r.err = ErrClosed
		r.finish()
	}
}

// commitLoop is the committer: the one goroutine that changes the store
// when it has a journal. It takes every write that is waiting, resolves them
// in order against the state they will meet, hands the group to the journal
// in one Append (one fsync for all: group commit), then applies them and
// answers their writers. Writes arriving meanwhile form the next group.
//
// Groups formed only from the writes already waiting stay small when a
// sync is shorter than the time writers take to come back: the writers
// just answered are still sending their answers and reading their next
// requests when the committer looks, so it syncs a few writes while the
// rest arrive a moment later, and each of those syncs costs CPU. So, when
// the journal is a GroupDelayer with a delay, the committer holds a group
// open for the writers it knows are active: those it answered last time
// plus those that were already queued when it answered them (so not among
// them). It commits as soon as
// that many have joined, or once the journal's CommitDelay (persist's
// log: a few recent fsync latencies) has passed since it came back,
// whichever is first (PostgreSQL's commit_delay and commit_siblings, with
// the delay taken from the disk rather than configured). A lone writer
// never waits; a writer waits at most CommitDelay longer than it would
// have, and the CPU that serves the returning writers keeps working while
// it does. Writers that stop writing cost one hold each, bounded by
// CommitDelay. Waiting gives way to Close at once.
//
// The writers waiting when it comes back are not added to those it
// answered: the answered ones may be among them already, back before the
// committer. Counted twice, a lone writer that came back first made the
// committer hold its write for a second writer that did not exist, for
// the whole CommitDelay, and writers that all came back first were held
// for as many again (TestCommit_LoneWriterNotHeld, red now and then under
// load before).
func (s *Store) commitLoop() {
	defer s.wg.Done()
	q := s.inbox
	delayer, _ := s.opts.Journal.(GroupDelayer)
	var timer *time.Timer
	group := make([]*request, 0, 64)
	active := 0 // writers likely in the next group: see commit's result
	for {
		var cameBack time.Time
		if delayer != nil {
			cameBack = time.Now()
		}
		for group = q.take(group[:0], 1); len(group) == 0; group = q.take(group, 1) {
			select {
			case <-q.wake:
			case <-s.stop:
				q.close()
				return
			}
		}
		if active := min(active, maxGroup); active > 1 && len(group) < active && delayer != nil {
			if wait := delayer.CommitDelay() - time.Since(cameBack); wait > 0 {
				if timer == nil {
					timer = time.NewTimer(wait)
				} else {
					timer.Reset(wait)
				}
				// Woken only once enough writers joined, or at the
				// timer: not by each arrival.
				group = q.take(group, active-len(group))
			hold:
				for len(group) < active {
					select {
					case <-q.wake:
						group = q.take(group, active-len(group))
					case <-timer.C:
						break hold
					case <-s.stop:
						break hold // commit what is held; the next turn closes
					}
				}
				timer.Stop()
				group = q.take(group, 1)
			}
		}
		s.commitMu.Lock()
		queued := s.commit(group)
		s.commitMu.Unlock()
		active = len(group) + queued
	}
}

// commit carries out group as one journal Append (see commitLoop). The
// caller holds commitMu.
//
// It returns how many writes were queued for the committer when it first
// answered some of the group: writers other than the group's, counted
// before any of those could come back and queue again.
func (s *Store) commit(group []*request) (queued int) {
	queued = -1
	now := s.nowMs()
	v := view{s: s, overlay: make(map[string]*Entry)}
	rev := s.rev // only the committer changes s.rev, so no lock is needed to read it
	cmds := make([]Command, 0, len(group))
	pending := group[:0:0]
	flush := func() {
		if len(cmds) == 0 {
			// Nothing to record (refused or no-op writes): just answer.
		} else if err := s.opts.Journal.Append(cmds); err != nil {
			// Nothing was recorded, so nothing is applied. Writes whose
			// conditions were checked against this group's effects are
			// answered with the error too: those effects never happened.
			for _, r := range pending {
				r.err = err
			}
		} else {
			s.mu.Lock()
			for i := range cmds {
				s.mustApply(&cmds[i])
			}
			s.mu.Unlock()
		}
		if queued < 0 {
			queued = s.inbox.queued()
		}
		for _, r := range pending {
			r.finish()
		}
		cmds, pending = cmds[:0], pending[:0]
		v.overlay = make(map[string]*Entry)
		rev = s.rev
	}
	for _, r := range group {
		var cmd Command
		switch {
		case r.checkpoint != nil:
			flush()
			r.err = r.checkpoint(s.rev)
			if r.err == nil {
				r.entries = s.entries()
			}
			r.finish()
			continue
		case r.imp != nil:
			// Resolved against the map itself, with nothing pending, so
			// it needs no overlay (which would hold a copy of every key).
			flush()
			if imp := r.imp(now, s.rev+1); len(imp.Changes) > 0 {
				if r.err = s.opts.Journal.Append([]Command{imp}); r.err == nil {
					s.mu.Lock()
					s.mustApply(&imp)
					s.mu.Unlock()
				}
			}
			r.finish()
			rev = s.rev
			continue
		case r.expire != nil:
			cmd = s.resolveExpiry(r.expire, now, &v, rev+1)
			r.removed = len(cmd.Changes)
		default:
			var err error
			var results []Result
			if len(r.ops) == 1 && &r.ops[0] == &r.one[0] {
				results = r.result[:] // Do's write: its writer copies the result out
			}
			cmd, r.res, err = s.resolve(r.ops, now, &v, rev+1, nil, results)
			if err != nil {
				r.err = err
			}
		}
		pending = append(pending, r)
		if r.err == nil && len(cmd.Changes) > 0 {
			cmds = append(cmds, cmd)
			rev++
		}
	}
	flush()
	return queued
}

// entries returns every entry (unordered). The caller must keep writers out.
func (s *Store) entries() []*Entry {
	out := make([]*Entry, 0, len(s.m))
	for _, e := range s.m {
		out = append(out, e)
	}
	return out
}

// Checkpoint runs fn between two writes, with the revision of the last
// applied write, and returns the state at that moment: every entry (in no
// particular order, expired ones included) as pointers that must not be
// changed. Writes wait while fn runs and the entries are gathered, which is
// a pointer copy per key; persist uses fn to start a new log segment exactly
// at the snapshot's revision. An error from fn is returned as it is.
func (s *Store) Checkpoint(fn func(rev int64) error) (int64, []*Entry, error) {
	if s.inbox == nil {
		s.lockWriter()
		defer s.unlockWriter()
		if s.closed.Load() {
			return 0, nil, ErrClosed
		}
		if err := fn(s.rev); err != nil {
			return 0, nil, err
		}
		return s.rev, s.entries(), nil
	}
	var rev int64
	r := newRequest()
	r.checkpoint = func(at int64) error {
		rev = at
		return fn(at)
	}
	if err := s.submit(r); err != nil {
		return 0, nil, err
	}
	return rev, r.entries, r.err
}

// resolveExpiry builds the command that removes the keys in items that are
// still due, as v sees them: a key rewritten since it was found (also by a
// write earlier in the same commit group) has a new expiry, or none, or is
// gone, and is left alone. It records the removals in v.
func (s *Store) resolveExpiry(items []expiryItem, now int64, v *view, rev int64) Command {
	cmd := Command{Rev: rev, resolved: true}
	for _, it := range items {
		if e := v.get(it.key); e != nil && e.ExpiresAt == it.at && e.expired(now) {
			cmd.Changes = append(cmd.Changes, Change{Op: OpExpire, Key: it.key})
		}
	}
	if len(cmd.Changes) > 0 && v.overlay != nil {
		for _, ch := range cmd.Changes {
			v.overlay[ch.Key] = nil
		}
	}
	return cmd
}

// expireLoop removes expired keys in the background.
func (s *Store) expireLoop() {
	defer s.wg.Done()
	t := time.NewTicker(s.opts.ExpireInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			_, _ = s.ExpireDue() // a failed journal is reported to writers; retry next tick
		}
	}
}

// ExpireDue removes keys whose TTL has run out, as expire changes that reach
// the journal and the feed like any write, and returns how many it removed.
// The store calls it in the background; tests with a fake clock call it
// directly. It returns the journal's error if one refused the removal.
func (s *Store) ExpireDue() (int, error) {
	if s.opts.Replicated {
		return 0, ErrReplicated
	}
	removed := 0
	for {
		now := s.nowMs()
		s.mu.RLock()
		var due []expiryItem
		s.expiry.Scan(func(it expiryItem) bool {
			if it.at > now || len(due) == expireBatch {
				return false
			}
			due = append(due, it)
			return true
		})
		closed := s.closed.Load()
		s.mu.RUnlock()
		if len(due) == 0 || closed {
			return removed, nil
		}
		n, err := s.expireItems(due, now)
		removed += n
		if err != nil {
			return removed, err
		}
		if len(due) < expireBatch || n == 0 {
			return removed, nil
		}
	}
}

func (s *Store) expireItems(due []expiryItem, now int64) (int, error) {
	if s.inbox != nil {
		r := newRequest()
		r.expire = due
		if err := s.submit(r); err != nil {
			return 0, err
		}
		if r.err != nil {
			return 0, r.err
		}
		return r.removed, nil
	}
	s.lockWriter()
	defer s.unlockWriter()
	if s.closed.Load() {
		return 0, ErrClosed
	}
	v := view{s: s}
	cmd := s.resolveExpiry(due, now, &v, s.rev+1)
	if len(cmd.Changes) == 0 {
		return 0, nil
	}
	if err := s.record(&cmd); err != nil {
		return 0, err
	}
	return len(cmd.Changes), nil
}

// Loader restores a store's state; see Restore.
type Loader struct{ s *Store }

// Load fills an empty store with entries as of revision rev (a snapshot).
// Entries must have distinct non-empty keys and revisions no newer than rev.
func (l *Loader) Load(rev int64, entries []Entry) error {
	s := l.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.m) != 0 || s.rev != 0 {
		return fmt.Errorf("%w: snapshot loaded into a store that is not empty", ErrCorrupt)
	}
	s.m = make(map[string]*Entry, len(entries)) // sized once: no regrowth garbage
	for i := range entries {
		e := &entries[i]
		switch {
		case e.Key == "":
			return fmt.Errorf("%w: snapshot entry %d has an empty key", ErrCorrupt, i)
		case e.ModRev > rev || e.CreateRev > e.ModRev || e.CreateRev <= 0 || e.Version <= 0:
			return fmt.Errorf("%w: snapshot entry %s has revisions %d..%d, version %d, snapshot is at %d",
				ErrCorrupt, shorten(e.Key), e.CreateRev, e.ModRev, e.Version, rev)
		case s.m[e.Key] != nil:
			return fmt.Errorf("%w: snapshot holds key %s twice", ErrCorrupt, shorten(e.Key))
		}
		s.m[e.Key] = e
		if i == 0 || e.Key > entries[i-1].Key {
			s.index.Load(e.Key) // sorted input (snapshots are): fills nodes fully
		} else {
			s.index.Set(e.Key)
		}
		if e.ExpiresAt != 0 {
			s.expiry.Set(expiryItem{e.ExpiresAt, e.Key})
		}
	}
	s.rev = rev
	s.feed.reset(rev)
	return nil
}

// Apply applies one command, which must have the next revision and fit the
// current state. The command's events reach the feed, so watchers can
// resume from revisions the replayed log holds.
func (l *Loader) Apply(cmd Command) error {
	s := l.s
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.apply(&cmd)
}

// Rev returns the revision restored so far.
func (l *Loader) Rev() int64 { return l.s.Rev() }

package engine

import (
	"context"
	"math"
	"strings"
	"sync/atomic"
)

// Event is one change as watchers see it. Events of one command share Rev
// and arrive together, in the order of the command's changes.
type Event struct {
	Type  ChangeType // OpPut, OpDelete or OpExpire
	Key   string
	Rev   int64
	Entry *Entry // the entry after a put; nil for a delete or expire
	Prev  *Entry // the entry before the change; nil if the key did not exist
	// Time is when this store applied the change, in Unix milliseconds;
	// 0 for a change it did not make itself (replayed from the log at
	// start-up, or applied from another member), whose time is not known.
	Time int64
	size int // bytes held alive by the event, counted once when pushed
}

func (ev *Event) measure() {
	n := len(ev.Key) + 64
	if ev.Entry != nil {
		n += len(ev.Entry.Value)
	}
	if ev.Prev != nil {
		n += len(ev.Prev.Value)
	}
	ev.size = n
}

// feed keeps the most recent events in a ring, so watchers can resume from
// a recent revision and read at their own pace without ever holding up a
// writer. All of it is guarded by Store.mu.
type feed struct {
	ring     []Event
	first    int64 // sequence number of the oldest event held
	next     int64 // sequence number the next event gets
	bytes    int   // size of the events held
	maxBytes int
	// compacted is the newest revision with events no longer held: a
	// watcher may start from any revision >= compacted.
	compacted int64
	// gen counts Store.Replace calls: a watcher from an older generation
	// gets ErrCompacted, since its events were replaced wholesale.
	gen    int64
	notify chan struct{} // closed and replaced when events arrive
	// waiting is set by a watcher (under the shared lock) that is about to
	// wait on notify, so writers only make a new channel when needed.
	waiting atomic.Bool
}

func (f *feed) init(n, maxBytes int) {
	f.ring = make([]Event, n)
	f.maxBytes = maxBytes
	f.notify = make(chan struct{})
}

func (f *feed) at(seq int64) *Event { return &f.ring[seq%int64(len(f.ring))] }

func (f *feed) push(ev Event) {
	ev.measure()
	for f.next-f.first == int64(len(f.ring)) || (f.next > f.first && f.bytes+ev.size > f.maxBytes) {
		f.evict()
	}
	*f.at(f.next) = ev
	f.next++
	f.bytes += ev.size
}

func (f *feed) evict() {
	old := f.at(f.first)
	f.compacted = old.Rev
	f.bytes -= old.size
	*old = Event{}
	f.first++
}

// reset forgets all events: the store was loaded from a snapshot at rev.
func (f *feed) reset(rev int64) {
	for f.first < f.next {
		f.evict()
	}
	f.bytes = 0
	f.compacted = rev
}

// wake tells waiting watchers that something happened.
func (f *feed) wake() {
	if !f.waiting.Swap(false) {
		return
	}
	close(f.notify)
	f.notify = make(chan struct{})
}

// Watcher reads the change feed from a revision onwards. It is not safe for
// concurrent use; each watching goroutine makes its own.
type Watcher struct {
	s      *Store
	prefix string
	seq    int64 // sequence number of the next event to read
	gen    int64 // the feed's generation when the watcher started
	err    error
}

// Watch returns a watcher of the changes after revision since to keys that
// start with prefix. since may be the store's current revision (only new
// changes) or any older revision the feed still holds; older ones give
// ErrCompacted. A since beyond the current revision counts as the current
// revision.
func (s *Store) Watch(since int64, prefix string) (*Watcher, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed.Load() {
		return nil, ErrClosed
	}
	since = min(since, s.rev)
	if since < s.feed.compacted {
		return nil, ErrCompacted
	}
	w := &Watcher{s: s, prefix: prefix, seq: s.feed.next, gen: s.feed.gen}
	// Find the first held event after since; events are in revision order.
	lo, hi := s.feed.first, s.feed.next
	for lo < hi {
		mid := lo + (hi-lo)/2
		if s.feed.at(mid).Rev <= since {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	w.seq = lo
	return w, nil
}

// Next waits for the next events and returns those available, up to max
// (0 means no limit). Events of one command are never split across calls
// unless a single command holds more than max events. It returns ErrLagged
// once the watcher fell behind what the feed holds, ErrClosed when the store
// is closed, or the context's error.
func (w *Watcher) Next(ctx context.Context, max int) ([]Event, error) {
	for {
		out, wake, err := w.read(math.MaxInt64, max, true)
		if err != nil || len(out) > 0 {
			return out, err
		}
		if err := await(ctx, wake); err != nil {
			return nil, err
		}
	}
}

// Read returns, without waiting, the events not read yet of revisions up to
// rev, at most max of them as in Next; none when there are none. It returns
// ErrLagged once the watcher fell behind what the feed holds.
func (w *Watcher) Read(rev int64, max int) ([]Event, error) {
	out, _, err := w.read(rev, max, false)
	return out, err
}

// Wait waits until the feed holds changes the watcher has not read, to any
// key: a Read may then find none under its prefix. It returns ErrClosed when
// the store is closed and nothing is left to read, or the context's error.
func (w *Watcher) Wait(ctx context.Context) error {
	if w.err != nil {
		return w.err
	}
	s := w.s
	s.mu.RLock()
	if w.gen != s.feed.gen {
		w.err = ErrCompacted
		s.mu.RUnlock()
		return w.err
	}
	pending := w.seq < s.feed.next
	var wake <-chan struct{}
	var err error
	if !pending {
		wake, err = w.waitLocked()
	}
	s.mu.RUnlock()
	if pending || err != nil {
		return err
	}
	return await(ctx, wake)
}

// Pos returns the watcher's position in the feed. Watchers of the same
// prefix at the same position read the same events, so whoever serves many
// of them can read once and move the others on with Skip.
func (w *Watcher) Pos() int64 { return w.seq }

// Skip moves the watcher on to pos, a position that another watcher of the
// same prefix reached reading from this one's: as if it had read the same.
func (w *Watcher) Skip(pos int64) { w.seq = max(w.seq, pos) }

// read takes the events up to rev and max under the store's lock. If it
// finds none and wait is set, it also returns what to wait on for more (see
// waitLocked).
func (w *Watcher) read(rev int64, max int, wait bool) (out []Event, wake <-chan struct{}, err error) {
	if w.err != nil {
		return nil, nil, w.err
	}
	s := w.s
	s.mu.RLock()
	defer s.mu.RUnlock()
	f := &s.feed
	if w.gen != f.gen {
		w.err = ErrCompacted
		return nil, nil, w.err
	}
	if w.seq < f.first {
		w.err = ErrLagged
		return nil, nil, w.err
	}
	for ; w.seq < f.next; w.seq++ {
		ev := f.at(w.seq)
		if ev.Rev > rev || max > 0 && len(out) >= max && out[len(out)-1].Rev != ev.Rev {
			break
		}
		if strings.HasPrefix(ev.Key, w.prefix) {
			out = append(out, *ev)
		}
	}
	if len(out) == 0 && wait {
		wake, err = w.waitLocked()
	}
	return out, wake, err
}

// waitLocked returns the channel to wait on for more events, having told
// writers that someone waits, or ErrClosed when the store is closed (no
// more will come). The caller holds the store's lock shared and has read
// everything the feed holds.
func (w *Watcher) waitLocked() (<-chan struct{}, error) {
	if w.s.closed.Load() {
		w.err = ErrClosed
		return nil, w.err
	}
	w.s.feed.waiting.Store(true)
	return w.s.feed.notify, nil
}

// await waits for wake or the end of ctx.
func await(ctx context.Context, wake <-chan struct{}) error {
	select {
	case <-wake:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

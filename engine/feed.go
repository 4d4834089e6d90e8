package engine

import (
	"context"
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
	size  int    // bytes held alive by the event, counted once when pushed
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
	notify    chan struct{} // closed and replaced when events arrive
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
	w := &Watcher{s: s, prefix: prefix, seq: s.feed.next}
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
	if w.err != nil {
		return nil, w.err
	}
	for {
		s := w.s
		s.mu.RLock()
		if w.seq < s.feed.first {
			s.mu.RUnlock()
			w.err = ErrLagged
			return nil, w.err
		}
		var out []Event
		for w.seq < s.feed.next {
			ev := s.feed.at(w.seq)
			if max > 0 && len(out) >= max && out[len(out)-1].Rev != ev.Rev {
				break
			}
			w.seq++
			if strings.HasPrefix(ev.Key, w.prefix) {
				out = append(out, *ev)
			}
		}
		closed := s.closed.Load()
		wait := s.feed.notify
		if len(out) == 0 {
			s.feed.waiting.Store(true)
		}
		s.mu.RUnlock()
		if len(out) > 0 {
			return out, nil
		}
		if closed {
			w.err = ErrClosed
			return nil, w.err
		}
		select {
		case <-wait:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

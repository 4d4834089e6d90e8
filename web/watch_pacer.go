package web

import (
	"context"
	"sync"
	"time"

	"github.com/pykv/pykv/engine"
)

// pacer lines up the reads of a handler's streams. A stream that has sent
// a message waits for the next tick, shared by all streams, rather than for
// a timer of its own (DefaultWatchCoalesce), and streams woken together by
// a write share a tick too. Streams then read from the same position up to
// the same revision, the tick's, and send the same messages, which the
// first of them reads and encodes for all (tick.read). Before, every stream
// read the feed under the store's lock and encoded every event for itself,
// and the streams' wake-ups were spread over the whole pause, each one
// delaying the writers.
type pacer struct {
	store *engine.Store
	mu    sync.Mutex
	next  *tick // the tick paused streams wait for; nil when none is
	last  *tick // the tick that fired last
}

// tick is a revision that streams read up to, with the reads made for it,
// shared by the streams that read alike.
type tick struct {
	fired chan struct{} // closed when the tick fires
	rev   int64         // the store's revision then; set before fired closes
	mu    sync.Mutex
	reads map[readKey]*sharedRead
	bytes int // the encoded size of the reads kept (see keep)
}

// tickKeepBytes bounds the encoded messages a tick keeps for streams to
// share. Streams catching up read chunk after chunk (Batch events each)
// against the same tick, and streams that came back with different
// revisions read different chunks: unbounded, a tick would keep all the
// history they read, once per position. Past the bound the reads furthest
// behind are let go; a stream that still needs one reads it again itself.
const tickKeepBytes = 16 << 20

func newTick() *tick {
	return &tick{fired: make(chan struct{}), reads: make(map[readKey]*sharedRead)}
}

// readKey identifies streams that read the same events from the feed up to
// a tick and encode them the same way: a stream's messages depend on
// nothing else.
type readKey struct {
	pos      int64 // the watcher's position (engine.Watcher.Pos)
	prefix   string
	withPrev bool
}

type sharedRead struct {
	once sync.Once
	r    *feedRead
	size int // set by keep, under the tick's mu, once r is made
}

// wait returns the next tick once it fires, or nil if ctx ends first. The
// first stream to wait for a tick schedules it, d from then.
func (p *pacer) wait(ctx context.Context, d time.Duration) *tick {
	p.mu.Lock()
	t := p.next
	if t == nil {
		t = newTick()
		p.next = t
		time.AfterFunc(d, func() { p.fire(t) })
	}
	p.mu.Unlock()
	select {
	case <-t.fired:
		return t
	case <-ctx.Done():
		return nil
	}
}

func (p *pacer) fire(t *tick) {
	rev := p.store.Rev()
	p.mu.Lock()
	t.rev = rev
	p.next, p.last = nil, t
	p.mu.Unlock()
	close(t.fired)
}

// now returns a tick to read up to at once, for a stream that has seen
// every change up to seen and found the feed changed since: the last one
// if it is past seen (the streams that a write woke share it), or else a
// new one at the store's revision.
func (p *pacer) now(seen int64) *tick {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.last == nil || p.last.rev <= seen {
		t := newTick()
		t.rev = p.store.Rev()
		close(t.fired)
		p.last = t
	}
	return p.last
}

// read returns st's read up to the tick's revision: made by the first
// stream at st's position with st's prefix and options, and then taken by
// the others, whose watchers move on as if they had read it themselves.
func (t *tick) read(st *watchConn) *feedRead {
	key := readKey{st.w.Pos(), st.prefix, st.withPrev}
	t.mu.Lock()
	sr := t.reads[key]
	if sr == nil {
		sr = &sharedRead{}
		t.reads[key] = sr
	}
	t.mu.Unlock()
	sr.once.Do(func() {
		sr.r = st.read(t.rev)
		t.keep(key, sr)
	})
	st.w.Skip(sr.r.end)
	return sr.r
}

// keep counts the size of a read just made and, past tickKeepBytes, lets go
// of the kept reads furthest behind (the lowest feed positions), never the
// one just made.
func (t *tick) keep(key readKey, sr *sharedRead) {
	t.mu.Lock()
	defer t.mu.Unlock()
	sr.size = max(sr.r.size, 1) // 0 marks reads still being made
	t.bytes += sr.size
	for t.bytes > tickKeepBytes {
		var oldest readKey
		found := false
		for k, other := range t.reads {
			if k != key && other.size > 0 && (!found || k.pos < oldest.pos) {
				oldest, found = k, true
			}
		}
		if !found {
			return
		}
		t.bytes -= t.reads[oldest].size
		delete(t.reads, oldest)
	}
}

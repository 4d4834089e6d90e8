package web

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/pykv/pykv/engine"
	"github.com/pykv/pykv/persist/codec"
)

// Defaults for the zero values of WatchOptions. The timing constants follow
// one rule: a peer that stops answering is noticed within PingInterval +
// PongTimeout, and a peer that stops reading within WriteTimeout, so a dead
// connection never holds a goroutine and a watcher for long.
const (
	// DefaultWatchPingInterval is how often the server pings: well below
	// the 60 s idle timeouts common in proxies and load balancers.
	DefaultWatchPingInterval = 30 * time.Second
	// DefaultWatchPongTimeout is how long after a ping the pong may take.
	DefaultWatchPongTimeout = 10 * time.Second
	// DefaultWatchWriteTimeout bounds one message write. A client whose
	// socket stays full this long is cut off (it is not reading).
	DefaultWatchWriteTimeout = 10 * time.Second
	// DefaultWatchProgressInterval is how often a progress message tells
	// the client the revision it has seen everything up to.
	DefaultWatchProgressInterval = 10 * time.Second
	// DefaultWatchReadLimit is the largest message a client may send.
	// Clients send nothing but control frames, so it is small.
	DefaultWatchReadLimit = 1 << 10
	// DefaultWatchBatch is the most events read from the store at once.
	// Events of one revision always go together, even past this number.
	DefaultWatchBatch = 1024
	// DefaultWatchMessageBytes is the size past which the events read at
	// once are split into several messages, at a revision boundary.
	DefaultWatchMessageBytes = 1 << 20
	// DefaultWatchWriteBuffer is the websocket write buffer per connection.
	DefaultWatchWriteBuffer = 16 << 10
	// DefaultWatchCoalesce is how long, at most, a stream that has caught
	// up waits after a message before reading the feed again, so the
	// writes made meanwhile go out as one message. Without it every write
	// costs every subscriber a wake-up and a system call: with 100
	// subscribers that took write throughput down to a few percent. It
	// bounds the latency it adds, far below what a person or the 50 ms
	// target notices. The pauses of all streams end together (pacer).
	DefaultWatchCoalesce = 5 * time.Millisecond
	// watchCoalescePerStream and watchCoalesceMax grow the pause with the
	// number of open streams: the server's cost is per message, so with
	// many subscribers each one gathers longer and the total message rate
	// stays bounded. 100 streams pause 25 ms, which took durable write
	// throughput with 100 subscribers from about 33% to about 50% of that
	// without (before streams shared their reads, see pacer), for a
	// delivery p99 of about 30 ms, still under the 50 ms target; the cap
	// keeps that bound with any number of streams.
	watchCoalescePerStream = 250 * time.Microsecond
	watchCoalesceMax       = 30 * time.Millisecond
	// watchCloseGrace is how long the server waits for the client to
	// answer its close frame before dropping the connection.
	watchCloseGrace = time.Second
)

// Close codes the watch stream ends with besides the standard ones. They are
// in the 4000-4999 range that RFC 6455 leaves to applications.
const (
	// CloseCompacted: the revision asked for with since is older than the
	// history the server keeps. Reload a snapshot and watch from its rev.
	CloseCompacted = 4001
	// CloseLagged: the client read too slowly and the events it had not
	// read yet were dropped. Reload a snapshot and watch from its rev.
	CloseLagged = 4002
)

// WatchOptions configure the handler NewWatchHandler returns. The zero value
// gives the defaults above and accepts same-origin browsers only.
type WatchOptions struct {
	// AllowedOrigins lists the browser origins, besides the page's own,
	// allowed to open a stream, as "scheme://host[:port]"; "*" allows any.
	// A request without an Origin header (not from a browser) is always
	// allowed: the check is against cross-site use of a visitor's browser.
	AllowedOrigins []string
	// PingInterval is how often the server pings; PongTimeout how long
	// the pong may then take before the connection is dropped.
	PingInterval time.Duration
	PongTimeout  time.Duration
	// WriteTimeout bounds writing one message; a client that does not
	// read for that long is cut off.
	WriteTimeout time.Duration
	// ProgressInterval is how often a progress message is sent.
	ProgressInterval time.Duration
	// ReadLimit is the largest message, in bytes, a client may send.
	ReadLimit int64
	// Batch is the most events read from the store at once, and
	// MessageBytes the size past which they are sent as several messages
	// (never splitting a revision).
	Batch        int
	MessageBytes int
	// WriteBuffer is the size of each connection's write buffer in bytes.
	WriteBuffer int
	// Coalesce is how long a stream that has caught up waits after each
	// message, gathering changes into fewer, larger messages (default
	// 5ms, growing with the number of open streams; negative for none).
	Coalesce time.Duration
	// Leaderless, in cluster mode, reports whether this member has been
	// without a leader long enough that its streams should close (with
	// 1013, try again later) so clients move to another member; it is
	// asked about every LeaderlessCheck (default one second).
	Leaderless      func() bool
	LeaderlessCheck time.Duration

	adaptive bool // Coalesce was left to the default
}

func (o WatchOptions) withDefaults() WatchOptions {
	if o.LeaderlessCheck <= 0 {
		o.LeaderlessCheck = time.Second
	}
	if o.PingInterval <= 0 {
		o.PingInterval = DefaultWatchPingInterval
	}
	if o.PongTimeout <= 0 {
		o.PongTimeout = DefaultWatchPongTimeout
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = DefaultWatchWriteTimeout
	}
	if o.ProgressInterval <= 0 {
		o.ProgressInterval = DefaultWatchProgressInterval
	}
	if o.ReadLimit <= 0 {
		o.ReadLimit = DefaultWatchReadLimit
	}
	if o.Batch <= 0 {
		o.Batch = DefaultWatchBatch
	}
	if o.MessageBytes <= 0 {
		o.MessageBytes = DefaultWatchMessageBytes
	}
	if o.WriteBuffer <= 0 {
		o.WriteBuffer = DefaultWatchWriteBuffer
	}
	if o.Coalesce == 0 {
		o.Coalesce, o.adaptive = DefaultWatchCoalesce, true
	}
	return o
}

// NewWatchHandler returns the handler of GET /v1/watch: a websocket that
// streams the store's changes as JSON text messages.
//
// # Request
//
// Query parameters: prefix (only keys starting with it), since (a revision:
// send the changes after it; default the current revision, i.e. only new
// changes), prev=true (events carry the key's previous value). A malformed
// since or prev is answered 400 before the upgrade; a browser Origin other
// than the server's own or one of opts.AllowedOrigins is answered 403.
//
// # Messages
//
//	{"type":"progress","rev":N}
//	{"type":"events","rev":N,"events":[EVENT,…]}
//	{"type":"compacted","rev":N,"reason":"compacted"|"lagged","message":"…"}
//
// The first message is always a progress message holding the revision the
// stream starts after. An EVENT is
//
//	{"type":"put","key":K,"value":V,"rev":R,"create_rev":C,"version":N,"expires_at":MS,"prev_value":P}
//	{"type":"delete"|"expire","key":K,"rev":R,"prev_value":P}
//
// where expires_at (Unix milliseconds) is left out for keys without a TTL
// and prev_value is there only with prev=true and when the key existed
// before. The rev of an events message is the rev of its last event;
// progress messages come every ProgressInterval, also while idle.
//
// # Guarantees
//
// Events arrive in revision order, none missing and none twice, and all the
// events of one revision (one transaction, or one round of expiry) arrive in
// the same message. After a message with rev N (events or progress) the
// client has seen every matching change up to N, so reconnecting with
// since=N resumes exactly where it left off.
//
// When that is impossible the server says so instead of skipping changes:
// it sends a compacted message and closes with CloseCompacted (since is
// older than the history kept) or CloseLagged (the client read so slowly
// that the server dropped the events it had not read yet; writers are never
// held up for a reader). The client should then reload a snapshot with
// GET /v1/kv and watch from the rev that snapshot reports. The rev of a
// compacted message is the server's revision when it was sent.
//
// If since is ahead of the server's revision (the server lost its latest
// writes, or is a different server), the stream starts at the server's
// revision, so the first progress rev is below since: a client should
// resync then too.
//
// A client that does not answer pings within PongTimeout, or whose socket
// stays full for WriteTimeout, is dropped without a close message. When the
// store closes (the server shuts down) or the request's context ends, the
// stream closes with 1001 (going away); reconnect with since.
//
// Each connection has exactly two goroutines: the handler's own, which
// reads the store's change feed and writes every message and ping, and one
// that reads control frames (pongs, close) and discards anything else.
// Streams that read the same changes share one read of the feed and one
// encoding of it (see pacer).
func NewWatchHandler(store *engine.Store, opts WatchOptions) http.Handler {
	opts = opts.withDefaults()
	h := &watchHandler{store: store, opts: opts, origins: make(map[string]bool)}
	h.pacer.store = store
	for _, o := range opts.AllowedOrigins {
		o = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(o), "/"))
		if o == "*" {
			h.anyOrigin = true
		}
		h.origins[o] = true
	}
	h.up = websocket.Upgrader{
		HandshakeTimeout: opts.WriteTimeout,
		ReadBufferSize:   512, // only control frames are read
		WriteBufferSize:  opts.WriteBuffer,
		CheckOrigin:      h.originAllowed,
		Error: func(w http.ResponseWriter, r *http.Request, status int, reason error) {
			w.Header().Set("Sec-Websocket-Version", "13")
			writeProblem(w, newProblem(status, "Cannot open a watch stream: "+reason.Error()+"."))
		},
	}
	return h
}

type watchHandler struct {
	store     *engine.Store
	opts      WatchOptions
	streams   atomic.Int64    // open streams, for the coalescing pause
	pacer     pacer           // lines up the streams' pauses
	origins   map[string]bool // lower-case "scheme://host[:port]"
	anyOrigin bool
	up        websocket.Upgrader
}

// originAllowed reports whether a request may open a stream: it has no
// Origin (not a browser), the Origin's host is the request's Host (same
// origin; the scheme is not compared, as TLS may end at a proxy), or the
// Origin is allowed by the options.
func (h *watchHandler) originAllowed(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" || h.anyOrigin {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	return h.origins[strings.ToLower(origin)]
}

func (h *watchHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	prefix := q.Get("prefix")
	since := int64(-1)
	if s := q.Get("since"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			writeProblem(w, newProblem(http.StatusBadRequest,
				fmt.Sprintf("since must be a revision (a whole number, 0 or more), not %q.", s)))
			return
		}
		since = n
	}
	withPrev := false
	if s := q.Get("prev"); s != "" {
		b, err := strconv.ParseBool(s)
		if err != nil {
			writeProblem(w, newProblem(http.StatusBadRequest, fmt.Sprintf("prev must be true or false, not %q.", s)))
			return
		}
		withPrev = b
	}
	if !h.originAllowed(r) {
		writeProblem(w, newProblem(http.StatusForbidden,
			fmt.Sprintf("Origin %q may not open a watch stream; only the server's own origin and configured ones may.", r.Header.Get("Origin"))))
		return
	}
	if _, ok := w.(http.Hijacker); !ok {
		// A middleware's wrapper that only offers Unwrap: reach the
		// connection through it, as gorilla/websocket asserts the interface.
		w = hijacker{w, http.NewResponseController(w)}
	}
	// Without since, the stream starts at the revision the request found.
	if cur := h.store.Rev(); since < 0 || since > cur {
		since = cur
	}
	// Take the watcher before the upgrade: once the client has its answer
	// it may write, and a watcher taken later could find those writes'
	// history already gone.
	watcher, werr := h.store.Watch(since, prefix)
	conn, err := h.up.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader has answered with a problem
	}
	st := &stream{
		h:        h,
		conn:     conn,
		w:        watcher,
		prefix:   prefix,
		withPrev: withPrev,
		seen:     since,
		readDone: make(chan struct{}),
	}
	st.run(r.Context(), werr)
}

// hijacker adds http.Hijacker to a ResponseWriter whose Hijack is reached
// with http.ResponseController (through Unwrap methods).
type hijacker struct {
	http.ResponseWriter
	rc *http.ResponseController
}

func (h hijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) { return h.rc.Hijack() }

// stream is one watch connection. Everything but readLoop runs on the
// handler's goroutine, which is the connection's only writer.
type stream struct {
	h        *watchHandler
	conn     *websocket.Conn
	w        *engine.Watcher
	prefix   string
	withPrev bool
	seen     int64         // every matching change up to seen has been sent
	state    streamState   // what the stream waits for before reading again
	tick     *tick         // the tick the stream reads up to
	buf      []byte        // the progress or compacted message being built
	readDone chan struct{} // closed when readLoop returns: the client is gone
}

// streamState says what a stream waits for before it reads the feed again.
type streamState int

const (
	// idle: the last read found nothing; wait for the feed to change.
	idle streamState = iota
	// paused: the last read sent a message; wait for the pacer's next
	// tick, to gather the changes made meanwhile into one message.
	paused
	// behind: the last read stopped at Batch events before the tick's
	// revision; read on at once.
	behind
)

// writeError is a failed write to the client: the connection is dropped
// without a close message, as the client is gone or not reading.
type writeError struct{ error }

// run streams the changes st.w reads (or reports werr, the error taking the
// watcher gave) until the client goes or the stream is cut off.
func (st *stream) run(ctx context.Context, werr error) {
	defer st.conn.Close()
	st.h.streams.Add(1)
	defer st.h.streams.Add(-1)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go st.readLoop(cancel)

	if werr != nil {
		st.fail(werr)
		return
	}
	if err := st.writeProgress(st.seen); err != nil {
		return
	}
	opts := st.h.opts
	now := time.Now()
	nextPing, nextProgress := now.Add(opts.PingInterval), now.Add(opts.ProgressInterval)
	for {
		// Send changes until a ping or progress message is due.
		due := nextPing
		if nextProgress.Before(due) {
			due = nextProgress
		}
		if opts.Leaderless != nil {
			if opts.Leaderless() {
				st.closeWith(websocket.CloseTryAgainLater, "", "no leader; connect to another member", "")
				return
			}
			if check := time.Now().Add(opts.LeaderlessCheck); check.Before(due) {
				due = check
			}
		}
		dueCtx, stop := context.WithDeadline(ctx, due)
		err := st.pump(dueCtx)
		stop()
		if errors.As(err, new(writeError)) {
			return
		}
		if ctx.Err() != nil || !errors.Is(err, context.DeadlineExceeded) {
			st.fail(cmp.Or(ctx.Err(), err))
			return
		}
		now := time.Now()
		if !now.Before(nextPing) {
			if err := st.conn.WriteControl(websocket.PingMessage, nil, now.Add(opts.WriteTimeout)); err != nil {
				return
			}
			nextPing = now.Add(opts.PingInterval)
		}
		if !now.Before(nextProgress) {
			if err := st.writeProgress(st.seen); err != nil {
				return
			}
			nextProgress = now.Add(opts.ProgressInterval)
		}
	}
}

// pump reads the feed and sends what it finds until ctx ends (its error is
// then returned) or the stream must stop.
func (st *stream) pump(ctx context.Context) error {
	for {
		r, err := st.next(ctx)
		if err == nil {
			err = r.err
		}
		if err != nil {
			return err
		}
		if err := st.writeRead(r); err != nil {
			return writeError{err}
		}
		st.advance(r)
		// A read does not look at ctx while there are changes: under
		// steady traffic, pings and progress would never be due.
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// next waits as st.state says, then reads the feed up to its tick.
func (st *stream) next(ctx context.Context) (*feedRead, error) {
	switch st.state {
	case idle:
		if err := st.w.Wait(ctx); err != nil {
			return nil, err
		}
		st.tick = st.h.pacer.now(st.seen)
	case paused:
		t := st.h.pacer.wait(ctx, st.h.coalesce())
		if t == nil {
			return nil, ctx.Err()
		}
		st.tick = t
	}
	return st.tick.read(st), nil
}

// advance records what a read sent and chooses what to wait for next.
func (st *stream) advance(r *feedRead) {
	if r.n >= st.h.opts.Batch {
		st.seen, st.state = max(st.seen, r.lastRev), behind
		return
	}
	st.seen = max(st.seen, r.rev)
	st.tick = nil // the next wait gives the next tick; keep none meanwhile
	if r.n > 0 && st.h.opts.Coalesce > 0 {
		st.state = paused
	} else {
		// Nothing found, or no pause: read again once there is more,
		// which with no pause may be at once.
		st.state = idle
	}
}

// feedRead is one read of the feed, encoded as the messages to send.
type feedRead struct {
	rev     int64 // the read took every change up to rev, unless n reached Batch
	n       int   // events read
	lastRev int64 // the last event's revision
	end     int64 // the watcher's position after the read
	// msgs are framed once for all the streams that share the read, each
	// of which then writes the frames as they are.
	msgs []*websocket.PreparedMessage
	size int   // the bytes of msgs' payloads
	err  error // the read's error, for the streams that share it
}

// writeRead sends the messages of r.
func (st *stream) writeRead(r *feedRead) error {
	for _, msg := range r.msgs {
		if err := st.conn.SetWriteDeadline(time.Now().Add(st.h.opts.WriteTimeout)); err != nil {
			return err
		}
		if err := st.conn.WritePreparedMessage(msg); err != nil {
			return err
		}
	}
	return nil
}

// read reads the events up to rev (at most Batch of them) and encodes them.
func (st *stream) read(rev int64) *feedRead {
	events, err := st.w.Read(rev, st.h.opts.Batch)
	r := &feedRead{rev: rev, n: len(events), end: st.w.Pos(), err: err}
	if len(events) == 0 {
		return r
	}
	r.lastRev = events[len(events)-1].Rev
	for _, b := range encodeEvents(events, st.withPrev, st.h.opts.MessageBytes) {
		r.size += len(b)
		msg, err := websocket.NewPreparedMessage(websocket.TextMessage, b)
		if err != nil {
			r.err = err
			break
		}
		r.msgs = append(r.msgs, msg)
	}
	return r
}

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
func (t *tick) read(st *stream) *feedRead {
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

// readLoop reads what the client sends: pongs extend the read deadline, a
// close frame is answered (by the default close handler) and ends the loop,
// data messages are discarded. It cancels the stream when it returns.
func (st *stream) readLoop(cancel context.CancelFunc) {
	defer cancel()
	defer close(st.readDone) // before cancel: the writer then knows why it stops
	c := st.conn
	wait := st.h.opts.PingInterval + st.h.opts.PongTimeout
	c.SetReadLimit(st.h.opts.ReadLimit)
	_ = c.SetReadDeadline(time.Now().Add(wait))
	c.SetPongHandler(func(string) error { return c.SetReadDeadline(time.Now().Add(wait)) })
	for {
		if _, _, err := c.NextReader(); err != nil {
			return
		}
	}
}

// fail ends the stream for err: a compacted message and close for history
// that is gone, a going-away close when the store or request ends, nothing
// when the client is gone already.
func (st *stream) fail(err error) {
	select {
	case <-st.readDone:
		return // the client left; nobody to tell
	default:
	}
	switch {
	case errors.Is(err, engine.ErrCompacted):
		st.closeWith(CloseCompacted, "compacted", "history compacted; resync",
			"The revision asked for is older than the history this server keeps. Reload the keys and watch from the revision they report.")
	case errors.Is(err, engine.ErrLagged):
		st.closeWith(CloseLagged, "lagged", "client too slow; resync",
			"The stream fell too far behind and was cut off. Reload the keys and watch from the revision they report.")
	default: // engine.ErrClosed or the request's context: the server is going away
		st.closeWith(websocket.CloseGoingAway, "", "server shutting down", "")
	}
}

// closeWith sends a compacted message (when reason is set), then a close
// frame, and waits a moment for the client's answer.
func (st *stream) closeWith(code int, reason, text, message string) {
	if reason != "" {
		st.buf = codec.AppendStringField(st.buf[:0], '{', "type", "compacted", false)
		st.buf = codec.AppendRev(st.buf, ',', st.h.store.Rev())
		st.buf = codec.AppendStringField(st.buf, ',', "reason", reason, false)
		st.buf = codec.AppendStringField(st.buf, ',', "message", message, false)
		st.buf = append(st.buf, '}')
		if err := st.writeMessage(st.buf); err != nil {
			return
		}
	}
	deadline := time.Now().Add(st.h.opts.WriteTimeout)
	if err := st.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, text), deadline); err != nil {
		return
	}
	select {
	case <-st.readDone:
	case <-time.After(watchCloseGrace):
	}
}

func (st *stream) writeProgress(rev int64) error {
	st.buf = codec.AppendStringField(st.buf[:0], '{', "type", "progress", false)
	st.buf = codec.AppendRev(st.buf, ',', rev)
	st.buf = append(st.buf, '}')
	return st.writeMessage(st.buf)
}

// encodeEvents encodes events as one events message, or as several split
// at revision boundaries once a message passes limit bytes.
func encodeEvents(events []engine.Event, withPrev bool, limit int) [][]byte {
	var msgs [][]byte
	var b []byte
	for i := range events {
		if b != nil && events[i].Rev != events[i-1].Rev && len(b) >= limit {
			msgs = append(msgs, endEvents(b, events[i-1].Rev))
			b = nil
		}
		if b == nil {
			b = make([]byte, 0, min(limit, encodedSize(events[i:], withPrev)))
			b = append(b, `{"type":"events","events":[`...)
		} else {
			b = append(b, ',')
		}
		b = appendEvent(b, &events[i], withPrev)
	}
	return append(msgs, endEvents(b, events[len(events)-1].Rev))
}

// encodedSize estimates the size of events encoded, to size the buffer.
func encodedSize(events []engine.Event, withPrev bool) int {
	n := 64
	for i := range events {
		ev := &events[i]
		n += len(ev.Key) + 96
		if ev.Entry != nil {
			n += len(ev.Entry.Value)
		}
		if withPrev && ev.Prev != nil {
			n += len(ev.Prev.Value) + 16
		}
	}
	return n
}

// endEvents closes an events message with its rev.
func endEvents(b []byte, rev int64) []byte {
	b = append(b, ']')
	b = codec.AppendRev(b, ',', rev)
	return append(b, '}')
}

func (st *stream) writeMessage(msg []byte) error {
	if err := st.conn.SetWriteDeadline(time.Now().Add(st.h.opts.WriteTimeout)); err != nil {
		return err
	}
	return st.conn.WriteMessage(websocket.TextMessage, msg)
}

// appendEvent appends ev as a JSON object. It is written by hand rather than
// with encoding/json because every subscriber encodes every event: at
// thousands of writes a second and a hundred subscribers that is most of the
// stream's CPU time.
func appendEvent(b []byte, ev *engine.Event, withPrev bool) []byte {
	b = codec.AppendStringField(b, '{', "type", string(ev.Type), false)
	b = codec.AppendKey(b, ',', ev.Key, false)
	if e := ev.Entry; e != nil {
		b = codec.AppendValue(b, ',', e.Value, false)
	}
	b = codec.AppendRev(b, ',', ev.Rev)
	if e := ev.Entry; e != nil {
		b = codec.AppendCreateRev(b, ',', e.CreateRev)
		b = codec.AppendVersion(b, ',', e.Version)
		b = codec.AppendExpiresAt(b, ',', e.ExpiresAt)
	}
	if withPrev && ev.Prev != nil {
		b = codec.AppendStringField(b, ',', "prev_value", ev.Prev.Value, false)
	}
	return append(b, '}')
}

// appendJSONString appends s as a JSON string, HTML characters left as
// they are like the rest of the API's JSON (see codec.AppendJSONString).
func appendJSONString(b []byte, s string) []byte { return codec.AppendJSONString(b, s, false) }

// coalesce returns how long a caught-up stream pauses after a message:
// Options.Coalesce, longer when many streams are open (see
// watchCoalescePerStream).
func (h *watchHandler) coalesce() time.Duration {
	d := h.opts.Coalesce
	if h.opts.adaptive {
		d = max(d, min(time.Duration(h.streams.Load())*watchCoalescePerStream, watchCoalesceMax))
	}
	return d
}

package web

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/pykv/pykv/engine"
)

// Defaults for the zero values of WatchOptions. The timing constants follow
// one rule: a peer that stops answering is noticed PongTimeout after the
// next ping (due PingInterval after the last one, later only while a write
// is under way, which WriteTimeout bounds), and a peer that stops reading
// within WriteTimeout, so a dead connection never holds a goroutine and a
// watcher for long.
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
			p := newProblem(status, "Cannot open a watch stream: "+reason.Error()+".")
			if status == http.StatusForbidden { // the upgrader's origin check
				p = crossOriginProblem(p.Detail)
			}
			writeProblem(w, p)
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
		writeProblem(w, crossOriginProblem(
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
	// Only now, with the upgrade done, are the server's read and write
	// timeouts lifted: the stream keeps its own deadlines from here on
	// (pongs, writes). Lifted before, a request that is not an upgrade and
	// announces a body it never sends would hold its connection for good.
	_ = conn.NetConn().SetDeadline(time.Time{})
	st := &watchConn{
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

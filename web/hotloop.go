package web

// The connection loop: HTTP/1.1 keep-alive connections served without
// net/http for the store's hot path, GET and PUT /v1/kv/{key}.
//
// A connection's requests are read into its buffer; every complete
// request the buffer holds (a pipelined batch; the parser is hotparse.go)
// is taken and answered in order into one output buffer, written in one
// write (or every 64 KiB). Who reads and answers: on a single node on
// Linux, the poller (hotpoll_linux.go), one thread serving every idle
// connection from epoll, which commits all their PUTs together in line
// (engine.Batch: one log write and fdatasync); for what must wait (a
// request not all read, an answer the socket does not take at once, a
// cluster's writes), the connection's own goroutine, which gives it back
// to the poller once idle. On the goroutine, a batch's PUTs are submitted
// to the committer together (engine.Store.Submit), so they share a group
// and its fsync; on a cluster's leader, to the log
// (cluster.Node.SubmitWrite), so they can share a log entry. A GET waits
// for the writes before it. The
// common answers (a value found, a write done) are written by the loop
// itself, byte for byte what the handlers answer; every other answer to a
// request it parsed (a missing key, a bad key, a refused token or Host, a
// value too large, a refused write, a follower's write, which the chain
// forwards to the leader) is rendered by the handler chain itself, run on
// the same bytes read with http.ReadRequest, into a recorder: the same
// status, headers, body and metrics. What the parser does not take (other
// routes and methods, queries, escapes, cookies, conditional or content-
// negotiation headers, Expect, Transfer-Encoding, HTTP/1.0, oversized
// heads) hands the connection, with the bytes not yet answered, to the
// http.Server, which serves it from then on exactly as without the loop.
//
// It keeps the http.Server's limits: ReadHeaderTimeout from a request's
// first byte to the end of its head, ReadTimeout to the end of its body,
// IdleTimeout between requests, WriteTimeout for the answers of a batch,
// MaxHeaderBytes. A panic is logged with its stack and closes only its
// connection. Shutdown closes idle connections and waits for batches in
// progress to be answered.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/pykv/pykv/engine"
	"github.com/pykv/pykv/persist/cluster"
)

const (
	// hotBufSize is a connection's read and output buffer to begin with,
	// and what they shrink back to after a big request or answer.
	hotBufSize = 4096
	// hotFlushBytes is how much answer output a batch gathers before it is
	// written: pipelined GETs of big values must not build a big buffer.
	hotFlushBytes = 64 << 10
	// hotBufSlack is room in the read buffer beyond the largest request
	// (head and value), for the start of the next pipelined one.
	hotBufSlack = 4096
	// deadlineSlack is how far the deadline set on the connection may come
	// before the one wanted without being moved: setting one per request
	// costs a timer update. One that fires early is not a timeout: the
	// read or write sets the wanted one then and goes on (expired), so
	// every timeout is exact. A deadline that should come sooner is
	// always set at once.
	deadlineSlack = time.Second
	// maxPostHandlerRead is net/http's maxPostHandlerReadBytes: a
	// connection whose handler left more request body than this unread is
	// closed rather than read on to the next request.
	maxPostHandlerRead = 256 << 10
	// lingerTime is how long a connection closed with request bytes unread
	// is drained first, so the kernel does not reset it (losing the
	// answer) before the client read it; net/http waits as long.
	lingerTime = 500 * time.Millisecond
	// chunkingThreshold is net/http's bufferBeforeChunkingSize: an answer
	// without a Content-Length whose body is longer goes out chunked.
	chunkingThreshold = 2048
	// maxHandovers is how many times in a row the poller may hand a
	// connection to its goroutine (see hotpoll_linux.go) before the
	// goroutine keeps it for good: a client whose every request comes in
	// pieces would otherwise cost a trip off and back onto Go's netpoller
	// per request.
	maxHandovers = 4
)

// hotLimits are the http.Server's limits the loop keeps (see NewHotLoop).
type hotLimits struct {
	Idle, Header, Read, Write time.Duration
	MaxHeaderBytes            int
}

// HotLoop serves GET and PUT /v1/kv/{key} on its own connection loop and
// hands every other request to an http.Server (see the file comment).
// Make one with NewHotLoop; Serve, Shutdown and Close are the
// http.Server's.
type HotLoop struct {
	s   *server
	h   http.Handler // the whole API: what renders every answer but the two common ones
	srv *http.Server // serves the connections handed over
	t   hotLimits
	// handAll makes the loop hand every connection to srv: with the debug
	// access log (one line per request, which the loop does not write).
	handAll bool
	// pollable: connections may be served by the poller (hotpoll_linux.go),
	// started by the first Serve: on a single node, without handAll or
	// Options.NoPoller.
	pollable bool
	poller   *hotPoller // guarded by mu; nil until Serve, or without one

	handoff  chan net.Conn
	done     chan struct{} // closed when srv stops taking connections
	doneOnce sync.Once

	shutting atomic.Bool
	mu       sync.Mutex
	ln       net.Listener
	conns    map[*hotConn]struct{}

	// hook, when set (tests), runs before each request the loop answers.
	hook func(cn *hotConn, r *hotReq)
	// handoffs counts the connections handed to the http.Server (tests).
	handoffs atomic.Int64
	// skipLeaderCheck, when set (tests), makes a follower submit PUTs as
	// the leader does: they fail as a leader's do that lost leadership
	// between the check and the proposal.
	skipLeaderCheck bool
}

// NewHotLoop returns the loop serving opts's API with srv: it sets
// srv.Handler to the API's handler (the same server state as the loop's:
// sessions, wrong-token limits, metrics) and takes srv's timeouts and
// MaxHeaderBytes as its own. Serve the listener with the loop's Serve,
// not srv's; stop it with the loop's Shutdown or Close, which stop srv
// too. It panics if opts.Store is nil, as NewServer does.
func NewHotLoop(opts Options, srv *http.Server) *HotLoop {
	s := buildServer(opts, false)
	srv.Handler = s.routes()
	t := hotLimits{Idle: srv.IdleTimeout, Header: srv.ReadHeaderTimeout, Read: srv.ReadTimeout,
		Write: srv.WriteTimeout, MaxHeaderBytes: srv.MaxHeaderBytes}
	// As http.Server: no IdleTimeout means ReadTimeout, no
	// ReadHeaderTimeout means ReadTimeout.
	if t.Idle <= 0 {
		t.Idle = t.Read
	}
	if t.Header <= 0 {
		t.Header = t.Read
	}
	if t.MaxHeaderBytes <= 0 {
		t.MaxHeaderBytes = http.DefaultMaxHeaderBytes
	}
	return &HotLoop{s: s, h: srv.Handler, srv: srv, t: t,
		handAll:  s.log.Enabled(context.Background(), slog.LevelDebug),
		pollable: s.cluster == nil && !opts.NoPoller && !s.log.Enabled(context.Background(), slog.LevelDebug),
		handoff:  make(chan net.Conn), done: make(chan struct{}), conns: map[*hotConn]struct{}{}}
}

// Serve accepts connections on ln until it fails or the loop is shut
// down, serving the hot routes itself and handing the rest to the
// http.Server, which Serve runs meanwhile. Like http.Server.Serve it
// returns http.ErrServerClosed after Shutdown or Close, and retries
// temporary accept errors (too many open files) with a growing pause.
func (l *HotLoop) Serve(ln net.Listener) error {
	l.mu.Lock()
	if l.shutting.Load() {
		l.mu.Unlock()
		return http.ErrServerClosed
	}
	l.ln = ln
	if l.pollable && l.poller == nil {
		if l.poller = newHotPoller(l); l.poller != nil {
			l.s.log.Info("hot loop: idle connections are served by the poller, one epoll thread")
			go l.poller.run()
		}
	}
	poller := l.poller
	l.mu.Unlock()
	go func() { _ = l.srv.Serve(&handoffListener{l: l, addr: ln.Addr()}) }()
	var pause time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if l.shutting.Load() {
				return http.ErrServerClosed
			}
			if ne, ok := err.(net.Error); ok && ne.Timeout() || isTemporary(err) {
				pause = min(max(2*pause, 5*time.Millisecond), time.Second)
				l.s.log.Warn("accept failed; retrying", "err", err, "pause", pause)
				time.Sleep(pause)
				continue
			}
			l.closeHandoff()
			return err
		}
		pause = 0
		if l.handAll {
			go l.handOff(c, nil)
			continue
		}
		cn := &hotConn{l: l, c: c, idle: true, fd: -1, putsFrom: -1, resumeAt: -1, home: poller}
		if !l.track(cn) {
			c.Close()
			continue
		}
		cn.setup()
		if poller != nil && poller.adopt(cn) {
			continue
		}
		go cn.serveFrom(hotStep{})
	}
}

// isTemporary reports whether an accept error is one to retry (EMFILE,
// ECONNABORTED), as http.Server does.
func isTemporary(err error) bool {
	var te interface{ Temporary() bool }
	return errors.As(err, &te) && te.Temporary()
}

// track adds cn to the connections Shutdown closes or waits for; false
// once shutting down.
func (l *HotLoop) track(cn *hotConn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.shutting.Load() {
		return false
	}
	l.conns[cn] = struct{}{}
	return true
}

func (l *HotLoop) untrack(cn *hotConn) {
	l.mu.Lock()
	delete(l.conns, cn)
	l.mu.Unlock()
}

// Shutdown stops the loop as http.Server.Shutdown does, and the
// http.Server with it: the listener is closed, idle connections are
// closed, and a connection in the middle of a request or batch is closed
// once its answers are written (its submitted writes awaited). It returns
// when every connection is closed, or ctx's error once ctx ends first
// (Close then cuts what is left). Call it before closing the store.
func (l *HotLoop) Shutdown(ctx context.Context) error {
	l.stopAccepting()
	srvErr := make(chan error, 1)
	go func() { srvErr <- l.srv.Shutdown(ctx) }()
	poll := time.Millisecond
	for l.closeIdle() > 0 {
		select {
		case <-ctx.Done():
			return errors.Join(ctx.Err(), <-srvErr)
		case <-time.After(poll):
		}
		poll = min(2*poll, 100*time.Millisecond)
	}
	return <-srvErr
}

// Close closes the listener, the http.Server and every connection at once,
// as http.Server.Close does: a batch in progress is cut off (its submitted
// writes still complete in the store, unanswered).
func (l *HotLoop) Close() error {
	l.stopAccepting()
	err := l.srv.Close()
	l.mu.Lock()
	for cn := range l.conns {
		cn.close()
	}
	l.mu.Unlock()
	return err
}

func (l *HotLoop) stopAccepting() {
	l.mu.Lock()
	l.shutting.Store(true)
	ln, poller := l.ln, l.poller
	l.mu.Unlock()
	if poller != nil {
		poller.wake() // it closes its idle connections and stops
	}
	if ln != nil {
		_ = ln.Close()
	}
}

// closeIdle closes the loop's idle connections and returns how many are
// still busy.
func (l *HotLoop) closeIdle() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	busy := 0
	for cn := range l.conns {
		cn.mu.Lock()
		if cn.idle {
			cn.closeLocked()
		} else {
			busy++
		}
		cn.mu.Unlock()
	}
	return busy
}

// handoffListener is what the http.Server serves: the connections the loop
// hands over.
type handoffListener struct {
	l    *HotLoop
	addr net.Addr
}

func (h *handoffListener) Accept() (net.Conn, error) {
	select {
	case c := <-h.l.handoff:
		return c, nil
	case <-h.l.done:
		return nil, net.ErrClosed
	}
}

func (h *handoffListener) Close() error   { h.l.closeHandoff(); return nil }
func (h *handoffListener) Addr() net.Addr { return h.addr }

func (l *HotLoop) closeHandoff() { l.doneOnce.Do(func() { close(l.done) }) }

// prefixConn is a connection whose first reads return bytes the loop had
// already read from it.
type prefixConn struct {
	net.Conn
	pending []byte
}

func (c *prefixConn) Read(b []byte) (int, error) {
	if len(c.pending) > 0 {
		n := copy(b, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	}
	return c.Conn.Read(b)
}

// handOff gives c to the http.Server, with pending, bytes read from it and
// not answered, to be read first. The deadlines are the server's to set.
func (l *HotLoop) handOff(c net.Conn, pending []byte) {
	l.handoffs.Add(1)
	_ = c.SetDeadline(time.Time{})
	if len(pending) > 0 {
		c = &prefixConn{Conn: c, pending: bytes.Clone(pending)}
	}
	select {
	case l.handoff <- c:
	case <-l.done:
		c.Close()
	}
}

// ConnWrapper is a net.Conn around another connection to the same socket,
// as a listener's wrappers are (a connection limit, ProblemListener). The
// poller (hotpoll_linux.go) looks through them (NetConn) for the
// *net.TCPConn to take the socket from, and when it gives the socket back
// as a new net.Conn, wraps that in each of them again (Rewrap): the new
// wrapper must share the old one's state (a connection limit's slot,
// given back once, when either is closed). A connection behind a wrapper
// that is not a ConnWrapper stays with its goroutine.
type ConnWrapper interface {
	net.Conn
	NetConn() net.Conn
	Rewrap(net.Conn) net.Conn
}

// hotReq is one parsed request. The first fields are the parser's.
type hotReq struct {
	put       bool
	key       string
	host      string // points into the read buffer, as token does
	token     string // points into the read buffer: used before it moves (then cleared)
	hasAuth   bool
	bodyLen   int
	closeConn bool
	local     bool // ?consistency=local: cluster mode reads the member's own copy

	at    int  // its offset in the read buffer
	n     int  // its length in the buffer: all of it, or (short) the bytes there
	fast  bool // Host and token allow it (see fastAllowed): the loop may answer it itself
	short bool // its body is not all read: answered from the head, the rest read from the connection
	head  int  // a short request's head length

	start   time.Time
	pending engine.Pending
	group   int64 // in the poller: the group its write joined (see hotPoller.groups)
	// raftPut, in cluster mode, is the leader's submitted write (pending
	// is the single node's).
	raftPut *cluster.PendingWrite
}

// hotConn is one connection served by the loop: by its own goroutine, or
// by the poller (poll set), which hands it to a goroutine for what it does
// not do itself and takes it back once it is idle.
type hotConn struct {
	l      *HotLoop
	c      net.Conn // in the poller: the wrappers around a closed net.Conn, for addresses and Close
	local  netip.Addr
	remote netip.Addr
	ctx    context.Context // for requests rendered by the handlers; made on first use

	mu     sync.Mutex
	idle   bool // waiting for a request with nothing read: Shutdown may close it
	closed bool

	buf, out []byte
	batch    []hotReq
	maxValue int
	// reqStart is when the first byte of the first request not yet taken
	// arrived; batchStart when the batch being answered began.
	reqStart, batchStart time.Time
	lastRead             time.Time // when the last read returned
	readDL, writeDL      time.Time // the deadlines set on the connection
	readWant, writeWant  time.Time // the deadlines wanted: at or after those set
	dead                 bool      // a write failed: stop
	closeAfter           bool      // close once the batch is answered
	handOffAt            int       // >= 0: hand off from this offset after the batch

	// tail is the rest of a big value to write after out (not copied).
	tail string

	// The poller's (see hotpoll_linux.go); poll and fd change under mu.
	home       *hotPoller // the loop's poller, to go back to when idle; nil without one
	poll       *hotPoller
	fd         int           // the socket, while poll is set; else -1
	wrappers   []ConnWrapper // c's, to wrap the socket in again
	putsFrom   int           // >= 0: the batch's PUTs from here wait for the poller's commit
	resumeAt   int           // >= 0: answering stopped here, for the goroutine to go on
	step       hotStep       // the batch waiting for the commit
	more       bool          // may have more to read than read
	hup        bool          // epoll saw the client's end (or an error): read until it shows
	lastActive time.Time     // its last answer (IdleTimeout)
	pollRound  int64         // the poller's last group it wrote in
	handovers  int           // poller to goroutine in a row, with no batch the poller finished between
}

// hotStep is where a connection's loop goes on from (see run).
type hotStep struct {
	answered   bool // the batch taken (used, need, headDone) is answered
	used, need int
	headDone   bool
}

func (cn *hotConn) close() {
	cn.mu.Lock()
	cn.closeLocked()
	cn.mu.Unlock()
}

func (cn *hotConn) closeLocked() {
	if !cn.closed {
		cn.closed = true
		if cn.poll != nil {
			shutSocket(cn) // the poller closes it, seeing it shut
			return
		}
		_ = cn.c.Close()
	}
}

// setIdle marks whether the connection waits for a request with nothing
// read. It returns false when the connection was closed (by Shutdown or
// Close), or is being marked idle while the loop shuts down.
func (cn *hotConn) setIdle(idle bool) bool {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	if idle && cn.l.shutting.Load() {
		cn.closeLocked()
	}
	cn.idle = idle
	return !cn.closed
}

// setup readies a new connection's buffers and addresses.
func (cn *hotConn) setup() {
	cn.local, cn.remote = addrIP(cn.c.LocalAddr()), addrIP(cn.c.RemoteAddr())
	_, cn.maxValue, _ = cn.l.s.store.Limits()
	cn.buf = make([]byte, 0, hotBufSize)
	cn.out = make([]byte, 0, hotBufSize)
}

// serveFrom runs the connection's loop on its goroutine from step (see
// run), until the connection closes, goes to net/http or to the poller. A
// panic closes the connection only.
func (cn *hotConn) serveFrom(step hotStep) {
	l := cn.l
	polled := false
	defer func() {
		if !polled {
			l.untrack(cn)
		}
	}()
	defer func() {
		if v := recover(); v != nil {
			if v != http.ErrAbortHandler {
				l.s.log.Error("panic serving a connection; it is closed", "remote", cn.c.RemoteAddr().String(),
					"panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			}
			cn.close()
		}
	}()
	polled = cn.run(step)
}

// run is the connection's loop: read; take every complete request in the
// buffer; answer them; repeat. It goes on from step: a batch the poller
// took and answered (all of it, or up to resumeAt) is finished first. It
// returns true when it gave the connection to the poller.
func (cn *hotConn) run(step hotStep) bool {
	l := cn.l
	for {
		used, need, headDone := step.used, step.need, step.headDone
		switch {
		case !step.answered:
			used, need, headDone = cn.take()
			cn.handOffAt = -1
			if len(cn.batch) > 0 {
				cn.answer(0)
			}
		case cn.resumeAt >= 0:
			if cn.tail != "" && !cn.flush() { // what the poller began to write goes first
				cn.close()
				return false
			}
			cn.answer(cn.resumeAt)
		}
		step = hotStep{}
		if cn.dead {
			cn.close()
			return false
		}
		if cn.handOffAt >= 0 {
			if !cn.flush() {
				cn.close()
				return false
			}
			cn.untrackForHandOff()
			l.handOff(cn.c, cn.buf[cn.handOffAt:])
			return false
		}
		if !cn.flush() {
			cn.close()
			return false
		}
		if cn.closeAfter {
			cn.linger(cn.lastShort())
			return false
		}
		cn.shrinkOut()
		// Keep what is left: the start of the next request. Its timeouts
		// count from now, when the loop begins to wait for the rest of it
		// (as net/http's from when it begins to read a request), not from
		// the read that brought its start: answering those before it may
		// have taken longer than ReadHeaderTimeout (a client slow to read
		// a big answer), and a deadline already past would close the
		// connection with the rest of the request unread.
		if used > 0 {
			cn.buf = cn.buf[:copy(cn.buf, cn.buf[used:])]
			cn.reqStart = time.Now()
		}
		if l.shutting.Load() {
			cn.close() // after answering: the requests not begun are not taken
			return false
		}
		switch {
		case need > cap(cn.buf):
			cn.grow(need)
		case len(cn.buf) == cap(cn.buf):
			cn.grow(2 * cap(cn.buf))
		case cap(cn.buf) > hotBufSize && len(cn.buf) < hotBufSize && need <= hotBufSize:
			cn.buf = append(make([]byte, 0, hotBufSize), cn.buf...) // shrink back after a big request
		}
		if len(cn.buf) == cap(cn.buf) {
			// A head that fills the largest buffer: parse hands heads
			// over MaxHeaderBytes to net/http first, so this is only a
			// safeguard.
			cn.untrackForHandOff()
			l.handOff(cn.c, cn.buf)
			return false
		}
		if len(cn.buf) == 0 && cn.home != nil && cn.handovers < maxHandovers && cn.home.adopt(cn) {
			return true // idle: the poller waits for its next request
		}
		if !cn.read(headDone) {
			cn.close()
			return false
		}
	}
}

// lastShort reports whether the batch ended with a request whose body was
// not all read.
func (cn *hotConn) lastShort() bool {
	return len(cn.batch) > 0 && cn.batch[len(cn.batch)-1].short
}

// untrackForHandOff removes the connection from the loop's: it is the
// http.Server's from now on (its Shutdown waits for it).
func (cn *hotConn) untrackForHandOff() {
	cn.l.untrack(cn)
	cn.mu.Lock()
	cn.closed = true // not by the loop: the server owns it now
	cn.mu.Unlock()
}

// take parses the requests the buffer holds into cn.batch. It returns how
// many bytes they take, how big the buffer must be for the request begun
// after them, counted from its start (0: unknown yet), and whether that
// request's head is complete (its body is what is awaited).
func (cn *hotConn) take() (used, need int, headDone bool) {
	l := cn.l
	if cap(cn.batch) > 256 {
		cn.batch = nil // a burst's array is not kept for good
	}
	cn.batch = cn.batch[:0]
	cn.closeAfter = false
	for used < len(cn.buf) {
		r := hotReq{at: used}
		n, st := parseHot(cn.buf[used:], l.t.MaxHeaderBytes, &r)
		switch st {
		case parseHandOff:
			cn.batch = append(cn.batch, hotReq{at: used, n: -1}) // hand off from here
			return used, 0, false
		case parseShort:
			if n == 0 {
				return used, 0, false // the head is still coming
			}
			// The head is complete (n is the whole request's length), the
			// body is not: wait for it only when the loop will take it.
			if cn.fastAllowed(&r) && r.bodyLen <= cn.maxValue {
				return used, n + hotBufSlack, true
			}
			// Refused, or too large: answered from the head now (the
			// handlers refuse before reading the body, and stop reading
			// at the limit), the rest of the body read from the
			// connection as net/http reads it (see renderByHandler).
			r.short, r.n, r.head = true, len(cn.buf)-used, n-r.bodyLen
			cn.batch = append(cn.batch, r)
			return len(cn.buf), 0, false
		}
		r.n = n
		cn.batch = append(cn.batch, r)
		used += n
		if r.closeConn {
			cn.closeAfter = true
			break
		}
	}
	return used, 0, false
}

// fastAllowed reports whether the chain's checks would let r through to
// its handler: the Host as checkHost (hostNameAllowed, the one
// implementation), the token as authenticate, without a rate limit in
// force for the client. A request they refuse is answered by the chain
// itself (renderByHandler): 421, 401, 403, 429, rate limit counted.
func (cn *hotConn) fastAllowed(r *hotReq) bool {
	s := cn.l.s
	if !s.hosts.hostNameAllowed(r.host, cn.local) {
		return false
	}
	if !s.authEnabled() {
		return true
	}
	if !r.hasAuth || (!s.failures.none() && s.failures.wait(cn.remote) > 0) {
		return false
	}
	switch s.scopeOf(trimSpace(r.token)) {
	case scopeWrite:
		return true
	case scopeRead:
		return !r.put
	}
	return false
}

// trimSpace is strings.TrimSpace for the ASCII spaces a header may hold.
func trimSpace(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// answer answers cn.batch from start in order into cn.out. A fast PUT is
// submitted as it comes and answered when the next request that reads (or
// the end of the batch) is reached, so that the PUTs between two reads
// share a group, a GET sees every write before it and none after.
//
// In the poller, answering stops where it would have to wait: the PUTs
// submitted (from putsFrom) wait for the poller's commit, and a request
// after them (resumeAt) is answered once they are; and once the socket has
// not taken what was gathered (hotFlushBytes, or a big value's tail), the
// rest is for the connection's goroutine, which may wait for the client
// to read.
func (cn *hotConn) answer(start int) {
	l := cn.l
	cn.batchStart = time.Now()
	cn.resumeAt = -1
	from := start // the first PUT submitted and not answered
	for i := start; i < len(cn.batch); i++ {
		r := &cn.batch[i]
		if r.n < 0 {
			if cn.answerPuts(from, i) {
				cn.handOffAt = r.at
			}
			return
		}
		// Checked now, not as parsed: a wrong token earlier in the batch
		// may have brought the client's rate limit into force.
		r.fast = !r.short && cn.fastAllowed(r)
		if cn.poll != nil && (len(cn.out) >= hotFlushBytes || cn.tail != "" ||
			i > from && !(r.put && r.fast && r.bodyLen <= cn.maxValue)) {
			cn.resumeAt = i // checked again then (the buffer is kept)
			if i > from {
				cn.putsFrom = from
			}
			return
		}
		if l.hook != nil {
			l.hook(cn, r)
		}
		r.start = time.Now()
		r.token, r.host = "", "" // they point into the buffer
		if r.put && r.fast && r.bodyLen <= cn.maxValue && cn.submit(r) {
			continue
		}
		if !cn.answerPuts(from, i) {
			return
		}
		from = i + 1
		if !r.put && r.fast {
			if done := cn.get(r); done {
				continue
			}
		}
		ok, closing := cn.renderByHandler(r)
		if !ok {
			cn.handOffAt = r.at
			return
		}
		if closing {
			cn.closeAfter = true
			cn.batch = cn.batch[:i+1] // the rest is not taken
			return
		}
		if cn.dead {
			return
		}
	}
	if cn.poll != nil && from < len(cn.batch) {
		cn.putsFrom = from // submitted PUTs: answered after the poller's commit
		return
	}
	cn.answerPuts(from, len(cn.batch))
}

// get answers a fast GET of a key that exists, as the chain does: on a
// single node from the store (which has no consistency levels); in
// cluster mode, with the revision the read reflects, from the member's own
// copy for ?consistency=local and otherwise on the leader after the
// linearizable read's confirmation (consistent's). It returns false,
// having answered nothing, for what the chain should answer: a missing key
// (404), and a follower's linearizable read (it asks the leader for a read
// index with the client's credentials).
func (cn *hotConn) get(r *hotReq) bool {
	s := cn.l.s
	if s.cluster == nil {
		e, err := s.store.Get(r.key)
		if err != nil {
			return false
		}
		cn.appendGet(r, &e, -1)
		return true
	}
	if !r.local {
		node := s.cluster.node
		if !node.IsLeader() {
			return false
		}
		if _, err := node.Linearize(cn.context()); err != nil {
			cn.renderError(r, err)
			return true
		}
	}
	rev := s.store.Rev()
	e, err := s.store.Get(r.key)
	if err != nil {
		return false
	}
	cn.appendGet(r, &e, rev)
	return true
}

// submit submits a fast PUT's write, which answerPut answers: to the
// store's committer on a single node, to the log on the leader. On a
// follower it submits nothing and returns false: the chain forwards the
// write to the leader (toLeader).
func (cn *hotConn) submit(r *hotReq) bool {
	s := cn.l.s
	if s.cluster != nil && !cn.l.skipLeaderCheck && !s.cluster.node.IsLeader() {
		return false
	}
	op := engine.Op{Type: engine.OpPut, Key: r.key, Value: string(cn.buf[r.at+r.n-r.bodyLen : r.at+r.n])}
	switch {
	case cn.poll != nil:
		r.pending = cn.poll.batch.Submit(op)
		r.group = cn.poll.groups.Load() + 1
	case s.cluster == nil:
		r.pending = s.store.Submit(op)
	default:
		r.raftPut = s.cluster.node.SubmitWrite([]engine.Op{op}, false)
	}
	return true
}

// answerPuts waits for the submitted PUTs among batch[from:to] and appends
// their answers. It returns false if an answer closed the connection (see
// answerRaftPut): the batch ends with it, and the PUTs after it are waited
// for unanswered. Their writes were submitted before, so they may be
// applied, which a client that sees the connection close must assume of
// any request it sent unanswered.
func (cn *hotConn) answerPuts(from, to int) bool {
	if p := cn.poll; p != nil {
		for j := from; j < to; j++ {
			if r := &cn.batch[j]; r.put && r.group > p.groups.Load() {
				p.commitNow() // a write waited for must be committed: not yet
				break
			}
		}
	}
	cut := -1
	for j := from; j < to; j++ {
		r := &cn.batch[j]
		switch {
		case !r.put:
		case cut >= 0:
			if r.raftPut != nil {
				_, _ = r.raftPut.Wait(cn.context())
			} else {
				_, _ = r.pending.Wait()
			}
		case !cn.answerPut(r):
			cut = j + 1
		}
	}
	if cut < 0 {
		return true
	}
	cn.closeAfter = true
	cn.batch = cn.batch[:cut]
	return false
}

// appendGet appends a found key's answer, as handleKVGet's; rev, when not
// negative, is the revision the read reflects (cluster mode's header).
func (cn *hotConn) appendGet(r *hotReq, e *engine.Entry, rev int64) {
	out := appendStatus(cn.out, http.StatusOK)
	out = appendEntryHeaders(out, e, len(e.Value))
	if rev >= 0 {
		out = append(out, hdrRevision+": "...)
		out = strconv.AppendInt(out, rev, 10)
		out = append(out, "\r\n"...)
	}
	out = append(out, "Content-Type: text/plain; charset=utf-8\r\nVary: Accept\r\n"...)
	if r.closeConn {
		out = append(out, "Connection: close\r\n"...)
	}
	out = append(out, "\r\n"...)
	if len(e.Value) >= hotFlushBytes {
		// A big value goes out from the store's string, not copied.
		cn.out = out
		cn.writeBuffers(e.Value)
	} else {
		cn.out = append(out, e.Value...)
	}
	cn.observe(r, http.StatusOK)
	cn.maybeFlush()
}

// answerPut waits for r's write and appends its answer, as handleKVPut's.
// It returns false if the connection closes after it.
func (cn *hotConn) answerPut(r *hotReq) bool {
	if r.raftPut != nil {
		return cn.answerRaftPut(r)
	}
	e, err := r.pending.Wait()
	if err != nil {
		// Refused or failed (a bad key, storage refusing writes, a full
		// disk): the handler's problem answer, by its own writeError.
		cn.renderError(r, preconditionFailed(err, 0))
		return true
	}
	cn.appendPut(r, &e, 0)
	return true
}

// answerRaftPut waits for r's write on the leader and appends its answer,
// as handleKVPut's through server.write: the raft index the member has
// applied once the write returned in hdrRaftIndex (a follower relaying
// the answer waits for it), errors mapped as server.do does. It returns
// false if the connection closes after it.
func (cn *hotConn) answerRaftPut(r *hotReq) bool {
	res, err := r.raftPut.Wait(cn.context())
	r.raftPut = nil
	if _, ok := errors.AsType[*cluster.NotLeaderError](err); ok {
		// Leadership moved between the check and the proposal: nothing
		// was written. The chain answers as it would have from the start
		// (toLeader forwards the request to the leader, or says why it
		// cannot), from the request's bytes, still in the buffer: the
		// batch is answered before the buffer moves.
		done, closing := cn.renderByHandler(r)
		if !done {
			// http.ReadRequest refused the bytes the parser took; the
			// later requests were submitted already, so the connection
			// cannot go to net/http: say what happened instead.
			cn.renderError(r, err)
			return true
		}
		return !closing
	}
	if err != nil {
		cn.renderError(r, preconditionFailed(opCause(err), 0))
		return true
	}
	cn.appendPut(r, &res.Results[0].Entry, cn.l.s.cluster.node.AppliedIndex())
	return true
}

// appendPut appends the answer to a PUT that wrote e, as handleKVPut's;
// raftIndex, when not 0 (cluster mode), is server.write's hdrRaftIndex.
func (cn *hotConn) appendPut(r *hotReq, e *engine.Entry, raftIndex uint64) {
	code := http.StatusOK
	if e.Version == 1 {
		code = http.StatusCreated
	}
	out := appendStatus(cn.out, code)
	out = appendEntryHeaders(out, e, -1)
	if raftIndex != 0 {
		out = append(out, hdrRaftIndex+": "...)
		out = strconv.AppendUint(out, raftIndex, 10)
		out = append(out, "\r\n"...)
	}
	if code == http.StatusCreated {
		out = append(out, "Location: "...)
		out = append(out, keyPath("/v1/kv/", r.key)...)
		out = append(out, "\r\n"...)
	}
	if r.closeConn {
		out = append(out, "Connection: close\r\n"...)
	}
	const ct = "Content-Type: application/json\r\nContent-Length: "
	out = append(out, ct...)
	lenAt := len(out)
	out = append(out, "0000000000\r\n\r\n"...)
	bodyStart := len(out)
	out = appendEntryJSON(out, e)
	var lb [10]byte
	cl := strconv.AppendInt(lb[:0], int64(len(out)-bodyStart), 10)
	// Put the length in the padded field and shift the rest left.
	n := copy(out[lenAt:], cl)
	copy(out[lenAt+n:], out[lenAt+10:])
	cn.out = out[:len(out)-(10-n)]
	cn.observe(r, code)
	cn.maybeFlush()
}

// observe counts r in the key route's series, as instrument does for the
// requests the chain answers.
func (cn *hotConn) observe(r *hotReq, code int) {
	m := cn.l.s.metrics
	if m == nil {
		return
	}
	method := http.MethodGet
	if r.put {
		method = http.MethodPut
	}
	series := m.series(kvPattern, methodIndex(method))
	series.counter(code).Inc()
	series.latency.Observe(time.Since(r.start).Seconds())
}

// request reads r's bytes with http.ReadRequest, as the http.Server would
// have, for the handlers. A short request's body continues from the
// connection. It returns nil if net/http reads the bytes differently from
// the loop's parser (then net/http should have them).
func (cn *hotConn) request(r *hotReq) (*http.Request, *countingBody) {
	var src io.Reader = bytes.NewReader(cn.buf[r.at : r.at+r.n])
	if r.short {
		if rest := int64(r.bodyLen) - int64(r.n-r.head); rest > 0 {
			// The handler reads the body straight from the connection,
			// where an early deadline is not retried (see expired): set
			// the one wanted exactly, ReadTimeout from the request's
			// start, or none without one (as net/http), never the
			// ReadHeaderTimeout left from reading the head.
			var rd time.Time
			if cn.l.t.Read > 0 {
				rd = cn.reqStart.Add(cn.l.t.Read)
			}
			cn.readWant, cn.readDL = rd, rd
			_ = cn.c.SetReadDeadline(rd)
			src = io.MultiReader(src, io.LimitReader(cn.c, rest))
		}
	}
	req, err := http.ReadRequest(bufio.NewReaderSize(src, 512))
	if err != nil {
		return nil, nil
	}
	req = req.WithContext(cn.context())
	req.RemoteAddr = cn.c.RemoteAddr().String()
	body := &countingBody{r: req.Body}
	req.Body = body
	return req, body
}

// context is the connection's context, as the http.Server gives its
// requests: its BaseContext with the server and the local address.
func (cn *hotConn) context() context.Context {
	if cn.ctx == nil {
		ctx := context.Background()
		if cn.l.srv.BaseContext != nil {
			ctx = cn.l.srv.BaseContext(cn.l.ln)
		}
		ctx = context.WithValue(ctx, http.ServerContextKey, cn.l.srv)
		cn.ctx = context.WithValue(ctx, http.LocalAddrContextKey, cn.c.LocalAddr())
	}
	return cn.ctx
}

// countingBody counts what a handler read of a request body.
type countingBody struct {
	r io.ReadCloser
	n int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.n += int64(n)
	return n, err
}

func (b *countingBody) Close() error { return b.r.Close() }

// renderByHandler answers r through the whole handler chain into a
// recorder, as the http.Server would have answered it, and decides as
// net/http does whether the connection closes after it: asked by the
// client, or with maxPostHandlerRead or more of the body left unread by
// the handler. Less than that is read away, as net/http does before it
// answers: from the buffer, or for a short request from the connection,
// where a body that does not all come (an error, ReadTimeout) closes the
// connection too. (A 413 keeps the connection as net/http does: the
// chain's ResponseWriter wrappers hide the limit from it, and the body,
// read to the limit, is then read to the end.) ok is false if
// http.ReadRequest refuses r's bytes (then net/http must have them).
func (cn *hotConn) renderByHandler(r *hotReq) (ok, closing bool) {
	req, body := cn.request(r)
	if req == nil {
		return false, false
	}
	rec := newHotRecorder()
	cn.l.h.ServeHTTP(rec, req)
	unread := req.ContentLength - body.n
	closing = r.closeConn || unread >= maxPostHandlerRead
	if r.short && !closing {
		if _, err := io.CopyN(io.Discard, body, maxPostHandlerRead+1); err != io.EOF {
			closing = true
		}
	}
	cn.appendRecorded(rec, closing)
	cn.maybeFlush()
	return true, closing
}

// renderError answers r with err through writeError, the handlers' error
// answer, behind the headers the chain sets on every answer.
func (cn *hotConn) renderError(r *hotReq, err error) {
	rec := newHotRecorder()
	req, _ := cn.request(r)
	if req == nil {
		req, _ = http.NewRequest(http.MethodPut, "/v1/kv/", nil)
	}
	securityHeaders(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		cn.l.s.writeError(w, req, err)
	})).ServeHTTP(rec, req)
	cn.appendRecorded(rec, r.closeConn)
	cn.observe(r, rec.code)
	cn.maybeFlush()
}

// appendRecorded appends rec's answer as the http.Server writes a
// handler's: the Date, Content-Length or chunking, and Content-Type
// sniffing it adds, no body where the status has none, and Connection:
// close when the connection closes after it.
func (cn *hotConn) appendRecorded(rec *hotRecorder, closing bool) {
	code := rec.code
	if code == 0 {
		code = http.StatusOK
	}
	h := rec.h
	if _, ok := h["Date"]; !ok {
		h["Date"] = httpDate()
	}
	bodyAllowed := code >= 200 && code != http.StatusNoContent && code != http.StatusNotModified
	chunked := false
	if bodyAllowed {
		if _, ok := h["Content-Type"]; !ok && len(rec.body) > 0 {
			h.Set("Content-Type", http.DetectContentType(rec.body))
		}
		if h.Get("Content-Length") == "" {
			if len(rec.body) > chunkingThreshold {
				chunked = true
				h.Set("Transfer-Encoding", "chunked")
			} else {
				h.Set("Content-Length", strconv.Itoa(len(rec.body)))
			}
		}
	} else {
		rec.body = nil
	}
	if closing {
		h.Set("Connection", "close")
	}
	out := append(cn.out, "HTTP/1.1 "...)
	out = strconv.AppendInt(out, int64(code), 10)
	out = append(out, ' ')
	out = append(out, http.StatusText(code)...)
	out = append(out, "\r\n"...)
	var hb bytes.Buffer
	_ = h.Write(&hb)
	out = append(out, hb.Bytes()...)
	out = append(out, "\r\n"...)
	if chunked {
		out = strconv.AppendInt(out, int64(len(rec.body)), 16)
		out = append(out, "\r\n"...)
		out = append(out, rec.body...)
		out = append(out, "\r\n0\r\n\r\n"...)
	} else {
		out = append(out, rec.body...)
	}
	cn.out = out
}

// maybeFlush writes the output once a batch has gathered hotFlushBytes.
func (cn *hotConn) maybeFlush() {
	if len(cn.out) >= hotFlushBytes {
		if !cn.flush() {
			cn.dead = true
		}
	}
}

// flush writes the output gathered; false if the write failed. In the
// poller it writes what the socket takes without waiting and keeps the
// rest in cn.out.
func (cn *hotConn) flush() bool {
	if len(cn.out) == 0 && cn.tail == "" || cn.dead {
		return !cn.dead
	}
	if cn.poll != nil {
		n, err := pollWrite(cn, cn.out)
		cn.out = cn.out[:copy(cn.out, cn.out[n:])]
		if err == nil && len(cn.out) == 0 && cn.tail != "" {
			n, err = pollWrite(cn, unsafeBytes(cn.tail))
			cn.tail = cn.tail[n:]
		}
		if err != nil {
			cn.dead = true
		}
		return err == nil
	}
	if cn.tail != "" {
		tail := cn.tail
		cn.tail = ""
		cn.writeBuffers(tail)
		return !cn.dead
	}
	cn.setWriteDeadline()
	out := cn.out
	n, err := cn.c.Write(out)
	for err != nil && cn.expired(err, &cn.writeDL, cn.writeWant, cn.c.SetWriteDeadline) {
		out = out[n:]
		n, err = cn.c.Write(out)
	}
	cn.out = cn.out[:0]
	if err != nil {
		cn.dead = true
	}
	return err == nil
}

// writeBuffers writes the output gathered and then v, in one writev.
func (cn *hotConn) writeBuffers(v string) {
	if cn.dead {
		return
	}
	if cn.poll != nil {
		// What the socket takes now; the rest of v waits as the tail
		// (not copied), for the goroutine if need be.
		n, err := pollWritev(cn, cn.out, unsafeBytes(v))
		if err != nil {
			cn.dead = true
			return
		}
		if n < len(cn.out) {
			cn.out = cn.out[:copy(cn.out, cn.out[n:])]
			cn.tail = v
		} else {
			cn.tail = v[n-len(cn.out):]
			cn.out = cn.out[:0]
		}
		return
	}
	cn.setWriteDeadline()
	bufs := net.Buffers{cn.out, unsafeBytes(v)}
	_, err := bufs.WriteTo(cn.c) // consumes what it wrote
	for err != nil && cn.expired(err, &cn.writeDL, cn.writeWant, cn.c.SetWriteDeadline) {
		_, err = bufs.WriteTo(cn.c)
	}
	cn.out = cn.out[:0]
	if err != nil {
		cn.dead = true
	}
}

// shrinkOut drops an output buffer grown past what a batch gathers.
func (cn *hotConn) shrinkOut() {
	if cap(cn.out) > 2*hotFlushBytes {
		cn.out = make([]byte, 0, hotBufSize)
	}
}

// grow makes the read buffer hold at least need bytes, up to the largest
// request the loop reads plus slack.
func (cn *hotConn) grow(need int) {
	limit := cn.l.t.MaxHeaderBytes + cn.maxValue + 2*hotBufSlack
	c := min(max(need, 2*cap(cn.buf)), limit)
	if c <= cap(cn.buf) {
		return
	}
	nb := make([]byte, len(cn.buf), c)
	copy(nb, cn.buf)
	cn.buf = nb
}

// read reads more of the connection into the buffer, under the deadline
// the buffer's state calls for: IdleTimeout when it is empty,
// ReadHeaderTimeout from a request's first byte while its head is
// incomplete, ReadTimeout from its first byte while its body comes.
func (cn *hotConn) read(headDone bool) bool {
	l := cn.l
	now := time.Now()
	empty := len(cn.buf) == 0
	var want time.Duration
	switch {
	case empty:
		want = l.t.Idle
		cn.reqStart = now
	case headDone:
		want = l.t.Read
		now = cn.reqStart
	default:
		want = l.t.Header
		now = cn.reqStart
	}
	if want > 0 {
		cn.setReadDeadline(now.Add(want))
	} else if !cn.readDL.IsZero() {
		cn.setReadDeadline(time.Time{})
	}
	if empty && !cn.setIdle(true) {
		return false
	}
	n, err := cn.c.Read(cn.buf[len(cn.buf):cap(cn.buf)])
	for n == 0 && cn.expired(err, &cn.readDL, cn.readWant, cn.c.SetReadDeadline) {
		n, err = cn.c.Read(cn.buf[len(cn.buf):cap(cn.buf)])
	}
	cn.lastRead = time.Now()
	if empty {
		cn.reqStart = cn.lastRead
		if !cn.setIdle(false) {
			return false
		}
	}
	if n == 0 && err != nil {
		return false
	}
	cn.buf = cn.buf[:len(cn.buf)+n]
	return true
}

// setReadDeadline makes t (zero: none) the read deadline, setting it on
// the connection unless the one set is earlier by at most deadlineSlack.
func (cn *hotConn) setReadDeadline(t time.Time) {
	cn.readWant = t
	if t.IsZero() {
		if cn.readDL.IsZero() {
			return
		}
	} else if !cn.readDL.IsZero() && !t.Before(cn.readDL) && t.Sub(cn.readDL) <= deadlineSlack {
		return
	}
	cn.readDL = t
	_ = cn.c.SetReadDeadline(t)
}

// expired reports whether err is a deadline set (at *set) before the one
// wanted, want, firing: then it sets want, for the caller to try again.
func (cn *hotConn) expired(err error, set *time.Time, want time.Time, setDeadline func(time.Time) error) bool {
	if !errors.Is(err, os.ErrDeadlineExceeded) || want.IsZero() || !want.After(*set) || !time.Now().Before(want) {
		return false
	}
	*set = want
	return setDeadline(want) == nil
}

// setWriteDeadline sets the write deadline to WriteTimeout from the
// batch's start (see setReadDeadline for when it is set again).
func (cn *hotConn) setWriteDeadline() {
	if cn.l.t.Write <= 0 {
		return
	}
	t := cn.batchStart.Add(cn.l.t.Write)
	cn.writeWant = t
	if !cn.writeDL.IsZero() && !t.Before(cn.writeDL) && t.Sub(cn.writeDL) <= deadlineSlack {
		return
	}
	cn.writeDL = t
	_ = cn.c.SetWriteDeadline(t)
}

// linger closes the connection after its last answer; with request bytes
// left unread on the socket (a body the loop refused), it reads them away
// for up to lingerTime first, so that closing does not reset the
// connection before the client has read the answer (net/http's
// closeWriteAndWait).
func (cn *hotConn) linger(unread bool) {
	if unread {
		if cw, ok := cn.c.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite() // the client sees the end at once
		}
		_ = cn.c.SetReadDeadline(time.Now().Add(lingerTime))
		_, _ = io.CopyN(io.Discard, cn.c, 4<<20)
	}
	cn.close()
}

// appendStatus appends the status line and the headers every answer has:
// Date and the three security headers (see securityHeaders).
func appendStatus(out []byte, code int) []byte {
	switch code {
	case 200:
		out = append(out, "HTTP/1.1 200 OK\r\n"...)
	case 201:
		out = append(out, "HTTP/1.1 201 Created\r\n"...)
	default:
		out = append(out, "HTTP/1.1 "...)
		out = strconv.AppendInt(out, int64(code), 10)
		out = append(out, ' ')
		out = append(out, http.StatusText(code)...)
		out = append(out, "\r\n"...)
	}
	out = append(out, "Date: "...)
	out = append(out, httpDate()[0]...)
	return append(out, "\r\nX-Content-Type-Options: nosniff\r\nX-Frame-Options: DENY\r\nReferrer-Policy: no-referrer\r\n"...)
}

// appendEntryHeaders appends what setEntryHeaders sets.
func appendEntryHeaders(out []byte, e *engine.Entry, bodyLen int) []byte {
	out = append(out, "Etag: \""...)
	out = strconv.AppendInt(out, e.ModRev, 10)
	out = append(out, "\"\r\nPykv-Create-Revision: "...)
	out = strconv.AppendInt(out, e.CreateRev, 10)
	out = append(out, "\r\nPykv-Version: "...)
	out = strconv.AppendInt(out, e.Version, 10)
	if e.ExpiresAt != 0 {
		out = append(out, "\r\nPykv-Expires-At: "...)
		out = strconv.AppendInt(out, e.ExpiresAt, 10)
	}
	if bodyLen >= 0 {
		out = append(out, "\r\nContent-Length: "...)
		out = strconv.AppendInt(out, int64(bodyLen), 10)
	}
	return append(out, "\r\nCache-Control: no-cache\r\n"...)
}

// hotRecorder is the ResponseWriter the handlers answer into when the loop
// renders an answer through them.
type hotRecorder struct {
	h    http.Header
	code int
	body []byte
}

func newHotRecorder() *hotRecorder { return &hotRecorder{h: http.Header{}} }

func (w *hotRecorder) Header() http.Header { return w.h }
func (w *hotRecorder) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
}
func (w *hotRecorder) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	w.body = append(w.body, b...)
	return len(b), nil
}

// unsafeBytes returns s's bytes without copying, for writing; they must
// not be changed.
func unsafeBytes(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

package web

// PROTOTYPE (branch proto-hotloop, issue 12 measurement; not for main).
//
// HotLoop serves GET and PUT /v1/kv/{key} over HTTP/1.1 keep-alive
// connections without net/http: one goroutine per connection reads into
// its own buffer, parses every complete request the buffer holds, does the
// same work as the production chain (Host check, bearer token against the
// configured digests, store Get or durable Do, the route's metric series
// and latency, the same answer headers) and writes the answers of the whole
// batch in one write. Anything it does not handle exactly as the chain
// would (another route or method, a query, a percent-escaped path, a
// cookie, conditional or Accept headers, Expect, Transfer-Encoding,
// HTTP/1.0, a wrong token, a missing key, a malformed or oversized request)
// hands the connection, with the bytes not yet consumed, to net/http
// through Listener: net/http then answers that request and every later one
// on the connection exactly as before.

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pykv/pykv/engine"
)

// HotLoopTimeouts are the connection deadlines the loop keeps, the same as
// the http.Server's: Idle between requests, Header for a request begun,
// Write for the answers of a batch.
type HotLoopTimeouts struct {
	Idle, Header, Write time.Duration
	MaxHeaderBytes      int
}

// HotLoop is the prototype's connection loop (see the file comment).
type HotLoop struct {
	s        *server
	t        HotLoopTimeouts
	handoff  chan net.Conn
	done     chan struct{}
	closeOne sync.Once
}

// NewServerHot returns the handler of the whole API, as NewServer does,
// and the loop serving its hot routes.
func NewServerHot(opts Options, t HotLoopTimeouts) (http.Handler, *HotLoop) {
	s := buildServer(opts, false)
	return s.routes(), &HotLoop{s: s, t: t, handoff: make(chan net.Conn), done: make(chan struct{})}
}

// Serve accepts connections on ln and serves them until ln fails; net/http
// must be serving Listener(ln) meanwhile, for the connections handed over.
func (l *HotLoop) Serve(ln net.Listener) error {
	defer l.closeOne.Do(func() { close(l.done) })
	if l.s.log.Enabled(context.Background(), slog.LevelDebug) || l.s.cluster != nil {
		// The access log and cluster routing are not done by the loop.
		for {
			c, err := ln.Accept()
			if err != nil {
				return err
			}
			go l.handOff(c, nil)
		}
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go l.serveConn(c)
	}
}

// Listener returns the listener net/http serves: it yields the connections
// the loop hands over. Its Addr is ln's.
func (l *HotLoop) Listener(ln net.Listener) net.Listener {
	return &handoffListener{l: l, addr: ln.Addr()}
}

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
func (h *handoffListener) Close() error {
	h.l.closeOne.Do(func() { close(h.l.done) })
	return nil
}
func (h *handoffListener) Addr() net.Addr { return h.addr }

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

func (l *HotLoop) handOff(c net.Conn, pending []byte) {
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

// hotReq is one parsed request.
type hotReq struct {
	put       bool
	key       string
	value     string // a PUT's body, copied out of the read buffer
	host      string
	token     string
	hasAuth   bool
	bodyLen   int
	closeConn bool
	at        int // its offset in the read buffer, for a hand-off
	start     time.Time
	pending   engine.Pending
}

const hotBufSize = 4096

// serveConn is one connection's loop: read; take every complete request
// the buffer holds (a pipelined batch); submit the batch's writes to the
// committer together, so they share a group and its fsync; answer in
// order, a GET only after the writes before it are durable and applied;
// write all the answers in one write; repeat.
func (l *HotLoop) serveConn(c net.Conn) {
	local, _ := c.LocalAddr().(*net.TCPAddr)
	var localIP netip.Addr
	if local != nil {
		localIP, _ = netip.AddrFromSlice(local.IP)
		localIP = localIP.Unmap()
	}
	buf := make([]byte, 0, hotBufSize)
	out := make([]byte, 0, hotBufSize)
	var batch []hotReq
	var deadline time.Time
	for {
		// Take every complete request in buf.
		batch = batch[:0]
		used, handOff, closeConn := 0, false, false
		for used < len(buf) && !closeConn {
			batch = append(batch, hotReq{at: used})
			r := &batch[len(batch)-1]
			n, status := parseHot(buf[used:], l.t.MaxHeaderBytes, r)
			if status == parseShort {
				batch = batch[:len(batch)-1]
				break
			}
			if status == parseHandOff || !l.allowed(r, localIP) {
				batch = batch[:len(batch)-1]
				handOff = true
				break
			}
			r.token, r.host = "", "" // they point into buf
			if r.put {
				r.value = string(buf[used+n-r.bodyLen : used+n])
			}
			used += n
			closeConn = r.closeConn
		}
		var stop int
		out, stop = l.answerBatch(out, batch)
		if stop >= 0 {
			handOff, used = true, batch[stop].at
		}
		if handOff {
			l.flushThenHandOff(c, out, buf[used:])
			return
		}
		buf = buf[:copy(buf, buf[used:])]
		if len(out) > 0 {
			if !l.write(c, out) || closeConn {
				c.Close()
				return
			}
			out = out[:0]
		}
		if len(buf) == cap(buf) {
			if cap(buf) >= l.t.MaxHeaderBytes+engineMaxValue(l.s) {
				l.handOff(c, buf) // net/http answers 431 or 413
				return
			}
			buf = append(buf, make([]byte, cap(buf))...)[:len(buf)]
		}
		// Deadlines: refreshed at most every second, not per read.
		now := time.Now()
		if now.Add(l.t.Idle - time.Second).After(deadline) {
			deadline = now.Add(l.t.Idle)
			_ = c.SetReadDeadline(deadline)
		}
		n, err := c.Read(buf[len(buf):cap(buf)])
		if n == 0 && err != nil {
			c.Close()
			return
		}
		buf = buf[:len(buf)+n]
	}
}

// answerBatch answers batch in order into out. Writes are submitted as
// they come and waited for before the next read (a GET must see them) and
// at the end. It returns the index of the first request left to net/http
// (its own and every later one), or -1; the requests before it are
// answered.
func (l *HotLoop) answerBatch(out []byte, batch []hotReq) ([]byte, int) {
	s := l.s
	_, maxValue, _ := s.store.Limits()
	waitFrom := 0
	waitAll := func(upTo int) {
		for j := waitFrom; j < upTo; j++ {
			if batch[j].put {
				out = l.answerPut(out, &batch[j])
			}
		}
		waitFrom = upTo
	}
	for i := range batch {
		r := &batch[i]
		r.start = time.Now()
		if r.put {
			if len(r.value) > maxValue {
				waitAll(i)
				return out, i // 413 by net/http
			}
			r.pending = s.store.Submit(engine.Op{Type: engine.OpPut, Key: r.key, Value: r.value})
			continue
		}
		waitAll(i)
		e, err := s.store.Get(r.key)
		if err != nil {
			return out, i // 404 and bad keys: net/http's answer
		}
		out = appendStatus(out, http.StatusOK)
		out = appendEntryHeaders(out, &e, len(e.Value))
		out = append(out, "Content-Type: text/plain; charset=utf-8\r\nVary: Accept\r\n\r\n"...)
		out = append(out, e.Value...)
		l.observe(r, http.StatusOK)
	}
	waitAll(len(batch))
	return out, -1
}

// observe counts r in the route's series, as instrument does.
func (l *HotLoop) observe(r *hotReq, code int) {
	if l.s.metrics == nil {
		return
	}
	method := 0
	if r.put {
		method = 3
	}
	series := l.s.metrics.series(kvPattern, method)
	series.counter(code).Inc()
	series.latency.Observe(time.Since(r.start).Seconds())
}

// answerPut waits for r's write and appends its answer, as handleKVPut's.
func (l *HotLoop) answerPut(out []byte, r *hotReq) []byte {
	e, err := r.pending.Wait()
	var code int
	if err != nil {
		// Refused or failed (a bad key, a full disk): the handler's problem
		// answer, rendered through a recorder.
		rec := newHotRecorder()
		l.s.writeError(rec, hotRequest(r), preconditionFailed(err, 0))
		code = rec.code
		out = rec.appendTo(out)
	} else {
		code = http.StatusOK
		if e.Version == 1 {
			code = http.StatusCreated
		}
		out = appendStatus(out, code)
		out = appendEntryHeaders(out, &e, -1)
		if code == http.StatusCreated {
			out = append(out, "Location: "...)
			out = append(out, keyPath("/v1/kv/", r.key)...)
			out = append(out, "\r\n"...)
		}
		const ct = "Content-Type: application/json\r\nContent-Length: "
		out = append(out, ct...)
		lenAt := len(out)
		out = append(out, "0000000000\r\n\r\n"...)
		bodyStart := len(out)
		out = appendEntryJSON(out, &e)
		var lb [10]byte
		cl := strconv.AppendInt(lb[:0], int64(len(out)-bodyStart), 10)
		// Put the length in the padded field and shift the rest left.
		n := copy(out[lenAt:], cl)
		copy(out[lenAt+n:], out[lenAt+10:])
		out = out[:len(out)-(10-n)]
	}
	l.observe(r, code)
	return out
}

func engineMaxValue(s *server) int { _, v, _ := s.store.Limits(); return v }

func (l *HotLoop) write(c net.Conn, out []byte) bool {
	_ = c.SetWriteDeadline(time.Now().Add(l.t.Write))
	_, err := c.Write(out)
	return err == nil
}

func (l *HotLoop) flushThenHandOff(c net.Conn, out, pending []byte) {
	if len(out) > 0 && !l.write(c, out) {
		c.Close()
		return
	}
	l.handOff(c, pending)
}

// allowed runs the chain's checks: Host as checkHost, the token as
// authenticate (a request the chain would refuse goes to net/http, which
// refuses it with the same answer, rate limits included).
func (l *HotLoop) allowed(r *hotReq, localIP netip.Addr) bool {
	s := l.s
	if !s.hosts.hostNameAllowed(r.host, localIP) {
		return false
	}
	if !s.authEnabled() {
		return true
	}
	if !r.hasAuth || !s.failures.none() {
		return false
	}
	switch s.scopeOf(strings.TrimSpace(r.token)) {
	case scopeWrite:
		return true
	case scopeRead:
		return !r.put
	}
	return false
}

// appendStatus appends the status line and the headers every answer has:
// Date and the three security headers.
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

// hotRecorder is a ResponseWriter for the rare answers the loop renders
// through the ordinary handlers' code (a failed write's problem).
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

func (w *hotRecorder) appendTo(out []byte) []byte {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	out = appendStatus(out, w.code)
	w.h.Del("Date")
	w.h.Del("X-Content-Type-Options")
	w.h.Set("Content-Length", strconv.Itoa(len(w.body)))
	var hb bytes.Buffer
	_ = w.h.Write(&hb)
	out = append(out, hb.Bytes()...)
	out = append(out, "\r\n"...)
	return append(out, w.body...)
}

// hotRequest is a stand-in request for the error path's logging.
func hotRequest(r *hotReq) *http.Request {
	req, _ := http.NewRequest(http.MethodPut, "/v1/kv/"+r.key, nil)
	if req == nil {
		req, _ = http.NewRequest(http.MethodPut, "/v1/kv/", nil)
	}
	return req
}

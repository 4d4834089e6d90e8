package web

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/pykv/pykv/engine"
)

// The hot loop's parser is checked against net/http itself: whatever
// parseHot serves, net/http must read the same way (the same request, of
// the same length, asking the same thing of the same handler), and
// whatever parseHot waits on must still be able to become such a request.
// FuzzHotParse searches for inputs where they part; TestParseHot lists
// the shapes that matter by name.

// hotTestMaxHead is the maxHeaderBytes of these tests: small enough for
// the fuzzer to cross it.
const hotTestMaxHead = 1024

// hotOracle holds what the checks run against: a real net/http server (so
// its own checks of a request, beyond http.ReadRequest's, count too) and
// the production routes (to take the key as they do).
type hotOracle struct {
	srv    *http.Server
	conns  chan net.Conn
	routes *router
	s      *server
}

type hotConnKey struct{}

// newHotOracle starts the oracle; cleanup stops it.
func newHotOracle(tb testing.TB) *hotOracle {
	store := engine.New(engine.Options{})
	s := buildServer(Options{Store: store}, false)
	o := &hotOracle{conns: make(chan net.Conn), s: s, routes: s.routes().(*router)}
	o.srv = &http.Server{
		MaxHeaderBytes: hotTestMaxHead,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, hotConnKey{}, c)
		},
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c := r.Context().Value(hotConnKey{}).(*memConn)
			body, err := io.ReadAll(r.Body)
			c.mu.Lock()
			defer c.mu.Unlock()
			c.seen = append(c.seen, seenRequest{r: r, body: body, err: err})
		}),
	}
	ln := &chanListener{conns: o.conns, done: make(chan struct{})}
	go func() { _ = o.srv.Serve(ln) }()
	tb.Cleanup(func() { close(ln.done); _ = o.srv.Close(); store.Close() })
	return o
}

// seenRequest is a request as the server's handler saw it.
type seenRequest struct {
	r    *http.Request
	body []byte
	err  error
}

// serve gives b to the server as a connection's whole input and returns
// the requests its handler was called with, once it closed the connection,
// and what it wrote.
func (o *hotOracle) serve(tb testing.TB, b []byte) ([]seenRequest, string) {
	tb.Helper()
	c := &memConn{r: bytes.NewReader(b), closed: make(chan struct{})}
	o.conns <- c
	select {
	case <-c.closed:
	case <-time.After(10 * time.Second):
		tb.Fatalf("net/http did not close the connection given %q", b)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.seen, c.out.String()
}

type chanListener struct {
	conns chan net.Conn
	done  chan struct{}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}
func (l *chanListener) Close() error   { return nil }
func (l *chanListener) Addr() net.Addr { return memAddr }

var memAddr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 7070}

// memConn is a connection whose input is a fixed string, then EOF.
type memConn struct {
	mu     sync.Mutex
	r      *bytes.Reader
	out    bytes.Buffer
	seen   []seenRequest
	once   sync.Once
	closed chan struct{}
}

func (c *memConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.r.Read(p)
}
func (c *memConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.out.Write(p)
}
func (c *memConn) Close() error                     { c.once.Do(func() { close(c.closed) }); return nil }
func (c *memConn) LocalAddr() net.Addr              { return memAddr }
func (c *memConn) RemoteAddr() net.Addr             { return memAddr }
func (c *memConn) SetDeadline(time.Time) error      { return nil }
func (c *memConn) SetReadDeadline(time.Time) error  { return nil }
func (c *memConn) SetWriteDeadline(time.Time) error { return nil }

// sentinel follows a request the loop serves when it is given to net/http:
// if net/http saw the first request end anywhere else, it would not read
// this one as it is.
const sentinel = "GET /sentinel HTTP/1.1\r\nHost: sentinel.localhost\r\n\r\n"

// inertHeaders are the headers a request the loop serves may carry, as
// net/http names them: those the loop reads, and those nothing in the
// chain of GET and PUT /v1/kv/{key} reads (checked by hand: grep
// r.Header, Cookie, and net/http's own readers). Written here apart from
// hotHeaders, so the test states what it believes rather than repeating
// the parser.
var inertHeaders = map[string]bool{
	"Authorization": true, "Content-Length": true, "Connection": true, "Accept": true,
	"User-Agent": true, "Content-Type": true, "Accept-Encoding": true, "Accept-Language": true,
}

// parseHotCopy runs parseHot on a copy of b, checking it did not change
// b and, on a hand-off, consumed nothing: all a hand-off needs to be safe,
// as net/http then reads the bytes as if the loop were not there.
func parseHotCopy(t *testing.T, b []byte, maxHead int) (int, parseStatus, hotReq) {
	t.Helper()
	c := bytes.Clone(b)
	var r hotReq
	n, st := parseHot(c, maxHead, &r)
	if !bytes.Equal(c, b) {
		t.Fatalf("parseHot changed its input %q to %q", b, c)
	}
	if st == parseHandOff && n != 0 {
		t.Fatalf("parseHot(%q) handed off with n = %d: net/http must get every byte", b, n)
	}
	// r.host and r.token point into c: keep them valid past it.
	r.host, r.token = strings.Clone(r.host), strings.Clone(r.token)
	return n, st, r
}

// checkHotParse checks parseHot's reading of b against net/http's.
func (o *hotOracle) checkHotParse(t *testing.T, b []byte) {
	t.Helper()
	n, st, r := parseHotCopy(t, b, hotTestMaxHead)
	o.checkPrefixes(t, b, n, st)
	switch st {
	case parseOK:
		o.checkOK(t, b, n, &r)
	case parseShort:
		o.checkShort(t, b, n)
	}
}

// checkPrefixes checks that b read in two pieces (every split) is judged
// as b is: parseShort until the request is whole, then the same answer;
// a hand-off stays one whatever follows.
func (o *hotOracle) checkPrefixes(t *testing.T, b []byte, n int, st parseStatus) {
	t.Helper()
	step := 1
	if len(b) > 600 {
		step = len(b)/300 + 1
	}
	handedOffAt := -1
	for k := 0; k <= len(b); k += step {
		pn, pst, _ := parseHotCopy(t, b[:k], hotTestMaxHead)
		switch {
		case st == parseOK && k < n && pst != parseShort:
			t.Fatalf("parseHot(%q) = %d, OK but its prefix %q gives %v, not short", b, n, b[:k], pst)
		case st == parseOK && k >= n && (pst != parseOK || pn != n):
			t.Fatalf("parseHot(%q) = %d, OK but with %d bytes %d, %v", b, n, k, pn, pst)
		case st == parseShort && pst != parseShort:
			t.Fatalf("parseHot(%q) is short but its prefix %q gives %v", b, b[:k], pst)
		case st == parseHandOff && pst == parseOK:
			t.Fatalf("parseHot(%q) hands off but its prefix %q is OK", b, b[:k])
		case pst == parseHandOff && handedOffAt < 0:
			handedOffAt = k
		case pst != parseHandOff && handedOffAt >= 0:
			t.Fatalf("parseHot hands off %q, then not its extension %q (%v)", b[:handedOffAt], b[:k], pst)
		}
	}
}

// checkOK checks a request parseHot serves: net/http reads the same
// request, of the same length, and routes it to the same handler with
// the same key, the same Host and token, and nothing the loop ignores
// could change the answer.
func (o *hotOracle) checkOK(t *testing.T, b []byte, n int, r *hotReq) {
	t.Helper()
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("parseHot(%q) = %d, OK, %s; but net/http: %s", b, n, r, fmt.Sprintf(format, args...))
	}
	// http.ReadRequest, and reading the body, consume exactly n bytes.
	src := bytes.NewReader(b)
	br := bufio.NewReader(src)
	req, err := http.ReadRequest(br)
	if err != nil {
		fail("ReadRequest: %v", err)
	}
	body, err := io.ReadAll(req.Body)
	if err != nil {
		fail("reading the body: %v", err)
	}
	if used := len(b) - src.Len() - br.Buffered(); used != n {
		fail("the request took %d bytes", used)
	}
	head := n - r.bodyLen
	if !bytes.HasSuffix(b[:head], []byte("\r\n\r\n")) || bytes.Contains(b[:head-2], []byte("\r\n\r\n")) {
		fail("the head is not %q", b[:head])
	}
	if head > hotTestMaxHead {
		fail("the head's %d bytes are over the limit %d", head, hotTestMaxHead)
	}
	if _, st := parseHot(b, head-1, new(hotReq)); st != parseHandOff {
		fail("with maxHeaderBytes %d, one under the head's length, parseHot says %v, not hand off", head-1, st)
	}
	method := http.MethodGet
	if r.put {
		method = http.MethodPut
	}
	switch {
	case req.Method != method:
		fail("method %q", req.Method)
	case req.Proto != "HTTP/1.1":
		fail("version %q", req.Proto)
	case req.Host != r.host:
		fail("Host %q", req.Host)
	case req.ContentLength != int64(r.bodyLen) || !bytes.Equal(body, b[n-r.bodyLen:n]):
		fail("a body of %d bytes, %q", req.ContentLength, body)
	case req.Close != r.closeConn:
		fail("Close %v", req.Close)
	case req.TransferEncoding != nil:
		fail("Transfer-Encoding %q", req.TransferEncoding)
	}
	// The route and key: the fast path's test, chi's own route, keyParam.
	path := routingPath(req)
	if !strings.HasPrefix(path, "/v1/kv/") {
		fail("the fast path does not take %q", path)
	}
	if p := o.routes.Mux.Find(chi.NewRouteContext(), req.Method, path); p != kvPattern {
		fail("chi routes %s %q to %q", req.Method, path, p)
	}
	if key, err := keyParam(req, "/v1/kv/"); err != nil || key != r.key {
		fail("the key is %q (%v)", key, err)
	}
	// The query: none, or the read consistency as consistent reads it.
	if q := req.URL.RawQuery; q != "" {
		level := req.URL.Query().Get("consistency")
		if r.put || (level != "local" && level != "linearizable") || q != "consistency="+level {
			fail("the query %q", q)
		}
	}
	if local := req.URL.Query().Get("consistency") == "local"; local != r.local {
		fail("consistency=local %v", local)
	}
	// Authorization, as authenticate reads it.
	tok, sent := bearerToken(req)
	if sent != r.hasAuth || tok != r.token || (sent && len(req.Header["Authorization"]) != 1) {
		fail("the token is %q (sent %v, headers %q)", tok, sent, req.Header["Authorization"])
	}
	// Nothing else in the request could change the answer.
	for name := range req.Header {
		if !inertHeaders[name] {
			fail("the header %s, which the loop does not read, is there", name)
		}
	}
	if asJSON, err := wantsJSON(req); asJSON || err != nil {
		fail("wantsJSON: %v, %v", asJSON, err)
	}
	if rev, err := o.s.condition(req, r.key); rev != 0 || err != nil {
		fail("a condition: %d, %v", rev, err)
	}
	if err := http.NewCrossOriginProtection().Check(req); err != nil {
		fail("cross-origin protection: %v", err)
	}
	// A server (whose checks go beyond ReadRequest's) reads the request
	// the same way, and the sentinel after it.
	seen, out := o.serve(t, append(bytes.Clone(b[:n]), sentinel...))
	want := 2
	if r.closeConn {
		want = 1
	}
	if len(seen) != want {
		fail("the server's handler saw %d requests, not %d; it wrote %q", len(seen), want, out)
	}
	sr := seen[0]
	if sr.err != nil || sr.r.Method != method || sr.r.Host != r.host || sr.r.RequestURI != req.RequestURI ||
		!bytes.Equal(sr.body, body) || sr.r.Close != r.closeConn {
		fail("the server read %s %q Host %q body %q close %v (%v)", sr.r.Method, sr.r.RequestURI, sr.r.Host, sr.body, sr.r.Close, sr.err)
	}
	if want == 2 && (seen[1].r.RequestURI != "/sentinel" || seen[1].r.Host != "sentinel.localhost") {
		fail("the server read the request after it as %s %q", seen[1].r.Method, seen[1].r.RequestURI)
	}
}

// checkShort checks that b, which parseHot waits on, can still become a
// request it serves: some ending (from lines the loop takes) completes it.
func (o *hotOracle) checkShort(t *testing.T, b []byte, n int) {
	t.Helper()
	if n > 0 {
		// The head is complete, the body not: any n-len(b) bytes end it.
		if n <= len(b) {
			t.Fatalf("parseHot(%q) is short, of %d bytes", b, n)
		}
		if n-len(b) > 1<<16 {
			return // a long body: its head is checked with a short one by the fuzzer
		}
		full := append(bytes.Clone(b), bytes.Repeat([]byte("v"), n-len(b))...)
		m, st, r := parseHotCopy(t, full, hotTestMaxHead)
		if st != parseOK || m != n {
			t.Fatalf("parseHot(%q) is short of %d bytes, but with them it gives %d, %v", b, n, m, st)
		}
		o.checkOK(t, full, m, &r) // and net/http reads it so too
		return
	}
	if c, ok := completeHot(b); ok {
		full := append(bytes.Clone(b), c...)
		if m, st, r := parseHotCopy(t, full, hotTestMaxHead); st == parseOK {
			o.checkOK(t, full, m, &r)
		}
		return
	}
	t.Fatalf("parseHot(%q) is short, but no ending makes it a request the loop serves", b)
}

// completeHot looks for an ending that makes b a request parseHot
// serves: the rest of one of the lines it takes, maybe the Host and
// Content-Length it needs, the empty line, and the body.
func completeHot(b []byte) ([]byte, bool) {
	lines := []string{"GET /v1/kv/k HTTP/1.1", "PUT /v1/kv/k HTTP/1.1", "k HTTP/1.1",
		"GET /v1/kv/k?consistency=local HTTP/1.1", "k?consistency=linearizable HTTP/1.1",
		"Authorization: Bearer t", "Content-Length: 0", "Connection: close", "Connection: keep-alive", "Accept: */*"}
	for _, h := range hotHeaders {
		lines = append(lines, h.name+": h")
	}
	for _, extra := range []string{"", "Host: h\r\n", "Content-Length: 0\r\n", "Host: h\r\nContent-Length: 0\r\n"} {
		for _, l := range lines {
			l += "\r\n"
			for i := range len(l) + 1 {
				c := l[i:] + extra + "\r\n"
				full := append(bytes.Clone(b), c...)
				var r hotReq
				n, st := parseHot(full, hotTestMaxHead, &r)
				if st == parseShort && n > len(full) && n-len(full) <= 1<<16 {
					c += strings.Repeat("v", n-len(full)) // the body
					full = append(full, c[len(c)-(n-len(full)):]...)
					n, st = parseHot(full, hotTestMaxHead, &r)
				}
				if st == parseOK || (st == parseShort && n > len(full)+1<<16) {
					return []byte(c), true // (a long body's bytes are not made)
				}
			}
		}
	}
	return nil, false
}

// hotSeeds are well-formed requests the loop serves, and every shape
// around them that it must not: the fuzzer's start, and the table's.
var hotSeeds = []struct {
	name, raw string
	want      parseStatus
}{
	// Served.
	{"GET", "GET /v1/kv/a HTTP/1.1\r\nHost: localhost\r\n\r\n", parseOK},
	{"PUT", "PUT /v1/kv/a HTTP/1.1\r\nHost: localhost:8080\r\nContent-Length: 5\r\n\r\nhello", parseOK},
	{"PUT empty", "PUT /v1/kv/a HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n", parseOK},
	{"wrk GET", "GET /v1/kv/key-00042 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nAuthorization: Bearer 0123456789abcdef\r\n\r\n", parseOK},
	{"wrk PUT", "PUT /v1/kv/key-00042 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nAuthorization: Bearer 0123456789abcdef\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nabc", parseOK},
	{"curl", "GET /v1/kv/a HTTP/1.1\r\nHost: localhost:8080\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n", parseOK},
	{"Go client", "PUT /v1/kv/a HTTP/1.1\r\nHost: [::1]:8080\r\nUser-Agent: Go-http-client/1.1\r\nContent-Length: 1\r\nAccept-Encoding: gzip\r\n\r\nx", parseOK},
	{"python", "GET /v1/kv/a HTTP/1.1\r\nHost: localhost\r\nUser-Agent: python-requests/2.31\r\nAccept-Encoding: gzip, deflate\r\nAccept: */*\r\nConnection: keep-alive\r\n\r\n", parseOK},
	{"pipelined", "PUT /v1/kv/a HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nabGET /v1/kv/a HTTP/1.1\r\nHost: h\r\n\r\n", parseOK},
	{"pipelined then other", "GET /v1/kv/a HTTP/1.1\r\nHost: h\r\n\r\nGET /healthz HTTP/1.1\r\nHost: h\r\n\r\n", parseOK},
	{"header names folded", "GET /v1/kv/a HTTP/1.1\r\nhOST: h\r\nAUTHORIZATION: bearer t\r\n\r\n", parseOK},
	{"whitespace around values", "PUT /v1/kv/a HTTP/1.1\r\nHost:h \t\r\nContent-Length:\t1 \r\nAuthorization:  Bearer t \r\n\r\nx", parseOK},
	{"Connection close", "GET /v1/kv/a HTTP/1.1\r\nHost: h\r\nConnection: Close\r\n\r\nGET /v1/kv/b HTTP/1.1\r\n", parseOK},
	{"key with slash", "GET /v1/kv/a/b HTTP/1.1\r\nHost: h\r\n\r\n", parseOK},
	{"key with double slash", "GET /v1/kv//a//b/ HTTP/1.1\r\nHost: h\r\n\r\n", parseOK},
	{"key with dot segments", "GET /v1/kv/../a/./b/.. HTTP/1.1\r\nHost: h\r\n\r\n", parseOK},
	{"key with sub-delims", "PUT /v1/kv/a!$&'()*+,;=:@~_.-z HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n", parseOK},
	{"GET Content-Length 0", "GET /v1/kv/a HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n", parseOK},
	{"IPv6 host", "GET /v1/kv/a HTTP/1.1\r\nHost: [::1]\r\n\r\n", parseOK},
	{"odd host", "GET /v1/kv/a HTTP/1.1\r\nHost: [:-.]\r\n\r\n", parseOK},
	{"no spaces", "PUT /v1/kv/a HTTP/1.1\r\nHost:h\r\nAccept:*/*\r\nContent-Length:1\r\nAuthorization:Bearer =\r\n\r\nx", parseOK},
	{"long key", "GET /v1/kv/" + strings.Repeat("k", 900) + " HTTP/1.1\r\nHost: h\r\n\r\n", parseOK},
	{"consistency local", "GET /v1/kv/a?consistency=local HTTP/1.1\r\nHost: h\r\n\r\n", parseOK},
	{"consistency linearizable", "GET /v1/kv/a/b?consistency=linearizable HTTP/1.1\r\nHost: h\r\n\r\n", parseOK},
	{"ignored headers twice", "GET /v1/kv/a HTTP/1.1\r\nHost: h\r\nUser-Agent: a\r\nUser-Agent: b\r\nAccept-Language: en, fr;q=0.5\r\n\r\n", parseOK},

	// Not yet whole.
	{"empty", "", parseShort},
	{"method only", "PU", parseShort},
	{"in the key", "GET /v1/kv/ab", parseShort},
	{"in the version", "GET /v1/kv/a HTTP/1.", parseShort},
	{"in the query", "GET /v1/kv/a?consistency=lo", parseShort},
	{"after the query", "GET /v1/kv/a?consistency=linearizable HTTP/", parseShort},
	{"request line CR", "GET /v1/kv/a HTTP/1.1\r", parseShort},
	{"no headers yet", "GET /v1/kv/a HTTP/1.1\r\n", parseShort},
	{"in a name", "GET /v1/kv/a HTTP/1.1\r\nHo", parseShort},
	{"in a value", "GET /v1/kv/a HTTP/1.1\r\nHost: loc", parseShort},
	{"in the token", "GET /v1/kv/a HTTP/1.1\r\nAuthorization: Bea", parseShort},
	{"in Connection", "GET /v1/kv/a HTTP/1.1\r\nConnection: keep-", parseShort},
	{"final CR", "GET /v1/kv/a HTTP/1.1\r\nHost: h\r\n\r", parseShort},
	{"body missing", "PUT /v1/kv/a HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhel", parseShort},

	// Header names and lines.
	{"non-token name", "GET /v1/kv/a HTTP/1.1\r\nHost: h\r\nX(y): 1\r\n\r\n", parseHandOff},
	{"unknown header", "GET /v1/kv/a HTTP/1.1\r\nHost: h\r\nX-Custom: 1\r\n\r\n", parseHandOff},
	{"space before colon", "GET /v1/kv/a HTTP/1.1\r\nHost : h\r\n\r\n", parseHandOff},
	{"tab before colon", "GET /v1/kv/a HTTP/1.1\r\nHost\t: h\r\n\r\n", parseHandOff},
	{"no colon", "GET /v1/kv/a HTTP/1.1\r\nHost h\r\n\r\n", parseHandOff},
	{"empty name", "GET /v1/kv/a HTTP/1.1\r\n: h\r\nHost: h\r\n\r\n", parseHandOff},
	{"obs-fold", "GET /v1/kv/a HTTP/1.1\r\nHost: h\r\nUser-Agent: a\r\n b\r\n\r\n", parseHandOff},
	{"first line folded", "GET /v1/kv/a HTTP/1.1\r\n Host: h\r\n\r\n", parseHandOff},
	{"NUL in a value", "GET /v1/kv/a HTTP/1.1\r\nHost: h\r\nUser-Agent: a\x00b\r\n\r\n", parseHandOff},
	{"CTL in a value", "GET /v1/kv/a HTTP/1.1\r\nHost: h\r\nUser-Agent: a\x01b\r\n\r\n", parseHandOff},
	{"DEL in a value", "GET /v1/kv/a HTTP/1.1\r\nHost: h\r\nUser-Agent: a\x7fb\r\n\r\n", parseHandOff},
	{"non-ASCII value", "GET /v1/kv/a HTTP/1.1\r\nHost: h\r\nUser-Agent: \xc3\xa9\r\n\r\n", parseHandOff},
	{"bare CR in a value", "GET /v1/kv/a HTTP/1.1\r\nHost: h\r\nUser-Agent: a\rb\r\n\r\n", parseHandOff},
	{"bare LF ends a line", "GET /v1/kv/a HTTP/1.1\r\nHost: h\nContent-Length: 3\r\n\r\nabc", parseHandOff},
	{"bare LF ends the head", "GET /v1/kv/a HTTP/1.1\r\nHost: h\r\n\nGET /v1/kv/b HTTP/1.1\r\n\r\n", parseHandOff},
	{"bare LF request line", "GET /v1/kv/a HTTP/1.1\nHost: h\r\n\r\n", parseHandOff},
	{"LF only", "GET /v1/kv/a HTTP/1.1\nHost: h\n\n", parseHandOff},
	{"CR CR LF", "GET /v1/kv/a HTTP/1.1\r\nHost: h\r\r\n\r\n", parseHandOff},
	{"Kelvin sign", "GET /v1/kv/a HTTP/1.1\r\nHost: h\r\nConnection: \xe2\x84\xaaeep-alive\r\n\r\n", parseHandOff},

	// Content-Length and Transfer-Encoding.
	{"Content-Length twice", "PUT /v1/kv/a HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxy", parseHandOff},
	{"Content-Length twice, equal", "PUT /v1/kv/a HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx", parseHandOff},
	{"Content-Length list", "PUT /v1/kv/a HTTP/1.1\r\nHost: h\r\nContent-Length: 1, 1\r\n\r\nx", parseHandOff},
	{"Content-Length plus", "PUT /v1/kv/a HTTP/1.1\r\nHost: h\r\nContent-Length: +1\r\n\r\nx", parseHandOff},
	{"Content-Length minus", "PUT /v1/kv/a HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\nx", parseHandOff},
	{"Content-Length leading zero", "PUT /v1/kv/a HTTP/1.1\r\nHost: h\r\nContent-Length: 01\r\n\r\nx", parseHandOff},
	{"Content-Length inner space", "PUT /v1/kv/a HTTP/1.1\r\nHost: h\r\nContent-Length: 1 1\r\n\r\nx", parseHandOff},
	{"Content-Length hex", "PUT /v1/kv/a HTTP/1.1\r\nHost: h\r\nContent-Length: 0x1\r\n\r\nx", parseHandOff},
	{"Content-Length underscore", "PUT /v1/kv/a HTTP/1.1\r\nHost: h\r\nContent-Length: 1_0\r\n\r\n0123456789", parseHandOff},
	{"Content-Length empty", "PUT /v1/kv/a HTTP/1.1\r\nHost: h\r\nContent-Length: \r\n\r\n", parseHandOff},
	{"Content-Length overflow", "PUT /v1/kv/a HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999\r\n\r\n", parseHandOff},
	{"Content-Length 10 digits", "PUT /v1/kv/a HTTP/1.1\r\nHost: h\r\nContent-Length: 1000000000\r\n\r\n", parseHandOff},
	{"Transfer-Encoding", "PUT /v1/kv/a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n", parseHandOff},
	{"Transfer-Encoding case", "PUT /v1/kv/a HTTP/1.1\r\nHost: h\r\ntRANSFER-eNCODING: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n", parseHandOff},
	{"Transfer-Encoding and length", "PUT /v1/kv/a HTTP/1.1\r\nHost: h\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", parseHandOff},
	{"Transfer-Encoding identity", "GET /v1/kv/a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: identity\r\n\r\n", parseHandOff},
	{"PUT without length", "PUT /v1/kv/a HTTP/1.1\r\nHost: h\r\n\r\n", parseHandOff},
	{"GET with a body", "GET /v1/kv/a HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n\r\nx", parseHandOff},
	{"Expect", "PUT /v1/kv/a HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nExpect: 100-continue\r\n\r\nx", parseHandOff},
	{"Trailer", "PUT /v1/kv/a HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nTrailer: X\r\n\r\nx", parseHandOff},

	// Request line.
	{"HTTP/1.0", "GET /v1/kv/a HTTP/1.0\r\nHost: h\r\n\r\n", parseHandOff},
	{"HTTP/2.0", "GET /v1/kv/a HTTP/2.0\r\nHost: h\r\n\r\n", parseHandOff},
	{"HTTP/1.10", "GET /v1/kv/a HTTP/1.10\r\nHost: h\r\n\r\n", parseHandOff},
	{"lower-case version", "GET /v1/kv/a http/1.1\r\nHost: h\r\n\r\n", parseHandOff},
	{"no version", "GET /v1/kv/a\r\nHost: h\r\n\r\n", parseHandOff},
	{"lower-case method", "get /v1/kv/a HTTP/1.1\r\nHost: h\r\n\r\n", parseHandOff},
	{"HEAD", "HEAD /v1/kv/a HTTP/1.1\r\nHost: h\r\n\r\n", parseHandOff},
	{"DELETE", "DELETE /v1/kv/a HTTP/1.1\r\nHost: h\r\n\r\n", parseHandOff},
	{"POST", "POST /v1/kv/a HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n", parseHandOff},
	{"PRI", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", parseHandOff},
	{"absolute form", "GET http://h/v1/kv/a HTTP/1.1\r\nHost: h\r\n\r\n", parseHandOff},
	{"asterisk", "GET * HTTP/1.1\r\nHost: h\r\n\r\n", parseHandOff},
	{"query", "GET /v1/kv/a?format=json HTTP/1.1\r\nHost: h\r\n\r\n", parseHandOff},
	{"PUT consistency", "PUT /v1/kv/a?consistency=local HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n", parseHandOff},
	{"consistency upper case", "GET /v1/kv/a?consistency=LOCAL HTTP/1.1\r\nHost: h\r\n\r\n", parseHandOff},
	{"consistency other", "GET /v1/kv/a?consistency=stale HTTP/1.1\r\nHost: h\r\n\r\n", parseHandOff},
	{"consistency longer", "GET /v1/kv/a?consistency=locals HTTP/1.1\r\nHost: h\r\n\r\n", parseHandOff},
	{"consistency and more", "GET /v1/kv/a?consistency=local&format=json HTTP/1.1\r\nHost: h\r\n\r\n", parseHandOff},
	{"consistency twice", "GET /v1/kv/a?consistency=local&consistency=linearizable HTTP/1.1\r\nHost: h\r\n\r\n", parseHandOff},
	{"consistency escaped", "GET /v1/kv/a?consistency=loc%61l HTTP/1.1\r\nHost: h\r\n\r\n", parseHandOff},
	{"consistency no key", "GET /v1/kv/?consistency=local HTTP/1.1\r\nHost: h\r\n\r\n", parseHandOff},
	{"empty query", "GET /v1/kv/a? HTTP/1.1\r\nHost: h\r\n\r\n", parseHandOff},
	{"fragment", "GET /v1/kv/a#b HTTP/1.1\r\nHost: h\r\n\r\n", parseHandOff},
	{"escape", "GET /v1/kv/a%2Fb HTTP/1.1\r\nHost: h\r\n\r\n", parseHandOff},
	{"escaped letter", "GET /v1/kv/%61 HTTP/1.1\r\nHost: h\r\n\r\n", parseHandOff},
	{"bad escape", "GET /v1/kv/a%zz HTTP/1.1\r\nHost: h\r\n\r\n", parseHandOff},
	{"non-ASCII key", "GET /v1/kv/\xc3\xa9 HTTP/1.1\r\nHost: h\r\n\r\n", parseHandOff},
	{"backslash", "GET /v1/kv/a\\b HTTP/1.1\r\nHost: h\r\n\r\n", parseHandOff},
	{"brackets", "GET /v1/kv/[a] HTTP/1.1\r\nHost: h\r\n\r\n", parseHandOff},
	{"empty key", "GET /v1/kv/ HTTP/1.1\r\nHost: h\r\n\r\n", parseHandOff},
	{"the list", "GET /v1/kv HTTP/1.1\r\nHost: h\r\n\r\n", parseHandOff},
	{"another route", "GET /v1/kvx/a HTTP/1.1\r\nHost: h\r\n\r\n", parseHandOff},
	{"two spaces before target", "GET  /v1/kv/a HTTP/1.1\r\nHost: h\r\n\r\n", parseHandOff},
	{"two spaces before version", "GET /v1/kv/a  HTTP/1.1\r\nHost: h\r\n\r\n", parseHandOff},
	{"space in the key", "GET /v1/kv/a b HTTP/1.1\r\nHost: h\r\n\r\n", parseHandOff},
	{"tab separator", "GET\t/v1/kv/a HTTP/1.1\r\nHost: h\r\n\r\n", parseHandOff},
	{"tab in the key", "GET /v1/kv/a\tb HTTP/1.1\r\nHost: h\r\n\r\n", parseHandOff},
	{"trailing space", "GET /v1/kv/a HTTP/1.1 \r\nHost: h\r\n\r\n", parseHandOff},
	{"leading CRLF", "\r\nGET /v1/kv/a HTTP/1.1\r\nHost: h\r\n\r\n", parseHandOff},
	{"leading LF", "\nGET /v1/kv/a HTTP/1.1\r\nHost: h\r\n\r\n", parseHandOff},
	{"NUL in the key", "GET /v1/kv/a\x00 HTTP/1.1\r\nHost: h\r\n\r\n", parseHandOff},

	// Host.
	{"Host missing", "GET /v1/kv/a HTTP/1.1\r\n\r\n", parseHandOff},
	{"Host twice", "GET /v1/kv/a HTTP/1.1\r\nHost: h\r\nHost: h\r\n\r\n", parseHandOff},
	{"Host empty", "GET /v1/kv/a HTTP/1.1\r\nHost: \r\n\r\n", parseHandOff},
	{"Host with a space", "GET /v1/kv/a HTTP/1.1\r\nHost: a b\r\n\r\n", parseHandOff},
	{"Host with a slash", "GET /v1/kv/a HTTP/1.1\r\nHost: a/b\r\n\r\n", parseHandOff},
	{"Host with userinfo", "GET /v1/kv/a HTTP/1.1\r\nHost: u@h\r\n\r\n", parseHandOff},
	{"Host with a zone", "GET /v1/kv/a HTTP/1.1\r\nHost: [fe80::1%25eth0]\r\n\r\n", parseHandOff},

	// Authorization.
	{"Authorization twice", "GET /v1/kv/a HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer a\r\nAuthorization: Bearer b\r\n\r\n", parseHandOff},
	{"Basic", "GET /v1/kv/a HTTP/1.1\r\nHost: h\r\nAuthorization: Basic dTpw\r\n\r\n", parseHandOff},
	{"Bearer without token", "GET /v1/kv/a HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer\r\n\r\n", parseHandOff},
	{"Bearer and spaces", "GET /v1/kv/a HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer   \r\n\r\n", parseHandOff},
	{"Bearer two spaces", "GET /v1/kv/a HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer  t\r\n\r\n", parseHandOff},
	{"Bearer tab", "GET /v1/kv/a HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer\tt\r\n\r\n", parseHandOff},
	{"token with a space", "GET /v1/kv/a HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer t u\r\n\r\n", parseHandOff},
	{"Bearerx", "GET /v1/kv/a HTTP/1.1\r\nHost: h\r\nAuthorization: Bearerx t\r\n\r\n", parseHandOff},

	// Headers the chain or net/http reads.
	{"Connection with two tokens", "GET /v1/kv/a HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, close\r\n\r\n", parseHandOff},
	{"Connection Upgrade", "GET /v1/kv/a HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", parseHandOff},
	{"Connection twice", "GET /v1/kv/a HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n", parseHandOff},
	{"Upgrade", "GET /v1/kv/a HTTP/1.1\r\nHost: h\r\nUpgrade: h2c\r\nHTTP2-Settings: AAAA\r\n\r\n", parseHandOff},
	{"Accept JSON", "GET /v1/kv/a HTTP/1.1\r\nHost: h\r\nAccept: application/json\r\n\r\n", parseHandOff},
	{"Accept twice", "GET /v1/kv/a HTTP/1.1\r\nHost: h\r\nAccept: */*\r\nAccept: application/json\r\n\r\n", parseHandOff},
	{"If-None-Match", "GET /v1/kv/a HTTP/1.1\r\nHost: h\r\nIf-None-Match: \"1\"\r\n\r\n", parseHandOff},
	{"If-Match", "PUT /v1/kv/a HTTP/1.1\r\nHost: h\r\nIf-Match: \"1\"\r\nContent-Length: 0\r\n\r\n", parseHandOff},
	{"Cookie", "GET /v1/kv/a HTTP/1.1\r\nHost: h\r\nCookie: pykv_session=x\r\n\r\n", parseHandOff},
	{"Origin", "PUT /v1/kv/a HTTP/1.1\r\nHost: h\r\nOrigin: http://evil.example\r\nContent-Length: 0\r\n\r\n", parseHandOff},
	{"Sec-Fetch-Site", "PUT /v1/kv/a HTTP/1.1\r\nHost: h\r\nSec-Fetch-Site: cross-site\r\nContent-Length: 0\r\n\r\n", parseHandOff},
	{"X-Forwarded-For", "GET /v1/kv/a HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 1.2.3.4\r\n\r\n", parseHandOff},
	{"X-Forwarded-Proto", "GET /v1/kv/a HTTP/1.1\r\nHost: h\r\nX-Forwarded-Proto: https\r\n\r\n", parseHandOff},
	{"Pragma", "GET /v1/kv/a HTTP/1.1\r\nHost: h\r\nPragma: no-cache\r\n\r\n", parseHandOff},
	{"TE", "GET /v1/kv/a HTTP/1.1\r\nHost: h\r\nTE: trailers\r\n\r\n", parseHandOff},
	{"Keep-Alive", "GET /v1/kv/a HTTP/1.1\r\nHost: h\r\nKeep-Alive: timeout=5\r\n\r\n", parseHandOff},
	{"Proxy-Connection", "GET /v1/kv/a HTTP/1.1\r\nHost: h\r\nProxy-Connection: close\r\n\r\n", parseHandOff},
	{"HTTP2-Settings", "GET /v1/kv/a HTTP/1.1\r\nHost: h\r\nHTTP2-Settings: AAAA\r\n\r\n", parseHandOff},
	{"Content-Length on a header of its own name", "PUT /v1/kv/a HTTP/1.1\r\nHost: h\r\nContent-Length-X: 1\r\nContent-Length: 1\r\n\r\nx", parseHandOff},
	{"Content-Type twice is fine, Cookie is not", "GET /v1/kv/a HTTP/1.1\r\nHost: h\r\nContent-Type: a\r\nContent-Type: b\r\nCookie: c=d\r\n\r\n", parseHandOff},
}

// TestParseHot checks each shape by name: served, waited on or handed
// off, and, whatever the answer, that net/http agrees with it.
func TestParseHot(t *testing.T) {
	o := newHotOracle(t)
	for _, c := range hotSeeds {
		t.Run(c.name, func(t *testing.T) {
			var r hotReq
			if _, st := parseHot([]byte(c.raw), hotTestMaxHead, &r); st != c.want {
				t.Fatalf("parseHot(%q) = %v, want %v", c.raw, st, c.want)
			}
			o.checkHotParse(t, []byte(c.raw))
		})
	}
}

// TestParseHot_Limits checks the bounds: a head of exactly maxHeaderBytes
// is served, one byte more is handed off (as soon as the bytes show it),
// and so are more than hotMaxHeaders headers.
func TestParseHot_Limits(t *testing.T) {
	const start = "GET /v1/kv/a HTTP/1.1\r\nHost: h\r\nUser-Agent: "
	const end = "\r\n\r\n"
	for _, tc := range []struct {
		head int
		want parseStatus
	}{{hotTestMaxHead, parseOK}, {hotTestMaxHead + 1, parseHandOff}} {
		b := []byte(start + strings.Repeat("u", tc.head-len(start)-len(end)) + end)
		var r hotReq
		if n, st := parseHot(b, hotTestMaxHead, &r); st != tc.want || (st == parseOK && n != len(b)) {
			t.Errorf("a head of %d bytes, limit %d: %d, %v; want %v", len(b), hotTestMaxHead, n, st, tc.want)
		}
	}
	// Without its end, a head is handed off once it reaches the limit.
	long := []byte(start + strings.Repeat("u", hotTestMaxHead))
	for _, k := range []int{hotTestMaxHead - 1, hotTestMaxHead, hotTestMaxHead + 1} {
		want := parseShort
		if k >= hotTestMaxHead {
			want = parseHandOff
		}
		var r hotReq
		if _, st := parseHot(long[:k], hotTestMaxHead, &r); st != want {
			t.Errorf("%d bytes of a head not ended yet, limit %d: %v, want %v", k, hotTestMaxHead, st, want)
		}
	}
	headers := func(n int) []byte {
		return []byte("GET /v1/kv/a HTTP/1.1\r\nHost: h\r\n" + strings.Repeat("User-Agent: u\r\n", n-1) + "\r\n")
	}
	var r hotReq
	if _, st := parseHot(headers(2), 0, &r); st != parseOK {
		t.Errorf("maxHeaderBytes 0 (net/http's default): %v, want served", st)
	}
	if _, st := parseHot(headers(hotMaxHeaders), 1<<20, &r); st != parseOK {
		t.Errorf("%d headers: %v, want served", hotMaxHeaders, st)
	}
	if _, st := parseHot(headers(hotMaxHeaders+1), 1<<20, &r); st != parseHandOff {
		t.Errorf("%d headers: %v, want handed off", hotMaxHeaders+1, st)
	}
}

// FuzzHotParse checks parseHot against net/http on any bytes (see
// checkHotParse): what it serves net/http reads the same way; what it
// waits on can still become a request it serves; every split of the
// bytes is judged alike.
func FuzzHotParse(f *testing.F) {
	for _, c := range hotSeeds {
		f.Add([]byte(c.raw))
	}
	o := newHotOracle(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		o.checkHotParse(t, b)
	})
}

// String gives what parseHot read, for failure messages.
func (r *hotReq) String() string {
	return fmt.Sprintf("{put %v key %q local %v host %q auth %v token %q body %d close %v}",
		r.put, r.key, r.local, r.host, r.hasAuth, r.token, r.bodyLen, r.closeConn)
}

func (s parseStatus) String() string {
	switch s {
	case parseOK:
		return "OK"
	case parseShort:
		return "short"
	case parseHandOff:
		return "hand off"
	}
	return fmt.Sprintf("parseStatus(%d)", int(s))
}

// BenchmarkHotParse measures parseHot on the requests the benchmarks
// send: wrk's GET and PUT (token, 100-byte value) and curl's GET.
func BenchmarkHotParse(b *testing.B) {
	for _, c := range []struct{ name, raw string }{
		{"GET", "GET /v1/kv/key-00042 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nAuthorization: Bearer 0123456789abcdef0123456789abcdef\r\n\r\n"},
		{"PUT", "PUT /v1/kv/key-00042 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nAuthorization: Bearer 0123456789abcdef0123456789abcdef\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\n" + strings.Repeat("v", 100)},
		{"GETcurl", "GET /v1/kv/key-00042 HTTP/1.1\r\nHost: localhost:8080\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n"},
	} {
		b.Run(c.name, func(b *testing.B) {
			buf := []byte(c.raw)
			b.ReportAllocs()
			for b.Loop() {
				var r hotReq
				if _, st := parseHot(buf, 1<<20, &r); st != parseOK {
					b.Fatal(st)
				}
			}
		})
	}
}

// TestLookupHotHeader checks the length-indexed lookup finds every name of
// hotHeaders, in any case, and nothing else of the same lengths.
func TestLookupHotHeader(t *testing.T) {
	for _, h := range hotHeaders {
		for _, name := range []string{h.name, strings.ToUpper(h.name), strings.ToUpper(h.name[:1]) + h.name[1:]} {
			if kind, ok := lookupHotHeader([]byte(name)); !ok || kind != h.kind {
				t.Errorf("lookupHotHeader(%q) = %v, %v; want %v", name, kind, ok, h.kind)
			}
		}
		other := []byte(h.name)
		other[len(other)-1] ^= 1
		if _, ok := lookupHotHeader(other); ok {
			t.Errorf("lookupHotHeader(%q) found a header", other)
		}
	}
}

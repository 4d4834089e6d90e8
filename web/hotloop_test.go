package web_test

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
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pykv/pykv/engine"
	"github.com/pykv/pykv/persist"
	"github.com/pykv/pykv/web"
)

const (
	hotToken     = "hot-loop-test-token-0123456789"
	hotReadToken = "hot-loop-read-token-0123456789"
	// hotMaxValue is the stores' value limit in these tests: small, so
	// that a value over it can arrive whole in the loop's first read.
	hotMaxValue = 1000
)

// hotEnv is a store and its options, for a server of either kind.
type hotEnv struct {
	dir  string
	db   *persist.DB
	opts web.Options
}

// openHotEnv opens a durable store (fsync always) in dir with tokens when
// auth is set.
func openHotEnv(t *testing.T, dir string, auth bool, log *slog.Logger) *hotEnv {
	t.Helper()
	return openHotEnvMax(t, dir, auth, log, hotMaxValue)
}

// openHotEnvMax is openHotEnv with values up to maxValue bytes.
func openHotEnvMax(t *testing.T, dir string, auth bool, log *slog.Logger, maxValue int) *hotEnv {
	t.Helper()
	m := web.NewMetrics()
	db, err := persist.Open(dir, persist.Options{Sync: persist.SyncAlways, SyncObserver: m.ObserveFsync,
		Engine: engine.Options{MaxValueBytes: maxValue}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	o := web.Options{Store: db.Store(), DB: db, Metrics: m, Logger: log}
	if auth {
		o.AuthToken, o.ReadToken = hotToken, hotReadToken
	}
	return &hotEnv{dir: dir, db: db, opts: o}
}

func listenLocal(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// startHot serves o on the hot loop with srv's limits and returns the loop
// and its address; Cleanup closes it.
func startHot(t *testing.T, o web.Options, srv *http.Server, setup ...func(*web.HotLoop)) (*web.HotLoop, string) {
	t.Helper()
	loop := web.NewHotLoop(o, srv)
	for _, f := range setup {
		f(loop)
	}
	ln := listenLocal(t)
	go func() { _ = loop.Serve(ln) }()
	t.Cleanup(func() { _ = loop.Close() })
	return loop, ln.Addr().String()
}

// productionLimits are cmd/pykv's http.Server limits.
func productionLimits() *http.Server {
	return &http.Server{ReadHeaderTimeout: 5 * time.Second, ReadTimeout: time.Minute, WriteTimeout: time.Minute,
		IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10}
}

// startHotPair starts two servers on fresh durable stores: one with the
// hot loop, one with net/http alone, with the same options and limits.
func startHotPair(t *testing.T, auth bool) (loop *web.HotLoop, hot, ref string, hotEnv, refEnv *hotEnv) {
	t.Helper()
	hotEnv = openHotEnv(t, t.TempDir(), auth, nil)
	loop, hot = startHot(t, hotEnv.opts, productionLimits())

	refEnv = openHotEnv(t, t.TempDir(), auth, nil)
	rsrv := productionLimits()
	rsrv.Handler = web.NewServer(refEnv.opts)
	rln := listenLocal(t)
	go func() { _ = rsrv.Serve(rln) }()
	t.Cleanup(func() { _ = rsrv.Close() })
	return loop, hot, rln.Addr().String(), hotEnv, refEnv
}

// exchange writes reqs on one connection at once (pipelined) and reads n
// answers, returning each answer's raw bytes and whether the server then
// closed the connection (read within a short wait).
func exchange(addr string, reqs string, n int) (answers [][]byte, closed bool, err error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, false, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	go func() { _, _ = io.WriteString(c, reqs) }() // big bodies: the server may answer before reading them all
	var raw bytes.Buffer
	br := bufio.NewReader(io.TeeReader(c, &raw))
	rr := bufio.NewReader(strings.NewReader(reqs))
	for range n {
		sent, err := http.ReadRequest(rr) // for its method: a HEAD's answer has no body
		if err != nil {
			return nil, false, err
		}
		_, _ = io.Copy(io.Discard, sent.Body)
		resp, err := http.ReadResponse(br, sent)
		if err != nil {
			return nil, false, fmt.Errorf("answer %d of %d: %v\nread so far:\n%s", len(answers)+1, n, err, raw.String())
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		// The bytes of this answer: what was read minus what is buffered.
		end := raw.Len() - br.Buffered()
		answers = append(answers, slices.Clone(raw.Bytes()[:end]))
		raw.Next(end)
	}
	_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	_, err = br.ReadByte()
	return answers, err == io.EOF || errors.Is(err, net.ErrClosed) || isReset(err), nil
}

// exchangeBoth is exchange with two servers at once.
func exchangeBoth(t *testing.T, hot, ref string, reqs string, n int) (hotAnswers, refAnswers [][]byte, hotClosed, refClosed bool) {
	t.Helper()
	var refErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		refAnswers, refClosed, refErr = exchange(ref, reqs, n)
	}()
	hotAnswers, hotClosed, err := exchange(hot, reqs, n)
	<-done
	if err != nil {
		t.Fatalf("the loop: %v", err)
	}
	if refErr != nil {
		t.Fatalf("net/http: %v", refErr)
	}
	return hotAnswers, refAnswers, hotClosed, refClosed
}

func isReset(err error) bool { return err != nil && strings.Contains(err.Error(), "connection reset") }

// canonical returns an answer's status line, headers (sorted, Date
// dropped; Transfer-Encoding shown) and body, for comparing two servers'
// answers.
func canonical(t *testing.T, raw []byte) string {
	t.Helper()
	head, _, _ := bytes.Cut(raw, []byte("\r\n\r\n"))
	var sent *http.Request
	if !bytes.Contains(head, []byte("\r\nContent-Length: ")) && !bytes.Contains(head, []byte("\r\nTransfer-Encoding: ")) {
		sent = &http.Request{Method: "HEAD"} // no length: the answer to a HEAD, or one without a body
	}
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(raw)), sent)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	return canonicalResp(resp, body)
}

// req builds one request; PUTs get a Content-Length.
func req(method, target, body string, headers ...string) string {
	var b strings.Builder
	b.WriteString(method + " " + target + " HTTP/1.1\r\n")
	host := true
	for _, h := range headers {
		if strings.HasPrefix(strings.ToLower(h), "host:") {
			host = false
		}
	}
	if host {
		b.WriteString("Host: 127.0.0.1\r\n")
	}
	for _, h := range headers {
		b.WriteString(h + "\r\n")
	}
	if method == "PUT" {
		b.WriteString("Content-Length: " + strconv.Itoa(len(body)) + "\r\n")
	}
	b.WriteString("\r\n" + body)
	return b.String()
}

// loopAnswered reports whether an answer was written by the loop itself
// (its answers start with Date; net/http and the recorder sort theirs).
func loopAnswered(raw []byte) bool {
	lines := bytes.SplitN(raw, []byte("\r\n"), 3)
	return len(lines) > 1 && bytes.HasPrefix(lines[1], []byte("Date: "))
}

var (
	auth     = "Authorization: Bearer " + hotToken
	readAuth = "Authorization: Bearer " + hotReadToken
)

// TestHotLoop_SameAnswers sends the same bytes to the loop and to net/http
// alone, on stores given the same history, and wants the same answers
// (status, headers but Date, body, byte for byte), the same closing of the
// connection, and the same request metrics. It also checks which answers
// the loop wrote itself and that none of the error answers cost a
// hand-off to net/http (a client doing many 404s stays on the loop).
func TestHotLoop_SameAnswers(t *testing.T) {
	big := strings.Repeat("b", hotMaxValue+1)
	huge := strings.Repeat("h", 300<<10) // far more than the first read: refused from the head
	mid := strings.Repeat("m", 40<<10)   // more than the first read, less than net/http drains
	cases := []struct {
		name    string
		auth    bool
		reqs    []string
		loop    []bool // answers the loop writes itself (nil: none required)
		handoff bool   // the connection ends up with net/http
	}{
		{name: "PutCreateUpdateGet", auth: true, reqs: []string{
			req("PUT", "/v1/kv/k1", "one", auth), req("PUT", "/v1/kv/k1", "two", auth), req("GET", "/v1/kv/k1", "", auth),
		}, loop: []bool{true, true, true}},
		{name: "PipelinedGetPutGet", auth: true, reqs: []string{
			req("GET", "/v1/kv/k1", "", auth), req("PUT", "/v1/kv/k1", "three", auth), req("GET", "/v1/kv/k1", "", auth, "Accept: */*"),
			req("PUT", "/v1/kv/k2", "x", auth), req("PUT", "/v1/kv/k3", "y", auth), req("GET", "/v1/kv/k2", "", readAuth),
		}, loop: []bool{true, true, true, true, true, true}},
		{name: "Missing404ThenFound", auth: true, reqs: []string{
			req("GET", "/v1/kv/missing", "", auth), req("GET", "/v1/kv/missing2", "", auth), req("GET", "/v1/kv/k1", "", auth),
		}, loop: []bool{false, false, true}},
		{name: "BadKey", auth: true, reqs: []string{
			req("GET", "/v1/kv/"+strings.Repeat("k", 2000), "", auth), req("PUT", "/v1/kv/"+strings.Repeat("k", 2000), "v", auth),
			req("GET", "/v1/kv/k1", "", auth),
		}, loop: []bool{false, false, true}},
		{name: "TooLargeWhole", auth: true, reqs: []string{req("PUT", "/v1/kv/big", big, auth)}},
		{name: "TooLargeFromHead", auth: true, reqs: []string{req("PUT", "/v1/kv/big", huge, auth)}},
		{name: "TooLargeAfterOthers", auth: true, reqs: []string{
			req("PUT", "/v1/kv/k4", "v4", auth), req("PUT", "/v1/kv/big", big, auth), req("GET", "/v1/kv/k4", "", auth),
		}},
		{name: "ReadOnlyTokenWrites", auth: true, reqs: []string{req("PUT", "/v1/kv/k1", "ro", readAuth), req("GET", "/v1/kv/k1", "", auth)}},
		{name: "WrongToken", auth: true, reqs: []string{
			req("GET", "/v1/kv/k1", "", "Authorization: Bearer wrong"), req("PUT", "/v1/kv/k1", "w", "Authorization: Bearer wrong"),
		}},
		{name: "NoToken", auth: true, reqs: []string{req("GET", "/v1/kv/k1", ""), req("PUT", "/v1/kv/k1", "n")}},
		{name: "RefusedHugeBodyNoToken", auth: true, reqs: []string{req("PUT", "/v1/kv/k1", huge)}},
		// Bodies longer than the loop's first read but under net/http's
		// 256 KiB it reads past a handler: net/http reads them away and
		// keeps the connection, so must the loop.
		{name: "RefusedMidBodyThenGet", auth: true, reqs: []string{
			req("PUT", "/v1/kv/k1", mid), req("PUT", "/v1/kv/k1", mid, readAuth), req("GET", "/v1/kv/k1", "", auth),
		}},
		{name: "TooLargeMidBodyThenGet", auth: true, reqs: []string{req("PUT", "/v1/kv/big", mid, auth), req("GET", "/v1/kv/k1", "", auth)}},
		{name: "NoAuthConfigured", auth: false, reqs: []string{
			req("PUT", "/v1/kv/open", "v"), req("GET", "/v1/kv/open", ""), req("GET", "/v1/kv/open", "", "Authorization: Bearer whatever"),
		}, loop: []bool{true, true, true}},
		{name: "HostRefused", auth: true, reqs: []string{
			req("GET", "/v1/kv/k1", "", auth, "Host: rebind.attacker.example"), req("PUT", "/v1/kv/k1", "h", auth, "Host: rebind.attacker.example"),
			req("GET", "/v1/kv/k1", "", auth, "Host: localhost:8080"),
		}, loop: []bool{false, false, true}},
		{name: "ConnectionClose", auth: true, reqs: []string{
			req("GET", "/v1/kv/k1", "", auth), req("GET", "/v1/kv/k1", "", auth, "Connection: close"),
		}, loop: []bool{true, true}},
		{name: "ConnectionClosePut", auth: true, reqs: []string{req("PUT", "/v1/kv/k5", "c", auth, "Connection: close")}, loop: []bool{true}},
		{name: "ConnectionClose404", auth: true, reqs: []string{req("GET", "/v1/kv/nope", "", auth, "Connection: close")}},
		{name: "HandOffMidPipeline", auth: true, reqs: []string{
			req("PUT", "/v1/kv/k6", "before", auth), req("HEAD", "/v1/kv/k6", "", auth), req("GET", "/v1/kv/k6", "", auth),
		}, loop: []bool{true, false, false}, handoff: true},
		{name: "ConsistencyQuery", auth: true, reqs: []string{
			req("GET", "/v1/kv/k1?consistency=local", "", auth), req("GET", "/v1/kv/k1?consistency=linearizable", "", readAuth),
			req("GET", "/v1/kv/nope?consistency=local", "", auth),
		}, loop: []bool{true, true, false}},
		{name: "AcceptJSON", auth: true, handoff: true, reqs: []string{req("GET", "/v1/kv/k6", "", auth, "Accept: application/json")}},
		{name: "IfNoneMatch", auth: true, handoff: true, reqs: []string{
			req("GET", "/v1/kv/k6", "", auth, `If-None-Match: "`+"999"+`"`), req("GET", "/v1/kv/k6", "", auth, "If-None-Match: *"),
		}},
		{name: "OtherRoutes", auth: true, handoff: true, reqs: []string{req("GET", "/healthz", ""), req("GET", "/v1/kv/k%31", "", auth)}},
		{name: "Chunked", auth: true, handoff: true, reqs: []string{
			"PUT /v1/kv/k2 HTTP/1.1\r\nHost: 127.0.0.1\r\n" + auth + "\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n",
		}},
		{name: "RateLimited", auth: true, reqs: append(slices.Repeat([]string{req("GET", "/v1/kv/k1", "", "Authorization: Bearer wrong")}, 11),
			req("GET", "/v1/kv/k1", "", auth))},
	}
	for _, auth := range []bool{true, false} {
		loop, hot, ref, hotEnv, refEnv := startHotPair(t, auth)
		for _, tc := range cases {
			if tc.auth != auth {
				continue
			}
			t.Run(tc.name, func(t *testing.T) {
				before := web.HotLoopHandoffs(loop)
				all := strings.Join(tc.reqs, "")
				hotAnswers, refAnswers, hotClosed, refClosed := exchangeBoth(t, hot, ref, all, len(tc.reqs))
				for i := range tc.reqs {
					if h, r := canonical(t, hotAnswers[i]), canonical(t, refAnswers[i]); h != r {
						t.Errorf("request %d (%.60q): the loop answered\n%s\nnet/http answered\n%s", i, tc.reqs[i], h, r)
					}
					if tc.loop != nil && tc.loop[i] != loopAnswered(hotAnswers[i]) {
						t.Errorf("request %d (%.60q): answered by the loop itself %v, want %v:\n%s", i, tc.reqs[i], !tc.loop[i], tc.loop[i], hotAnswers[i])
					}
				}
				if hotClosed != refClosed {
					t.Errorf("connection closed after the answers: loop %v, net/http %v", hotClosed, refClosed)
				}
				if handed := web.HotLoopHandoffs(loop) > before; handed != tc.handoff {
					t.Errorf("connection handed to net/http: %v, want %v", handed, tc.handoff)
				}
			})
		}
		if h, r := requestSeries(t, hot), requestSeries(t, ref); h != r {
			t.Errorf("auth %v: request metrics differ:\nloop:\n%s\nnet/http:\n%s", auth, h, r)
		}
		if h, r := hotEnv.db.Store().Rev(), refEnv.db.Store().Rev(); h != r {
			t.Errorf("auth %v: stores at revisions %d (loop) and %d (net/http)", auth, h, r)
		}
	}
}

var requestSeriesRE = regexp.MustCompile(`(?m)^pykv_http_requests_total\{[^}]*\} \d+$`)

// requestSeries returns the request counters of a server's /metrics but
// those of the /metrics requests themselves.
func requestSeries(t *testing.T, addr string) string {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+addr+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+hotToken)
	// From another loopback address: this one may be rate limited.
	client := &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{
		LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}).DialContext}}
	defer client.CloseIdleConnections()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var keep []string
	for _, l := range requestSeriesRE.FindAllString(string(b), -1) {
		if !strings.Contains(l, `route="/metrics"`) {
			keep = append(keep, l)
		}
	}
	if len(keep) == 0 {
		t.Fatalf("no request series in /metrics:\n%s", b)
	}
	return strings.Join(keep, "\n")
}

// closedWithin reads from c until it is closed and returns how long that
// took from start; it fails the test if c is still open after limit.
func closedWithin(t *testing.T, c net.Conn, start time.Time, limit time.Duration) time.Duration {
	t.Helper()
	_ = c.SetReadDeadline(start.Add(limit))
	_, err := io.Copy(io.Discard, c)
	took := time.Since(start)
	if err != nil && !isReset(err) {
		t.Fatalf("connection still open after %v (%v)", took, err)
	}
	return took
}

// TestHotLoop_Timeouts: the loop keeps the http.Server's timeouts. A head
// that never ends (slowloris), even trickled a byte at a time, is cut off
// ReadHeaderTimeout after its first byte; a body that never ends,
// ReadTimeout after its first byte; an idle keep-alive connection after
// IdleTimeout. Every limit is far below the others, so each test can only
// pass by the limit it names.
func TestHotLoop_Timeouts(t *testing.T) {
	const short = 300 * time.Millisecond
	env := openHotEnv(t, t.TempDir(), false, nil)
	long := time.Minute
	cases := []struct {
		name string
		srv  *http.Server
		send func(c net.Conn)
	}{
		{"HeaderNeverEnds", &http.Server{ReadHeaderTimeout: short, ReadTimeout: long, IdleTimeout: long},
			func(c net.Conn) { _, _ = io.WriteString(c, "GET /v1/kv/a HTTP/1.1\r\nHost: 127.0.0.1\r\n") }},
		{"HeaderTrickled", &http.Server{ReadHeaderTimeout: short, ReadTimeout: long, IdleTimeout: long},
			func(c net.Conn) {
				for _, b := range []byte("GET /v1/kv/a HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa") {
					if _, err := c.Write([]byte{b}); err != nil {
						return
					}
					time.Sleep(20 * time.Millisecond)
				}
			}},
		{"HeaderAfterAnswer", &http.Server{ReadHeaderTimeout: short, ReadTimeout: long, IdleTimeout: long},
			func(c net.Conn) {
				// A whole request, then half of the next in the same write.
				_, _ = io.WriteString(c, req("PUT", "/v1/kv/a", "v")+"GET /v1/kv/a HTTP/1.1\r\n")
			}},
		{"BodyNeverEnds", &http.Server{ReadHeaderTimeout: long, ReadTimeout: short, IdleTimeout: long},
			func(c net.Conn) {
				_, _ = io.WriteString(c, "PUT /v1/kv/a HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 10\r\n\r\nabc")
			}},
		{"Idle", &http.Server{ReadHeaderTimeout: long, ReadTimeout: long, IdleTimeout: short},
			func(c net.Conn) { _, _ = io.WriteString(c, req("PUT", "/v1/kv/a", "v")) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, addr := startHot(t, env.opts, tc.srv)
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			start := time.Now()
			go tc.send(c)
			if took := closedWithin(t, c, start, 20*time.Second); took < short || took > 10*time.Second {
				t.Errorf("closed after %v, want %v (and far less than %v)", took, short, long)
			}
		})
	}
}

// TestHotLoop_IdleFromLastAnswer: the idle timeout counts from the last
// answer, not from when the connection came: a request that comes late,
// after most of the idle time, gets its full idle time again after its
// answer (the deadline set when the connection came fires early and is
// moved, not obeyed).
func TestHotLoop_IdleFromLastAnswer(t *testing.T) {
	const idle = 400 * time.Millisecond
	env := openHotEnv(t, t.TempDir(), false, nil)
	_, addr := startHot(t, env.opts, &http.Server{ReadHeaderTimeout: time.Minute, ReadTimeout: time.Minute, IdleTimeout: idle})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	time.Sleep(idle * 3 / 4)
	if code := roundTrip(t, c, bufio.NewReader(c), req("PUT", "/v1/kv/a", "v")); code != http.StatusCreated {
		t.Fatalf("PUT answered %d", code)
	}
	answered := time.Now()
	// The server's idle time starts as it finishes writing the answer, a
	// little before the client has read it; a deadline kept from when the
	// connection came would close it about idle/4 after the answer.
	if took := closedWithin(t, c, answered, 20*time.Second); took < idle/2 {
		t.Errorf("closed %v after the last answer, want about the idle timeout, %v", took, idle)
	}
}

// TestHotLoop_WriteTimeout: a client that pipelines GETs of a big value
// and never reads is cut off after WriteTimeout, not held forever.
func TestHotLoop_WriteTimeout(t *testing.T) {
	env := openHotEnv(t, t.TempDir(), false, nil)
	if _, err := env.db.Store().Put("v", strings.Repeat("v", hotMaxValue)); err != nil {
		t.Fatal(err)
	}
	loop, addr := startHot(t, env.opts, &http.Server{WriteTimeout: 300 * time.Millisecond, IdleTimeout: time.Minute})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.(*net.TCPConn).SetReadBuffer(4096)
	// About 100 MB of answers: far more than the socket buffers hold.
	go func() {
		r := req("GET", "/v1/kv/v", "")
		for range 100 {
			if _, err := io.WriteString(c, strings.Repeat(r, 1000)); err != nil {
				return
			}
		}
	}()
	waitConns(t, loop, 1, "the connection to be served")
	waitConns(t, loop, 0, "the connection of a client that does not read to be closed (WriteTimeout 300ms)")
}

// waitConns waits up to 20 s for loop to serve n connections itself.
func waitConns(t *testing.T, loop *web.HotLoop, n int, what string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for web.HotLoopConns(loop) != n {
		if time.Now().After(deadline) {
			t.Fatalf("waited 20 s for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// bufRecorder records the loop's buffer sizes at each request (SetHotLoopHook).
type bufRecorder struct {
	mu      sync.Mutex
	readCap map[string][]int
	maxOut  int
}

func (b *bufRecorder) hook(key string, readCap, outCap int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.readCap[key] = append(b.readCap[key], readCap)
	b.maxOut = max(b.maxOut, outCap)
}

// roundTrip sends r on c and reads its answer's status.
func roundTrip(t *testing.T, c net.Conn, br *bufio.Reader, r string) int {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, r); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestHotLoop_BoundedBuffers: the read buffer grows for a big request only
// as far as the largest request allowed, and shrinks back after it;
// pipelined GETs of big values are written out every 64 KiB or so instead
// of gathering all the answers in one buffer.
func TestHotLoop_BoundedBuffers(t *testing.T) {
	const maxValue, maxHeader = 256 << 10, 16 << 10
	env := openHotEnvMax(t, t.TempDir(), false, nil, maxValue)
	rec := &bufRecorder{readCap: map[string][]int{}}
	_, addr := startHot(t, env.opts, &http.Server{MaxHeaderBytes: maxHeader, IdleTimeout: time.Minute},
		func(l *web.HotLoop) { web.SetHotLoopHook(l, rec.hook) })
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	if code := roundTrip(t, c, br, req("PUT", "/v1/kv/big", strings.Repeat("b", maxValue))); code != http.StatusCreated {
		t.Fatalf("PUT of %d bytes: %d", maxValue, code)
	}
	if code := roundTrip(t, c, br, req("PUT", "/v1/kv/mid", strings.Repeat("m", 60<<10))); code != http.StatusCreated {
		t.Fatalf("PUT of 60 KiB: %d", code)
	}
	if code := roundTrip(t, c, br, req("GET", "/v1/kv/small", "")); code != http.StatusNotFound {
		t.Fatalf("GET small: %d", code)
	}
	// 100 pipelined GETs of 60 KiB: 6 MB of answers.
	go func() { _, _ = io.WriteString(c, strings.Repeat(req("GET", "/v1/kv/mid", ""), 100)) }()
	for i := range 100 {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("pipelined GET %d: %v", i, err)
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || n != 60<<10 {
			t.Fatalf("pipelined GET %d: %d, %d bytes", i, resp.StatusCode, n)
		}
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	limit := maxHeader + maxValue + 16<<10
	if got := rec.readCap["big"]; len(got) != 1 || got[0] < maxValue || got[0] > limit {
		t.Errorf("read buffer for a %d-byte PUT: %v bytes, want between %d and %d", maxValue, got, maxValue, limit)
	}
	if got := rec.readCap["small"]; len(got) != 1 || got[0] > 4096 {
		t.Errorf("read buffer after the big requests: %v bytes, want it back to 4096", got)
	}
	if rec.maxOut > 256<<10 {
		t.Errorf("output buffer grew to %d bytes for pipelined GETs of 60 KiB, want it written every 64 KiB", rec.maxOut)
	}
}

// TestHotLoop_PanicClosesOnlyItsConnection: a panic while the loop answers
// a request is logged with its stack and closes that connection; the
// server and its other connections go on.
func TestHotLoop_PanicClosesOnlyItsConnection(t *testing.T) {
	logFile, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	env := openHotEnv(t, t.TempDir(), false, slog.New(slog.NewTextHandler(logFile, nil)))
	loop, addr := startHot(t, env.opts, productionLimits(), func(l *web.HotLoop) {
		web.SetHotLoopHook(l, func(key string, _, _ int) {
			if key == "boom" {
				panic("planted panic for key boom")
			}
		})
	})
	other, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	obr := bufio.NewReader(other)
	if code := roundTrip(t, other, obr, req("PUT", "/v1/kv/a", "1")); code != http.StatusCreated {
		t.Fatalf("PUT a: %d", code)
	}

	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, req("GET", "/v1/kv/boom", "")); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if b, err := io.ReadAll(c); len(b) != 0 || (err != nil && !isReset(err)) {
		t.Fatalf("the panicking request's connection: read %q, %v; want it closed without an answer", b, err)
	}
	logged, _ := os.ReadFile(logFile.Name())
	if l := string(logged); !strings.Contains(l, "planted panic for key boom") || !strings.Contains(l, "runtime/debug.Stack") {
		t.Errorf("log has no panic with its stack:\n%s", l)
	}
	if code := roundTrip(t, other, obr, req("GET", "/v1/kv/a", "")); code != http.StatusOK {
		t.Fatalf("GET a on the other connection after the panic: %d", code)
	}
	waitConns(t, loop, 1, "the panicking connection to be dropped")
}

// TestHotLoop_Shutdown: Shutdown closes idle connections at once, answers
// a batch in progress (its PUTs durable and acknowledged) and closes its
// connection after, refuses new connections, and returns once every
// connection is closed. After a restart the acknowledged writes are there
// and the one sent after the shutdown began, not acknowledged, is not.
func TestHotLoop_Shutdown(t *testing.T) {
	dir := t.TempDir()
	env := openHotEnv(t, dir, false, nil)
	entered, release := make(chan struct{}), make(chan struct{})
	loop, addr := startHot(t, env.opts, productionLimits(), func(l *web.HotLoop) {
		web.SetHotLoopHook(l, func(key string, _, _ int) {
			if key == "inflight" {
				close(entered)
				<-release
			}
		})
	})
	idle, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	ibr := bufio.NewReader(idle)
	if code := roundTrip(t, idle, ibr, req("PUT", "/v1/kv/before", "b")); code != http.StatusCreated {
		t.Fatalf("PUT before: %d", code)
	}
	busy, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	// One batch: two PUTs, the first held in the loop until released.
	if _, err := io.WriteString(busy, req("PUT", "/v1/kv/inflight", "i")+req("PUT", "/v1/kv/inflight2", "j")); err != nil {
		t.Fatal(err)
	}
	<-entered

	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		shut <- loop.Shutdown(ctx)
	}()
	closedWithin(t, idle, time.Now(), 10*time.Second) // the idle connection, at once
	if _, err := io.WriteString(idle, req("PUT", "/v1/kv/late", "l")); err == nil {
		if resp, err := http.ReadResponse(ibr, nil); err == nil {
			t.Fatalf("a PUT sent on a connection closed by Shutdown was answered %d", resp.StatusCode)
		}
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Error("a new connection was accepted after Shutdown began")
	}
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned (%v) while a batch was in progress", err)
	case <-time.After(100 * time.Millisecond):
	}

	close(release)
	_ = busy.SetReadDeadline(time.Now().Add(10 * time.Second))
	bbr := bufio.NewReader(busy)
	for _, key := range []string{"inflight", "inflight2"} {
		resp, err := http.ReadResponse(bbr, nil)
		if err != nil {
			t.Fatalf("PUT %s in progress at shutdown: %v", key, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("PUT %s in progress at shutdown: %d", key, resp.StatusCode)
		}
	}
	closedWithin(t, busy, time.Now(), 10*time.Second)
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}

	if err := env.db.Close(); err != nil {
		t.Fatal(err)
	}
	again := openHotEnv(t, dir, false, nil)
	for key, want := range map[string]bool{"before": true, "inflight": true, "inflight2": true, "late": false} {
		_, err := again.db.Store().Get(key)
		if got := err == nil; got != want {
			t.Errorf("after restart, %s present %v, want %v (%v)", key, got, want, err)
		}
	}
}

// TestHotLoop_DebugLogHandsEverythingOver: with a logger taking debug
// records (the access log, which the chain writes), the loop serves no
// request itself: every connection goes to net/http, which logs it.
func TestHotLoop_DebugLogHandsEverythingOver(t *testing.T) {
	logFile, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	env := openHotEnv(t, t.TempDir(), false, slog.New(slog.NewTextHandler(logFile, &slog.HandlerOptions{Level: slog.LevelDebug})))
	loop, addr := startHot(t, env.opts, productionLimits())
	answers, _, err := exchange(addr, req("PUT", "/v1/kv/k", "v")+req("GET", "/v1/kv/k", ""), 2)
	if err != nil {
		t.Fatal(err)
	}
	for i, a := range answers {
		if loopAnswered(a) {
			t.Errorf("answer %d written by the loop with the debug log on:\n%s", i, a)
		}
	}
	if web.HotLoopHandoffs(loop) != 1 {
		t.Errorf("%d connections handed to net/http, want 1", web.HotLoopHandoffs(loop))
	}
	if logged, _ := os.ReadFile(logFile.Name()); strings.Count(string(logged), "msg=request") != 2 {
		t.Errorf("access log has not both requests:\n%s", logged)
	}
}

// TestHotLoop_SplitReads sends pipelined requests cut into pieces, each
// written on its own after a pause (so the loop reads them apart: heads
// and bodies cut anywhere), and wants the answers net/http gives to the
// same bytes sent at once, on a store with the same history.
func TestHotLoop_SplitReads(t *testing.T) {
	reqs := []string{
		req("PUT", "/v1/kv/s1", strings.Repeat("a", 300), auth),
		req("GET", "/v1/kv/s1", "", auth),
		req("GET", "/v1/kv/nope", "", auth),
		req("PUT", "/v1/kv/s1", "b", readAuth),
		req("PUT", "/v1/kv/s2", strings.Repeat("c", hotMaxValue), auth),
		req("GET", "/v1/kv/s2", "", auth, "Accept: */*"),
		req("PUT", "/v1/kv/s1", "d", auth),
		req("GET", "/v1/kv/s1", "", auth, "Connection: close"),
	}
	all := strings.Join(reqs, "")
	for seed := range 3 {
		_, hot, ref, _, _ := startHotPair(t, true)
		refAnswers, _, err := exchange(ref, all, len(reqs))
		if err != nil {
			t.Fatal(err)
		}
		c, err := net.Dial("tcp", hot)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(20 * time.Second))
		go func() {
			for i := 0; i < len(all); {
				n := min(1+(i*7+seed*13)%41, len(all)-i) // 1 to 41 bytes
				if _, err := io.WriteString(c, all[i:i+n]); err != nil {
					return
				}
				i += n
				time.Sleep(time.Millisecond)
			}
		}()
		br := bufio.NewReader(c)
		for i := range reqs {
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("seed %d, answer %d: %v", seed, i, err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if got, want := canonicalResp(resp, body), canonical(t, refAnswers[i]); got != want {
				t.Errorf("seed %d, request %d (%.50q): the loop answered\n%s\nnet/http answered\n%s", seed, i, reqs[i], got, want)
			}
		}
	}
}

// canonicalResp is canonical for a response already read.
func canonicalResp(resp *http.Response, body []byte) string {
	var lines []string
	for k, vs := range resp.Header {
		if k != "Date" {
			lines = append(lines, k+": "+strings.Join(vs, ","))
		}
	}
	if len(resp.TransferEncoding) > 0 {
		lines = append(lines, "(Transfer-Encoding: "+strings.Join(resp.TransferEncoding, ",")+")")
	}
	slices.Sort(lines)
	return resp.Status + "\n" + strings.Join(lines, "\n") + "\n\n" + string(body)
}

// TestHotLoop_RefusedBodyReadTimeout: the body of a request the loop
// answers from its head (a value over the limit, read by the handler
// straight from the connection) is read under ReadTimeout, as net/http
// reads it; with none, under no deadline at all, not under the
// ReadHeaderTimeout left from reading the head. Its head arrives in two
// reads (so the header deadline was set) and the first limit+1 bytes of
// its body trickle in over longer than ReadHeaderTimeout: both servers
// must answer 413.
func TestHotLoop_RefusedBodyReadTimeout(t *testing.T) {
	const headerTimeout = 300 * time.Millisecond
	limits := func() *http.Server {
		return &http.Server{ReadHeaderTimeout: headerTimeout, IdleTimeout: time.Minute}
	}
	hotEnv := openHotEnv(t, t.TempDir(), false, nil)
	_, hot := startHot(t, hotEnv.opts, limits())
	refEnv := openHotEnv(t, t.TempDir(), false, nil)
	rsrv := limits()
	rsrv.Handler = web.NewServer(refEnv.opts)
	rln := listenLocal(t)
	go func() { _ = rsrv.Serve(rln) }()
	t.Cleanup(func() { _ = rsrv.Close() })

	const bodyLen = 8 * hotMaxValue
	for _, s := range []struct{ name, addr string }{{"net/http", rln.Addr().String()}, {"the loop", hot}} {
		t.Run(s.name, func(t *testing.T) {
			c, err := net.Dial("tcp", s.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(20 * time.Second))
			go func() {
				_, _ = io.WriteString(c, "PUT /v1/kv/big HTTP/1.1\r\nHost: 127.0.0.1\r\n")
				time.Sleep(50 * time.Millisecond)
				_, _ = io.WriteString(c, "Content-Length: "+strconv.Itoa(bodyLen)+"\r\n\r\n")
				// limit+1 bytes over 4 x ReadHeaderTimeout, then the rest.
				chunk := strings.Repeat("b", hotMaxValue/10)
				for range 11 {
					time.Sleep(headerTimeout * 4 / 11)
					if _, err := io.WriteString(c, chunk); err != nil {
						return
					}
				}
				_, _ = io.WriteString(c, strings.Repeat("b", bodyLen-11*len(chunk)))
			}()
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusRequestEntityTooLarge {
				t.Errorf("answered %s, want 413:\n%s", resp.Status, body)
			}
		})
	}
}

// TestHotLoop_HeaderTimeoutAfterSlowAnswer: a pipelined request whose head
// began in the read that brought the one before it gets ReadHeaderTimeout
// from when the loop starts waiting for the rest of it (after the answers
// before it are written), as net/http counts it, not from that read: a
// client slow to read a big answer must not lose the connection, and the
// answer to its next request, for it.
func TestHotLoop_HeaderTimeoutAfterSlowAnswer(t *testing.T) {
	const headerTimeout = 300 * time.Millisecond
	const size = 32 << 20 // far more than the socket buffers hold
	env := openHotEnvMax(t, t.TempDir(), false, nil, size)
	if _, err := env.db.Store().Put("big", strings.Repeat("v", size)); err != nil {
		t.Fatal(err)
	}
	_, addr := startHot(t, env.opts, &http.Server{ReadHeaderTimeout: headerTimeout, ReadTimeout: time.Minute,
		WriteTimeout: time.Minute, IdleTimeout: time.Minute})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	second := req("GET", "/v1/kv/small", "")
	// The first request whole and the start of the second in one write;
	// the rest of the second at once after, while the first's answer is
	// being written.
	if _, err := io.WriteString(c, req("GET", "/v1/kv/big", "")+second[:20]); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if _, err := io.WriteString(c, second[20:]); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * headerTimeout) // reading nothing: the answer waits
	br := bufio.NewReader(c)
	for i, want := range []int{http.StatusOK, http.StatusNotFound} {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("answer %d: %v", i+1, err)
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want || (i == 0 && n != size) {
			t.Fatalf("answer %d: %s, %d bytes; want %d", i+1, resp.Status, n, want)
		}
	}
}

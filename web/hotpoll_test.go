//go:build linux

package web_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pykv/pykv/engine"
	"github.com/pykv/pykv/web"
)

// waitPolled waits up to 10 s for loop's poller to hold n connections.
func waitPolled(t *testing.T, loop *web.HotLoop, n int, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for web.HotLoopPolled(loop) != n {
		if time.Now().After(deadline) {
			t.Fatalf("waited 10 s for %s: the poller holds %d connections, want %d", what, web.HotLoopPolled(loop), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// dialPolled opens n connections to addr, closed when the test ends, and
// waits for loop's poller to hold them (and no others).
func dialPolled(t *testing.T, loop *web.HotLoop, addr string, n int) []net.Conn {
	t.Helper()
	conns := make([]net.Conn, n)
	for i := range conns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		conns[i] = c
	}
	waitPolled(t, loop, n, fmt.Sprintf("%d new connections", n))
	return conns
}

// holdPoller serves a fresh store on the hot loop and opens n connections
// the poller holds, plus one more whose GET of "block" it answers in a
// hook that waits: on return the poller is held there, and what the n
// connections send meanwhile arrives before it reads any of it. release
// lets it go on. seen, when set, gets every other key the hook is called
// with, in order.
func holdPoller(t *testing.T, n int, seen func(key string)) (loop *web.HotLoop, conns []net.Conn, release func()) {
	t.Helper()
	env := openHotEnv(t, t.TempDir(), false, nil)
	entered, released := make(chan struct{}), make(chan struct{})
	loop, addr := startHot(t, env.opts, productionLimits(), func(l *web.HotLoop) {
		web.SetHotLoopHook(l, func(key string, _, _ int) {
			switch {
			case key == "block":
				close(entered)
				<-released
			case seen != nil:
				seen(key)
			}
		})
	})
	conns = dialPolled(t, loop, addr, n+1)
	if _, err := io.WriteString(conns[0], req("GET", "/v1/kv/block", "")); err != nil {
		t.Fatal(err)
	}
	<-entered
	var once sync.Once
	release = func() { once.Do(func() { close(released) }) }
	t.Cleanup(release)
	return loop, conns[1:], release
}

// TestPoller_WritersShareSyncs: clients writing in step, as HTTP clients
// on keep-alive connections do, are served by the poller, and their PUTs
// share its groups (one log append and fdatasync each): every write is
// acknowledged and durable, in far fewer syncs than writes.
func TestPoller_WritersShareSyncs(t *testing.T) {
	env := openHotEnv(t, t.TempDir(), false, nil)
	loop, addr := startHot(t, env.opts, productionLimits())
	const clients, each = 16, 40
	conns := dialPolled(t, loop, addr, clients)
	fsyncs, groups := env.db.Status().Fsyncs, web.HotLoopGroups(loop)
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Go(func() {
			br := bufio.NewReader(c)
			for j := range each {
				if code := roundTrip(t, c, br, req("PUT", fmt.Sprintf("/v1/kv/c%02d-%02d", i, j), "v")); code != http.StatusCreated {
					t.Errorf("client %d PUT %d: %d", i, j, code)
					return
				}
			}
		})
	}
	wg.Wait()
	writes := int64(clients * each)
	syncs, grouped := env.db.Status().Fsyncs-fsyncs, web.HotLoopGroups(loop)-groups
	t.Logf("%d writes in %d syncs, %d poller groups", writes, syncs, grouped)
	if grouped <= 0 || grouped > writes/2 || syncs > writes/2 {
		t.Errorf("%d writes took %d poller groups and %d syncs, want them shared (at most %d)", writes, grouped, syncs, writes/2)
	}
	if env.db.Store().Rev() < writes {
		t.Errorf("store at revision %d after %d acknowledged writes", env.db.Store().Rev(), writes)
	}
	waitPolled(t, loop, clients, "the connections back in the poller")
}

// TestPoller_HandsOverAndTakesBack: a request that comes in two pieces is
// the connection's goroutine's to wait for (its timeouts); once answered
// and idle again, the connection is back in the poller, and served there.
func TestPoller_HandsOverAndTakesBack(t *testing.T) {
	env := openHotEnv(t, t.TempDir(), false, nil)
	loop, addr := startHot(t, env.opts, productionLimits())
	c := dialPolled(t, loop, addr, 1)[0]
	br := bufio.NewReader(c)
	full := req("PUT", "/v1/kv/split", "value")
	if _, err := io.WriteString(c, full[:20]); err != nil {
		t.Fatal(err)
	}
	waitPolled(t, loop, 0, "the half-sent request to go to the connection's goroutine")
	if code := roundTrip(t, c, br, full[20:]); code != http.StatusCreated {
		t.Fatalf("split PUT: %d", code)
	}
	waitPolled(t, loop, 1, "the idle connection back in the poller")
	groups := web.HotLoopGroups(loop)
	if code := roundTrip(t, c, br, req("PUT", "/v1/kv/whole", "v")); code != http.StatusCreated {
		t.Fatalf("PUT after the split one: %d", code)
	}
	if got := web.HotLoopGroups(loop); got != groups+1 {
		t.Errorf("the poller committed %d groups for a PUT it was given, want 1", got-groups)
	}
	for key, want := range map[string]string{"split": "value", "whole": "v"} {
		if e, err := env.db.Store().Get(key); err != nil || e.Value != want {
			t.Errorf("%s = %+v, %v; want %q", key, e, err, want)
		}
	}
}

// TestPoller_SlowReaderDoesNotStall: a client that asks for a big value
// and does not read it leaves an answer the socket cannot take; the
// poller must not wait for it (its goroutine does, up to WriteTimeout),
// so the other clients are served meanwhile, and the slow one's
// connection is cut off after WriteTimeout.
func TestPoller_SlowReaderDoesNotStall(t *testing.T) {
	const big = 1 << 20
	env := openHotEnvMax(t, t.TempDir(), false, nil, big)
	if _, err := env.db.Store().Put("big", strings.Repeat("b", big)); err != nil {
		t.Fatal(err)
	}
	srv := productionLimits()
	srv.WriteTimeout = 3 * time.Second
	loop, addr := startHot(t, env.opts, srv)
	conns := dialPolled(t, loop, addr, 2)
	slow, other := conns[0], conns[1]
	_ = slow.(*net.TCPConn).SetReadBuffer(4096)
	// One GET at a time (pipelined, they would go to the goroutine as a
	// batch too big to read at once), until the socket's buffers are full.
	for i := 0; web.HotLoopPolled(loop) == 2; i++ {
		if i == 200 {
			t.Fatalf("%d answers of %d bytes unread, and the poller still holds the connection", i, big)
		}
		if _, err := io.WriteString(slow, req("GET", "/v1/kv/big", "")); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	start := time.Now()
	obr := bufio.NewReader(other)
	for i := range 20 {
		if code := roundTrip(t, other, obr, req("PUT", fmt.Sprintf("/v1/kv/o%d", i), "v")); code != http.StatusCreated {
			t.Fatalf("PUT %d beside the slow reader: %d", i, code)
		}
	}
	if took := time.Since(start); took > srv.WriteTimeout {
		t.Errorf("20 PUTs beside a client that does not read took %v, longer than its WriteTimeout (%v): the poller waited for it", took, srv.WriteTimeout)
	}
	waitConns(t, loop, 1, "the slow reader's connection to be closed (WriteTimeout 3s)")
}

// TestPoller_PipelinedGetSeesItsPut: a GET pipelined after a PUT of the
// same key, in one read, sees that write: the poller commits its group
// before answering the GET, rather than holding the PUT for the others.
func TestPoller_PipelinedGetSeesItsPut(t *testing.T) {
	env := openHotEnv(t, t.TempDir(), false, nil)
	loop, addr := startHot(t, env.opts, productionLimits())
	c := dialPolled(t, loop, addr, 1)[0]
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, req("PUT", "/v1/kv/k", "one")+req("GET", "/v1/kv/k", "")+
		req("PUT", "/v1/kv/k", "two")+req("GET", "/v1/kv/k", "")+req("PUT", "/v1/kv/j", "3")); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	for i, want := range []struct {
		code int
		body string // a GET's
	}{{201, ""}, {200, "one"}, {200, ""}, {200, "two"}, {201, ""}} {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("answer %d: %v", i, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want.code || (want.body != "" && string(b) != want.body) {
			t.Fatalf("answer %d: %d %q, want %d %q", i, resp.StatusCode, b, want.code, want.body)
		}
	}
	if web.HotLoopPolled(loop) != 1 {
		t.Errorf("the connection left the poller for a pipelined batch it could answer itself")
	}
}

// TestPoller_KeepsSplitterOnGoroutine: a client whose every request comes
// in two pieces costs the poller a hand-over each; after a few in a row
// its goroutine keeps it, answering as before.
func TestPoller_KeepsSplitterOnGoroutine(t *testing.T) {
	env := openHotEnv(t, t.TempDir(), false, nil)
	loop, addr := startHot(t, env.opts, productionLimits())
	c := dialPolled(t, loop, addr, 1)[0]
	br := bufio.NewReader(c)
	for i := range 10 {
		full := req("PUT", fmt.Sprintf("/v1/kv/k%d", i), "v")
		if _, err := io.WriteString(c, full[:20]); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond) // two reads, not one
		if code := roundTrip(t, c, br, full[20:]); code != http.StatusCreated {
			t.Fatalf("split PUT %d: %d", i, code)
		}
	}
	time.Sleep(50 * time.Millisecond)
	if n := web.HotLoopPolled(loop); n != 0 {
		t.Errorf("after 10 split requests the poller holds the connection again")
	}
	if n := web.HotLoopConns(loop); n != 1 {
		t.Errorf("the loop serves %d connections, want the splitter's", n)
	}
}

// TestPoller_Off: with Options.NoPoller the loop serves every connection
// on its own goroutine, and answers as before.
func TestPoller_Off(t *testing.T) {
	env := openHotEnv(t, t.TempDir(), false, nil)
	env.opts.NoPoller = true
	loop, addr := startHot(t, env.opts, productionLimits())
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if code := roundTrip(t, c, bufio.NewReader(c), req("PUT", "/v1/kv/k", "v")); code != http.StatusCreated {
		t.Fatalf("PUT: %d", code)
	}
	if n, g := web.HotLoopPolled(loop), web.HotLoopGroups(loop); n != 0 || g != -1 {
		t.Errorf("with NoPoller: %d connections in a poller, %d groups committed by it; want none and no poller", n, g)
	}
}

// gateJournal holds every Append until released: what the disk's sync
// would be, made as slow as the test wants.
type gateJournal struct {
	entered chan struct{} // one token per Append begun
	release chan struct{} // closed: Appends return
}

func (j *gateJournal) Append([]engine.Command) error {
	j.entered <- struct{}{}
	<-j.release
	return nil
}

// TestPoller_AnswersOnlyOnceDurable: a PUT served by the poller is
// answered only after the journal's Append (the log's write and
// fdatasync) has returned, never while it is in progress.
func TestPoller_AnswersOnlyOnceDurable(t *testing.T) {
	j := &gateJournal{entered: make(chan struct{}, 16), release: make(chan struct{})}
	store := engine.New(engine.Options{Journal: j})
	t.Cleanup(func() { store.Close() })
	loop, addr := startHot(t, web.Options{Store: store}, productionLimits())
	c := dialPolled(t, loop, addr, 1)[0]
	if _, err := io.WriteString(c, req("PUT", "/v1/kv/k", "v")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-j.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the PUT never reached the journal")
	}
	_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if b, err := io.ReadAll(c); len(b) > 0 {
		t.Fatalf("answered while the write's Append was in progress: %q (%v)", b, err)
	}
	close(j.release)
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer once the Append returned: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || web.HotLoopGroups(loop) != 1 {
		t.Fatalf("answered %d after %d poller groups, want 201 after 1", resp.StatusCode, web.HotLoopGroups(loop))
	}
}

// countedConn is a listener's wrapper (web.ConnWrapper) that counts the
// closes of its connection, shared with the wrappers Rewrap makes.
type countedConn struct {
	net.Conn
	closes *atomic.Int32
}

func (c *countedConn) Close() error                { c.closes.Add(1); return c.Conn.Close() }
func (c *countedConn) NetConn() net.Conn           { return c.Conn }
func (c *countedConn) Rewrap(nc net.Conn) net.Conn { return &countedConn{Conn: nc, closes: c.closes} }

type countedListener struct {
	net.Listener
	closes atomic.Int32
}

func (l *countedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &countedConn{Conn: c, closes: &l.closes}, nil
}

// TestPoller_CloseDuringBatchClosesWrapper: Close while the poller
// answers a connection's PUT shuts its socket; the connection must then
// be closed through its wrappers (a connection limit's slot given back),
// not handed to a goroutine that thinks it closed already.
func TestPoller_CloseDuringBatchClosesWrapper(t *testing.T) {
	env := openHotEnv(t, t.TempDir(), false, nil)
	loop := web.NewHotLoop(env.opts, productionLimits())
	web.SetHotLoopHook(loop, func(key string, _, _ int) {
		if key == "close" {
			_ = loop.Close()
		}
	})
	ln := &countedListener{Listener: listenLocal(t)}
	go func() { _ = loop.Serve(ln) }()
	t.Cleanup(func() { _ = loop.Close() })
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	waitPolled(t, loop, 1, "the connection")
	if _, err := io.WriteString(c, req("PUT", "/v1/kv/close", "v")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for ln.closes.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the connection's wrapper was never closed after Close")
		}
		time.Sleep(5 * time.Millisecond)
	}
	waitConns(t, loop, 0, "the loop to let go of the connection")
}

// TestPoller_NoWakeAfterStop: once the poller has stopped, its eventfd is
// closed and its number free for another file; a later Close must not
// write to that number.
func TestPoller_NoWakeAfterStop(t *testing.T) {
	env := openHotEnv(t, t.TempDir(), false, nil)
	loop, addr := startHot(t, env.opts, productionLimits())
	c, err := net.Dial("tcp", addr) // the poller starts with Serve; a connection shows it runs
	if err != nil {
		t.Fatal(err)
	}
	waitPolled(t, loop, 1, "the connection")
	c.Close()
	fd, _ := web.HotLoopPollerFD(loop)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := loop.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		if _, stopped := web.HotLoopPollerFD(loop); stopped {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the poller did not stop after Shutdown")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Take the freed number with a pipe's end, if the system gives it.
	// (Not with Fd, which would make the pipe blocking: no deadline.)
	fdOf := func(f *os.File) int {
		n := -1
		if rc, err := f.SyscallConn(); err == nil {
			_ = rc.Control(func(s uintptr) { n = int(s) })
		}
		return n
	}
	var r, w *os.File
	for i := 0; ; i++ {
		if i == 20 {
			t.Skipf("no new pipe was given the poller's old descriptor number %d", fd)
		}
		if r, w, err = os.Pipe(); err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		defer w.Close()
		if fdOf(r) == fd || fdOf(w) == fd {
			break
		}
	}
	wfd := fdOf(w)
	_ = loop.Close()
	if wfd == fd {
		_ = w.Close() // the stray bytes would be in the pipe for r to read
	}
	_ = r.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if b, _ := io.ReadAll(r); len(b) > 0 {
		t.Fatalf("Close after the poller stopped wrote %x into the file now numbered %d", b, fd)
	}
}

// TestPoller_RequestWithEndIsClosed: a request that arrives together with
// the client's end of writing (a half-close, as `nc -N` sends) is answered
// and the connection closed, though epoll reports both in one edge.
func TestPoller_RequestWithEndIsClosed(t *testing.T) {
	_, conns, release := holdPoller(t, 1, nil) // c's request and end arrive together
	c := conns[0]
	if _, err := io.WriteString(c, req("PUT", "/v1/kv/k", "v")); err != nil {
		t.Fatal(err)
	}
	_ = c.(*net.TCPConn).CloseWrite()
	time.Sleep(50 * time.Millisecond)
	release()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no answer to the request before the end: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT: %d", resp.StatusCode)
	}
	start := time.Now()
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("after the answer: %v, want the server to close the connection (EOF)", err)
	}
	t.Logf("closed %v after the answer", time.Since(start))
}

// TestPoller_PipelinedPairsDoNotStall: a client pipelining PUT-then-GET
// pairs needs a commit before each GET; the poller makes one a turn, so
// a client whose request came in the same turn is answered after the
// first pair, not after all of them.
func TestPoller_PipelinedPairsDoNotStall(t *testing.T) {
	var mu sync.Mutex
	var order []string
	_, conns, release := holdPoller(t, 2, func(key string) {
		mu.Lock()
		order = append(order, key)
		mu.Unlock()
	})
	a, b := conns[0], conns[1]
	const pairs = 30
	var batch strings.Builder
	for i := range pairs {
		key := fmt.Sprintf("a%02d", i)
		batch.WriteString(req("PUT", "/v1/kv/"+key, "v") + req("GET", "/v1/kv/"+key, ""))
	}
	if _, err := io.WriteString(a, batch.String()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond) // a's bytes first in epoll's ready list
	if _, err := io.WriteString(b, req("PUT", "/v1/kv/b", "v")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	release()
	abr, bbr := bufio.NewReader(a), bufio.NewReader(b)
	for i := range 2 * pairs {
		_ = a.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(abr, nil)
		if err != nil {
			t.Fatalf("pipelined answer %d: %v", i, err)
		}
		resp.Body.Close()
		if want := []int{http.StatusCreated, http.StatusOK}[i%2]; resp.StatusCode != want {
			t.Fatalf("pipelined answer %d: %d, want %d", i, resp.StatusCode, want)
		}
	}
	if code := roundTrip(t, b, bbr, ""); code != http.StatusCreated {
		t.Fatalf("b's PUT: %d", code)
	}
	mu.Lock()
	defer mu.Unlock()
	at := slices.Index(order, "b")
	t.Logf("b answered at %d of %d requests", at, len(order))
	if at < 0 || at > 4 {
		t.Errorf("b's request was taken at %d in %v, want right after a's first pair", at, order)
	}
}

// TestPoller_BigValueNotCopied: a big value the socket does not take at
// once is written from the store's own string by the connection's
// goroutine, not copied into the connection's output buffer.
func TestPoller_BigValueNotCopied(t *testing.T) {
	const big = 16 << 20 // more than the socket's send buffer grows to (tcp_wmem: 4 MiB)
	env := openHotEnvMax(t, t.TempDir(), false, nil, big)
	if _, err := env.db.Store().Put("big", strings.Repeat("b", big)); err != nil {
		t.Fatal(err)
	}
	rec := &bufRecorder{readCap: map[string][]int{}}
	loop, addr := startHot(t, env.opts, productionLimits(), func(l *web.HotLoop) { web.SetHotLoopHook(l, rec.hook) })
	c := dialPolled(t, loop, addr, 1)[0]
	if _, err := io.WriteString(c, req("GET", "/v1/kv/big", "")+req("GET", "/v1/kv/small", "")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // the poller writes what the socket takes
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	for i, want := range []int{http.StatusOK, http.StatusNotFound} {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("answer %d: %v", i, err)
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want || (i == 0 && n != big) {
			t.Fatalf("answer %d: %d with %d bytes", i, resp.StatusCode, n)
		}
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.maxOut >= big {
		t.Errorf("the output buffer grew to %d bytes for a %d-byte value: copied", rec.maxOut, big)
	}
}

// TestPoller_PipelinedPairsShareGroups: several clients pipelining
// PUT-then-GET pairs, read in one turn, each park at their first GET; the
// group that commits their PUTs is one commit for all of them, and so on
// a pair at a time: about one group per pair, not one per pair per
// client.
func TestPoller_PipelinedPairsShareGroups(t *testing.T) {
	const clients, pairs = 4, 10
	loop, conns, release := holdPoller(t, clients, nil) // every client's pairs arrive before the poller reads any
	for i, c := range conns {
		var batch strings.Builder
		for j := range pairs {
			key := fmt.Sprintf("c%d-%02d", i, j)
			batch.WriteString(req("PUT", "/v1/kv/"+key, "v") + req("GET", "/v1/kv/"+key, ""))
		}
		if _, err := io.WriteString(c, batch.String()); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(50 * time.Millisecond)
	groups := web.HotLoopGroups(loop)
	release()
	for i, c := range conns {
		br := bufio.NewReader(c)
		for j := range 2 * pairs {
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("client %d answer %d: %v", i, j, err)
			}
			resp.Body.Close()
			if want := []int{http.StatusCreated, http.StatusOK}[j%2]; resp.StatusCode != want {
				t.Fatalf("client %d answer %d: %d, want %d", i, j, resp.StatusCode, want)
			}
		}
	}
	got := web.HotLoopGroups(loop) - groups
	t.Logf("%d clients' %d pipelined pairs each: %d groups", clients, pairs, got)
	if got > pairs+1 {
		t.Errorf("%d groups for %d clients' %d pairs each, want about %d: the clients' PUTs did not share them", got, clients, pairs, pairs)
	}
}

// TestPoller_RandomPipelines drives the poller with clients that pipeline
// random runs of PUTs and GETs of their own keys, written in random
// pieces (whole runs, single requests, requests cut in two, with pauses
// between), so that connections move between the poller and their
// goroutines, park for groups and resume: every answer must be the one
// its request gets from a map of the client's own writes, in order.
func TestPoller_RandomPipelines(t *testing.T) {
	env := openHotEnv(t, t.TempDir(), false, nil)
	loop, addr := startHot(t, env.opts, productionLimits())
	const clients, ops = 6, 400
	conns := dialPolled(t, loop, addr, clients)
	var wg sync.WaitGroup
	for ci, c := range conns {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(ci), 12))
			model := map[string]string{}
			br := bufio.NewReader(c)
			type want struct {
				code int
				body string
			}
			for done := 0; done < ops; {
				n := 1 + rng.IntN(8)
				var stream strings.Builder
				var wants []want
				for range n {
					key := fmt.Sprintf("c%d-%d", ci, rng.IntN(4))
					if rng.IntN(2) == 0 {
						val := fmt.Sprintf("v%d", rng.IntN(1000))
						code := http.StatusOK
						if _, ok := model[key]; !ok {
							code = http.StatusCreated
						}
						model[key] = val
						stream.WriteString(req("PUT", "/v1/kv/"+key, val))
						wants = append(wants, want{code, ""})
					} else {
						stream.WriteString(req("GET", "/v1/kv/"+key, ""))
						if v, ok := model[key]; ok {
							wants = append(wants, want{http.StatusOK, v})
						} else {
							wants = append(wants, want{http.StatusNotFound, ""})
						}
					}
				}
				b := []byte(stream.String())
				switch rng.IntN(3) {
				case 0: // all at once
				case 1: // cut at a random byte, a pause between
					cut := 1 + rng.IntN(len(b)-1)
					if _, err := c.Write(b[:cut]); err != nil {
						t.Error(err)
						return
					}
					time.Sleep(time.Duration(rng.IntN(3)) * time.Millisecond)
					b = b[cut:]
				case 2: // a few bytes at a time
					for len(b) > 64 {
						if _, err := c.Write(b[:64]); err != nil {
							t.Error(err)
							return
						}
						b = b[64:]
					}
				}
				if _, err := c.Write(b); err != nil {
					t.Error(err)
					return
				}
				for i, w := range wants {
					_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
					resp, err := http.ReadResponse(br, nil)
					if err != nil {
						t.Errorf("client %d, op %d: %v", ci, done+i, err)
						return
					}
					body, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode != w.code || (w.body != "" && string(body) != w.body) {
						t.Errorf("client %d, op %d: %d %q, want %d %q", ci, done+i, resp.StatusCode, body, w.code, w.body)
						return
					}
				}
				done += n
			}
		})
	}
	wg.Wait()
	t.Logf("%d poller groups, %d connections in the poller at the end", web.HotLoopGroups(loop), web.HotLoopPolled(loop))
}

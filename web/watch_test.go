package web

// The stream tests are in package web, not web_test, for one reason: the fuzz
// target checks appendJSONString directly. Everything else goes through
// NewWatchHandler over a real websocket.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/pykv/pykv/engine"
)

// watchMsg is any message of the stream, decoded.
type watchMsg struct {
	Type    string       `json:"type"`
	Rev     int64        `json:"rev"`
	Events  []watchEvent `json:"events"`
	Reason  string       `json:"reason"`
	Message string       `json:"message"`
}

type watchEvent struct {
	Type      string  `json:"type"`
	Key       string  `json:"key"`
	Value     *string `json:"value"`
	Rev       int64   `json:"rev"`
	CreateRev int64   `json:"create_rev"`
	Version   int64   `json:"version"`
	ExpiresAt int64   `json:"expires_at"`
	PrevValue *string `json:"prev_value"`
}

func mustNewStore(tb testing.TB, opts engine.Options) *engine.Store {
	tb.Helper()
	s := engine.New(opts)
	tb.Cleanup(func() { s.Close() })
	return s
}

// startWatchServer serves NewWatchHandler(store, opts) at /v1/watch.
func startWatchServer(tb testing.TB, store *engine.Store, opts WatchOptions) *httptest.Server {
	tb.Helper()
	mux := http.NewServeMux()
	mux.Handle("GET /v1/watch", NewWatchHandler(store, opts))
	srv := httptest.NewServer(mux)
	tb.Cleanup(srv.Close)
	return srv
}

// dialWatch opens a stream with the given query ("prefix=a&since=3").
func dialWatch(tb testing.TB, srv *httptest.Server, query string, hdr http.Header) *websocket.Conn {
	tb.Helper()
	c, resp, err := websocket.DefaultDialer.Dial(wsURL(srv, query), hdr)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		tb.Fatalf("dial /v1/watch?%s: %v (status %d)", query, err, status)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}

func wsURL(srv *httptest.Server, query string) string {
	return "ws" + strings.TrimPrefix(srv.URL, "http") + "/v1/watch?" + query
}

// readMsg reads one message, failing the test after timeout.
func readMsg(tb testing.TB, c *websocket.Conn, timeout time.Duration) watchMsg {
	tb.Helper()
	m, err := tryReadMsg(c, timeout)
	if err != nil {
		tb.Fatalf("read watch message: %v", err)
	}
	return m
}

func tryReadMsg(c *websocket.Conn, timeout time.Duration) (watchMsg, error) {
	var m watchMsg
	if err := c.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return m, err
	}
	typ, data, err := c.ReadMessage()
	if err != nil {
		return m, err
	}
	if typ != websocket.TextMessage {
		return m, fmt.Errorf("message type %d, want text", typ)
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return m, fmt.Errorf("decode %q: %w", data, err)
	}
	return m, nil
}

// readEventsUntil reads messages until one carries rev >= until, and
// returns the events messages read.
func readEventsUntil(tb testing.TB, c *websocket.Conn, until int64) []watchMsg {
	tb.Helper()
	var msgs []watchMsg
	for {
		m := readMsg(tb, c, 10*time.Second)
		switch m.Type {
		case "events":
			msgs = append(msgs, m)
		case "progress":
		default:
			tb.Fatalf("unexpected message %+v while reading events up to rev %d", m, until)
		}
		if m.Rev >= until {
			return msgs
		}
	}
}

func TestWatch_OrderNoGapsNoDupsUnderConcurrentWriters(t *testing.T) {
	store := mustNewStore(t, engine.Options{History: 100_000})
	srv := startWatchServer(t, store, WatchOptions{Batch: 7}) // small batches: many messages
	c := dialWatch(t, srv, "prev=true", nil)
	if m := readMsg(t, c, 5*time.Second); m.Type != "progress" || m.Rev != 0 {
		t.Fatalf("first message = %+v, want progress at rev 0", m)
	}

	// Writers do single puts, deletes and transactions of 1-5 operations;
	// each records how many events its revision must have.
	const writers, perWriter = 6, 150
	var (
		mu     sync.Mutex
		counts = map[int64]int{} // rev -> events expected
	)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWriter {
				n := 1 + (i+w)%5
				ops := make([]engine.Op, n)
				for j := range ops {
					ops[j] = engine.Op{Type: engine.OpPut, Key: fmt.Sprintf("w%d/k%d", w, (i+j)%20), Value: fmt.Sprintf("v%d", i)}
				}
				res, err := store.Txn(ops)
				if err != nil {
					t.Errorf("Txn: %v", err)
					return
				}
				// Two puts to one key in a transaction are two events.
				mu.Lock()
				counts[res.Rev] = n
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	last := store.Rev()
	if last != writers*perWriter {
		t.Fatalf("store rev = %d, want %d", last, writers*perWriter)
	}

	msgs := readEventsUntil(t, c, last)
	got := map[int64]int{}
	var prevRev int64
	for i, m := range msgs {
		for _, ev := range m.Events {
			if ev.Rev < prevRev {
				t.Fatalf("message %d: event rev %d after rev %d: out of order", i, ev.Rev, prevRev)
			}
			if ev.Rev > prevRev && got[ev.Rev] > 0 {
				t.Fatalf("message %d: rev %d seen again after rev %d", i, ev.Rev, prevRev)
			}
			if ev.Rev != prevRev && prevRev != 0 && got[prevRev] != counts[prevRev] {
				t.Fatalf("rev %d: %d events before rev %d, want %d", prevRev, got[prevRev], ev.Rev, counts[prevRev])
			}
			if ev.Type != "put" || ev.Value == nil {
				t.Fatalf("event %+v: want a put with a value", ev)
			}
			got[ev.Rev]++
			prevRev = ev.Rev
		}
		if m.Rev != m.Events[len(m.Events)-1].Rev {
			t.Errorf("message %d: rev %d, want its last event's rev %d", i, m.Rev, m.Events[len(m.Events)-1].Rev)
		}
		// A revision is never split: the next message starts a new one.
		if i > 0 && msgs[i-1].Rev == m.Events[0].Rev {
			t.Errorf("rev %d split over messages %d and %d", m.Rev, i-1, i)
		}
	}
	for rev := int64(1); rev <= last; rev++ {
		if got[rev] != counts[rev] {
			t.Errorf("rev %d: got %d events, want %d", rev, got[rev], counts[rev])
		}
	}
}

// TestWatch_ManyStreamsEachGetTheirOwn opens streams of every kind at once
// (prefix or not, prev or not, three of each) while writers go on, with
// small batches so that reads stop mid-way, and checks each stream gets
// exactly the events a watcher of its own reads: streams that read alike
// share reads and messages, and must never get another kind's.
func TestWatch_ManyStreamsEachGetTheirOwn(t *testing.T) {
	store := mustNewStore(t, engine.Options{History: 100_000})
	srv := startWatchServer(t, store, WatchOptions{Batch: 5})
	write := func(i int) {
		ops := []engine.Op{
			{Type: engine.OpPut, Key: fmt.Sprintf("a/%d", i%7), Value: fmt.Sprintf("a%d", i)},
			{Type: engine.OpPut, Key: fmt.Sprintf("b/%d", i%5), Value: fmt.Sprintf("b%d", i)},
		}
		if i%3 == 0 {
			ops = append(ops, engine.Op{Type: engine.OpDelete, Key: fmt.Sprintf("a/%d", (i+1)%7)})
		}
		if _, err := store.Txn(ops); err != nil && !errors.Is(err, engine.ErrNotFound) {
			t.Errorf("Txn: %v", err)
		}
	}
	for i := range 50 {
		write(i) // history the streams catch up on, from since=0
	}
	type kind struct{ query, prefix string }
	kinds := []kind{{"since=0", ""}, {"since=0&prefix=a/", "a/"}, {"since=0&prev=true", ""}, {"since=0&prefix=a/&prev=true", "a/"}}
	conns := map[kind][]*websocket.Conn{}
	for _, k := range kinds {
		for range 3 {
			conns[k] = append(conns[k], dialWatch(t, srv, k.query, nil))
		}
	}
	var wg sync.WaitGroup
	for w := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 100 {
				write(50 + w*100 + i)
				if i%10 == 0 {
					time.Sleep(time.Millisecond) // let ticks fire mid-way
				}
			}
		}()
	}
	wg.Wait()
	last := store.Rev()
	for _, k := range kinds {
		want := watchedEvents(t, store, k.prefix, strings.Contains(k.query, "prev"), last)
		for i, c := range conns[k] {
			var got []watchEvent
			for _, m := range readEventsUntil(t, c, last) {
				got = append(got, m.Events...)
			}
			if !slices.EqualFunc(got, want, sameEvent) {
				t.Errorf("%s, stream %d: got %d events, want %d as a watcher reads them", k.query, i, len(got), len(want))
			}
		}
	}
}

// watchedEvents reads the events from rev 0 to last with a watcher of the
// store, as the stream encodes them.
func watchedEvents(t *testing.T, store *engine.Store, prefix string, withPrev bool, last int64) []watchEvent {
	t.Helper()
	w, err := store.Watch(0, prefix)
	if err != nil {
		t.Fatal(err)
	}
	events, err := w.Read(last, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]watchEvent, len(events))
	for i := range events {
		if err := json.Unmarshal(appendEvent(nil, &events[i], withPrev), &out[i]); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func sameEvent(a, b watchEvent) bool {
	return a.Type == b.Type && a.Key == b.Key && a.Rev == b.Rev && a.CreateRev == b.CreateRev &&
		a.Version == b.Version && a.ExpiresAt == b.ExpiresAt &&
		(a.Value == nil) == (b.Value == nil) && (a.Value == nil || *a.Value == *b.Value) &&
		(a.PrevValue == nil) == (b.PrevValue == nil) && (a.PrevValue == nil || *a.PrevValue == *b.PrevValue)
}

func TestWatch_Events(t *testing.T) {
	store := mustNewStore(t, engine.Options{})
	srv := startWatchServer(t, store, WatchOptions{})

	t.Run("prefix and prev", func(t *testing.T) {
		start := store.Rev()
		c := dialWatch(t, srv, "prefix=a/&prev=true", nil)
		readMsg(t, c, 5*time.Second) // progress
		store.Put("b/x", "ignored")
		store.Put("a/1", "one")
		store.Put("a/1", "uno")
		store.Do(engine.Op{Type: engine.OpPut, Key: "a/ttl", Value: "t", TTL: time.Hour})
		store.Delete("a/1")
		msgs := readEventsUntil(t, c, store.Rev())
		var evs []watchEvent
		for _, m := range msgs {
			evs = append(evs, m.Events...)
		}
		if len(evs) != 4 {
			t.Fatalf("got %d events %+v, want 4", len(evs), evs)
		}
		one, uno := "one", "uno"
		checks := []struct {
			typ, key string
			value    *string
			rev      int64
			version  int64
			prev     *string
		}{
			{"put", "a/1", &one, start + 2, 1, nil},
			{"put", "a/1", &uno, start + 3, 2, &one},
			{"put", "a/ttl", nil, start + 4, 1, nil},
			{"delete", "a/1", nil, start + 5, 0, &uno},
		}
		for i, want := range checks {
			ev := evs[i]
			if ev.Type != want.typ || ev.Key != want.key || ev.Rev != want.rev || ev.Version != want.version {
				t.Errorf("event %d = %+v, want %s %s at rev %d version %d", i, ev, want.typ, want.key, want.rev, want.version)
			}
			if want.value != nil && (ev.Value == nil || *ev.Value != *want.value) {
				t.Errorf("event %d value = %v, want %q", i, ev.Value, *want.value)
			}
			if (want.prev == nil) != (ev.PrevValue == nil) || (want.prev != nil && *ev.PrevValue != *want.prev) {
				t.Errorf("event %d prev_value = %v, want %v", i, ev.PrevValue, want.prev)
			}
		}
		if evs[2].ExpiresAt == 0 {
			t.Errorf("put with TTL: expires_at missing in %+v", evs[2])
		}
		if evs[3].Value != nil {
			t.Errorf("delete event has a value: %+v", evs[3])
		}
	})

	t.Run("resume from since", func(t *testing.T) {
		base := store.Rev()
		for i := range 10 {
			store.Put(fmt.Sprintf("r/%d", i), "v")
		}
		c := dialWatch(t, srv, fmt.Sprintf("prefix=r/&since=%d", base+5), nil)
		if m := readMsg(t, c, 5*time.Second); m.Type != "progress" || m.Rev != base+5 {
			t.Fatalf("first message = %+v, want progress at %d", m, base+5)
		}
		store.Put("r/new", "v")
		var revs []int64
		for _, m := range readEventsUntil(t, c, base+11) {
			for _, ev := range m.Events {
				revs = append(revs, ev.Rev)
			}
		}
		want := []int64{base + 6, base + 7, base + 8, base + 9, base + 10, base + 11}
		if fmt.Sprint(revs) != fmt.Sprint(want) {
			t.Errorf("revs after since=%d: %v, want %v", base+5, revs, want)
		}
	})

	t.Run("since ahead of the server", func(t *testing.T) {
		cur := store.Rev()
		c := dialWatch(t, srv, fmt.Sprintf("since=%d", cur+100), nil)
		if m := readMsg(t, c, 5*time.Second); m.Type != "progress" || m.Rev != cur {
			t.Errorf("first message = %+v, want progress at the server's rev %d", m, cur)
		}
	})
}

func TestWatch_Progress(t *testing.T) {
	store := mustNewStore(t, engine.Options{})
	srv := startWatchServer(t, store, WatchOptions{ProgressInterval: 20 * time.Millisecond})
	c := dialWatch(t, srv, "prefix=mine/", nil)
	readMsg(t, c, 5*time.Second)
	for i := range 5 {
		store.Put(fmt.Sprintf("other/%d", i), "v")
	}
	// No events match; progress must still reach the store's revision.
	deadline := time.Now().Add(5 * time.Second)
	for {
		m := readMsg(t, c, 5*time.Second)
		if m.Type != "progress" {
			t.Fatalf("got %+v, want only progress messages", m)
		}
		if m.Rev == store.Rev() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("progress rev %d, want %d within 5s", m.Rev, store.Rev())
		}
	}
}

func TestWatch_Compacted(t *testing.T) {
	store := mustNewStore(t, engine.Options{History: 10})
	for i := range 50 {
		store.Put(fmt.Sprintf("k%d", i), "v")
	}
	srv := startWatchServer(t, store, WatchOptions{})
	c := dialWatch(t, srv, "since=1", nil)
	m := readMsg(t, c, 5*time.Second)
	if m.Type != "compacted" || m.Reason != "compacted" || m.Rev != 50 || m.Message == "" {
		t.Fatalf("first message = %+v, want compacted at rev 50 with a message", m)
	}
	_, err := tryReadMsg(c, 5*time.Second)
	if !websocket.IsCloseError(err, CloseCompacted) {
		t.Fatalf("after compacted: %v, want close %d", err, CloseCompacted)
	}
}

func TestWatch_Origin(t *testing.T) {
	store := mustNewStore(t, engine.Options{})
	srv := startWatchServer(t, store, WatchOptions{AllowedOrigins: []string{"https://Trusted.example/"}})
	host := strings.TrimPrefix(srv.URL, "http://")
	tests := []struct {
		origin string
		ok     bool
	}{
		{"", true},                        // not a browser
		{"http://" + host, true},          // same origin
		{"https://trusted.example", true}, // configured (case and slash ignored)
		{"https://evil.example", false},
		{"http://" + host + ".evil.example", false},
		{"null", false},
	}
	for _, tt := range tests {
		hdr := http.Header{}
		if tt.origin != "" {
			hdr.Set("Origin", tt.origin)
		}
		c, resp, err := websocket.DefaultDialer.Dial(wsURL(srv, ""), hdr)
		if tt.ok {
			if err != nil {
				t.Errorf("dial with Origin %q: %v, want success", tt.origin, err)
				continue
			}
			c.Close()
			continue
		}
		if err == nil {
			c.Close()
			t.Errorf("dial with Origin %q succeeded, want 403", tt.origin)
			continue
		}
		if resp == nil || resp.StatusCode != http.StatusForbidden || resp.Header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("dial with Origin %q: response %v, want 403 problem+json", tt.origin, resp)
		}
	}
}

func TestWatch_BadRequest(t *testing.T) {
	store := mustNewStore(t, engine.Options{})
	srv := startWatchServer(t, store, WatchOptions{})
	for _, q := range []string{"since=abc", "since=-1", "prev=maybe"} {
		_, resp, err := websocket.DefaultDialer.Dial(wsURL(srv, q), nil)
		if err == nil || resp == nil || resp.StatusCode != http.StatusBadRequest {
			t.Errorf("dial ?%s: err %v, response %v; want 400", q, err, resp)
		}
	}
	resp, err := http.Get(srv.URL + "/v1/watch")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("plain GET /v1/watch: status %d, want 400", resp.StatusCode)
	}
}

// TestWatch_SlowClientCutOff: a client that stops reading must not hold up
// writers; once the store's history passes it by, it gets a lagged message
// and close after everything it was sent before, in order.
func TestWatch_SlowClientCutOff(t *testing.T) {
	store := mustNewStore(t, engine.Options{History: 100})
	srv := startWatchServer(t, store, WatchOptions{})
	// A small receive buffer, so the server's socket fills up soon.
	dialer := websocket.Dialer{NetDial: func(network, addr string) (net.Conn, error) {
		d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
			})
			return errors.Join(err, serr)
		}}
		return d.Dial(network, addr)
	}}
	c, _, err := dialer.Dial(wsURL(srv, ""), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	value := strings.Repeat("x", 8<<10)
	const writes = 4000 // 32 MiB of events: far more than any socket buffer
	start := time.Now()
	for i := range writes {
		if _, err := store.Put(fmt.Sprintf("k%d", i%100), value); err != nil {
			t.Fatal(err)
		}
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("%d writes took %v with a stuck subscriber", writes, took)
	}

	first := readMsg(t, c, 10*time.Second)
	if first.Type != "progress" {
		t.Fatalf("first message %+v, want progress", first)
	}
	last := first.Rev // the stream starts after the rev of its first message
	for {
		m, err := tryReadMsg(c, 10*time.Second)
		if err != nil {
			if !websocket.IsCloseError(err, CloseLagged) {
				t.Fatalf("stream ended with %v, want close %d", err, CloseLagged)
			}
			break
		}
		switch m.Type {
		case "progress":
		case "events":
			for _, ev := range m.Events {
				if ev.Rev != last+1 {
					t.Fatalf("event rev %d after %d: want no gap before the cut-off", ev.Rev, last)
				}
				last = ev.Rev
			}
		case "compacted":
			if m.Reason != "lagged" {
				t.Errorf("compacted reason %q, want lagged", m.Reason)
			}
		}
	}
	if last >= writes {
		t.Errorf("slow client got all %d events; the test did not make it lag", last)
	}
}

func TestWatch_StoreClosed(t *testing.T) {
	store := engine.New(engine.Options{})
	srv := startWatchServer(t, store, WatchOptions{})
	c := dialWatch(t, srv, "", nil)
	readMsg(t, c, 5*time.Second)
	store.Close()
	_, err := tryReadMsg(c, 5*time.Second)
	if !websocket.IsCloseError(err, websocket.CloseGoingAway) {
		t.Fatalf("after store.Close: %v, want close 1001", err)
	}
}

func TestAppendJSONString(t *testing.T) {
	for _, s := range []string{"", "plain", `q"b\`, "tab\tnl\nret\r", "\x00\x1f\x7f", "<&>", "é中😀", "\u2028\u2029", "bad\xff\xfe", "\xed\xa0\x80"} {
		checkJSONString(t, s)
	}
}

func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "a\"b", "\n\x01", "é\xff", "\u2028"} {
		f.Add(s)
	}
	f.Fuzz(checkJSONString)
}

// checkJSONString checks that appendJSONString(s) is byte for byte what
// the API's encoder (encoding/json, HTML left unescaped) makes of s.
func checkJSONString(t *testing.T, s string) {
	got := appendJSONString(nil, s)
	var want bytes.Buffer
	if err := jsonEncode(&want, s); err != nil {
		t.Fatal(err)
	}
	if string(got)+"\n" != want.String() {
		t.Fatalf("appendJSONString(%q) = %s, want %s", s, got, want.Bytes())
	}
}

// TestTick_KeepsBoundedReads: streams catching up through a long history
// read chunk after chunk against one tick; the tick must not keep them all.
// It keeps at most tickKeepBytes, letting go of the chunks furthest behind
// and never of the one just read.
func TestTick_KeepsBoundedReads(t *testing.T) {
	tk := newTick()
	const chunk = 1 << 20
	for pos := range int64(64) {
		key := readKey{pos: pos * 1024, prefix: "p/"}
		sr := &sharedRead{r: &feedRead{size: chunk}}
		tk.reads[key] = sr
		tk.keep(key, sr)
		if tk.bytes > tickKeepBytes {
			t.Fatalf("after %d chunks the tick keeps %d bytes, more than %d", pos+1, tk.bytes, tickKeepBytes)
		}
		if tk.reads[key] != sr {
			t.Fatalf("the read just made (pos %d) was let go", key.pos)
		}
	}
	total := 0
	for k, sr := range tk.reads {
		total += sr.size
		if k.pos < (64-tickKeepBytes/chunk)*1024 {
			t.Errorf("kept the chunk at %d, behind newer ones", k.pos)
		}
	}
	if total != tk.bytes || len(tk.reads) != tickKeepBytes/chunk {
		t.Errorf("keeps %d reads of %d bytes, counted %d; want %d reads", len(tk.reads), total, tk.bytes, tickKeepBytes/chunk)
	}
}

// BenchmarkEncodeEvents encodes 100 events of one revision each with their
// previous values, as a stream does for every subscriber.
func BenchmarkEncodeEvents(b *testing.B) {
	value := strings.Repeat("v", 100)
	events := make([]engine.Event, 100)
	for i := range events {
		events[i] = engine.Event{Type: engine.OpPut, Key: fmt.Sprintf("key-%07d", i), Rev: int64(i + 1),
			Entry: &engine.Entry{Key: fmt.Sprintf("key-%07d", i), Value: value, CreateRev: 1, ModRev: int64(i + 1), Version: int64(i + 1), ExpiresAt: 1893456000000},
			Prev:  &engine.Entry{Value: value}}
	}
	for b.Loop() {
		encodeEvents(events, true, 1<<20)
	}
}

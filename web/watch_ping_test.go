package web

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gorilla/websocket"

	"github.com/pykv/pykv/engine"
)

// The ping tests run in a synctest bubble over net.Pipe: the handler's
// tickers and deadlines and the clients' sleeps all use the bubble's fake
// clock, which moves only when every goroutine is blocked. Over a real
// socket on real time they had to use 30 ms timeouts, which a loaded
// machine (or the race detector) overran now and then, dropping a client
// that did answer its pings.

// pipeWatch opens a stream with the given query to h over an in-memory
// connection. The server side runs on a goroutine of the caller's bubble;
// closing the returned connection ends it.
func pipeWatch(t *testing.T, h http.Handler, query string) *websocket.Conn {
	t.Helper()
	srvEnd, cliEnd := net.Pipe()
	go func() {
		br := bufio.NewReader(srvEnd)
		r, err := http.ReadRequest(br)
		if err != nil {
			srvEnd.Close()
			return
		}
		h.ServeHTTP(&pipeResponse{conn: srvEnd, br: br, header: http.Header{}}, r)
	}()
	d := websocket.Dialer{NetDialContext: func(context.Context, string, string) (net.Conn, error) { return cliEnd, nil }}
	c, _, err := d.Dial("ws://pipe/v1/watch?"+query, nil)
	if err != nil {
		t.Fatalf("dial /v1/watch?%s over a pipe: %v", query, err)
	}
	return c
}

// pipeResponse is the http.ResponseWriter of a request read from a pipe:
// enough for the upgrader, which hijacks the connection at once.
type pipeResponse struct {
	conn   net.Conn
	br     *bufio.Reader
	header http.Header
}

func (p *pipeResponse) Header() http.Header         { return p.header }
func (p *pipeResponse) Write(b []byte) (int, error) { return p.conn.Write(b) }
func (p *pipeResponse) WriteHeader(status int) {
	fmt.Fprintf(p.conn, "HTTP/1.1 %d %s\r\n\r\n", status, http.StatusText(status))
}
func (p *pipeResponse) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return p.conn, bufio.NewReadWriter(p.br, bufio.NewWriter(p.conn)), nil
}

// readAll reads c until it fails and returns when and with what error. With
// answerPings false it reads every frame but answers no ping.
func readAll(c *websocket.Conn, answerPings bool, pause time.Duration) <-chan readEnd {
	if !answerPings {
		c.SetPingHandler(func(string) error { return nil })
	}
	done := make(chan readEnd, 1)
	go func() {
		n := 0
		for {
			if _, _, err := c.ReadMessage(); err != nil {
				done <- readEnd{time.Now(), n, err}
				return
			}
			n++
			time.Sleep(pause)
		}
	}()
	return done
}

type readEnd struct {
	at   time.Time
	msgs int
	err  error
}

// TestWatch_DeadClientDropped: a client that answers no pings is dropped
// PingInterval + PongTimeout after it connected, to the tick; one that
// answers stays, however long it is connected.
func TestWatch_DeadClientDropped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const ping, pong = time.Second, 500 * time.Millisecond
		store := engine.New(engine.Options{})
		defer store.Close()
		h := NewWatchHandler(store, WatchOptions{PingInterval: ping, PongTimeout: pong})
		start := time.Now()
		alive, dead := pipeWatch(t, h, ""), pipeWatch(t, h, "")
		defer alive.Close()
		defer dead.Close()
		aliveEnd, deadEnd := readAll(alive, true, 0), readAll(dead, false, 0)
		// Writes go on for 20 ping intervals, which the dead client reads
		// too until it is dropped.
		for range 200 {
			store.Put("k", "v")
			time.Sleep(ping / 10)
		}
		select {
		case e := <-aliveEnd:
			t.Fatalf("the client that answers pings was dropped after %v: %v", e.at.Sub(start), e.err)
		default:
		}
		var e readEnd
		select {
		case e = <-deadEnd:
		default:
			t.Fatalf("the client that answers no pings is still connected after %v", time.Since(start))
		}
		if took := e.at.Sub(start); took != ping+pong {
			t.Errorf("the client that answers no pings was dropped after %v, want PingInterval + PongTimeout = %v", took, ping+pong)
		}
		if e.msgs == 0 {
			t.Error("the client that answers no pings read nothing before it was dropped")
		}
		if websocket.IsCloseError(e.err, websocket.CloseGoingAway, websocket.CloseNormalClosure) {
			t.Errorf("the dead client got a close message (%v); it should be dropped without one", e.err)
		}
	})
}

// TestWatch_LatePingGetsPongTimeout: when the ping goes out late, because
// the stream was busy writing to a client that reads slowly but steadily,
// the client still has PongTimeout from the ping to answer it. When the
// pong's time was counted from the last pong instead, the late ping left
// the client a fraction of it, and a healthy client was dropped.
func TestWatch_LatePingGetsPongTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const ping, pong, read = 5 * time.Second, time.Second, 900 * time.Millisecond
		store := engine.New(engine.Options{})
		defer store.Close()
		const keys = 40
		for i := range keys {
			store.Put(fmt.Sprintf("k%d", i), "v")
		}
		// One event a message: the stream writes message after message,
		// each waiting read for the client, and sends the ping only
		// between two of them, up to read late.
		h := NewWatchHandler(store, WatchOptions{PingInterval: ping, PongTimeout: pong, WriteTimeout: 10 * time.Second, Batch: 1, Coalesce: -1})
		c := pipeWatch(t, h, "since=0")
		defer c.Close()
		start := time.Now()
		end := readAll(c, true, read)
		// The client needs about keys*read to read the history; a ping is
		// due every 5 seconds of it.
		time.Sleep(keys*read + 2*ping)
		select {
		case e := <-end:
			t.Fatalf("a client that reads every %v and answers every ping at once was dropped after %v and %d messages: %v", read, e.at.Sub(start), e.msgs, e.err)
		default:
		}
	})
}

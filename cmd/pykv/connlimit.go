package main

import (
	"net"
	"strconv"
	"sync"
)

// tooManyConns is what a connection over the per-address limit is told
// before it is closed: a complete HTTP answer, so a client sees why.
var tooManyConns = func() string {
	body := `{"type":"urn:pykv:problem:too-many-requests","title":"Too many requests","status":429,` +
		`"detail":"Too many open connections from your address; close some and retry."}`
	return "HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/problem+json\r\nConnection: close\r\n" +
		"Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
}()

// limitConnsPerIP wraps ln so that at most max connections from one IP
// address are open at once; the ones over are answered 429 and closed.
// max 0 means no limit.
func limitConnsPerIP(ln net.Listener, max int) net.Listener {
	if max <= 0 {
		return ln
	}
	return &connLimiter{Listener: ln, max: max, open: make(map[string]int)}
}

type connLimiter struct {
	net.Listener
	max  int
	mu   sync.Mutex
	open map[string]int
}

func (l *connLimiter) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := remoteIP(c)
		l.mu.Lock()
		ok := l.open[ip] < l.max
		if ok {
			l.open[ip]++
		}
		l.mu.Unlock()
		if ok {
			return &limitedConn{Conn: c, slot: &connSlot{release: func() { l.release(ip) }}}, nil
		}
		// Answered in the background: a client that does not read must
		// not hold up Accept.
		go func() {
			_, _ = c.Write([]byte(tooManyConns))
			_ = c.Close()
		}()
	}
}

func (l *connLimiter) release(ip string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[ip]--; l.open[ip] <= 0 {
		delete(l.open, ip)
	}
}

func remoteIP(c net.Conn) string {
	host, _, err := net.SplitHostPort(c.RemoteAddr().String())
	if err != nil {
		return c.RemoteAddr().String()
	}
	return host
}

// limitedConn gives its slot back when closed (once).
type limitedConn struct {
	net.Conn
	slot *connSlot
}

// connSlot is a connection's place in the count, shared by the
// limitedConns around it (see Rewrap): given back once.
type connSlot struct {
	once    sync.Once
	release func()
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.slot.once.Do(c.slot.release)
	return err
}

// NetConn and Rewrap let the hot loop's poller take the socket off Go's
// poller and give it back (web.ConnWrapper): the slot stays taken until
// the connection is closed for good, through either wrapper.
func (c *limitedConn) NetConn() net.Conn { return c.Conn }

func (c *limitedConn) Rewrap(nc net.Conn) net.Conn { return &limitedConn{Conn: nc, slot: c.slot} }

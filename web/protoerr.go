package web

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
)

// net/http answers some requests itself, before any handler runs, in plain
// text: headers over http.Server.MaxHeaderBytes (431), a request it cannot
// parse (400), a Transfer-Encoding it does not know (501). It writes each
// such answer to the connection in one Write, in this exact shape, then
// closes the connection; nothing a handler writes has it (net/http writes
// a handler's headers in sorted order, Connection before Content-Type).
const (
	stdErrorPrefix  = "HTTP/1.1 "
	stdErrorHeaders = "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"
)

// ProblemListener wraps ln so that net/http's own plain-text refusals go
// out as problem documents (application/problem+json) like every other
// error of the API, with the same status. maxHeaderBytes is the server's
// http.Server.MaxHeaderBytes, named in the 431's detail.
func ProblemListener(ln net.Listener, maxHeaderBytes int) net.Listener {
	return &problemListener{Listener: ln, maxHeaderBytes: maxHeaderBytes}
}

type problemListener struct {
	net.Listener
	maxHeaderBytes int
}

func (l *problemListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &problemConn{Conn: c, maxHeaderBytes: l.maxHeaderBytes}, nil
}

// problemConn rewrites a plain-text refusal of net/http as it is written.
type problemConn struct {
	net.Conn
	maxHeaderBytes int
}

// NetConn and Rewrap let the hot loop's poller take the socket off Go's
// poller and give it back (see ConnWrapper).
func (c *problemConn) NetConn() net.Conn { return c.Conn }

func (c *problemConn) Rewrap(nc net.Conn) net.Conn {
	return &problemConn{Conn: nc, maxHeaderBytes: c.maxHeaderBytes}
}

func (c *problemConn) Write(b []byte) (int, error) {
	if p, ok := problemAnswer(b, c.maxHeaderBytes); ok {
		if _, err := c.Conn.Write(p); err != nil {
			return 0, err
		}
		return len(b), nil
	}
	return c.Conn.Write(b)
}

// problemAnswer returns the problem-document answer for b when b is one of
// net/http's own plain-text refusals.
func problemAnswer(b []byte, maxHeaderBytes int) ([]byte, bool) {
	if len(b) > 1024 || !bytes.HasPrefix(b, []byte(stdErrorPrefix)) {
		return nil, false
	}
	statusLine, text, ok := bytes.Cut(b[len(stdErrorPrefix):], []byte(stdErrorHeaders))
	if !ok || len(statusLine) < 3 || bytes.ContainsAny(statusLine, "\r\n") {
		return nil, false
	}
	code, err := strconv.Atoi(string(statusLine[:3]))
	if err != nil || code < 400 || code > 599 {
		return nil, false
	}
	var detail string
	switch code {
	case http.StatusRequestHeaderFieldsTooLarge:
		detail = fmt.Sprintf("The request's headers are larger than the limit of %d bytes.", maxHeaderBytes)
	case http.StatusNotImplemented:
		detail = "The request's Transfer-Encoding is not supported; send the body with a Content-Length or chunked."
	default:
		// "400 Bad Request" or "400 Bad Request: missing required Host header".
		_, why, _ := strings.Cut(string(text), ": ")
		detail = "The request is not valid HTTP/1.1 and was not read."
		if why != "" {
			detail = "The request is not valid HTTP/1.1 (" + why + ") and was not read."
		}
	}
	body, _ := json.Marshal(newProblem(code, detail))
	return fmt.Appendf(nil, "HTTP/1.1 %d %s\r\nContent-Type: application/problem+json\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s",
		code, http.StatusText(code), len(body), body), true
}

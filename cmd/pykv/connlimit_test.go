package main

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestLimitConnsPerIP opens one connection more than allowed: it is answered
// 429 and closed, and a slot freed by closing lets the next one in.
func TestLimitConnsPerIP(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := limitConnsPerIP(raw, 2)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	addr := raw.Addr().String()

	get := func(c net.Conn) (int, string) {
		t.Helper()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			return 0, err.Error()
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("read response: %v", err)
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
		return resp.StatusCode, string(body)
	}
	var held []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if code, _ := get(c); code != http.StatusOK {
			t.Fatalf("connection within the limit: status %d", code)
		}
		held = append(held, c)
	}
	overLimitThenFreed(t, addr, held[0], func(c net.Conn) int { code, _ := get(c); return code })
}

// overLimitThenFreed checks, with the per-address limit reached on addr,
// that one connection more is answered 429 and closed, and that once held
// (one of those within the limit) closes, a new connection is served again
// (ask returns the status of a request on it).
func overLimitThenFreed(t *testing.T, addr string, held net.Conn, ask func(net.Conn) int) {
	t.Helper()
	extra, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	_ = extra.SetDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(extra), nil)
	if err != nil {
		t.Fatalf("connection over the limit: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(string(body), "Too many open connections") {
		t.Errorf("connection over the limit: %d %s", resp.StatusCode, body)
	}

	held.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		code := ask(c)
		c.Close()
		if code/100 == 2 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("slot not given back after a close: status %d", code)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestServe_ConnLimitAppliesToHotLoop: with the hot loop on (the default),
// the per-address limit still holds for the connections the loop serves
// itself (their answers are the loop's: Date is their first header), and a
// slot comes back when one of them closes.
func TestServe_ConnLimitAppliesToHotLoop(t *testing.T) {
	srv := startServe(t, t.TempDir(), nil, "--max-conns-per-ip", "2")
	addr := strings.TrimPrefix(srv.URL, "http://")
	put := func(c net.Conn) (int, string) {
		t.Helper()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.WriteString(c, "PUT /v1/kv/k HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1\r\n\r\nv"); err != nil {
			return 0, err.Error()
		}
		var raw strings.Builder
		resp, err := http.ReadResponse(bufio.NewReader(io.TeeReader(c, &raw)), nil)
		if err != nil {
			t.Fatalf("read response: %v", err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, raw.String()
	}
	// startServe's health check left a keep-alive connection: close it,
	// and retry until the server has seen it close.
	http.DefaultClient.CloseIdleConnections()
	var held []net.Conn
	for range 2 {
		var c net.Conn
		var code int
		var raw string
		for deadline := time.Now().Add(5 * time.Second); ; {
			var err error
			if c, err = net.Dial("tcp", addr); err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if code, raw = put(c); code != http.StatusTooManyRequests || time.Now().After(deadline) {
				break
			}
			c.Close()
			time.Sleep(20 * time.Millisecond)
		}
		if code != http.StatusOK && code != http.StatusCreated {
			t.Fatalf("connection within the limit: status %d", code)
		}
		if !strings.HasPrefix(strings.SplitN(raw, "\r\n", 3)[1], "Date: ") {
			t.Fatalf("the PUT was not answered by the hot loop:\n%s", raw)
		}
		held = append(held, c)
	}
	overLimitThenFreed(t, addr, held[0], func(c net.Conn) int { code, _ := put(c); return code })
}

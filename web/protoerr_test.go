package web_test

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/pykv/pykv/engine"
	"github.com/pykv/pykv/web"
)

// TestProblemListener: the refusals net/http writes itself, before any
// handler runs, are problem documents too.
func TestProblemListener(t *testing.T) {
	store := engine.New(engine.Options{})
	defer store.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: web.NewServer(web.Options{Store: store}), MaxHeaderBytes: 1024}
	go srv.Serve(web.ProblemListener(ln, 1024))
	t.Cleanup(func() { srv.Close() })

	for _, tc := range []struct {
		name, request string
		status        int
	}{
		{"headers too large", "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + strings.Repeat("a", 8<<10) + "\r\n\r\n", http.StatusRequestHeaderFieldsTooLarge},
		{"no Host", "GET /healthz HTTP/1.1\r\n\r\n", http.StatusBadRequest},
		{"garbage", "NOT HTTP AT ALL\r\n\r\n", http.StatusBadRequest},
		{"unknown transfer encoding", "POST /v1/txn HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", http.StatusNotImplemented},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := io.WriteString(c, tc.request); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status || resp.Header.Get("Content-Type") != "application/problem+json" {
				t.Fatalf("answer %d %q %q; want %d application/problem+json", resp.StatusCode, resp.Header.Get("Content-Type"), body, tc.status)
			}
			var p web.Problem
			if err := json.Unmarshal(body, &p); err != nil || p.Status != tc.status || p.Title == "" || p.Detail == "" {
				t.Errorf("problem %q (%v): want status %d, a title and a detail", body, err, tc.status)
			}
		})
	}
	// Ordinary answers pass untouched.
	resp, err := http.Get("http://" + ln.Addr().String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /healthz through the listener: %d", resp.StatusCode)
	}
}

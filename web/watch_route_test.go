package web_test

import (
	"errors"
	"go/parser"
	"go/token"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/pykv/pykv/engine"
	"github.com/pykv/pykv/web"
)

// TestWatchRoute_OutlivesServerTimeouts serves the API with short read and
// write timeouts and checks that a watch stream still delivers events after
// them. The stream lifts the server's deadlines once upgraded and
// sets its own; this fails if the route is put behind a timeout.
func TestWatchRoute_OutlivesServerTimeouts(t *testing.T) {
	store := engine.New(engine.Options{})
	t.Cleanup(func() { store.Close() })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	const timeout = 300 * time.Millisecond
	srv := &http.Server{Handler: web.NewServer(web.Options{Store: store, Metrics: web.NewMetrics()}),
		ReadTimeout: timeout, WriteTimeout: timeout, ReadHeaderTimeout: timeout}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	conn, resp, err := websocket.DefaultDialer.Dial("ws://"+ln.Addr().String()+"/v1/watch", nil)
	if err != nil {
		t.Fatalf("dial /v1/watch: %v (response %v)", err, resp)
	}
	defer conn.Close()
	time.Sleep(3 * timeout)
	if _, err := store.Put("late", "v"); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		_, msg, err := conn.ReadMessage()
		if err != nil {
			t.Fatalf("read after the server's timeouts passed: %v", err)
		}
		if strings.Contains(string(msg), `"key":"late"`) {
			return
		}
	}
}

// TestWatchRoute_NeedsToken checks the stream is behind authentication.
func TestWatchRoute_NeedsToken(t *testing.T) {
	srv := mustOpenServer(t, func(o *web.Options) { o.AuthToken = "secret" })
	url := "ws" + strings.TrimPrefix(srv.URL, "http") + "/v1/watch"
	_, resp, err := websocket.DefaultDialer.Dial(url, nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("watch without a token: err %v, response %v; want 401", err, resp)
	}
	conn, _, err := websocket.DefaultDialer.Dial(url, http.Header{"Authorization": {"Bearer secret"}})
	if err != nil {
		t.Fatalf("watch with the token: %v", err)
	}
	conn.Close()
}

// TestWatchRoute_DeadlinesUntilUpgrade: the server's read timeout holds
// for a watch request until the upgrade succeeds. A request that is not
// an upgrade and announces a body it never sends (Content-Length: 100) is
// cut off at the read timeout, not kept open for good.
func TestWatchRoute_DeadlinesUntilUpgrade(t *testing.T) {
	store := engine.New(engine.Options{})
	t.Cleanup(func() { store.Close() })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	const timeout = 300 * time.Millisecond
	srv := &http.Server{Handler: web.NewServer(web.Options{Store: store}),
		ReadTimeout: timeout, WriteTimeout: timeout, ReadHeaderTimeout: timeout}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("GET /v1/watch HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	// Far beyond the timeout, so only a connection kept open for good fails.
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	start := time.Now()
	_, err = io.ReadAll(c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("a watch request with an unsent body was still open after %v; the server's read timeout is %v", time.Since(start).Round(time.Second), timeout)
	}
}

// TestWatchRoute_AllowedOriginsFromOptions checks that Options.Watch
// reaches the route: an origin listed in Watch.AllowedOrigins may open a
// stream, another cross-site origin may not.
func TestWatchRoute_AllowedOriginsFromOptions(t *testing.T) {
	srv := mustOpenServer(t, func(o *web.Options) { o.Watch.AllowedOrigins = []string{"https://app.example"} })
	url := "ws" + strings.TrimPrefix(srv.URL, "http") + "/v1/watch"
	conn, resp, err := websocket.DefaultDialer.Dial(url, http.Header{"Origin": {"https://app.example"}})
	if err != nil {
		t.Fatalf("watch from an allowed origin: %v (response %v)", err, resp)
	}
	conn.Close()
	_, resp, err = websocket.DefaultDialer.Dial(url, http.Header{"Origin": {"https://evil.example"}})
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("watch from another origin: err %v, response %v; want 403", err, resp)
	}
}

// TestWatch_ImportsOnlyTheCodec keeps the watch code on the format package:
// its files may import persist/codec but not persist, whose disk code the
// stream has no business reaching.
func TestWatch_ImportsOnlyTheCodec(t *testing.T) {
	files, err := filepath.Glob("watch*.go")
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		checked++
		for _, imp := range f.Imports {
			if path := strings.Trim(imp.Path.Value, `"`); path == "github.com/pykv/pykv/persist" {
				t.Errorf("%s imports %s; the watch code uses persist/codec only", name, path)
			}
		}
	}
	if checked < 4 {
		t.Fatalf("found %d watch files (%v); the check no longer looks at the watch code", checked, files)
	}
}

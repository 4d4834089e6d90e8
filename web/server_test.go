package web_test

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/fstest"
	"time"

	"github.com/gorilla/websocket"

	"github.com/pykv/pykv/engine"
	"github.com/pykv/pykv/persist"
	"github.com/pykv/pykv/web"
)

func TestStatusAndProbes(t *testing.T) {
	srv := mustOpenServer(t)
	wantStatus(t, srv.do("PUT", "/v1/kv/a", "1"), http.StatusCreated)

	r := srv.do("GET", "/healthz", "")
	wantStatus(t, r, http.StatusOK)
	if !strings.Contains(string(r.Body), `"ok"`) {
		t.Errorf("GET /healthz body %s does not contain \"ok\"", r.Body)
	}
	wantStatus(t, srv.do("GET", "/readyz", ""), http.StatusOK)

	r = srv.do("GET", "/v1/status", "")
	wantStatus(t, r, http.StatusOK)
	st := r.JSON(t)
	if st["rev"] != 1.0 || st["keys"] != 1.0 || st["fsync"] != "never" {
		t.Errorf("GET /v1/status = %s", r.Body)
	}
	if l := st["limits"].(map[string]any); l["max_key_bytes"] != 64.0 || l["max_value_bytes"] != 1024.0 {
		t.Errorf("status limits = %v", l)
	}

	r = srv.do("GET", "/metrics", "")
	wantStatus(t, r, http.StatusOK)
	for _, want := range []string{
		`pykv_http_requests_total{code="201",method="PUT",route="/v1/kv/*"} 1`,
		"pykv_revision 1", "pykv_keys 1", "pykv_log_bytes", "pykv_writable 1",
		"pykv_fsync_duration_seconds_bucket", "pykv_http_request_duration_seconds_bucket",
	} {
		if !strings.Contains(string(r.Body), want) {
			t.Errorf("GET /metrics lacks %q", want)
		}
	}
}

func TestExportImport(t *testing.T) {
	src := mustOpenServer(t)
	for _, k := range []string{"a", "b/c", "ü"} {
		wantStatus(t, src.do("PUT", "/v1/kv/"+strings.ReplaceAll(k, "/", "%2F"), "value of "+k), http.StatusCreated)
	}
	wantStatus(t, src.do("PUT", "/v1/kv/t?ttl=1h", "expiring"), http.StatusCreated)
	r := src.do("GET", "/v1/export", "")
	wantStatus(t, r, http.StatusOK)
	if !bytes.HasPrefix(r.Body, []byte(`{"format":"pykv.snapshot"`)) {
		t.Fatalf("export = %.100s", r.Body)
	}

	dst := mustOpenServer(t)
	r = dst.do("POST", "/v1/import", string(r.Body), "Content-Type: application/json")
	wantStatus(t, r, http.StatusOK)
	if m := r.JSON(t); m["format"] != "snapshot" || m["keys"] != 4.0 {
		t.Errorf("import = %v", m)
	}
	if r := dst.do("GET", "/v1/kv/b%2Fc", ""); string(r.Body) != "value of b/c" {
		t.Errorf("imported b/c = %q", r.Body)
	}
	if r := dst.do("GET", "/v1/kv/t", ""); r.Header.Get("PyKV-Expires-At") == "" {
		t.Errorf("imported key t lost its expiry")
	}

	r = dst.do("POST", "/v1/import", `{"x":"1","y":"2"}`)
	wantStatus(t, r, http.StatusOK)
	if m := r.JSON(t); m["format"] != "flat" || m["keys"] != 2.0 {
		t.Errorf("flat import = %v", m)
	}
	wantProblem(t, dst.do("POST", "/v1/import", `{"x":1}`), http.StatusBadRequest, "cannot be imported")
	wantProblem(t, dst.do("POST", "/v1/import", `[1,2]`), http.StatusBadRequest, "cannot be imported")
	wantProblem(t, dst.do("POST", "/v1/import", `{}`, "Content-Type: text/csv"), http.StatusUnsupportedMediaType)

	small := mustOpenServer(t, func(o *web.Options) { o.MaxImportBytes = 10 })
	wantProblem(t, small.do("POST", "/v1/import", `{"x":"1","y":"2"}`), http.StatusRequestEntityTooLarge, "10 bytes")
}

// failingJournal refuses every write with err, as persist does after an
// I/O failure or on a full disk.
type failingJournal struct{ err error }

func (j failingJournal) Append([]engine.Command) error { return j.err }

// fakeDB reports a failed store.
type fakeDB struct {
	err         error
	panicStatus *atomic.Bool // Status panics while it is set
}

func (f fakeDB) Status() persist.Status {
	if f.panicStatus != nil && f.panicStatus.Load() {
		panic("status exploded")
	}
	return persist.Status{Failed: fmt.Sprint(f.err)}
}
func (f fakeDB) Export(w io.Writer) error { return f.err }
func (f fakeDB) Import(io.Reader, persist.ImportMode) (persist.ImportResult, error) {
	return persist.ImportResult{}, f.err
}
func (f fakeDB) Err() error { return f.err }

// mustOpenFailing returns a server whose store refuses writes with err.
func mustOpenFailing(t *testing.T, err error, db web.DB, logs *bytes.Buffer) *testServer {
	store := engine.New(engine.Options{Journal: failingJournal{err}})
	t.Cleanup(func() { store.Close() })
	h := web.NewServer(web.Options{Store: store, DB: db, Metrics: web.NewMetrics(), Logger: slog.New(slog.NewTextHandler(logs, nil))})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &testServer{Server: srv, Handler: h, spec: loadSpec(t, h), tb: t}
}

func TestWriteFailures(t *testing.T) {
	failed := fmt.Errorf("append to log: %w: %w", persist.ErrFailed, syscall.EIO)
	full := fmt.Errorf("append to log: write: %w", syscall.ENOSPC)
	for _, c := range []struct {
		name   string
		err    error
		status int
	}{{"failed", failed, http.StatusServiceUnavailable}, {"disk full", full, http.StatusInsufficientStorage}} {
		t.Run(c.name, func(t *testing.T) {
			var logs bytes.Buffer
			srv := mustOpenFailing(t, c.err, fakeDB{err: c.err}, &logs)
			wantProblem(t, srv.do("PUT", "/v1/kv/k", "v"), c.status, "Reads keep working")
			wantProblem(t, srv.do("DELETE", "/v1/kv/k", ""), http.StatusNotFound) // nothing to delete: no write
			wantProblem(t, srv.do("POST", "/v1/txn", `{"ops":[{"op":"put","key":"k","value":"v"}]}`), c.status)
			wantProblem(t, srv.do("POST", "/put", `{"key":"k","value":"v"}`), c.status)
			wantStatus(t, srv.do("GET", "/v1/kv?prefix=", ""), http.StatusOK) // reads keep working
			wantStatus(t, srv.do("GET", "/healthz", ""), http.StatusOK)
			wantProblem(t, srv.do("GET", "/readyz", ""), c.status)
			if !strings.Contains(logs.String(), "request failed") {
				t.Errorf("internal error not logged; log:\n%s", logs.String())
			}
		})
	}
}

func TestPanicAnswered500(t *testing.T) {
	var logs bytes.Buffer
	var panics atomic.Bool
	panics.Store(true)
	srv := mustOpenFailing(t, nil, fakeDB{panicStatus: &panics}, &logs)
	wantProblem(t, srv.do("GET", "/v1/status", ""), http.StatusInternalServerError, "logged")
	if !strings.Contains(logs.String(), "status exploded") {
		t.Errorf("panic not logged; log:\n%s", logs.String())
	}
	wantStatus(t, srv.do("GET", "/healthz", ""), http.StatusOK) // the server goes on
	panics.Store(false)                                         // /metrics reads the status too
	want := `pykv_http_requests_total{code="500",method="GET",route="/v1/status"} 1`
	if m := srv.do("GET", "/metrics", ""); !strings.Contains(string(m.Body), want) {
		t.Errorf("GET /metrics lacks %q: a panic's answer is counted too", want)
	}
}

// TestMetricsCountUpgrades: a websocket upgrade is counted as 101, and the
// stream works through the metrics' response writer.
func TestMetricsCountUpgrades(t *testing.T) {
	srv := mustOpenServer(t)
	c, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http")+"/v1/watch", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, msg, err := c.ReadMessage(); err != nil || !strings.Contains(string(msg), `"progress"`) {
		t.Fatalf("first message %s, %v; want progress", msg, err)
	}
	c.Close()
	want := `pykv_http_requests_total{code="101",method="GET",route="/v1/watch"} 1`
	deadline := time.Now().Add(5 * time.Second)
	for {
		m := srv.do("GET", "/metrics", "")
		if strings.Contains(string(m.Body), want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET /metrics lacks %q", want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestCrossOriginWritesRefused(t *testing.T) {
	srv := mustOpenServer(t)
	wantProblem(t, srv.do("PUT", "/v1/kv/k", "v", "Sec-Fetch-Site: cross-site"), http.StatusForbidden, "Cross-origin")
	wantProblem(t, srv.do("PUT", "/v1/kv/k", "v", "Origin: https://evil.example"), http.StatusForbidden)
	wantStatus(t, srv.do("PUT", "/v1/kv/k", "v", "Sec-Fetch-Site: same-origin"), http.StatusCreated)
	wantStatus(t, srv.do("GET", "/v1/kv/k", "", "Sec-Fetch-Site: cross-site"), http.StatusOK) // reads are safe
}

func TestNotFoundAndMethod(t *testing.T) {
	srv := mustOpenServer(t)
	wantProblem(t, srv.do("GET", "/nope", ""), http.StatusNotFound, "/docs")
	wantProblem(t, srv.do("PATCH", "/v1/kv/k", ""), http.StatusMethodNotAllowed, "PATCH")
}

// TestMethodNotAllowedListsAllow checks that a 405 names the methods the
// path does answer in Allow, as RFC 9110 (15.5.6) requires of it: the key
// routes (whose GET, HEAD, PUT and DELETE skip chi, the rest not), the
// collection and a route of one method.
func TestMethodNotAllowedListsAllow(t *testing.T) {
	srv := mustOpenServer(t)
	for _, c := range []struct{ method, path, allow string }{
		{"POST", "/v1/kv/k", "GET, HEAD, PUT, DELETE"},
		{"PATCH", "/v1/kv/a%2Fb/c", "GET, HEAD, PUT, DELETE"},
		{"OPTIONS", "/v1/kv/k", "GET, HEAD, PUT, DELETE"},
		{"PUT", "/v1/kv", "GET, DELETE"},
		{"POST", "/healthz", "GET"},
		{"GET", "/v1/txn", "POST"},
	} {
		r := srv.do(c.method, c.path, "")
		wantProblem(t, r, http.StatusMethodNotAllowed, c.method)
		if got := r.Header.Values("Allow"); len(got) != 1 || got[0] != c.allow {
			t.Errorf("%s %s: Allow %q, want %q", c.method, c.path, got, c.allow)
		}
	}
}

func TestDocs(t *testing.T) {
	srv := mustOpenServer(t)
	r := srv.do("GET", "/openapi.json", "")
	wantStatus(t, r, http.StatusOK)

	req, _ := http.NewRequest("GET", srv.URL+"/docs", nil)
	resp, err := srv.Client().Do(req) // follows the redirect to /docs/
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !bytes.Contains(page, []byte("swagger-ui-bundle.js")) {
		t.Fatalf("GET /docs = %d %.200s", resp.StatusCode, page)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
		t.Errorf("docs page CSP = %q", csp)
	}
	wantStatus(t, srv.do("GET", "/docs/init.js", ""), http.StatusOK)

	// Without gzip the bundle is unpacked; with it, sent as stored.
	tr := &http.Transport{DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	for _, enc := range []string{"", "gzip, deflate"} {
		req, _ := http.NewRequest("GET", srv.URL+"/docs/swagger-ui-bundle.js", nil)
		if enc != "" {
			req.Header.Set("Accept-Encoding", enc)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if enc != "" {
			if resp.Header.Get("Content-Encoding") != "gzip" {
				t.Fatalf("Accept-Encoding %q: Content-Encoding %q", enc, resp.Header.Get("Content-Encoding"))
			}
			zr, err := gzip.NewReader(bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			body, _ = io.ReadAll(zr)
		}
		if resp.StatusCode != http.StatusOK || len(body) < 1<<20 || !bytes.Contains(body, []byte("SwaggerUIBundle")) {
			t.Errorf("Accept-Encoding %q: bundle status %d, %d bytes", enc, resp.StatusCode, len(body))
		}
	}
	wantProblem(t, srv.do("GET", "/docs/missing.js", ""), http.StatusNotFound)
	wantProblem(t, srv.do("GET", "/docs/..%2F..%2Fopenapi.go", ""), http.StatusNotFound)
}

func TestStatic(t *testing.T) {
	files := fstest.MapFS{"app.js": {Data: []byte("console.log(1)")}}
	srv := mustOpenServer(t, func(o *web.Options) { o.Static = files })
	r := srv.do("GET", "/static/app.js", "")
	wantStatus(t, r, http.StatusOK)
	if string(r.Body) != "console.log(1)" || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/javascript") {
		t.Errorf("GET /static/app.js = %q (%s)", r.Body, r.Header.Get("Content-Type"))
	}
	wantStatus(t, srv.do("GET", "/static/missing.js", ""), http.StatusNotFound)

	none := mustOpenServer(t)
	wantProblem(t, none.do("GET", "/static/app.js", ""), http.StatusNotFound)
}

// TestRefusalTitles: every refusal is a problem whose type and title name
// its real cause: a cross-site write is not a token problem.
func TestRefusalTitles(t *testing.T) {
	srv := mustOpenServer(t)
	for _, r := range []*response{
		srv.do("PUT", "/v1/kv/k", "v", "Sec-Fetch-Site: cross-site"),
		srv.do("PUT", "/v1/kv/k", "v", "Origin: https://evil.example"),
		srv.do("POST", "/signout", "", "Sec-Fetch-Site: cross-site"),
		srv.do("GET", "/v1/watch", "", "Origin: https://evil.example", "Connection: Upgrade", "Upgrade: websocket",
			"Sec-WebSocket-Version: 13", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="),
	} {
		wantProblem(t, r, http.StatusForbidden)
		p := r.JSON(t)
		if p["type"] != "urn:pykv:problem:cross-origin" || !strings.Contains(p["title"].(string), "ross-origin") {
			t.Errorf("%s %s: cross-site refusal has type %q, title %q; want urn:pykv:problem:cross-origin and a title about the origin",
				r.Request.Method, r.Request.URL.Path, p["type"], p["title"])
		}
	}
}

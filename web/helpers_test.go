package web_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/pykv/pykv/engine"
	"github.com/pykv/pykv/persist"
	"github.com/pykv/pykv/web"
)

// testServer is a server on a real persist DB in a temporary folder.
type testServer struct {
	*httptest.Server
	DB      *persist.DB
	Handler http.Handler
	spec    *specChecker
	tb      testing.TB
}

// mustOpenServer starts a server over a fresh data folder; cleanup stops
// both. change, if given, adjusts the options before the server is made.
func mustOpenServer(tb testing.TB, change ...func(*web.Options)) *testServer {
	tb.Helper()
	db, err := persist.Open(tb.TempDir(), persist.Options{Sync: persist.SyncNever,
		Engine: engine.Options{MaxKeyBytes: 64, MaxValueBytes: 1024}})
	if err != nil {
		tb.Fatalf("persist.Open: %v", err)
	}
	opts := web.Options{Store: db.Store(), DB: db, Metrics: web.NewMetrics(), MaxBodyBytes: 4096}
	for _, c := range change {
		c(&opts)
	}
	h := web.NewServer(opts)
	srv := httptest.NewServer(h)
	tb.Cleanup(func() {
		srv.Close()
		if err := db.Close(); err != nil {
			tb.Errorf("close db: %v", err)
		}
	})
	return &testServer{Server: srv, DB: db, Handler: h, spec: loadSpec(tb, h), tb: tb}
}

// response is an answer read whole.
type response struct {
	*http.Response
	Body []byte
}

// JSON decodes the body into a generic map.
func (r *response) JSON(tb testing.TB) map[string]any {
	tb.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		tb.Fatalf("%s %s: body %q is not a JSON object: %v", r.Request.Method, r.Request.URL, r.Body, err)
	}
	return m
}

// do sends a request (headers as "Name: value" strings), reads the answer
// and checks it against the OpenAPI description.
func (s *testServer) do(method, path, body string, headers ...string) *response {
	s.tb.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, s.URL+path, rd)
	if err != nil {
		s.tb.Fatalf("new request %s %s: %v", method, path, err)
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ":")
		req.Header.Set(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	return s.send(req)
}

// send sends req, reads the answer and checks it against the spec.
func (s *testServer) send(req *http.Request) *response {
	s.tb.Helper()
	resp, err := s.Client().Do(req)
	if err != nil {
		s.tb.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		s.tb.Fatalf("%s %s: read body: %v", req.Method, req.URL, err)
	}
	r := &response{Response: resp, Body: b}
	if err := s.spec.check(req, resp, b); err != nil {
		s.tb.Errorf("%s %s → %d: does not match openapi.json: %v\nbody: %s", req.Method, req.URL.EscapedPath(), resp.StatusCode, err, b)
	}
	return r
}

// wantStatus fails the test unless r has status code want.
func wantStatus(tb testing.TB, r *response, want int) {
	tb.Helper()
	if r.StatusCode != want {
		tb.Errorf("%s %s: status %d, want %d; body %s", r.Request.Method, r.Request.URL.EscapedPath(), r.StatusCode, want, bytes.TrimSpace(r.Body))
	}
}

// wantProblem checks that r is a problem with status want whose detail
// mentions each of words.
func wantProblem(tb testing.TB, r *response, want int, words ...string) {
	tb.Helper()
	wantStatus(tb, r, want)
	if ct := r.Header.Get("Content-Type"); ct != "application/problem+json" {
		tb.Errorf("%s %s: Content-Type %q, want application/problem+json", r.Request.Method, r.Request.URL.EscapedPath(), ct)
		return
	}
	var p web.Problem
	if err := json.Unmarshal(r.Body, &p); err != nil {
		tb.Fatalf("problem body %q: %v", r.Body, err)
	}
	if p.Status != want || p.Type == "" || p.Title == "" || p.Detail == "" {
		tb.Errorf("%s %s: problem %+v: want status %d and type, title, detail set", r.Request.Method, r.Request.URL.EscapedPath(), p, want)
	}
	for _, w := range words {
		if !strings.Contains(p.Detail, w) {
			tb.Errorf("%s %s: problem detail %q does not mention %q", r.Request.Method, r.Request.URL.EscapedPath(), p.Detail, w)
		}
	}
}

// localRequest is httptest.NewRequest for a request that names the server
// by a loopback address, as the Host check wants (httptest's default Host
// is example.com).
func localRequest(method, target string, body io.Reader) *http.Request {
	req := httptest.NewRequest(method, target, body)
	req.Host = "127.0.0.1"
	return req
}

package web_test

import (
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pykv/pykv/engine"
	"github.com/pykv/pykv/static"
	"github.com/pykv/pykv/web"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/dashboard")

// dashboardNow is the fixed clock of the dashboard tests.
var dashboardNow = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// mustDashboardStore returns a store on the fixed clock holding the keys
// and values of kvs (key, value, key, value…), written in that order.
func mustDashboardStore(tb testing.TB, kvs ...string) *engine.Store {
	tb.Helper()
	s := engine.New(engine.Options{Now: func() time.Time { return dashboardNow }})
	tb.Cleanup(func() { s.Close() })
	for i := 0; i+1 < len(kvs); i += 2 {
		if _, err := s.Put(kvs[i], kvs[i+1]); err != nil {
			tb.Fatalf("Put(%q): %v", kvs[i], err)
		}
	}
	return s
}

// getDashboard answers GET target from a dashboard on store.
func getDashboard(tb testing.TB, deps web.DashboardDeps, method, target string) (*http.Response, string) {
	tb.Helper()
	if deps.Now == nil {
		deps.Now = func() time.Time { return dashboardNow }
	}
	rec := httptest.NewRecorder()
	web.NewDashboardHandler(deps).ServeHTTP(rec, httptest.NewRequest(method, target, nil))
	resp := rec.Result()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return resp, string(body)
}

// checkGolden compares got with testdata/dashboard/name, or rewrites it
// with -update. templ writes the page without line breaks; one is put
// between every two tags, so a difference shows as a line.
func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	got = strings.ReplaceAll(got, "><", ">\n<")
	path := filepath.Join("testdata", "dashboard", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run go test ./web -run %s -update to create it): %v", t.Name(), err)
	}
	if got != string(want) {
		t.Errorf("GET / differs from %s (run with -update if the change is intended):\n%s", path, firstDiff(string(want), got))
	}
}

// firstDiff shows the first differing line of two texts.
func firstDiff(want, got string) string {
	wl, gl := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := range max(len(wl), len(gl)) {
		var w, g string
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if w != g {
			return fmt.Sprintf("line %d:\nwant %q\ngot  %q", i+1, w, g)
		}
	}
	return "(no line differs)"
}

func TestDashboard_Golden(t *testing.T) {
	store := mustDashboardStore(t,
		"alpha", "one",
		"b/long", strings.Repeat("0123456789", 10),
		"b/<script>alert(1)</script>", `"quoted" & <b>bold</b>`,
		"huge", strings.Repeat("x", 20<<10),
		"zeta", "last",
	)
	if _, err := store.Do(engine.Op{Type: engine.OpPut, Key: "d/ttl", Value: "soon", TTL: 90 * time.Second}); err != nil {
		t.Fatal(err)
	}
	deps := web.DashboardDeps{
		Store:    store,
		PageSize: 5,
		Status:   func() web.DashboardStatus { return web.DashboardStatus{Sync: "always"} },
	}
	for _, tt := range []struct{ name, target string }{
		{"first_page.html", "/"},
		{"prefix_b.html", "/?prefix=b/"},
		{"second_page.html", "/?after=huge"},
		{"empty_search.html", "/?prefix=nothing"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := getDashboard(t, deps, http.MethodGet, tt.target)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("GET %s: status %d", tt.target, resp.StatusCode)
			}
			checkGolden(t, tt.name, body)
		})
	}
}

func TestDashboard_Page(t *testing.T) {
	var kvs []string
	for i := range 7 {
		kvs = append(kvs, fmt.Sprintf("k%d", i), fmt.Sprintf("v%d", i))
	}
	store := mustDashboardStore(t, append(kvs, "other", "x")...)
	deps := web.DashboardDeps{Store: store, PageSize: 3}

	t.Run("headers", func(t *testing.T) {
		resp, _ := getDashboard(t, deps, http.MethodGet, "/")
		for h, want := range map[string]string{
			"Content-Type":  "text/html; charset=utf-8",
			"Cache-Control": "no-store",
		} {
			if got := resp.Header.Get(h); got != want {
				t.Errorf("%s = %q, want %q", h, got, want)
			}
		}
		csp := resp.Header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") {
			t.Errorf("Content-Security-Policy = %q, want script-src 'self' and nothing inline", csp)
		}
		// The offline copy: WebAssembly (not eval) and the service worker.
		for _, want := range []string{"'wasm-unsafe-eval'", "worker-src 'self'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("Content-Security-Policy = %q, want %s", csp, want)
			}
		}
		if strings.Contains(csp, "'unsafe-eval'") {
			t.Errorf("Content-Security-Policy = %q allows eval", csp)
		}
	})

	t.Run("nothing inline", func(t *testing.T) {
		_, body := getDashboard(t, deps, http.MethodGet, "/")
		for _, re := range []*regexp.Regexp{
			regexp.MustCompile(`<script(?:\s[^>]*)?>[^<]`),        // a script with a body
			regexp.MustCompile(`<script(?:\s(?:[^>s]|s[^r])*)?>`), // a script without src
			regexp.MustCompile(`\son[a-z]+=`),                     // an inline event handler
			regexp.MustCompile(`\sstyle=|<style`),                 // inline style
		} {
			if m := re.FindString(body); m != "" {
				t.Errorf("page holds %q (matching %s); the CSP would block it", m, re)
			}
		}
	})

	t.Run("first page", func(t *testing.T) {
		_, body := getDashboard(t, deps, http.MethodGet, "/")
		if got, want := rowKeys(body), "k0 k1 k2"; got != want {
			t.Errorf("rows = %q, want %q", got, want)
		}
		for _, want := range []string{
			fmt.Sprintf(`data-rev="%d"`, store.Rev()),
			`data-more="true"`, `data-next="k2"`, `data-limit="3"`,
			`<dd data-testid="key-count">8</dd>`,
			`<dd data-testid="durability">memory</dd>`,
			`href="/?after=k2" data-testid="page-next"`,
		} {
			if !strings.Contains(body, want) {
				t.Errorf("page lacks %s", want)
			}
		}
	})

	t.Run("after cursor", func(t *testing.T) {
		_, body := getDashboard(t, deps, http.MethodGet, "/?after=k2")
		if got, want := rowKeys(body), "k3 k4 k5"; got != want {
			t.Errorf("rows = %q, want %q", got, want)
		}
	})

	t.Run("prefix", func(t *testing.T) {
		_, body := getDashboard(t, deps, http.MethodGet, "/?prefix=k&after=k5")
		if got, want := rowKeys(body), "k6"; got != want {
			t.Errorf("rows = %q, want %q", got, want)
		}
		if !strings.Contains(body, `data-more="false"`) {
			t.Errorf("last page: want data-more=false")
		}
	})

	t.Run("HEAD", func(t *testing.T) {
		resp, body := getDashboard(t, deps, http.MethodHead, "/")
		if resp.StatusCode != http.StatusOK || body != "" {
			t.Errorf("HEAD /: status %d, %d bytes; want 200 and no body", resp.StatusCode, len(body))
		}
	})

	t.Run("other path", func(t *testing.T) {
		resp, _ := getDashboard(t, deps, http.MethodGet, "/nothing-here")
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET /nothing-here: status %d, want 404", resp.StatusCode)
		}
	})
}

var rowKeyRE = regexp.MustCompile(`<tr data-testid="kv-row" data-key="([^"]*)"`)

// rowKeys lists the keys of the table rows of a page, space-separated.
func rowKeys(body string) string {
	var keys []string
	for _, m := range rowKeyRE.FindAllStringSubmatch(body, -1) {
		keys = append(keys, m[1])
	}
	return strings.Join(keys, " ")
}

// TestDashboard_Assets checks that every asset the page links to is in
// static.FS, so the page served from the binary is whole.
func TestDashboard_Assets(t *testing.T) {
	store := mustDashboardStore(t)
	_, body := getDashboard(t, web.DashboardDeps{Store: store}, http.MethodGet, "/")
	refs := regexp.MustCompile(`(?:href|src)="/static/([^"]+)"`).FindAllStringSubmatch(body, -1)
	if len(refs) < 3 {
		t.Fatalf("page links %d static assets, want the script, the style sheet and the icon", len(refs))
	}
	for _, m := range refs {
		data, err := fs.ReadFile(static.FS, m[1])
		if err != nil || len(data) == 0 {
			t.Errorf("page links /static/%s, not in static.FS: %v", m[1], err)
		}
	}
}

// BenchmarkDashboard_Render renders the first page of a store of a million
// keys: the cost must not grow with the store.
func BenchmarkDashboard_Render(b *testing.B) {
	store := engine.New(engine.Options{})
	b.Cleanup(func() { store.Close() })
	ops := make([]engine.Op, 0, 100)
	for i := range 1_000_000 {
		ops = append(ops, engine.Op{Type: engine.OpPut, Key: fmt.Sprintf("key/%07d", i), Value: "value"})
		if len(ops) == cap(ops) {
			if _, err := store.Txn(ops); err != nil {
				b.Fatal(err)
			}
			ops = ops[:0]
		}
	}
	h := web.NewDashboardHandler(web.DashboardDeps{Store: store})
	req := httptest.NewRequest(http.MethodGet, "/?prefix=key/05", nil)
	b.ResetTimer()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d", rec.Code)
		}
	}
}

package web_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/pykv/pykv/engine"
	"github.com/pykv/pykv/persist"
	"github.com/pykv/pykv/web"
)

// TestRouter_FastPathSameAnswers sends the same requests, in the same
// order, to a server whose key routes take the fast path and to one where
// every request goes through chi, each on a store of its own, and checks
// the answers are the same: status, headers (but Date) and body, and then
// the request counters in /metrics. The requests cover what the middleware
// and handlers decide on the key routes: tokens (missing, wrong, read-only,
// rate limited), the Host check, the cross-origin check, conditions, HEAD,
// JSON entries, TTLs, escaped keys and paths, and methods the key routes do
// not have.
func TestRouter_FastPathSameAnswers(t *testing.T) {
	const token, readToken = "router-test-token-0123456789", "router-test-read-token-012345"
	open := func(newServer func(web.Options) http.Handler) *httptest.Server {
		db, err := persist.Open(t.TempDir(), persist.Options{Sync: persist.SyncNever,
			Engine: engine.Options{MaxKeyBytes: 64, MaxValueBytes: 1024}})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(newServer(web.Options{Store: db.Store(), DB: db, Metrics: web.NewMetrics(),
			AuthToken: token, ReadToken: readToken}))
		t.Cleanup(func() { srv.Close(); db.Close() })
		return srv
	}
	fast, chi := open(web.NewServer), open(web.NewServerChiOnly)

	auth, read := "Authorization: Bearer "+token, "Authorization: Bearer "+readToken
	type req struct {
		method, path, body string
		headers            []string
	}
	reqs := []req{
		{"GET", "/v1/kv/a", "", []string{auth}},
		{"PUT", "/v1/kv/a", "one", []string{auth}},
		{"PUT", "/v1/kv/a", "two", []string{auth, "Content-Type: text/plain"}},
		{"GET", "/v1/kv/a", "", []string{auth}},
		{"HEAD", "/v1/kv/a", "", []string{auth}},
		{"GET", "/v1/kv/a", "", []string{read}},
		{"GET", "/v1/kv/a?format=json", "", []string{auth}},
		{"GET", "/v1/kv/a", "", []string{auth, "Accept: application/json"}},
		{"GET", "/v1/kv/a?format=yaml", "", []string{auth}},
		{"GET", "/v1/kv/a", "", []string{auth, `If-None-Match: "2"`}},
		{"GET", "/v1/kv/a", "", []string{auth, `If-None-Match: "1", W/"7"`}},
		{"PUT", "/v1/kv/a", "three", []string{auth, `If-Match: "1"`}},
		{"PUT", "/v1/kv/a", "three", []string{auth, `If-Match: "2"`}},
		{"PUT", "/v1/kv/a", "four", []string{auth, "If-None-Match: *"}},
		{"PUT", "/v1/kv/a", "x", []string{auth, "If-Match: nonsense"}},
		{"PUT", "/v1/kv/t?ttl=1h", "expiring", []string{auth}},
		{"PUT", "/v1/kv/t?ttl=soon", "x", []string{auth}},
		{"PUT", "/v1/kv/" + strings.Repeat("k", 65), "x", []string{auth}},
		{"PUT", "/v1/kv/big", strings.Repeat("v", 1025), []string{auth}},
		{"PUT", "/v1/kv/b%2Fc", "slash", []string{auth}},
		{"GET", "/v1/kv/b%2Fc", "", []string{auth}},
		{"GET", "/v1/kv/b/c", "", []string{auth}},
		{"GET", "/v1/k%76/b%2Fc", "", []string{auth}},
		{"GET", "/v1/kv/", "", []string{auth}},
		{"PUT", "/v1/kv/", "x", []string{auth}},
		{"GET", "/v1/kv", "", []string{auth}},
		{"GET", "/v1/kvx", "", []string{auth}},
		{"POST", "/v1/kv/a", "x", []string{auth}},
		{"PATCH", "/v1/kv/a", "x", []string{auth}},
		{"OPTIONS", "/v1/kv/a", "", []string{auth}},
		{"GET", "/v1/kv/a", "", nil},
		{"PUT", "/v1/kv/a", "x", []string{read}},
		{"DELETE", "/v1/kv/a", "", []string{read}},
		{"PUT", "/v1/kv/a", "x", []string{auth, "Sec-Fetch-Site: cross-site"}},
		{"PUT", "/v1/kv/a", "x", []string{auth, "Origin: https://evil.example"}},
		{"GET", "/v1/kv/a", "", []string{auth, "Host: evil.example"}},
		{"PUT", "/v1/kv/a", "x", []string{auth, "Host: evil.example"}},
		{"GET", "/v1/kv/a", "", []string{auth, "Host: localhost:1234"}},
		{"DELETE", "/v1/kv/a", "", []string{auth, `If-Match: "1"`}},
		{"DELETE", "/v1/kv/a", "", []string{auth, "If-None-Match: *"}},
		{"DELETE", "/v1/kv/a", "", []string{auth}},
		{"DELETE", "/v1/kv/a", "", []string{auth}},
		{"GET", "/v1/kv/a", "", []string{auth}},
		{"GET", "/v1/kv/a", "", []string{"Authorization: Basic Zm9vOmJhcg=="}},
		{"GET", "/v1/kv/a", "", []string{"Cookie: pykv_session=nonsense"}},
	}
	send := func(srv *httptest.Server, q req) string {
		var body io.Reader
		if q.body != "" {
			body = strings.NewReader(q.body)
		}
		r, err := http.NewRequest(q.method, srv.URL+q.path, body)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range q.headers {
			k, v, _ := strings.Cut(h, ": ")
			if k == "Host" {
				r.Host = v
				continue
			}
			r.Header.Set(k, v)
		}
		resp, err := srv.Client().Do(r)
		if err != nil {
			t.Fatalf("%s %s: %v", q.method, q.path, err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		var lines []string
		for k, vs := range resp.Header {
			switch k {
			case "Date":
				continue
			case "Pykv-Expires-At": // a clock reading, a few ms apart
				vs = []string{"(set)"}
			}
			lines = append(lines, fmt.Sprintf("%s: %q", k, vs))
		}
		slices.Sort(lines)
		b = expiresAt.ReplaceAll(b, []byte(`"expires_at":(set)`))
		return fmt.Sprintf("%d\n%s\n%s", resp.StatusCode, strings.Join(lines, "\n"), b)
	}
	statuses := map[int]bool{}
	compare := func(reqs []req) {
		for _, q := range reqs {
			a, b := send(fast, q), send(chi, q)
			if a != b {
				t.Errorf("%s %s %q: fast path answered\n%s\nchi answered\n%s", q.method, q.path, q.headers, a, b)
			}
			var code int
			fmt.Sscan(a, &code)
			statuses[code] = true
		}
	}
	compare(reqs)
	counters := func(srv *httptest.Server) string {
		r, err := http.NewRequest("GET", srv.URL+"/metrics", nil)
		if err != nil {
			t.Fatal(err)
		}
		r.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var lines []string
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "pykv_http_requests_total{") {
				lines = append(lines, l)
			}
		}
		return fmt.Sprintf("status %d\n%s", resp.StatusCode, strings.Join(lines, "\n"))
	}
	if a, b := counters(fast), counters(chi); a != b || !strings.Contains(a, `route="/v1/kv/*"`) {
		t.Errorf("request counters differ (or lack the key routes): fast path\n%s\nchi\n%s", a, b)
	}

	// Wrong tokens last: past the burst, even the right one is refused 429
	// (and /metrics could not be read).
	var tail []req
	for range 12 {
		tail = append(tail, req{"GET", "/v1/kv/b%2Fc", "", []string{"Authorization: Bearer wrong-token-0123456789"}})
	}
	tail = append(tail, req{"GET", "/v1/kv/b%2Fc", "", []string{auth}})

	compare(tail)
	// The requests reach every kind of answer they were written for.
	for _, code := range []int{200, 201, 304, 400, 401, 403, 404, 405, 412, 413, 421, 429} {
		if !statuses[code] {
			t.Errorf("no request was answered %d", code)
		}
	}
}

// expiresAt matches an expiry in an entry's JSON: a clock reading.
var expiresAt = regexp.MustCompile(`"expires_at":\d+`)

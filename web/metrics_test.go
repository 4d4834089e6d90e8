package web_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/pykv/pykv/web"
)

// TestMetrics_LabelsBounded sends requests with made-up methods and paths
// and no token, and checks they add no series to /metrics: a method label
// takes only known values ("other" for the rest), so a client cannot grow
// the server's memory and scrape size with junk requests.
func TestMetrics_LabelsBounded(t *testing.T) {
	const token = "metrics-test-token-0123456789"
	srv := mustOpenServer(t, func(o *web.Options) { o.AuthToken = token })
	series := func() (n int, body string) {
		r := srv.do("GET", "/metrics", "", "Authorization: Bearer "+token)
		wantStatus(t, r, http.StatusOK)
		for _, line := range strings.Split(string(r.Body), "\n") {
			if strings.HasPrefix(line, "pykv_http_") {
				n++
			}
		}
		return n, string(r.Body)
	}
	send := func(method, path string) {
		req, err := http.NewRequest(method, srv.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	// One of each kind first, so the series they may add are there.
	series()
	send("MADEUP", "/v1/kv/warm")
	send("MADEUP", "/no/such/path")
	send("GET", "/v1/kv/warm")
	before, _ := series()
	for i := range 200 {
		method := fmt.Sprintf("M%s%d", strings.Repeat("X", 150), i)
		send(method, fmt.Sprintf("/v1/kv/k%d", i))
		send(method, fmt.Sprintf("/junk/%d", i))
	}
	after, body := series()
	if after != before {
		t.Errorf("/metrics grew from %d to %d pykv_http_ lines after 400 unauthenticated requests with made-up methods", before, after)
	}
	if strings.Contains(body, "MXXX") {
		t.Errorf("/metrics holds a made-up method as a label")
	}
	if !strings.Contains(body, `method="other"`) {
		t.Errorf(`/metrics lacks method="other" for unknown methods`)
	}
}

// TestMetrics_CountsByRouteMethodStatus checks that each request is counted
// once, in the series of its route pattern, method and status, however
// many statuses one route answers (the series are looked up once and
// kept, so a mix-up there would count a request under another's labels).
func TestMetrics_CountsByRouteMethodStatus(t *testing.T) {
	srv := mustOpenServer(t)
	wantStatus(t, srv.do("GET", "/v1/kv/a", ""), http.StatusNotFound)
	wantStatus(t, srv.do("PUT", "/v1/kv/a", "1"), http.StatusCreated)
	for range 3 {
		wantStatus(t, srv.do("GET", "/v1/kv/a", ""), http.StatusOK)
	}
	wantStatus(t, srv.do("GET", "/v1/kv/a", "", `If-None-Match: "1"`), http.StatusNotModified)
	wantStatus(t, srv.do("PUT", "/v1/kv/a", "2"), http.StatusOK)
	wantStatus(t, srv.do("HEAD", "/v1/kv/a", ""), http.StatusOK)
	wantStatus(t, srv.do("DELETE", "/v1/kv/a", ""), http.StatusOK)
	wantStatus(t, srv.do("GET", "/v1/kv/a", ""), http.StatusNotFound)
	wantStatus(t, srv.do("POST", "/v1/kv/a", ""), http.StatusMethodNotAllowed)
	wantStatus(t, srv.do("GET", "/nowhere", ""), http.StatusNotFound)
	wantStatus(t, srv.do("GET", "/v1/kv", ""), http.StatusOK)

	body := string(srv.do("GET", "/metrics", "").Body)
	var got []string
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, "pykv_http_requests_total{") {
			got = append(got, line)
		}
	}
	want := []string{
		`pykv_http_requests_total{code="200",method="DELETE",route="/v1/kv/*"} 1`,
		`pykv_http_requests_total{code="200",method="GET",route="/openapi.json"} 1`, // mustOpenServer's check
		`pykv_http_requests_total{code="200",method="GET",route="/v1/kv"} 1`,
		`pykv_http_requests_total{code="200",method="GET",route="/v1/kv/*"} 3`,
		`pykv_http_requests_total{code="200",method="HEAD",route="/v1/kv/*"} 1`,
		`pykv_http_requests_total{code="200",method="PUT",route="/v1/kv/*"} 1`,
		`pykv_http_requests_total{code="201",method="PUT",route="/v1/kv/*"} 1`,
		`pykv_http_requests_total{code="304",method="GET",route="/v1/kv/*"} 1`,
		`pykv_http_requests_total{code="404",method="GET",route="/v1/kv/*"} 2`,
		`pykv_http_requests_total{code="404",method="GET",route="unmatched"} 1`,
		`pykv_http_requests_total{code="405",method="POST",route="unmatched"} 1`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("request counters:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, want := range []string{
		`pykv_http_request_duration_seconds_count{method="GET",route="/v1/kv/*"} 6`,
		`pykv_http_request_duration_seconds_count{method="PUT",route="/v1/kv/*"} 2`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

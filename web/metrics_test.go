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

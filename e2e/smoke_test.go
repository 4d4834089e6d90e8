package e2e

import (
	"net/http"
	"strings"
	"testing"
)

// TestSmoke_HealthzInBrowser checks the whole chain once: the binary starts,
// the driver and Chromium run, and the browser reaches the server.
func TestSmoke_HealthzInBrowser(t *testing.T) {
	srv := startServer(t)
	page := newPage(t, srv)

	resp, err := page.Goto("/healthz")
	if err != nil {
		t.Fatalf("goto /healthz: %v", err)
	}
	if got := resp.Status(); got != http.StatusOK {
		t.Errorf("GET /healthz status = %d, want %d", got, http.StatusOK)
	}
	body, err := page.Locator("body").InnerText()
	if err != nil {
		t.Fatalf("read body text: %v", err)
	}
	if !strings.Contains(body, "ok") {
		t.Errorf("GET /healthz body = %q, want it to contain %q", body, "ok")
	}
}

// TestSmoke_Restart checks the harness's Restart: the server comes back on
// the same address with the same data directory.
func TestSmoke_Restart(t *testing.T) {
	srv := startServer(t)
	url, dir := srv.URL, srv.DataDir

	srv.Restart()

	if srv.URL != url || srv.DataDir != dir {
		t.Errorf("after Restart: URL %q, data dir %q; want %q, %q", srv.URL, srv.DataDir, url, dir)
	}
	resp, err := http.Get(srv.URL + "/healthz")
	if err != nil {
		t.Fatalf("GET /healthz after Restart: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /healthz after Restart: status %d, want %d", resp.StatusCode, http.StatusOK)
	}
}

package e2e

import (
	"strings"
	"sync"
	"testing"

	"github.com/playwright-community/playwright-go"
)

// TestDocs_SwaggerUI loads /docs in the browser: Swagger UI must start from
// the binary's own files under the page's content security policy, read
// /openapi.json and list the API's operations, with no CSP violation or
// script error on the console.
func TestDocs_SwaggerUI(t *testing.T) {
	srv := startServer(t)
	page := newPage(t, srv)
	var (
		mu       sync.Mutex
		problems []string
	)
	page.OnConsole(func(m playwright.ConsoleMessage) {
		if m.Type() == "error" {
			mu.Lock()
			problems = append(problems, m.Text())
			mu.Unlock()
		}
	})
	page.OnPageError(func(err error) {
		mu.Lock()
		problems = append(problems, err.Error())
		mu.Unlock()
	})

	if _, err := page.Goto("/docs"); err != nil {
		t.Fatalf("goto /docs: %v", err)
	}
	// An operation of the spec rendered means the UI ran and loaded it.
	op := page.Locator(`#operations-kv-putKey`)
	if err := op.WaitFor(); err != nil {
		t.Fatalf("Swagger UI did not show the putKey operation: %v", err)
	}
	title, err := page.Locator(".info .title").InnerText()
	if err != nil {
		t.Fatalf("read the title: %v", err)
	}
	if !strings.Contains(title, "PyKV") {
		t.Errorf("Swagger UI title = %q, want it to name PyKV", title)
	}
	n, err := page.Locator(".opblock").Count()
	if err != nil {
		t.Fatal(err)
	}
	if n < 15 {
		t.Errorf("Swagger UI lists %d operations, want every endpoint (at least 15)", n)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, p := range problems {
		t.Errorf("browser console: %s", p)
	}
}

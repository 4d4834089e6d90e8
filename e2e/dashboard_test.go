package e2e

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/playwright-community/playwright-go"
)

// liveWithin is how soon a change made elsewhere must show on an open page
// (the issue asks for one second).
const liveWithin = time.Second

// expect makes Playwright assertions that wait up to pageTimeout.
var expect = playwright.NewPlaywrightAssertions(float64(pageTimeout.Milliseconds()))

// openDashboard opens the dashboard in a fresh page and waits until its
// change stream is live. It fails the test on any browser console error,
// such as a Content-Security-Policy violation, at the end.
func openDashboard(t *testing.T, srv *server) playwright.Page {
	t.Helper()
	page := newPage(t, srv)
	var (
		mu     sync.Mutex
		errors []string
	)
	page.OnConsole(func(m playwright.ConsoleMessage) {
		if m.Type() == "error" && !isExpectedConsoleError(m.Text()) {
			mu.Lock()
			errors = append(errors, m.Text())
			mu.Unlock()
		}
	})
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, e := range errors {
			t.Errorf("browser console error: %s", e)
		}
	})
	if _, err := page.Goto("/"); err != nil {
		t.Fatalf("goto /: %v", err)
	}
	waitLive(t, page)
	return page
}

// isExpectedConsoleError tells the errors a test causes on purpose: the
// browser logs every refused fetch and every dropped websocket.
func isExpectedConsoleError(text string) bool {
	for _, s := range []string{"status of 4", "WebSocket", "ERR_CONNECTION_REFUSED", "ERR_EMPTY_RESPONSE", "net::"} {
		if strings.Contains(text, s) {
			return true
		}
	}
	return false
}

// waitLive waits for the page's stream to be connected.
func waitLive(t *testing.T, page playwright.Page) {
	t.Helper()
	if err := expect.Locator(page.GetByTestId("conn-state")).ToHaveAttribute("data-state", "live"); err != nil {
		t.Fatalf("page never went live: %v", err)
	}
}

// row is the table row of key.
func row(page playwright.Page, key string) playwright.Locator {
	return page.Locator(fmt.Sprintf(`tr[data-testid="kv-row"][data-key=%q]`, key))
}

// expectRow waits up to within for key's row to show value.
func expectRow(t *testing.T, page playwright.Page, key, value string, within time.Duration) {
	t.Helper()
	cell := row(page, key).Locator(`[data-testid="cell-value"]`)
	if err := expect.Locator(cell).ToHaveText(value, playwright.LocatorAssertionsToHaveTextOptions{
		Timeout: playwright.Float(float64(within.Milliseconds())),
	}); err != nil {
		t.Fatalf("row %q with value %q not shown within %v: %v", key, value, within, err)
	}
}

// expectNoRow waits up to within for key's row to be gone.
func expectNoRow(t *testing.T, page playwright.Page, key string, within time.Duration) {
	t.Helper()
	if err := expect.Locator(row(page, key)).ToHaveCount(0, playwright.LocatorAssertionsToHaveCountOptions{
		Timeout: playwright.Float(float64(within.Milliseconds())),
	}); err != nil {
		t.Fatalf("row %q still shown after %v: %v", key, within, err)
	}
}

// fill types value into the input labelled label.
func fill(t *testing.T, page playwright.Page, label, value string) {
	t.Helper()
	if err := page.GetByLabel(label, playwright.PageGetByLabelOptions{Exact: playwright.Bool(true)}).Fill(value); err != nil {
		t.Fatalf("fill %q: %v", label, err)
	}
}

// click presses the button named name.
func click(t *testing.T, page playwright.Page, name string) {
	t.Helper()
	btn := page.GetByRole(*playwright.AriaRoleButton, playwright.PageGetByRoleOptions{Name: name, Exact: playwright.Bool(true)})
	if err := btn.Click(); err != nil {
		t.Fatalf("click %q: %v", name, err)
	}
}

// apiDo sends a request to the REST API and fails the test unless it gets
// one of the statuses wanted.
func apiDo(t *testing.T, srv *server, method, path, body string, want ...int) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	for _, w := range want {
		if resp.StatusCode == w {
			return
		}
	}
	t.Fatalf("%s %s: %s %s; want %v", method, path, resp.Status, data, want)
}

func apiPut(t *testing.T, srv *server, key, value, query string) {
	t.Helper()
	apiDo(t, srv, http.MethodPut, "/v1/kv/"+url.PathEscape(key)+query, value, http.StatusOK, http.StatusCreated)
}

func apiDelete(t *testing.T, srv *server, key string) {
	t.Helper()
	apiDo(t, srv, http.MethodDelete, "/v1/kv/"+url.PathEscape(key), "", http.StatusOK)
}

func TestDashboard_PutThroughForm(t *testing.T) {
	srv := startServer(t)
	page := openDashboard(t, srv)

	fill(t, page, "Key", "greeting/en")
	fill(t, page, "Value", "hello, world")
	click(t, page, "Put")

	expectRow(t, page, "greeting/en", "hello, world", pageTimeout)
	if err := expect.Locator(page.GetByTestId("form-status")).ToContainText("Stored"); err != nil {
		t.Errorf("no confirmation after Put: %v", err)
	}
	if err := expect.Locator(page.GetByTestId("key-count")).ToHaveText("1"); err != nil {
		t.Errorf("key count after the first put: %v", err)
	}
	// The server has it, too: a reload renders it from the store.
	if _, err := page.Reload(); err != nil {
		t.Fatal(err)
	}
	expectRow(t, page, "greeting/en", "hello, world", pageTimeout)
}

func TestDashboard_RESTPutShowsLive(t *testing.T) {
	srv := startServer(t)
	page := openDashboard(t, srv)
	// A marker to tell whether the page was reloaded meanwhile.
	if _, err := page.Evaluate(`() => { window.__noReload = true; }`); err != nil {
		t.Fatal(err)
	}

	apiPut(t, srv, "live/1", "from curl", "")
	// The page's own timer takes the mark off a changed row after a few
	// seconds, so the mark is looked for together with the value, in one
	// check: looked for after the value, it could be gone already on a
	// slow machine.
	marked := row(page, "live/1").And(page.Locator("tr.changed")).Locator(`[data-testid="cell-value"]`)
	if err := expect.Locator(marked).ToHaveText("from curl", playwright.LocatorAssertionsToHaveTextOptions{
		Timeout: playwright.Float(float64(liveWithin.Milliseconds())),
	}); err != nil {
		t.Fatalf("row live/1 not shown with its value and marked as changed within %v: %v", liveWithin, err)
	}

	apiPut(t, srv, "live/1", "updated", "")
	expectRow(t, page, "live/1", "updated", liveWithin)
	if err := expect.Locator(row(page, "live/1").GetByTestId("cell-version")).ToHaveText("2"); err != nil {
		t.Errorf("version after the second put: %v", err)
	}
	kept, err := page.Evaluate(`() => window.__noReload === true`)
	if err != nil || kept != true {
		t.Errorf("the page was reloaded (marker %v, %v); changes must arrive without a reload", kept, err)
	}
}

func TestDashboard_TwoPagesSeeEachOther(t *testing.T) {
	srv := startServer(t)
	a := openDashboard(t, srv)
	b := openDashboard(t, srv)

	fill(t, a, "Key", "shared")
	fill(t, a, "Value", "written by A")
	click(t, a, "Put")
	expectRow(t, b, "shared", "written by A", liveWithin)

	fill(t, b, "Key", "shared")
	fill(t, b, "Value", "")
	click(t, b, "Delete")
	expectNoRow(t, a, "shared", liveWithin)
}

func TestDashboard_DeleteAndExpiry(t *testing.T) {
	srv := startServer(t)
	apiPut(t, srv, "doomed", "delete me", "")
	page := openDashboard(t, srv)
	expectRow(t, page, "doomed", "delete me", pageTimeout)

	apiDelete(t, srv, "doomed")
	expectNoRow(t, page, "doomed", liveWithin)

	// The TTL leaves time to see the row and its countdown before the
	// page's own clock turns it into "expiring" and the sweep removes it:
	// with a TTL as short as liveWithin, a slow machine could show the row
	// only as it expires, and the check below would race the removal.
	const ttl = 3 * time.Second
	put := time.Now()
	apiPut(t, srv, "ephemeral", "short-lived", "?ttl=3s")
	expectRow(t, page, "ephemeral", "short-lived", liveWithin)
	if err := expect.Locator(row(page, "ephemeral").GetByTestId("cell-expiry")).ToHaveText(regexp.MustCompile(`^in [1-3]s$`)); err != nil {
		t.Errorf("expiry countdown not shown: %v", err)
	}
	// The TTL runs out; the expiry sweep then removes it. (At least a
	// moment: a Playwright timeout of 0 would mean no limit at all.)
	expectNoRow(t, page, "ephemeral", max(time.Until(put.Add(ttl+1500*time.Millisecond+liveWithin)), 100*time.Millisecond))
	if err := expect.Locator(page.GetByTestId("key-count")).ToHaveText("0"); err != nil {
		t.Errorf("key count after delete and expiry: %v", err)
	}
}

func TestDashboard_ServerRestart(t *testing.T) {
	srv := startServer(t)
	apiPut(t, srv, "durable", "survives", "")
	page := openDashboard(t, srv)
	expectRow(t, page, "durable", "survives", pageTimeout)

	srv.Restart()
	// Written before the page has reconnected: it must catch up on it.
	apiPut(t, srv, "after-restart", "caught up", "")

	waitLive(t, page)
	expectRow(t, page, "after-restart", "caught up", pageTimeout)
	expectRow(t, page, "durable", "survives", pageTimeout)

	// And it is live again.
	apiPut(t, srv, "later", "still live", "")
	expectRow(t, page, "later", "still live", liveWithin)
}

func TestDashboard_FormErrors(t *testing.T) {
	srv := startServer(t)
	apiPut(t, srv, "taken", "v", "")
	page := openDashboard(t, srv)
	formError := page.GetByTestId("form-error")

	tests := []struct {
		name       string
		key, ttl   string
		createOnly bool
		button     string
		want       string // in the message shown
	}{
		{"bad TTL", "k", "soon", false, "Put", "TTL"},
		{"conflict", "taken", "", true, "Put", "“taken” already exists"},
		{"missing key", "nothing-here", "", false, "Delete", "does not exist"},
		{"no key", "", "", false, "Put", "Enter a key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fill(t, page, "Key", tt.key)
			fill(t, page, "TTL", tt.ttl)
			box := page.GetByLabel("Only if new")
			if err := box.SetChecked(tt.createOnly); err != nil {
				t.Fatal(err)
			}
			click(t, page, tt.button)
			if err := expect.Locator(formError).ToBeVisible(); err != nil {
				t.Fatalf("no error shown: %v", err)
			}
			if err := expect.Locator(formError).ToContainText(tt.want); err != nil {
				text, _ := formError.TextContent()
				t.Errorf("error shown %q, want it to mention %q: %v", text, tt.want, err)
			}
		})
	}
	// A good write clears the error.
	fill(t, page, "Key", "fine")
	fill(t, page, "TTL", "")
	if err := page.GetByLabel("Only if new").SetChecked(false); err != nil {
		t.Fatal(err)
	}
	click(t, page, "Put")
	if err := expect.Locator(formError).ToBeHidden(); err != nil {
		t.Errorf("error still shown after a good write: %v", err)
	}
}

package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/playwright-community/playwright-go"
)

// inputValue returns what the form field labelled label holds.
func inputValue(t *testing.T, page playwright.Page, label string) string {
	t.Helper()
	v, err := page.GetByLabel(label, playwright.PageGetByLabelOptions{Exact: playwright.Bool(true)}).InputValue()
	if err != nil {
		t.Fatalf("read %q: %v", label, err)
	}
	return v
}

// expectText waits for the element with test id to contain want.
func expectText(t *testing.T, page playwright.Page, testID string, want any) {
	t.Helper()
	var err error
	switch w := want.(type) {
	case string:
		err = expect.Locator(page.GetByTestId(testID).First()).ToContainText(w)
	case *regexp.Regexp:
		err = expect.Locator(page.GetByTestId(testID).First()).ToContainText(w)
	}
	if err != nil {
		t.Fatalf("%s does not show %v: %v", testID, want, err)
	}
}

// apiGetJSON reads a JSON answer of the API.
func apiGetJSON(t *testing.T, srv *server, path string, out any) {
	t.Helper()
	resp, err := http.Get(srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %s", path, resp.Status, data)
	}
	if err := json.Unmarshal(data, out); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
}

// TestDashboard_OpenRowEditInPlace: clicking a row (or Enter on it) loads
// its key, value and TTL into the form; the panel shows a JSON value
// pretty-printed with a Copy button and the key's history; editing and
// Put changes the row and adds to the history.
func TestDashboard_OpenRowEditInPlace(t *testing.T) {
	srv := startServer(t)
	apiPut(t, srv, "users/ada", `{"name":"Ada","role":"admin"}`, "?ttl=1h")
	apiPut(t, srv, "plain", "just text", "")
	page := openDashboard(t, srv)

	if err := row(page, "users/ada").GetByTestId("cell-rev").Click(); err != nil {
		t.Fatal(err)
	}
	expectText(t, page, "detail-key", "users/ada")
	if got := inputValue(t, page, "Key"); got != "users/ada" {
		t.Errorf("form key = %q after opening the row", got)
	}
	if got := inputValue(t, page, "Value"); got != `{"name":"Ada","role":"admin"}` {
		t.Errorf("form value = %q after opening the row", got)
	}
	if got := inputValue(t, page, "TTL"); !regexp.MustCompile(`^(3[56]\d\d|3600)s$`).MatchString(got) {
		t.Errorf("form TTL = %q, want the time left, about 3600s", got)
	}
	pretty := "{\n  \"name\": \"Ada\",\n  \"role\": \"admin\"\n}"
	if err := expect.Locator(page.GetByTestId("detail-value")).ToHaveText(pretty); err != nil {
		t.Errorf("JSON not shown pretty-printed: %v", err)
	}
	expectText(t, page, "detail-format", "JSON")
	click(t, page, "Copy value")
	expectText(t, page, "copy-status", regexp.MustCompile(`Copied|Selected`))
	if err := expect.Locator(page.GetByTestId("history-item")).ToHaveCount(1); err != nil {
		t.Fatalf("history of a key put once: %v", err)
	}
	expectText(t, page, "history-type", "created")

	// Edit in place: change the value and Put.
	fill(t, page, "Value", `{"name":"Ada","role":"owner"}`)
	expectText(t, page, "value-hint", "Valid JSON")
	click(t, page, "Put")
	expectRow(t, page, "users/ada", `{"name":"Ada","role":"owner"}`, pageTimeout)
	if err := expect.Locator(page.GetByTestId("history-item")).ToHaveCount(2); err != nil {
		t.Fatalf("history after the edit: %v", err)
	}
	if err := expect.Locator(page.GetByTestId("history-item").First()).ToContainText(`"role":"owner"`); err != nil {
		t.Errorf("newest history entry: %v", err)
	}
	if err := expect.Locator(row(page, "users/ada").GetByTestId("cell-expiry")).ToHaveText(regexp.MustCompile(`^in (59|60)m$`)); err != nil {
		t.Errorf("the TTL shown in the form was kept: %v", err)
	}

	// A change made elsewhere shows in the open panel and its history,
	// while the form keeps what the person typed.
	fill(t, page, "Value", "half-typed")
	apiPut(t, srv, "users/ada", `{"name":"Ada","role":"guest"}`, "")
	if err := expect.Locator(page.GetByTestId("detail-value")).ToContainText(`"role": "guest"`); err != nil {
		t.Errorf("the open panel does not follow a change made elsewhere: %v", err)
	}
	if err := expect.Locator(page.GetByTestId("history-item")).ToHaveCount(3); err != nil {
		t.Errorf("history after a change made elsewhere: %v", err)
	}
	if got := inputValue(t, page, "Value"); got != "half-typed" {
		t.Errorf("a change made elsewhere overwrote the form: %q", got)
	}
	apiDelete(t, srv, "users/ada")
	expectText(t, page, "detail-value", "no longer exists")
	apiPut(t, srv, "users/ada", `{"name":"Ada"}`, "")

	// The keyboard: Tab to a row, Enter opens it; text is not JSON.
	if err := row(page, "plain").Focus(); err != nil {
		t.Fatal(err)
	}
	if err := page.Keyboard().Press("Enter"); err != nil {
		t.Fatal(err)
	}
	expectText(t, page, "detail-key", "plain")
	if got := inputValue(t, page, "Value"); got != "just text" {
		t.Errorf("Enter on a row: form value %q", got)
	}
	expectText(t, page, "detail-format", "Text")
	// Edit opens the row with the cursor in the value.
	if err := row(page, "users/ada").GetByTestId("row-edit").Click(); err != nil {
		t.Fatal(err)
	}
	if err := expect.Locator(page.GetByLabel("Value", playwright.PageGetByLabelOptions{Exact: playwright.Bool(true)})).ToBeFocused(); err != nil {
		t.Errorf("Edit does not put the cursor in the value: %v", err)
	}
}

// TestDashboard_DeleteUndo: a row's Delete removes the key at once and
// offers Undo, which puts the value back.
func TestDashboard_DeleteUndo(t *testing.T) {
	srv := startServer(t)
	apiPut(t, srv, "doomed", "precious value", "")
	apiPut(t, srv, "kept", "v", "")
	page := openDashboard(t, srv)

	if err := row(page, "doomed").GetByTestId("row-delete").Click(); err != nil {
		t.Fatal(err)
	}
	expectNoRow(t, page, "doomed", pageTimeout)
	expectServer(t, srv, "doomed", "")
	expectText(t, page, "undo", "Deleted “doomed”")
	click(t, page, "Undo")
	expectRow(t, page, "doomed", "precious value", pageTimeout)
	expectServer(t, srv, "doomed", "precious value")
	if err := expect.Locator(page.GetByTestId("undo")).ToBeHidden(); err != nil {
		t.Errorf("Undo still offered after use: %v", err)
	}
	expectRow(t, page, "kept", "v", pageTimeout)

	// The form's Delete offers Undo too.
	deleteForm(t, page, "kept")
	expectNoRow(t, page, "kept", pageTimeout)
	expectText(t, page, "undo", regexp.MustCompile(`Deleted “kept” at revision \d+\.`))
	click(t, page, "Undo")
	expectRow(t, page, "kept", "v", pageTimeout)
	expectServer(t, srv, "kept", "v")
}

// TestDashboard_ValuesShown: an empty value reads "(empty)"; a value meant
// as JSON that does not parse gets a hint, and is stored all the same.
func TestDashboard_ValuesShown(t *testing.T) {
	srv := startServer(t)
	apiPut(t, srv, "blank", "", "")
	page := openDashboard(t, srv)
	expectRow(t, page, "blank", "(empty)", pageTimeout)

	fill(t, page, "Key", "broken")
	fill(t, page, "Value", `{"a": 1,}`)
	expectText(t, page, "value-hint", "does not parse")
	click(t, page, "Put")
	expectRow(t, page, "broken", `{"a": 1,}`, pageTimeout)
	expectServer(t, srv, "broken", `{"a": 1,}`)

	// A size never wraps.
	long := strings.Repeat("word ", 40)
	apiPut(t, srv, "long", long, "")
	size := row(page, "long").Locator(".size")
	if err := expect.Locator(size).ToHaveText("200 B"); err != nil {
		t.Fatal(err)
	}
	var lines float64
	if v, err := size.Evaluate(`(e) => e.getClientRects().length`, nil); err == nil {
		lines, _ = v.(float64)
		if n, ok := v.(int); ok {
			lines = float64(n)
		}
	}
	if lines != 1 {
		t.Errorf("the size takes %v lines, want 1", lines)
	}
}

// TestDashboard_FoldersAndHistory: keys with "/" read as folders, with
// breadcrumbs and counts from the API; folders, search and paging push
// browser history, so Back and Forward move between them.
func TestDashboard_FoldersAndHistory(t *testing.T) {
	srv := startServer(t)
	putTxn(t, srv, "users/", 60)
	apiPut(t, srv, "users/admins/root", "r", "")
	apiPut(t, srv, "logs/1", "l", "")
	apiPut(t, srv, "top", "t", "")
	page := openDashboard(t, srv)

	expectText(t, page, "prefix-count", "63 keys in all")
	folders := page.GetByTestId("folder")
	if err := expect.Locator(folders).ToHaveText([]string{"▸ logs/ 1 key", "▸ users/ 61 keys"}); err != nil {
		t.Fatalf("top folders: %v", err)
	}
	if err := folders.Filter(playwright.LocatorFilterOptions{HasText: "users/"}).Click(); err != nil {
		t.Fatal(err)
	}
	expectText(t, page, "prefix-count", "61 keys start with “users/”")
	if err := expect.Locator(page.GetByTestId("breadcrumbs").Locator("a")).ToHaveText([]string{"All keys", "users/"}); err != nil {
		t.Errorf("breadcrumbs: %v", err)
	}
	if err := expect.Locator(folders).ToHaveText([]string{"▸ admins/ 1 key"}); err != nil {
		t.Errorf("folders under users/: %v", err)
	}
	if got := inputValue(t, page, "Prefix"); got != "users/" {
		t.Errorf("search box shows %q inside users/", got)
	}
	// The pager is above and below the table.
	for _, where := range []string{"pager-top", "pager-bottom"} {
		if err := expect.Locator(page.GetByTestId(where).GetByTestId("page-next")).ToBeVisible(); err != nil {
			t.Errorf("%s has no Next page: %v", where, err)
		}
	}
	if err := page.GetByTestId("pager-bottom").GetByTestId("page-next").Click(); err != nil {
		t.Fatal(err)
	}
	expectRow(t, page, "users/050", "v50", pageTimeout)
	expectNoRow(t, page, "users/000", pageTimeout)

	// Back: the first page of users/; Back again: the top; Forward twice.
	back := func() {
		t.Helper()
		if _, err := page.GoBack(); err != nil {
			t.Fatal(err)
		}
	}
	back()
	expectRow(t, page, "users/000", "v0", pageTimeout)
	expectText(t, page, "prefix-count", "61 keys start with “users/”")
	back()
	expectRow(t, page, "top", "t", pageTimeout)
	expectText(t, page, "prefix-count", "63 keys in all")
	if got := inputValue(t, page, "Prefix"); got != "" {
		t.Errorf("after Back to the top the search box shows %q", got)
	}
	if _, err := page.GoForward(); err != nil {
		t.Fatal(err)
	}
	expectRow(t, page, "users/000", "v0", pageTimeout)
	if _, err := page.GoForward(); err != nil {
		t.Fatal(err)
	}
	expectRow(t, page, "users/050", "v50", pageTimeout)

	// Breadcrumb "All keys" goes to the top; a search for nothing says so.
	if err := page.GetByTestId("breadcrumbs").GetByText("All keys").Click(); err != nil {
		t.Fatal(err)
	}
	expectRow(t, page, "top", "t", pageTimeout)
	fill(t, page, "Prefix", "zzz")
	click(t, page, "Search")
	if err := expect.Locator(page.GetByTestId("kv-empty")).ToHaveText("No keys start with “zzz”."); err != nil {
		t.Errorf("empty search: %v", err)
	}
	expectText(t, page, "prefix-count", "0 keys start with “zzz”")

	// Counts follow live changes.
	fill(t, page, "Prefix", "logs/")
	click(t, page, "Search")
	expectText(t, page, "prefix-count", "1 key starts with “logs/”")
	apiPut(t, srv, "logs/2", "l", "")
	expectText(t, page, "prefix-count", "2 keys start with “logs/”")
}

// TestDashboard_DeletePrefix: "Delete all under this prefix" says how many
// keys go, asks first, and deletes them at one revision.
func TestDashboard_DeletePrefix(t *testing.T) {
	srv := startServer(t)
	putTxn(t, srv, "tmp/", 5)
	apiPut(t, srv, "tmpfile", "stays", "")
	page := openDashboard(t, srv)
	if err := expect.Locator(page.GetByTestId("delete-prefix")).ToBeHidden(); err != nil {
		t.Errorf("delete by prefix offered with no prefix: %v", err)
	}
	fill(t, page, "Prefix", "tmp/")
	click(t, page, "Search")
	expectRow(t, page, "tmp/004", "v4", pageTimeout)

	click(t, page, "Delete all under this prefix…")
	expectText(t, page, "delete-prefix-confirm", "Delete all 5 keys that start with “tmp/”?")
	click(t, page, "Cancel")
	if err := expect.Locator(page.GetByTestId("delete-prefix-confirm")).ToBeHidden(); err != nil {
		t.Fatal(err)
	}
	expectRow(t, page, "tmp/004", "v4", pageTimeout)

	click(t, page, "Delete all under this prefix…")
	click(t, page, "Delete 5 keys")
	expectText(t, page, "form-status", "Deleted 5 keys starting with “tmp/”")
	if err := expect.Locator(page.Locator(`tr[data-testid="kv-row"]`)).ToHaveCount(0); err != nil {
		t.Errorf("rows left: %v", err)
	}
	if err := expect.Locator(page.GetByTestId("kv-empty")).ToHaveText("No keys start with “tmp/”."); err != nil {
		t.Errorf("empty page: %v", err)
	}
	expectServer(t, srv, "tmpfile", "stays")
	var page1 struct{ Count int }
	apiGetJSON(t, srv, "/v1/kv?prefix=tmp/", &page1)
	if page1.Count != 0 {
		t.Errorf("server still holds %d keys under tmp/", page1.Count)
	}
}

// TestDashboard_DocsLinks: the header links to /docs, and /docs back.
func TestDashboard_DocsLinks(t *testing.T) {
	srv := startServer(t)
	page := openDashboard(t, srv)
	if err := page.GetByRole(*playwright.AriaRoleLink, playwright.PageGetByRoleOptions{Name: "API docs"}).Click(); err != nil {
		t.Fatal(err)
	}
	if err := expect.Page(page).ToHaveURL(regexp.MustCompile(`/docs/$`)); err != nil {
		t.Fatal(err)
	}
	if err := page.GetByRole(*playwright.AriaRoleLink, playwright.PageGetByRoleOptions{Name: "Back to the PyKV dashboard"}).Click(); err != nil {
		t.Fatal(err)
	}
	waitLive(t, page)
	if err := expect.Page(page).ToHaveTitle("PyKV dashboard"); err != nil {
		t.Error(err)
	}
}

// TestDashboard_ImportExport: Export downloads the store; Import uploads
// a file and says what it did.
func TestDashboard_ImportExport(t *testing.T) {
	srv := startServer(t)
	apiPut(t, srv, "existing", "old", "")
	page := openDashboard(t, srv)

	dl, err := page.ExpectDownload(func() error {
		return page.GetByRole(*playwright.AriaRoleLink, playwright.PageGetByRoleOptions{Name: "Export all keys"}).Click()
	})
	if err != nil {
		t.Fatal(err)
	}
	path, err := dl.Path()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), `"existing"`) || dl.SuggestedFilename() != "pykv-export.json" {
		t.Errorf("export %s holds %.200s", dl.SuggestedFilename(), data)
	}

	file := filepath.Join(t.TempDir(), "keys.json")
	if err := os.WriteFile(file, []byte(`{"existing":"new","fresh/1":"a","fresh/2":"b"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := page.GetByLabel("File to import").SetInputFiles(file); err != nil {
		t.Fatal(err)
	}
	click(t, page, "Import")
	expectText(t, page, "import-status", "Imported “keys.json”: 2 added, 1 changed, 0 unchanged.")
	expectRow(t, page, "fresh/2", "b", pageTimeout)
	expectRow(t, page, "existing", "new", pageTimeout)

	// The same file again changes nothing, and says so.
	if err := page.GetByLabel("File to import").SetInputFiles(file); err != nil {
		t.Fatal(err)
	}
	click(t, page, "Import")
	expectText(t, page, "import-status", "0 added, 0 changed, 3 unchanged.")

	// Replace: the store becomes the file.
	if err := os.WriteFile(file, []byte(`{"fresh/1":"a","only":"1"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := page.GetByLabel("File to import").SetInputFiles(file); err != nil {
		t.Fatal(err)
	}
	if err := page.GetByLabel("Replace: delete the keys the file does not hold").Check(); err != nil {
		t.Fatal(err)
	}
	click(t, page, "Import and replace")
	expectText(t, page, "import-status", "1 added, 0 changed, 1 unchanged, 2 deleted (not in the file).")
	expectRow(t, page, "only", "1", pageTimeout)
	expectNoRow(t, page, "existing", pageTimeout)
	expectNoRow(t, page, "fresh/2", pageTimeout)
	expectServer(t, srv, "existing", "")
	if err := page.GetByLabel("Replace: delete the keys the file does not hold").Uncheck(); err != nil {
		t.Fatal(err)
	}

	// A bad file is refused in plain words, nothing changed.
	if err := os.WriteFile(file, []byte(`not json`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := page.GetByLabel("File to import").SetInputFiles(file); err != nil {
		t.Fatal(err)
	}
	click(t, page, "Import")
	expectText(t, page, "import-error", "“keys.json” was not imported")
}

// TestDashboard_Phone: at 390 px the page never scrolls sideways, rows are
// cards, keys wrap at "/", and the expiry stays visible.
func TestDashboard_Phone(t *testing.T) {
	srv := startServer(t)
	putTxn(t, srv, "a-rather-long-folder-name/with-another-long-part/and-a-leaf-", 30)
	apiPut(t, srv, "sessions/expiring", strings.Repeat("x", 300), "?ttl=1h")
	page := openDashboard(t, srv)
	if err := page.SetViewportSize(390, 844); err != nil {
		t.Fatal(err)
	}
	if err := row(page, "sessions/expiring").ScrollIntoViewIfNeeded(); err != nil {
		t.Fatal(err)
	}
	var m struct {
		ScrollW, ClientW float64
		Display          string
		KeyLines         []string
		ExpiryShown      bool
		ExpiryText       string
		WidestRight      float64
	}
	eval(t, page, `async () => {
		const doc = document.documentElement;
		const tr = document.querySelector('tr[data-key^="a-rather"]');
		const code = tr.querySelector('[data-testid="cell-key"] code');
		// The text of each line the key is laid out on.
		const range = document.createRange();
		const lines = new Map();
		const walker = document.createTreeWalker(code, NodeFilter.SHOW_TEXT);
		for (let n = walker.nextNode(); n; n = walker.nextNode()) {
			for (let i = 0; i < n.length; i++) {
				range.setStart(n, i); range.setEnd(n, i + 1);
				const top = Math.round(range.getBoundingClientRect().top);
				lines.set(top, (lines.get(top) || '') + n.data[i]);
			}
		}
		const exp = document.querySelector('tr[data-key="sessions/expiring"] [data-testid="cell-expiry"]');
		const r = exp.getBoundingClientRect();
		let widest = 0;
		for (const e of document.querySelectorAll('body *')) widest = Math.max(widest, e.getBoundingClientRect().right);
		return {
			ScrollW: doc.scrollWidth, ClientW: doc.clientWidth,
			Display: getComputedStyle(tr).display,
			KeyLines: [...lines.entries()].sort((a, b) => a[0] - b[0]).map((e) => e[1]),
			ExpiryShown: r.width > 0 && r.height > 0 && r.right <= doc.clientWidth,
			ExpiryText: exp.textContent,
			WidestRight: widest,
		};
	}`, &m)
	if m.ScrollW > m.ClientW {
		t.Errorf("the page scrolls sideways at 390 px: %v wide in %v (widest element ends at %v)", m.ScrollW, m.ClientW, m.WidestRight)
	}
	if m.Display != "block" {
		t.Errorf("rows are laid out as %q at 390 px, want cards (block)", m.Display)
	}
	if len(m.KeyLines) < 2 {
		t.Errorf("the long key is on %d line(s): %q", len(m.KeyLines), m.KeyLines)
	}
	// Lines end between words: after a "/" (where the page offers a
	// break) or a hyphen, never inside a run of letters and digits.
	for _, l := range m.KeyLines[:max(0, len(m.KeyLines)-1)] {
		if !strings.HasSuffix(l, "/") && !strings.HasSuffix(l, "-") {
			t.Errorf("the key breaks mid-word: lines %q", m.KeyLines)
			break
		}
	}
	if !strings.HasSuffix(m.KeyLines[0], "/") {
		t.Errorf("the key's first line %q does not end at a folder", m.KeyLines[0])
	}
	if !m.ExpiryShown || !strings.HasPrefix(m.ExpiryText, "in ") {
		t.Errorf("expiry not visible at 390 px (shown %v, text %q)", m.ExpiryShown, m.ExpiryText)
	}

	// With a key opened (its long value and history in the panel) and the
	// delete-by-prefix question shown, still nothing scrolls sideways.
	if err := row(page, "sessions/expiring").GetByTestId("cell-rev").Click(); err != nil {
		t.Fatal(err)
	}
	if err := expect.Locator(page.GetByTestId("history-item")).ToHaveCount(1); err != nil {
		t.Fatal(err)
	}
	fill(t, page, "Prefix", "a-rather-long-folder-name/")
	click(t, page, "Search")
	expectText(t, page, "prefix-count", "30 keys start with")
	click(t, page, "Delete all under this prefix…")
	expectText(t, page, "delete-prefix-confirm", "Delete all 30 keys")
	var w struct{ ScrollW, ClientW float64 }
	eval(t, page, `async () => ({ ScrollW: document.documentElement.scrollWidth, ClientW: document.documentElement.clientWidth })`, &w)
	if w.ScrollW > w.ClientW {
		t.Errorf("with a key opened, the page scrolls sideways at 390 px: %v wide in %v", w.ScrollW, w.ClientW)
	}
}

// TestDashboardOffline_OwnHistoryAndPlainSync: offline, an opened key
// shows the copy's own history and the header's revision agrees with the
// rows; back online, a sync whose every change conflicted says so beside
// the Conflicts panel, not "Sent 0 changes".
func TestDashboardOffline_OwnHistoryAndPlainSync(t *testing.T) {
	srv := startServer(t)
	apiPut(t, srv, "k", "server", "")
	apiPut(t, srv, "other", "o", "")
	page := openOfflineDashboard(t, srv)

	workOffline(t, page, true)
	expectBadge(t, page, "offline", 0, pageTimeout)
	putForm(t, page, "k", "local one")
	putForm(t, page, "k", "local two")
	expectRow(t, page, "k", "local two", pageTimeout)
	expectBadge(t, page, "offline", 1, pageTimeout)

	rowRev, err := row(page, "k").GetAttribute("data-rev")
	if err != nil {
		t.Fatal(err)
	}
	if err := expect.Locator(page.GetByTestId("rev")).ToHaveText(rowRev); err != nil {
		t.Errorf("offline, the header's revision differs from the row just written (%s): %v", rowRev, err)
	}

	if err := row(page, "k").GetByTestId("cell-rev").Click(); err != nil {
		t.Fatal(err)
	}
	expectText(t, page, "history-note", "Offline: the changes made in this browser")
	if err := expect.Locator(page.GetByTestId("history-item")).ToHaveCount(2); err != nil {
		t.Fatalf("the copy's own history: %v", err)
	}
	if err := expect.Locator(page.GetByTestId("history-value")).ToHaveText([]string{"local two", "local one"}); err != nil {
		t.Errorf("history values: %v", err)
	}
	expectText(t, page, "history-item", "local revision")

	// The server changes k meanwhile: the only change conflicts.
	apiPut(t, srv, "k", "server changed", "")
	workOffline(t, page, false)
	if err := expect.Locator(page.GetByTestId("conflict")).ToHaveCount(1); err != nil {
		t.Fatalf("conflict shown: %v", err)
	}
	expectText(t, page, "sync-result", "None of your offline changes could be sent")
	if text, _ := page.GetByTestId("form-status").TextContent(); strings.Contains(text, "Sent 0") {
		t.Errorf("form says %q", text)
	}
	// Online again, the history is the server's.
	if err := row(page, "other").GetByTestId("cell-rev").Click(); err != nil {
		t.Fatal(err)
	}
	expectText(t, page, "history-note", "1 change")
}

// TestDashboard_NoCopyOfAHugeStore: a store too large for the browser's
// offline copy is not downloaded on every page load (GET /v1/export of
// the whole store); the page says why there is no offline copy.
func TestDashboard_NoCopyOfAHugeStore(t *testing.T) {
	srv := startServer(t)
	var body strings.Builder
	body.WriteString("{")
	for i := range 50_001 {
		if i > 0 {
			body.WriteString(",")
		}
		body.WriteString(`"k/` + strings.Repeat("0", 6-len(itoa(i))) + itoa(i) + `":"v"`)
	}
	body.WriteString("}")
	apiDo(t, srv, http.MethodPost, "/v1/import", body.String(), http.StatusOK)

	page := newPage(t, srv)
	exports := make(chan string, 10)
	page.OnRequest(func(r playwright.Request) {
		if strings.Contains(r.URL(), "/v1/export") {
			exports <- r.URL()
		}
	})
	if _, err := page.Goto("/"); err != nil {
		t.Fatal(err)
	}
	waitLive(t, page)
	expectText(t, page, "offline-notice", "more than this browser's offline copy can keep")
	expectText(t, page, "prefix-count", "50,001 keys in all")
	select {
	case u := <-exports:
		t.Errorf("the page downloaded the whole store (%s)", u)
	default:
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

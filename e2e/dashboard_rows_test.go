package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"github.com/playwright-community/playwright-go"
)

// putTxn writes keys prefix+"000"… prefix+"NNN" (n of them, value "v<i>")
// in one transaction: one request instead of n, so a test of a full page
// starts in milliseconds.
func putTxn(t *testing.T, srv *server, prefix string, n int) {
	t.Helper()
	type op struct {
		Op    string `json:"op"`
		Key   string `json:"key"`
		Value string `json:"value"`
	}
	var body struct {
		Ops []op `json:"ops"`
	}
	for i := range n {
		body.Ops = append(body.Ops, op{"put", fmt.Sprintf("%s%03d", prefix, i), fmt.Sprintf("v%d", i)})
	}
	data, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	apiDo(t, srv, http.MethodPost, "/v1/txn", string(data), http.StatusOK)
}

// expectNoRowNotSent checks every row of the table, not just the first:
// while online, no row may be marked as waiting to be sent, neither by its
// data-pending attribute nor by the "not sent" tag a person sees. It first
// waits until the table shows wantRows rows.
func expectNoRowNotSent(t *testing.T, page playwright.Page, wantRows int) {
	t.Helper()
	rows := page.Locator(`tr[data-testid="kv-row"]`)
	if err := expect.Locator(rows).ToHaveCount(wantRows); err != nil {
		t.Fatalf("table rows: %v", err)
	}
	var marks struct {
		Rows, Pending, Tagged int
		First                 string
	}
	eval(t, page, `async () => {
		const rows = [...document.querySelectorAll('tr[data-testid="kv-row"]')];
		const bad = rows.filter((r) => r.dataset.pending === 'true' || r.textContent.includes('not sent'));
		return {
			Rows: rows.length,
			Pending: rows.filter((r) => r.dataset.pending === 'true').length,
			Tagged: rows.filter((r) => r.textContent.includes('not sent')).length,
			First: bad.length ? bad[0].dataset.key : '',
		};
	}`, &marks)
	if marks.Pending != 0 || marks.Tagged != 0 {
		t.Errorf("online, %d of %d rows are marked pending and %d show \"not sent\" (first: %q); want none",
			marks.Pending, marks.Rows, marks.Tagged, marks.First)
	}
}

// TestDashboard_NoRowNotSentOnline: fully online, no row is marked "not
// sent" after a search, Next page, Previous page, or a reload of the page
// from the API (the page's row builder was once called through Array.map,
// which passed each row's index as the "pending" flag).
func TestDashboard_NoRowNotSentOnline(t *testing.T) {
	srv := startServer(t)
	putTxn(t, srv, "item/", 120)
	putTxn(t, srv, "other/", 10)
	page := openDashboard(t, srv)
	expectNoRowNotSent(t, page, 50) // the server-rendered first page

	fill(t, page, "Prefix", "item/")
	click(t, page, "Search")
	expectRow(t, page, "item/000", "v0", pageTimeout)
	expectNoRowNotSent(t, page, 50)

	if err := page.GetByTestId("page-next").First().Click(); err != nil {
		t.Fatal(err)
	}
	expectRow(t, page, "item/050", "v50", pageTimeout)
	expectNoRowNotSent(t, page, 50)

	if err := page.GetByTestId("page-prev").First().Click(); err != nil {
		t.Fatal(err)
	}
	expectRow(t, page, "item/000", "v0", pageTimeout)
	expectNoRowNotSent(t, page, 50)

	fill(t, page, "Prefix", "other/")
	click(t, page, "Search")
	expectRow(t, page, "other/009", "v9", pageTimeout)
	expectNoRowNotSent(t, page, 10)
}

package e2e

import (
	"bytes"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"
)

// load1M imports 1M keys into srv in 100 folders of 10k ("t07/u004211"),
// as one flat JSON file through POST /v1/import.
func load1M(b *testing.B, srv *server) {
	b.Helper()
	var body bytes.Buffer
	body.WriteByte('{')
	for f := range 100 {
		for u := range 10_000 {
			if f+u > 0 {
				body.WriteByte(',')
			}
			fmt.Fprintf(&body, `"t%02d/u%06d":"value %d"`, f, u, u)
		}
	}
	body.WriteByte('}')
	resp, err := http.Post(srv.URL+"/v1/import", "application/json", &body)
	if err != nil {
		b.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b.Fatalf("import 1M keys: %s", resp.Status)
	}
}

// median returns the middle of xs (the mean of the middle two).
func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// BenchmarkDashboard_1M measures the dashboard on a store of 1M keys in
// headless Chromium, in the page's own clock:
//   - load-ms: from navigation until the first page of rows, the count of
//     keys, all 100 folders with their counts, and a live stream are shown;
//   - history-ms: from a click on a row until its history is shown.
//
// Medians of the runs are reported:
//
//	go test -run '^$' -bench BenchmarkDashboard_1M -benchtime 10x ./e2e
func BenchmarkDashboard_1M(b *testing.B) {
	srv := startServer(b)
	start := time.Now()
	load1M(b, srv)
	b.Logf("imported 1M keys in %v", time.Since(start).Round(time.Millisecond))
	page := newPage(b, srv)
	var loads, opens []float64
	for b.Loop() {
		if _, err := page.Goto("/"); err != nil {
			b.Fatal(err)
		}
		if err := expect.Locator(page.GetByTestId("folder")).ToHaveCount(100); err != nil {
			b.Fatalf("folders: %v", err)
		}
		if err := expect.Locator(page.GetByTestId("conn-state")).ToHaveAttribute("data-state", "live"); err != nil {
			b.Fatalf("live: %v", err)
		}
		if err := expect.Locator(page.GetByTestId("prefix-count")).ToHaveText("1,000,000 keys in all"); err != nil {
			b.Fatalf("count: %v", err)
		}
		var ms float64
		eval(b, page, `async () => performance.now()`, &ms)
		loads = append(loads, ms)

		// The history of a row, timed in the page from the click until the
		// panel shows the key's change.
		eval(b, page, `async () => {
			const list = document.querySelector('[data-testid="history"]');
			const row = document.querySelector('tr[data-key="t00/u000007"] [data-testid="cell-rev"]');
			const shown = new Promise((resolve) => {
				const mo = new MutationObserver(() => {
					if (document.querySelector('[data-testid="history-note"]').textContent !== '' &&
						document.querySelector('[data-testid="detail-key"]').textContent === 't00/u000007') {
						mo.disconnect();
						resolve();
					}
				});
				mo.observe(document.getElementById('detail'), { subtree: true, childList: true, characterData: true });
			});
			document.querySelector('[data-testid="history-note"]').textContent = '';
			const t0 = performance.now();
			row.click();
			await shown;
			return performance.now() - t0;
		}`, &ms)
		opens = append(opens, ms)
	}
	b.ReportMetric(median(loads), "load-ms")
	b.ReportMetric(median(opens), "history-ms")
	b.ReportMetric(0, "ns/op")
}

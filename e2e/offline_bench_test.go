package e2e

import (
	"fmt"
	"strings"
	"testing"
)

// BenchmarkOffline_Put10k puts 10k keys into the browser copy, persisted
// in localStorage, in headless Chromium: awaited one by one (each put
// resolves only once stored), and issued together (queued puts commit as
// groups). ms/10k is the time measured in the page.
func BenchmarkOffline_Put10k(b *testing.B) {
	site := offlineSite(b, nil)
	page := newPage(b, site)
	openOffline(b, page, "")
	for _, bc := range []struct{ name, js string }{
		{"Awaited", `for (let i = 0; i < 10000; i++) await db.put("key/" + String(i).padStart(5, "0"), "value " + i);`},
		{"Queued", `await Promise.all(Array.from({length: 10000}, (_, i) => db.put("key/" + String(i).padStart(5, "0"), "value " + i)));`},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var total float64
			n := 0
			for b.Loop() {
				name := fmt.Sprintf("bench-%s-%d", strings.ToLower(bc.name), n)
				var ms float64
				eval(b, page, `async () => {
					localStorage.clear();
					const db = await PyKVOffline.open({name: "`+name+`"});
					const t0 = performance.now();
					`+bc.js+`
					const ms = performance.now() - t0;
					if (db.list("key/", "", 0).entries.length !== 10000) throw new Error("lost keys");
					db.close();
					return ms;
				}`, &ms)
				total += ms
				n++
			}
			b.ReportMetric(total/float64(n), "ms/10k")
		})
	}
}

// BenchmarkOffline_Reopen10k reloads a page whose copy holds 10k keys and
// measures, in the page, the time from navigation until the copy is open
// and answers a read (loading wasm_exec.js and the .wasm included).
func BenchmarkOffline_Reopen10k(b *testing.B) {
	site := offlineSite(b, nil)
	page := newPage(b, site)
	openOffline(b, page, "")
	eval(b, page, `async () => {
		await Promise.all(Array.from({length: 10000}, (_, i) => db.put("key/" + String(i).padStart(5, "0"), "value " + i)));
	}`, nil)
	var total, openMs float64
	n := 0
	for b.Loop() {
		if _, err := page.Reload(); err != nil {
			b.Fatal(err)
		}
		var r struct{ Usable, Open float64 }
		eval(b, page, `async () => {
			const t0 = performance.now();
			const db = await PyKVOffline.open({name: "default"});
			if (db.get("key/09999").value !== "value 9999" || db.list("key/", "", 0).entries.length !== 10000) throw new Error("lost keys");
			const usable = performance.now();
			return {Usable: usable, Open: usable - t0};
		}`, &r)
		total += r.Usable
		openMs += r.Open
		n++
	}
	b.ReportMetric(total/float64(n), "ms-from-navigation")
	b.ReportMetric(openMs/float64(n), "ms-open")
}

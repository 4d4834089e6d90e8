package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/playwright-community/playwright-go"
)

// offlinePage is a blank page that loads the offline library; the tests
// drive it with page.Evaluate.
const offlinePage = `<!doctype html>
<meta charset="utf-8">
<title>PyKV offline test</title>
<script src="/static/offline.js"></script>
<p>offline test page</p>
`

// offlineSite serves static/ from the working tree under /static/ (the
// assets the server serves there, the wasm build included) and the test
// page at /offline.html. With api set, /v1/ and /healthz are proxied to it,
// so the page and the API share one origin as they do when the server
// serves both. It fails the test if the wasm build is missing.
func offlineSite(tb testing.TB, api *server) *server {
	tb.Helper()
	dir := filepath.Join(repoRoot, "static")
	for _, f := range []string{"offline.js", "wasm/pykv.wasm", "wasm/wasm_exec.js"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			tb.Fatalf("static/%s missing: run make wasm (or make build) first", f)
		}
	}
	mux := http.NewServeMux()
	files := http.StripPrefix("/static/", http.FileServer(http.Dir(dir)))
	mux.Handle("/static/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	}))
	mux.HandleFunc("/offline.html", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write([]byte(offlinePage))
	})
	if api != nil {
		target, _ := url.Parse(api.URL)
		proxy := httputil.NewSingleHostReverseProxy(target)
		proxy.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) {
			http.Error(w, "server unreachable: "+err.Error(), http.StatusBadGateway)
		}
		mux.Handle("/v1/", proxy)
	}
	ts := httptest.NewServer(mux)
	tb.Cleanup(ts.Close)
	return &server{URL: ts.URL, tb: tb}
}

// openOffline loads the test page and opens the copy as window.db.
func openOffline(tb testing.TB, page playwright.Page, path string) {
	tb.Helper()
	if path == "" {
		path = "/offline.html"
	}
	if _, err := page.Goto(path); err != nil {
		tb.Fatalf("goto %s: %v", path, err)
	}
	if _, err := page.Evaluate(`async () => { window.db = await PyKVOffline.open({name: "default"}); }`); err != nil {
		tb.Fatalf("PyKVOffline.open: %v", err)
	}
}

// eval runs an async JavaScript function and decodes its JSON-able result
// into out (if not nil).
func eval(tb testing.TB, page playwright.Page, js string, out any) {
	tb.Helper()
	v, err := page.Evaluate(`async () => JSON.stringify(await (` + js + `)())`)
	if err != nil {
		tb.Fatalf("evaluate %s: %v", js, err)
	}
	if out == nil {
		return
	}
	s, _ := v.(string)
	if err := json.Unmarshal([]byte(s), out); err != nil {
		tb.Fatalf("evaluate %s: result %q: %v", js, s, err)
	}
}

// put10k writes n keys with awaited puts, as an application would, and
// returns how long it took in the page.
const putMany = `async () => {
	const t0 = performance.now();
	for (let i = 0; i < N; i++) await db.put("key/" + String(i).padStart(5, "0"), "value " + i);
	return performance.now() - t0;
}`

func TestOffline_PersistsAcrossReload(t *testing.T) {
	site := offlineSite(t, nil)
	page := newPage(t, site)
	openOffline(t, page, "")
	var ms float64
	eval(t, page, strings.Replace(putMany, "N", "10000", 1), &ms)
	t.Logf("10k awaited puts: %.0f ms", ms)
	// Keys and values past ASCII take another path into and out of storage.
	eval(t, page, `async () => { await db.put("ttl", "soon", {ttl: 3600}); await db.delete("key/00007"); await db.put("ünï €", "välue 😀"); }`, nil)

	if _, err := page.Reload(); err != nil {
		t.Fatal(err)
	}
	openOffline(t, page, "")
	var got struct {
		N       int
		V       string
		Gone    bool
		TTL     int64
		Uni     string
		Aside   int
		Pending int
	}
	eval(t, page, `async () => ({
		N: db.list("key/", "", 0).entries.length,
		V: db.get("key/09999").value,
		Gone: db.get("key/00007") === null,
		TTL: db.get("ttl").expires_at,
		Uni: db.get("ünï €").value,
		Aside: (db.status().recovery.set_aside || []).length,
		Pending: db.pending().length,
	})`, &got)
	if got.N != 9999 || got.V != "value 9999" || !got.Gone || got.TTL == 0 || got.Uni != "välue 😀" || got.Aside != 0 || got.Pending != 10001 {
		t.Fatalf("after reload: %+v; want 9999 keys, key/09999 = value 9999, key/00007 gone, a TTL, ünï € = välue 😀, nothing set aside, 10001 pending", got)
	}
}

// TestOffline_FoldsWhenIdle: a run of writes leaves a log that is due for
// folding as it is (a fold rewrites the whole snapshot); once the writes
// stop, the page folds it. A page closed before that folds it when the copy
// is opened again.
func TestOffline_FoldsWhenIdle(t *testing.T) {
	site := offlineSite(t, nil)
	page := newPage(t, site)
	openOffline(t, page, "")
	var got struct{ Before, After, Reopened map[string]any }
	eval(t, page, `async () => {
		const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
		const foldedWithin = async (db, ms) => {
			const deadline = performance.now() + ms;
			while (db.status().log_items > 0 && performance.now() < deadline) await sleep(50);
			return db.status();
		};
		let db = await PyKVOffline.open({name: "idle", foldMinUnits: 2000});
		await sleep(500); // past the look the copy takes once it is open
		for (let i = 0; db.status().log_units <= 2000; i++) await db.put("k" + i, "v".repeat(50));
		const before = db.status();
		const after = await foldedWithin(db, 5000);

		for (let i = 0; db.status().log_units <= 2000; i++) await db.put("k" + i, "w".repeat(50));
		db.close(); // before the writes' fold
		db = await PyKVOffline.open({name: "idle", foldMinUnits: 2000});
		const reopened = await foldedWithin(db, 5000);
		db.close();
		return {Before: before, After: after, Reopened: reopened};
	}`, &got)
	if got.Before["log_items"].(float64) == 0 || got.Before["snapshot_units"].(float64) != 0 {
		t.Fatalf("the writes folded the log themselves: %v", got.Before)
	}
	if got.After["log_items"].(float64) != 0 || got.After["snapshot_units"].(float64) == 0 || got.After["keys"] != got.Before["keys"] {
		t.Fatalf("5 s after the writes stopped: %v; want the log folded into the snapshot (before: %v)", got.After, got.Before)
	}
	if got.Reopened["log_items"].(float64) != 0 || got.Reopened["keys"] != got.Before["keys"] {
		t.Fatalf("5 s after reopening a copy closed with its log due: %v; want it folded", got.Reopened)
	}
}

// fillStorage fills localStorage with junk items until it refuses more,
// and returns how many UTF-16 units it took.
const fillStorage = `async () => {
	let total = 0, n = 0;
	for (let size = 1 << 20; size >= 16; ) {
		try { localStorage.setItem("junk/" + n++, "x".repeat(size)); total += size; }
		catch (e) { if (e.name !== "QuotaExceededError") throw e; size >>= 1; }
	}
	return total;
}`

func TestOffline_StorageFull(t *testing.T) {
	site := offlineSite(t, nil)
	page := newPage(t, site)
	openOffline(t, page, "")
	eval(t, page, `async () => { await db.put("before", "saved"); }`, nil)
	var filled int
	eval(t, page, fillStorage, &filled)
	t.Logf("localStorage took %d more units of junk", filled)

	var refused struct {
		Code, Message, What string
		Usage               struct{ Units, OtherUnits int } `json:"usage"`
		Get                 any
		Before              string
	}
	eval(t, page, `async () => {
		try { await db.put("big", "y".repeat(100000)); return {Code: "none"}; }
		catch (e) { return {Code: e.code, Message: e.message, What: e.what, usage: {Units: e.usage.units, OtherUnits: e.usage.other_units},
			Get: db.get("big"), Before: db.get("before").value}; }
	}`, &refused)
	if refused.Code != "quota" || !strings.Contains(refused.Message, `not saved: put "big"`) ||
		!strings.Contains(refused.Message, "local storage is full") || refused.Usage.OtherUnits < filled || refused.Get != nil || refused.Before != "saved" {
		t.Fatalf("put into a full localStorage: %+v", refused)
	}
	t.Logf("error shown: %s", refused.Message)

	// Free the room: the same write goes through, and survives a reload.
	eval(t, page, `async () => {
		for (const k of Object.keys(localStorage)) if (k.startsWith("junk/")) localStorage.removeItem(k);
		await db.put("big", "y".repeat(100000));
	}`, nil)
	page.Reload()
	openOffline(t, page, "")
	var n int
	eval(t, page, `async () => db.get("big").value.length`, &n)
	if n != 100000 {
		t.Fatalf("after freeing room and reloading, big has %d bytes", n)
	}
}

func TestOffline_CorruptStorage(t *testing.T) {
	site := offlineSite(t, nil)
	page := newPage(t, site)
	openOffline(t, page, "")
	eval(t, page, `async () => { for (let i = 0; i < 5; i++) await db.put("k" + i, "v" + i); }`, nil)
	// Damage the third log item, add a foreign item under the prefix, and
	// leave an unrelated item outside it.
	eval(t, page, `async () => {
		const logs = Object.keys(localStorage).filter(k => k.startsWith("pykv/default/log/")).sort();
		localStorage.setItem(logs[2], localStorage.getItem(logs[2]).replace("v2", "V2"));
		localStorage.setItem("pykv/default/whatever", "{}");
		localStorage.setItem("other-app", "keep me");
	}`, nil)
	page.Reload()
	openOffline(t, page, "")
	var got struct {
		Keys    []string
		Aside   []struct{ Key, MovedTo, Reason string } `json:"aside"`
		Corrupt int
		Other   string
	}
	eval(t, page, `async () => ({
		Keys: db.list("", "", 0).entries.map(e => e.key),
		aside: (db.status().recovery.set_aside || []).map(s => ({Key: s.key, MovedTo: s.moved_to, Reason: s.reason})),
		Corrupt: Object.keys(localStorage).filter(k => k.startsWith("pykv/default/corrupt/")).length,
		Other: localStorage.getItem("other-app"),
	})`, &got)
	if strings.Join(got.Keys, ",") != "k0,k1" || len(got.Aside) != 4 || got.Corrupt != 4 || got.Other != "keep me" {
		t.Fatalf("after recovery from damage: %+v; want k0,k1 kept, 3 log items and the foreign item set aside", got)
	}
	for _, a := range got.Aside {
		t.Logf("set aside %s → %s: %s", a.Key, a.MovedTo, a.Reason)
	}
	// Garbage in the snapshot item, too: still opens.
	eval(t, page, `async () => { await db.put("x", "1"); localStorage.setItem("pykv/default/snapshot", "\u0000not json"); }`, nil)
	page.Reload()
	openOffline(t, page, "")
	var works string
	eval(t, page, `async () => { await db.put("after", "ok"); return db.get("after").value; }`, &works)
	if works != "ok" {
		t.Fatalf("copy not writable after a garbled snapshot: %q", works)
	}
}

func TestOffline_TwoTabs(t *testing.T) {
	site := offlineSite(t, nil)
	a := newPage(t, site)
	openOffline(t, a, "")
	b, err := a.Context().NewPage()
	if err != nil {
		t.Fatal(err)
	}
	openOffline(t, b, "")
	eval(t, b, `async () => { window.seen = []; db.subscribe(x => window.seen.push(x)); }`, nil)
	eval(t, a, `async () => { await db.put("from-a", "1"); }`, nil)
	if _, err := b.WaitForFunction(`() => db.get("from-a") !== null`, nil, playwright.PageWaitForFunctionOptions{Timeout: playwright.Float(5000)}); err != nil {
		t.Fatalf("tab b never saw tab a's write: %v", err)
	}
	eval(t, b, `async () => { await db.put("from-b", "2"); }`, nil)
	var got []string
	eval(t, a, `async () => { await db.put("from-a-again", "3"); return db.list("", "", 0).entries.map(e => e.key + "=" + e.value); }`, &got)
	if strings.Join(got, ",") != "from-a=1,from-a-again=3,from-b=2" {
		t.Fatalf("tab a sees %v", got)
	}
	if _, err := b.WaitForFunction(`() => seen.some(x => (x.events || []).some(e => e.key === "from-a-again")) && db.get("from-a-again") !== null`, nil,
		playwright.PageWaitForFunctionOptions{Timeout: playwright.Float(5000)}); err != nil {
		t.Fatalf("tab b's subscriber never saw tab a's second write: %v", err)
	}
}

// TestOffline_WriteAnswers: puts and deletes, awaited and queued, answer
// what the copy then holds; failed ones reject with their code and the
// others still happen; a subscriber that reads the copy from its callback
// sees every change (the write path runs inside Go, where page code must
// not call back in: offline.js delivers changes after it returns).
func TestOffline_WriteAnswers(t *testing.T) {
	site := offlineSite(t, nil)
	page := newPage(t, site)
	openOffline(t, page, "")
	var got struct {
		Put, Get                  map[string]any
		Odd, OddGet               string
		Queued                    []any
		Codes                     []string
		Seen, Reads, Listed       int
		TTL                       bool
		DeleteRev, RevAfterDelete float64
	}
	eval(t, page, `async () => {
		const r = {Codes: [], Seen: 0, Reads: 0};
		db.subscribe((b) => { r.Seen += (b.events || []).length; r.Reads += db.list("", "", 3).entries.length; db.pending(); });
		r.Put = await db.put("ünï <&> \"q\"", "välue\n", {ttl: 3600});
		r.Get = db.get("ünï <&> \"q\"");
		r.TTL = r.Put.expires_at > Date.now();
		const odd = await db.put("lone \ud800", "x\udc00");  // lone surrogates are stored as U+FFFD
		r.Odd = odd.key + "=" + odd.value;
		r.OddGet = db.get("lone \ufffd").value;
		r.Queued = await Promise.allSettled([
			db.put("a", "1"), db.put("a", "2"), db.delete("nope"), db.put("", "no key"),
			db.put("a", "3", {ifRev: 1}), db.put("b", "4", {ifRev: -1}), db.delete("b"),
		]).then((rs) => rs.map((x) => x.status === "fulfilled" ? x.value : x.reason.code));
		for (let i = 0; i < 300; i++) await db.put("k" + (i % 7), "v" + i);
		r.DeleteRev = await db.delete("k0");
		r.RevAfterDelete = (await db.put("k0", "back")).create_rev;
		try { await db.put("k1", "stale", {ifRev: 2}); } catch (e) { r.Codes.push(e.code); }
		try { await db.delete("never"); } catch (e) { r.Codes.push(e.code); }
		await new Promise((res) => setTimeout(res, 50));
		r.Listed = db.list("", "", 0).entries.length;
		return r;
	}`, &got)
	if got.Put["key"] != `ünï <&> "q"` || got.Put["value"] != "välue\n" || !got.TTL || !reflect.DeepEqual(got.Put, got.Get) {
		t.Errorf("put answered %v, get then gives %v", got.Put, got.Get)
	}
	if got.Odd != "lone \ufffd=x\ufffd" || got.OddGet != "x\ufffd" {
		t.Errorf("put with lone surrogates answered %q, stored %q", got.Odd, got.OddGet)
	}
	codes := make([]string, len(got.Queued))
	for i, q := range got.Queued {
		switch v := q.(type) {
		case string:
			codes[i] = v
		case map[string]any:
			codes[i] = fmt.Sprint("ok:", v["value"], "@", v["mod_rev"])
		default:
			codes[i] = fmt.Sprint("ok:", v)
		}
	}
	if len(codes) != 7 || !strings.HasPrefix(codes[0], "ok:1@") || !strings.HasPrefix(codes[1], "ok:2@") || codes[2] != "not_found" ||
		strings.HasPrefix(codes[3], "ok:") || codes[4] != "conflict" || !strings.HasPrefix(codes[5], "ok:4@") || !strings.HasPrefix(codes[6], "ok:") {
		t.Errorf("queued writes answered %v", codes)
	}
	if got.RevAfterDelete != got.DeleteRev+1 || strings.Join(got.Codes, ",") != "conflict,not_found" {
		t.Errorf("delete answered revision %v, the next put created at %v; failed writes: %v", got.DeleteRev, got.RevAfterDelete, got.Codes)
	}
	// Every change reached the subscriber: 2 puts, 7 queued (4 of them
	// changes), 300 puts, a delete and a put.
	if got.Seen != 2+4+300+2 || got.Reads == 0 || got.Listed != 10 {
		t.Errorf("subscriber saw %d changes (%d entries read in its callback), %d keys listed", got.Seen, got.Reads, got.Listed)
	}
}

// TestOffline_SyncWithServer: the server goes away under an open page,
// edits are made and survive a reload, the server comes back, sync sends
// them, and conflicts are resolved each way.
func TestOffline_SyncWithServer(t *testing.T) {
	srv := startServer(t)
	site := offlineSite(t, srv)
	page := newPage(t, site)
	openOffline(t, page, "")
	for k, v := range map[string]string{"a": "server a", "b": "server b", "c": "server c", "d": "server d"} {
		offlineAPIPut(t, srv, k, v)
	}
	eval(t, page, `async () => { await db.sync(); }`, nil) // load the server's state
	var n int
	eval(t, page, `async () => db.list("", "", 0).entries.length`, &n)
	if n != 4 {
		t.Fatalf("after the first sync the copy holds %d keys, want 4", n)
	}

	srv.Stop()
	eval(t, page, `async () => {
		await db.put("a", "mine a"); await db.put("new", "made offline"); await db.delete("b");
		await db.put("c", "mine c"); await db.put("d", "mine d");
	}`, nil)
	page.Reload()
	openOffline(t, page, "")
	var pending []struct {
		Key     string
		Op      string
		BaseRev int64 `json:"base_rev"`
	}
	eval(t, page, `async () => db.pending().map(p => ({Key: p.key, Op: p.op, base_rev: p.base_rev}))`, &pending)
	if len(pending) != 5 {
		t.Fatalf("pending after reload: %+v", pending)
	}

	srv.Start()
	offlineAPIPut(t, srv, "c", "server changed c") // conflicts with the offline edits
	offlineAPIPut(t, srv, "d", "server changed d")
	var res struct {
		Sent      int
		Conflicts []struct {
			Key    string
			Server struct{ Value string }
		}
	}
	eval(t, page, `async () => db.sync()`, &res)
	if res.Sent != 3 || len(res.Conflicts) != 2 || res.Conflicts[0].Key != "c" || res.Conflicts[0].Server.Value != "server changed c" {
		t.Fatalf("sync = %+v; want 3 sent, conflicts on c and d", res)
	}
	for k, want := range map[string]string{"a": "mine a", "new": "made offline", "b": "", "c": "server changed c"} {
		if got := offlineAPIGet(t, srv, k); got != want {
			t.Errorf("server %s = %q, want %q", k, got, want)
		}
	}
	eval(t, page, `async () => { await db.resolve("c", "mine"); await db.resolve("d", "server"); }`, nil)
	if got := offlineAPIGet(t, srv, "c"); got != "mine c" {
		t.Errorf(`server c after "keep mine" = %q`, got)
	}
	if got := offlineAPIGet(t, srv, "d"); got != "server changed d" {
		t.Errorf(`server d after "keep the server's" = %q`, got)
	}
	var after struct {
		Pending int
		D       string
	}
	eval(t, page, `async () => ({Pending: db.pending().length, D: db.get("d").value})`, &after)
	if after.Pending != 0 || after.D != "server changed d" {
		t.Fatalf("copy after resolving: %+v", after)
	}
}

func offlineAPIPut(tb testing.TB, srv *server, key, value string) {
	tb.Helper()
	req, _ := http.NewRequest("PUT", srv.URL+"/v1/kv/"+url.PathEscape(key), strings.NewReader(value))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		tb.Fatalf("PUT %s: %s", key, resp.Status)
	}
}

// offlineAPIGet returns key's value on the server, or "" if it does not exist.
func offlineAPIGet(tb testing.TB, srv *server, key string) string {
	tb.Helper()
	req, _ := http.NewRequest("GET", srv.URL+"/v1/kv/"+url.PathEscape(key), nil)
	req.Header.Set("Accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return ""
	}
	var e struct{ Value string }
	if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
		tb.Fatalf("GET %s: %v", key, err)
	}
	return e.Value
}

package e2e

import (
	"fmt"
	"io"
	"net"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/playwright-community/playwright-go"
)

// syncWithin bounds how long the page may take to notice that the server
// is back and send its waiting changes after "Sync now".
const syncWithin = 15 * time.Second

// copyRefreshWithin bounds how long the offline copy may take to catch up
// with a change made online: the page refreshes it at most once every
// 10 s (REFRESH_MIN_MS in static/dashboard.js), so a change that comes
// just after a refresh waits that long, and the refresh itself takes time.
const copyRefreshWithin = 10*time.Second + pageTimeout

// openOfflineDashboard opens the dashboard like openDashboard and waits
// until it can work without the server: the service worker is active (it
// has stored the page and its assets), and the offline copy is open and
// holds the server's current revision. An uncaught exception in the page
// fails the test.
func openOfflineDashboard(t *testing.T, srv *server) playwright.Page {
	t.Helper()
	page := openDashboard(t, srv)
	page.OnPageError(func(err error) { t.Errorf("uncaught exception in the page: %v", err) })
	main := page.Locator("#dashboard")
	if err := expect.Locator(main).ToHaveAttribute("data-service-worker", "ready"); err != nil {
		t.Fatalf("service worker never became ready: %v", err)
	}
	if err := expect.Locator(main).ToHaveAttribute("data-copy", "ready"); err != nil {
		t.Fatalf("offline copy never opened: %v", err)
	}
	// Opening refreshes the copy at once (no waiting for the 10 s between
	// refreshes), so pageTimeout is enough here.
	waitCopyCurrent(t, page, pageTimeout)
	return page
}

// waitCopyCurrent waits up to within until the offline copy was loaded
// from the revision the page's header shows.
func waitCopyCurrent(t *testing.T, page playwright.Page, within time.Duration) {
	t.Helper()
	// A Go loop, not WaitForFunction: that evaluates a string, which the
	// page's Content-Security-Policy refuses.
	deadline := time.Now().Add(within)
	for {
		var st struct{ Copy, Server string }
		eval(t, page, `async () => ({
			Copy: document.querySelector('[data-testid="conn-state"]').dataset.copyRev || "",
			Server: document.querySelector('[data-testid="rev"]').textContent,
		})`, &st)
		if st.Copy != "" && st.Copy == st.Server {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the offline copy never caught up with the server: copy at server revision %q, page at %q", st.Copy, st.Server)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// expectBadge waits for the page's one connection indicator to say
// online or offline (state) with the number of changes waiting to be sent,
// and for the offline banner to be shown exactly while offline.
func expectBadge(t *testing.T, page playwright.Page, state string, pending int, within time.Duration) {
	t.Helper()
	badge := page.GetByTestId("conn-state")
	opts := playwright.LocatorAssertionsToHaveAttributeOptions{Timeout: playwright.Float(float64(within.Milliseconds()))}
	if err := expect.Locator(badge).ToHaveAttribute("data-mode", state, opts); err != nil {
		text, _ := badge.TextContent()
		t.Fatalf("indicator not %s within %v (shows %q): %v", state, within, text, err)
	}
	if err := expect.Locator(badge).ToHaveAttribute("data-pending", fmt.Sprint(pending), opts); err != nil {
		text, _ := badge.TextContent()
		t.Fatalf("indicator does not show %d changes waiting within %v (shows %q): %v", pending, within, text, err)
	}
	if state == "offline" {
		if err := expect.Locator(badge).ToContainText("offline"); err != nil {
			t.Errorf("indicator text: %v", err)
		}
	}
	if pending > 0 {
		if err := expect.Locator(badge).ToContainText(fmt.Sprintf("%d change", pending)); err != nil {
			t.Errorf("indicator text: %v", err)
		}
	}
	banner := page.GetByTestId("offline-banner")
	if state == "offline" {
		if err := expect.Locator(banner).ToContainText("saved in this browser"); err != nil {
			t.Errorf("no offline banner saying where changes go: %v", err)
		}
	} else if err := expect.Locator(banner).ToBeHidden(); err != nil {
		t.Errorf("offline banner shown while online: %v", err)
	}
}

// workOffline ticks or unticks "Work offline".
func workOffline(t *testing.T, page playwright.Page, on bool) {
	t.Helper()
	if err := page.GetByLabel("Work offline").SetChecked(on); err != nil {
		t.Fatalf("set Work offline to %v: %v", on, err)
	}
}

// putForm writes key through the form; deleteForm deletes it.
func putForm(t *testing.T, page playwright.Page, key, value string) {
	t.Helper()
	fill(t, page, "Key", key)
	fill(t, page, "Value", value)
	click(t, page, "Put")
}

func deleteForm(t *testing.T, page playwright.Page, key string) {
	t.Helper()
	fill(t, page, "Key", key)
	click(t, page, "Delete")
}

// expectServer waits until the server holds value under key ("" for no
// key): conflict buttons and syncs answer before their requests are
// checked here.
func expectServer(t *testing.T, srv *server, key, want string) {
	t.Helper()
	deadline := time.Now().Add(pageTimeout)
	for {
		got := offlineAPIGet(t, srv, key)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("server %s = %q, want %q", key, got, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestDashboardOffline_ServerDown: the server stops under an open page;
// edits go to the offline copy; a reload opens the page from the service
// worker with the edits still there; the server comes back and "Sync now"
// sends them.
func TestDashboardOffline_ServerDown(t *testing.T) {
	srv := startServer(t)
	apiPut(t, srv, "a", "server a", "")
	apiPut(t, srv, "b", "server b", "")
	page := openOfflineDashboard(t, srv)
	expectBadge(t, page, "online", 0, pageTimeout)

	srv.Stop()
	expectBadge(t, page, "offline", 0, pageTimeout)
	putForm(t, page, "a", "edited offline")
	expectRow(t, page, "a", "edited offline", pageTimeout)
	if err := expect.Locator(page.GetByTestId("form-status")).ToContainText("offline copy"); err != nil {
		t.Errorf("no confirmation of the offline write: %v", err)
	}
	putForm(t, page, "new", "made offline")
	expectRow(t, page, "new", "made offline", pageTimeout)
	deleteForm(t, page, "b")
	expectNoRow(t, page, "b", pageTimeout)
	expectBadge(t, page, "offline", 3, pageTimeout)
	if err := expect.Locator(row(page, "new")).ToHaveAttribute("data-pending", "true"); err != nil {
		t.Errorf("a key changed offline is not marked as waiting: %v", err)
	}

	// The server is down: the page comes from the service worker.
	if _, err := page.Reload(); err != nil {
		t.Fatalf("reload with the server down: %v", err)
	}
	expectBadge(t, page, "offline", 3, pageTimeout)
	expectRow(t, page, "a", "edited offline", pageTimeout)
	expectRow(t, page, "new", "made offline", pageTimeout)
	expectNoRow(t, page, "b", pageTimeout)
	if err := expect.Locator(page.GetByTestId("key-count")).ToHaveText("2"); err != nil {
		t.Errorf("key count offline: %v", err)
	}

	// The page retries by itself, waiting longer after each failure, and
	// "Sync now" skips the wait. Let the wait grow, so that it is the
	// button that starts the next attempt.
	longWait := regexp.MustCompile(`reconnecting in ([5-9]|10)s`)
	if err := expect.Locator(page.GetByTestId("conn-state")).ToHaveText(longWait, playwright.LocatorAssertionsToHaveTextOptions{Timeout: playwright.Float(30000)}); err != nil {
		t.Fatalf("the page does not wait longer between retries: %v", err)
	}
	// Click while nothing can reach a server: the page's own retry cannot
	// send the changes (and hide the button) first, however long the
	// server takes to start. The gate holds the connection the click
	// opens, and forwards it once the server is up.
	g := holdConnections(t, srv.Addr)
	click(t, page, "Sync now")
	if err := expect.Locator(page.GetByTestId("conn-state")).ToHaveAttribute("data-state", "connecting"); err != nil {
		t.Fatalf("Sync now did not try the server: %v", err)
	}
	srv.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
	srv.URL = "http://" + srv.Addr
	srv.Start()
	g.forwardTo(srv.Addr)
	expectBadge(t, page, "online", 0, syncWithin)
	waitLive(t, page)
	expectServer(t, srv, "a", "edited offline")
	expectServer(t, srv, "new", "made offline")
	expectServer(t, srv, "b", "")
	if err := expect.Locator(page.GetByTestId("form-status")).ToContainText("Sent 3 changes"); err != nil {
		t.Errorf("no report of the sync: %v", err)
	}
	// The page shows the server's state again, and is live.
	expectRow(t, page, "a", "edited offline", pageTimeout)
	expectRow(t, page, "new", "made offline", pageTimeout)
	expectNoRow(t, page, "b", pageTimeout)
	apiPut(t, srv, "later", "live again", "")
	expectRow(t, page, "later", "live again", liveWithin)
	// Every row, not only the first: nothing waits after the sync.
	expectNoRowNotSent(t, page, 3)
}

// TestDashboardOffline_Conflicts: offline by hand, keys are changed that
// the server changes too; back online the clashes are shown side by side
// and each is settled one way.
func TestDashboardOffline_Conflicts(t *testing.T) {
	srv := startServer(t)
	for _, k := range []string{"c", "d", "e"} {
		apiPut(t, srv, k, "server "+k, "")
	}
	page := openOfflineDashboard(t, srv)

	workOffline(t, page, true)
	expectBadge(t, page, "offline", 0, pageTimeout)
	if err := expect.Locator(page.GetByTestId("conn-state")).ToHaveAttribute("data-state", "offline"); err != nil {
		t.Errorf("stream still open while offline by hand: %v", err)
	}
	putForm(t, page, "c", "mine c")
	putForm(t, page, "d", "mine d")
	putForm(t, page, "e", "mine e")
	expectBadge(t, page, "offline", 3, pageTimeout)
	// Meanwhile, on the server:
	apiPut(t, srv, "c", "server changed c", "")
	apiPut(t, srv, "d", "server changed d", "")

	workOffline(t, page, false)
	expectBadge(t, page, "online", 2, syncWithin)
	conflicts := page.GetByTestId("conflict")
	if err := expect.Locator(conflicts).ToHaveCount(2); err != nil {
		t.Fatalf("conflicts shown: %v", err)
	}
	// Nothing overwritten silently: e went through, c and d did not.
	expectServer(t, srv, "e", "mine e")
	expectServer(t, srv, "c", "server changed c")
	expectServer(t, srv, "d", "server changed d")

	conflict := func(key string) playwright.Locator {
		return page.Locator(fmt.Sprintf(`[data-testid="conflict"][data-key=%q]`, key))
	}
	c := conflict("c")
	if err := expect.Locator(c.GetByTestId("conflict-mine")).ToContainText("mine c"); err != nil {
		t.Errorf("conflict c, mine: %v", err)
	}
	if err := expect.Locator(c.GetByTestId("conflict-server")).ToContainText("server changed c"); err != nil {
		t.Errorf("conflict c, the server's: %v", err)
	}

	if err := c.GetByRole(*playwright.AriaRoleButton, playwright.LocatorGetByRoleOptions{Name: "Keep mine"}).Click(); err != nil {
		t.Fatal(err)
	}
	expectServer(t, srv, "c", "mine c")
	if err := expect.Locator(c).ToHaveCount(0); err != nil {
		t.Errorf("conflict c still shown after Keep mine: %v", err)
	}
	expectRow(t, page, "c", "mine c", pageTimeout)

	d := conflict("d")
	if err := d.GetByRole(*playwright.AriaRoleButton, playwright.LocatorGetByRoleOptions{Name: "Keep the server's"}).Click(); err != nil {
		t.Fatal(err)
	}
	if err := expect.Locator(page.GetByTestId("conflicts")).ToBeHidden(); err != nil {
		t.Errorf("conflicts still shown after settling both: %v", err)
	}
	expectBadge(t, page, "online", 0, pageTimeout)
	expectServer(t, srv, "d", "server changed d")
	expectRow(t, page, "d", "server changed d", pageTimeout)

	// The copy agrees: offline again, it shows the settled values.
	workOffline(t, page, true)
	expectBadge(t, page, "offline", 0, pageTimeout)
	expectRow(t, page, "c", "mine c", pageTimeout)
	expectRow(t, page, "d", "server changed d", pageTimeout)
	expectRow(t, page, "e", "mine e", pageTimeout)
}

// TestDashboardOffline_StorageFull: with localStorage full, an offline
// write is refused with what was not saved and how much room is used; the
// page goes on working, and the write succeeds once room is freed.
func TestDashboardOffline_StorageFull(t *testing.T) {
	srv := startServer(t)
	page := openOfflineDashboard(t, srv)
	workOffline(t, page, true)
	expectBadge(t, page, "offline", 0, pageTimeout)
	putForm(t, page, "before", "saved")
	expectBadge(t, page, "offline", 1, pageTimeout)

	var filled int
	eval(t, page, fillStorage, &filled)
	t.Logf("localStorage took %d more units of junk", filled)

	putForm(t, page, "big", "too much")
	formError := page.GetByTestId("form-error")
	for _, want := range []string{"Not saved: put \"big\"", "local storage is full", "this copy uses"} {
		if err := expect.Locator(formError).ToContainText(want); err != nil {
			t.Errorf("form error lacks %q: %v", want, err)
		}
	}
	notice := page.GetByTestId("offline-notice")
	for _, want := range []string{"Browser storage is full", `put "big"`, "was not saved", "The offline copy uses", "other data of this site"} {
		if err := expect.Locator(notice).ToContainText(want); err != nil {
			t.Errorf("notice lacks %q: %v", want, err)
		}
	}
	text, _ := formError.TextContent()
	t.Logf("error shown: %s", text)
	expectNoRow(t, page, "big", pageTimeout)
	expectRow(t, page, "before", "saved", pageTimeout)
	expectBadge(t, page, "offline", 1, pageTimeout)

	// Free the room: the same write goes through and the notice goes.
	eval(t, page, `async () => { for (const k of Object.keys(localStorage)) if (k.startsWith("junk/")) localStorage.removeItem(k); }`, nil)
	click(t, page, "Put")
	expectRow(t, page, "big", "too much", pageTimeout)
	if err := expect.Locator(notice).ToBeHidden(); err != nil {
		t.Errorf("notice still shown after a good write: %v", err)
	}
	expectBadge(t, page, "offline", 2, pageTimeout)

	workOffline(t, page, false)
	expectBadge(t, page, "online", 0, syncWithin)
	expectServer(t, srv, "before", "saved")
	expectServer(t, srv, "big", "too much")
}

// TestDashboardOffline_CorruptStorage: damaged and foreign items in the
// copy's localStorage are set aside and reported; the page opens and works.
func TestDashboardOffline_CorruptStorage(t *testing.T) {
	srv := startServer(t)
	apiPut(t, srv, "k", "server k", "")
	page := openOfflineDashboard(t, srv)
	workOffline(t, page, true)
	expectBadge(t, page, "offline", 0, pageTimeout)
	putForm(t, page, "x", "kept")
	putForm(t, page, "y", "damaged")
	expectBadge(t, page, "offline", 2, pageTimeout)

	// Damage the log item of y, and add a foreign item under the prefix.
	var damaged string
	eval(t, page, `async () => {
		const logs = Object.keys(localStorage).filter(k => k.startsWith("pykv/default/log/")).sort();
		const last = logs[logs.length - 1];
		localStorage.setItem(last, localStorage.getItem(last).replace("damaged", "DAMAGED"));
		localStorage.setItem("pykv/default/whatever", "{}");
		return last;
	}`, &damaged)
	if _, err := page.Reload(); err != nil {
		t.Fatal(err)
	}
	notice := page.GetByTestId("offline-notice")
	for _, want := range []string{"set aside", damaged, "pykv/default/whatever", "pykv/default/corrupt/"} {
		if err := expect.Locator(notice).ToContainText(want); err != nil {
			t.Errorf("notice lacks %q: %v", want, err)
		}
	}
	text, _ := notice.TextContent()
	t.Logf("notice: %s", text)
	expectBadge(t, page, "offline", 1, pageTimeout)
	expectRow(t, page, "x", "kept", pageTimeout)
	expectRow(t, page, "k", "server k", pageTimeout)
	expectNoRow(t, page, "y", pageTimeout)
	var aside int
	eval(t, page, `async () => Object.keys(localStorage).filter(k => k.startsWith("pykv/default/corrupt/")).length`, &aside)
	if aside != 2 {
		t.Errorf("%d items under pykv/default/corrupt/, want 2", aside)
	}

	// A garbled snapshot too: the page still opens, and works online.
	eval(t, page, `async () => { localStorage.setItem("pykv/default/snapshot", "\u0000not json"); }`, nil)
	if _, err := page.Reload(); err != nil {
		t.Fatal(err)
	}
	if err := expect.Locator(notice).ToContainText("pykv/default/snapshot"); err != nil {
		t.Errorf("garbled snapshot not reported: %v", err)
	}
	if err := expect.Locator(page.Locator("#dashboard")).ToHaveAttribute("data-copy", "ready"); err != nil {
		t.Fatalf("offline copy did not open over a garbled snapshot: %v", err)
	}
	text, _ = notice.TextContent()
	t.Logf("notice: %s", text)
	workOffline(t, page, false)
	waitLive(t, page)
	expectBadge(t, page, "online", 0, syncWithin)
	putForm(t, page, "after", "ok")
	expectRow(t, page, "after", "ok", pageTimeout)
	expectServer(t, srv, "after", "ok")
	// The sync just refreshed the copy, so this refresh may have to wait
	// for the next one the page allows.
	waitCopyCurrent(t, page, copyRefreshWithin)
}

// gate listens on an address in place of a server that is down. It holds
// the connections it accepts, unanswered, until forwardTo names the
// address the server now listens on; from then on it forwards every
// connection there, both ways, byte for byte. It closes when the test
// ends.
type gate struct {
	ln     net.Listener
	opened chan struct{} // closed by forwardTo
	closed chan struct{} // closed when the test ends
	target string        // set before opened is closed

	mu    sync.Mutex
	conns map[net.Conn]bool
	wg    sync.WaitGroup
}

// holdConnections starts a gate on addr, which must be free.
func holdConnections(tb testing.TB, addr string) *gate {
	tb.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		tb.Fatalf("listen on %s in place of the server: %v", addr, err)
	}
	g := &gate{ln: ln, opened: make(chan struct{}), closed: make(chan struct{}), conns: map[net.Conn]bool{}}
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return // closed
			}
			if !g.track(c) {
				c.Close()
				return
			}
			g.wg.Add(1)
			go func() {
				defer g.wg.Done()
				g.serve(c)
			}()
		}
	}()
	tb.Cleanup(g.close)
	return g
}

// forwardTo lets the held connections, and every later one, through to
// the server at addr.
func (g *gate) forwardTo(addr string) {
	g.target = addr
	close(g.opened)
}

// track records c so that close can end it; false once the gate is closed.
func (g *gate) track(c net.Conn) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.conns == nil {
		return false
	}
	g.conns[c] = true
	return true
}

func (g *gate) serve(c net.Conn) {
	defer c.Close()
	select {
	case <-g.opened:
	case <-g.closed:
		return
	}
	s, err := net.Dial("tcp", g.target)
	if err != nil {
		return // the client sees the connection closed, as if refused
	}
	if !g.track(s) {
		s.Close()
		return
	}
	defer s.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		io.Copy(s, c)
		s.Close()
		c.Close()
	}()
	io.Copy(c, s)
	s.Close()
	c.Close()
	<-done
}

// close stops accepting, ends every connection and waits for the
// goroutines of the gate.
func (g *gate) close() {
	g.ln.Close()
	close(g.closed)
	g.mu.Lock()
	for c := range g.conns {
		c.Close()
	}
	g.conns = nil
	g.mu.Unlock()
	g.wg.Wait()
}

package web

import (
	"bytes"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/pykv/pykv/engine"
)

// Defaults for the zero values of DashboardDeps.
const (
	// DefaultDashboardPageSize is how many keys a page of the dashboard
	// shows: a page is rendered from the store's ordered index, so it costs
	// the same with a million keys as with a hundred.
	DefaultDashboardPageSize = 50
	// DefaultDashboardStatic is where the server serves static.FS.
	DefaultDashboardStatic = "/static/"
	// dashboardShortRunes is how much of a value a table cell shows; the
	// rest is behind a disclosure.
	dashboardShortRunes = 60
	// dashboardEmbedBytes is the largest value put into the page whole;
	// longer ones are fetched when asked for, so a page of 1 MiB values
	// stays small.
	dashboardEmbedBytes = 16 << 10
)

// dashboardCSP is the Content-Security-Policy of the page: scripts, styles
// and connections from this origin only, nothing inline. connect-src 'self'
// covers the same-origin websocket in current browsers. 'wasm-unsafe-eval'
// lets the page compile the offline copy (static/wasm/pykv.wasm, itself from
// 'self'); it allows WebAssembly only, not eval. worker-src 'self' allows
// the service worker (static/sw.js) that keeps the page usable offline.
const dashboardCSP = "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; worker-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// DashboardStatus is what the dashboard's header shows besides the store's
// own figures.
type DashboardStatus struct {
	// Sync is the durability mode, as persist names it ("always",
	// "everysec", "never"); empty shows "memory".
	Sync string
}

// DashboardDeps is what the dashboard needs. Store is required; every other
// field has a default.
type DashboardDeps struct {
	Store *engine.Store
	// Status reports the durability mode; nil shows "memory".
	Status func() DashboardStatus
	// PageSize is the number of keys a page shows (default 50).
	PageSize int
	// Static is the URL path static.FS is served under (default /static/).
	Static string
	// Now is the clock expiry times are shown against (default time.Now).
	Now func() time.Time
}

// NewDashboardHandler returns the handler of GET /: the dashboard page,
// rendered with the first page of keys (query prefix= and after= choose
// which), so it shows data without JavaScript. Its script (static
// dashboard.js) then pages through GET /v1/kv, writes through PUT and
// DELETE /v1/kv/{key} and follows GET /v1/watch from the revision the page
// was rendered at. Paths other than / are answered 404; the page is sent
// with a strict Content-Security-Policy. It panics if deps.Store is nil.
func NewDashboardHandler(deps DashboardDeps) http.Handler {
	if deps.Store == nil {
		panic("web.NewDashboardHandler: DashboardDeps.Store is nil")
	}
	if deps.PageSize <= 0 {
		deps.PageSize = DefaultDashboardPageSize
	}
	if deps.Static == "" {
		deps.Static = DefaultDashboardStatic
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	return &dashboardHandler{deps: deps}
}

type dashboardHandler struct {
	deps DashboardDeps
}

func (h *dashboardHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/" {
		writeProblem(w, newProblem(http.StatusNotFound,
			fmt.Sprintf("There is no page at %s; the dashboard is at /.", r.URL.Path)))
		return
	}
	q := r.URL.Query()
	view := h.view(q.Get("prefix"), q.Get("after"))
	// Render into a buffer: a failure is then a clean 500, not half a page.
	var buf bytes.Buffer
	if err := dashboardPage(view).Render(r.Context(), &buf); err != nil {
		writeProblem(w, newProblem(http.StatusInternalServerError, "The dashboard could not be rendered."))
		return
	}
	hdr := w.Header()
	hdr.Set("Content-Type", "text/html; charset=utf-8")
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("Content-Security-Policy", dashboardCSP)
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Referrer-Policy", "same-origin")
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(buf.Bytes())
	}
}

// dashboardView is everything the page shows: the templ components are
// pure functions of it.
type dashboardView struct {
	Rev      int64
	Keys     int
	Sync     string
	Prefix   string
	After    string // the cursor this page starts after ("" for the first)
	PageSize int
	Rows     []dashboardRow
	More     bool
	Next     string // the cursor of the next page, when More
	Static   string
	Count    int // keys starting with Prefix (Store.Count: not visited one by one)
}

// dashboardRow is one key as the table shows it.
type dashboardRow struct {
	Key       string
	Short     string // the value, cut to dashboardShortRunes
	Full      string // the whole value when Cut and it is embedded
	Cut       bool   // Short is not the whole value
	Embedded  bool   // Full holds the whole value (else it is fetched)
	Size      int    // the value's length in bytes
	ModRev    int64
	Version   int64
	ExpiresAt int64  // Unix milliseconds, 0 for none
	Expiry    string // "in 29s", or "" for none
}

func (h *dashboardHandler) view(prefix, after string) dashboardView {
	s := h.deps.Store
	// The listing and its revision are read together: a client that
	// watches from that revision continues it exactly.
	entries, more, rev := s.ListAt(prefix, after, h.deps.PageSize)
	v := dashboardView{
		Rev:      rev,
		Keys:     s.Len(),
		Sync:     "memory",
		Prefix:   prefix,
		After:    after,
		PageSize: h.deps.PageSize,
		Static:   h.deps.Static,
	}
	if h.deps.Status != nil {
		if st := h.deps.Status(); st.Sync != "" {
			v.Sync = st.Sync
		}
	}
	v.Count = s.Count(prefix)
	v.More = more
	if more {
		v.Next = entries[len(entries)-1].Key
	}
	now := h.deps.Now()
	v.Rows = make([]dashboardRow, len(entries))
	for i, e := range entries {
		v.Rows[i] = newDashboardRow(e, now)
	}
	return v
}

func newDashboardRow(e engine.Entry, now time.Time) dashboardRow {
	row := dashboardRow{
		Key:       e.Key,
		Short:     e.Value,
		Size:      len(e.Value),
		ModRev:    e.ModRev,
		Version:   e.Version,
		ExpiresAt: e.ExpiresAt,
	}
	if utf8.RuneCountInString(e.Value) > dashboardShortRunes {
		row.Cut = true
		row.Short = cutRunes(e.Value, dashboardShortRunes)
		if len(e.Value) <= dashboardEmbedBytes {
			row.Embedded, row.Full = true, e.Value
		}
	}
	if e.ExpiresAt != 0 {
		row.Expiry = expiryText(time.UnixMilli(e.ExpiresAt).Sub(now))
	}
	return row
}

// cutRunes returns the first n runes of s.
func cutRunes(s string, n int) string {
	for i := range s {
		if n == 0 {
			return s[:i]
		}
		n--
	}
	return s
}

// expiryText says how long until a key expires, as dashboard.js does.
func expiryText(d time.Duration) string {
	switch {
	case d <= 0:
		return "expiring"
	case d < time.Minute:
		return fmt.Sprintf("in %ds", int((d+time.Second-1)/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("in %dm", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("in %dh", int(d/time.Hour))
	default:
		return fmt.Sprintf("in %dd", int(d/(24*time.Hour)))
	}
}

// pageURL is the link to the page of prefix starting after the cursor.
func pageURL(prefix, after string) string {
	q := url.Values{}
	if prefix != "" {
		q.Set("prefix", prefix)
	}
	if after != "" {
		q.Set("after", after)
	}
	if len(q) == 0 {
		return "/"
	}
	return "/?" + q.Encode()
}

func revText(n int64) string { return strconv.FormatInt(n, 10) }

// expiryISO is the expiry time as an RFC 3339 UTC string for <time>.
func expiryISO(ms int64) string {
	return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z07:00")
}

func boolText(b bool) string { return strconv.FormatBool(b) }

// crumb is one step of the breadcrumbs: the folder Label ending at Prefix.
type crumb struct {
	Label   string
	Prefix  string
	Current bool
}

// crumbs splits prefix after each "/" into links: "All keys", "users/",
// "admins/", and a last part that is not a whole folder ("ad").
func crumbs(prefix string) []crumb {
	out := []crumb{{Label: "All keys", Prefix: ""}}
	for i := 0; i < len(prefix); {
		j := strings.IndexByte(prefix[i:], '/')
		end := len(prefix)
		if j >= 0 {
			end = i + j + 1
		}
		out = append(out, crumb{Label: prefix[i:end], Prefix: prefix[:end]})
		i = end
	}
	out[len(out)-1].Current = true
	return out
}

// keyHTML is the key as HTML text, escaped, with a <wbr> (a place to
// wrap) after each "/", so a narrow screen wraps it between folders rather
// than in the middle of a word. Built as one string because templ would
// put a space between the parts of a loop.
func keyHTML(key string) string {
	parts := strings.SplitAfter(key, "/")
	for i, p := range parts {
		parts[i] = html.EscapeString(p)
	}
	return strings.TrimSuffix(strings.Join(parts, "<wbr>"), "<wbr>")
}

// countText says how many keys the current prefix holds.
func countText(n int, prefix string) string {
	keys := "keys"
	if n == 1 {
		keys = "key"
	}
	if prefix == "" {
		return fmt.Sprintf("%d %s in all", n, keys)
	}
	verb := "start"
	if n == 1 {
		verb = "starts"
	}
	return fmt.Sprintf("%d %s %s with “%s”", n, keys, verb, prefix)
}

// emptyText is what an empty page says.
func emptyText(prefix string) string {
	if prefix == "" {
		return "No keys yet. Write one above, or import a file."
	}
	return fmt.Sprintf("No keys start with “%s”.", prefix)
}

// prefixNote completes "Keys" in the table's caption for a search.
func prefixNote(prefix string) string {
	if prefix == "" {
		return ""
	}
	return fmt.Sprintf(" starting with %q", prefix)
}

// sizeText is a value's size for people: "1.5 KiB".
func sizeText(n int) string {
	switch {
	case n < 1<<10:
		return fmt.Sprintf("%d B", n)
	case n < 1<<20:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	default:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
}

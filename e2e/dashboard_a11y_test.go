package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/playwright-community/playwright-go"
)

// axeScript is axe-core's browser bundle from node_modules, pinned in
// package.json and package-lock.json (make deps installs it).
const axeScript = "node_modules/axe-core/axe.min.js"

// axeViolation is the part of an axe-core result a failure message needs.
type axeViolation struct {
	ID     string
	Impact string
	Help   string
	Nodes  []string
}

// runAxe injects axe-core into the page and returns its serious and
// critical violations. The script goes in through the driver's evaluate,
// which the page's Content-Security-Policy does not govern, so the page is
// checked under its real policy.
func runAxe(t *testing.T, page playwright.Page) []axeViolation {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(repoRoot, axeScript))
	if err != nil {
		t.Fatalf("read %s (run make deps): %v", axeScript, err)
	}
	if _, err := page.Evaluate(string(src) + "\n;undefined"); err != nil {
		t.Fatalf("inject axe-core: %v", err)
	}
	var out []axeViolation
	eval(t, page, `async () => {
		const r = await window.axe.run(document, { resultTypes: ['violations'] });
		return r.violations
			.filter((v) => v.impact === 'serious' || v.impact === 'critical')
			.map((v) => ({ ID: v.id, Impact: v.impact, Help: v.help,
				Nodes: v.nodes.slice(0, 5).map((n) => n.target.join(' ') + ': ' + (n.failureSummary || '').split('\n').slice(0, 2).join(' ')) }));
	}`, &out)
	return out
}

// TestDashboard_Accessibility runs axe-core on the dashboard in light and
// dark themes, at desktop and phone sizes, online and offline, with a key
// opened and a prefix searched (so the history, the folders and the
// delete-by-prefix button are on the page), and fails on any serious or
// critical violation. It also checks what axe does not: placeholder
// contrast, the skip link, decorative symbols hidden from screen readers,
// and buttons of at least 14 px.
func TestDashboard_Accessibility(t *testing.T) {
	srv := startServer(t)
	apiPut(t, srv, "users/ada", `{"name":"Ada"}`, "?ttl=1h")
	apiPut(t, srv, "users/admins/root", "r", "")
	apiPut(t, srv, "users/empty", "", "")
	apiPut(t, srv, "users/long", strings.Repeat("long value ", 20), "")
	page := openOfflineDashboard(t, srv)
	fill(t, page, "Prefix", "users/")
	click(t, page, "Search")
	expectRow(t, page, "users/empty", "(empty)", pageTimeout)
	if err := row(page, "users/ada").GetByTestId("cell-rev").Click(); err != nil {
		t.Fatal(err)
	}
	if err := expect.Locator(page.GetByTestId("history-item")).ToHaveCount(1); err != nil {
		t.Fatal(err)
	}

	for _, mode := range []string{"online", "offline"} {
		if mode == "offline" {
			workOffline(t, page, true)
			putForm(t, page, "users/new", "made offline")
			expectBadge(t, page, "offline", 1, pageTimeout)
			if err := row(page, "users/ada").GetByTestId("cell-rev").Click(); err != nil {
				t.Fatal(err)
			}
			expectText(t, page, "history-note", "Offline")
		}
		for _, scheme := range []*playwright.ColorScheme{playwright.ColorSchemeLight, playwright.ColorSchemeDark} {
			for _, size := range []struct {
				name string
				w, h int
			}{{"desktop", 1280, 800}, {"phone", 390, 844}} {
				name := fmt.Sprintf("%s/%s/%s", mode, *scheme, size.name)
				t.Run(name, func(t *testing.T) {
					if err := page.SetViewportSize(size.w, size.h); err != nil {
						t.Fatal(err)
					}
					if err := page.EmulateMedia(playwright.PageEmulateMediaOptions{ColorScheme: scheme}); err != nil {
						t.Fatal(err)
					}
					for _, v := range runAxe(t, page) {
						t.Errorf("axe %s (%s): %s\n  %s", v.ID, v.Impact, v.Help, strings.Join(v.Nodes, "\n  "))
					}
					for _, p := range checkBeyondAxe(t, page) {
						t.Error(p)
					}
				})
			}
		}
	}
}

// checkBeyondAxe checks placeholder contrast (axe skips placeholders),
// that decorative symbols are hidden from screen readers, and that every
// visible button's text is at least 14 px. It returns the problems found.
func checkBeyondAxe(t *testing.T, page playwright.Page) (problems []string) {
	t.Helper()
	var r struct {
		Placeholders []struct {
			ID    string
			Ratio float64
		}
		SmallButtons []string
		Decorative   []string
	}
	eval(t, page, `async () => {
		const rgb = (c) => c.match(/[\d.]+/g).slice(0, 3).map(Number);
		const lum = (c) => {
			const [r, g, b] = rgb(c).map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
			return 0.2126 * r + 0.7152 * g + 0.0722 * b;
		};
		const ratio = (a, b) => { const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p); return (x + 0.05) / (y + 0.05); };
		const bg = (e) => {
			for (let n = e; n; n = n.parentElement) {
				const c = getComputedStyle(n).backgroundColor;
				if (!/rgba\(.*,\s*0\)$/.test(c) && c !== 'transparent') return c;
			}
			return 'rgb(255, 255, 255)';
		};
		const placeholders = [...document.querySelectorAll('[placeholder]')].map((e) => ({
			ID: e.id, Ratio: ratio(getComputedStyle(e, '::placeholder').color, bg(e)),
		}));
		const visible = (e) => { const b = e.getBoundingClientRect(); return b.width > 0 && b.height > 0; };
		const small = [...document.querySelectorAll('button, a.button')].filter(visible)
			.filter((b) => parseFloat(getComputedStyle(b).fontSize) < 14).map((b) => b.textContent.trim());
		// Symbols drawn as text (▸ › ●) must be hidden from screen readers.
		const decorative = [];
		const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
		for (let n = walker.nextNode(); n; n = walker.nextNode()) {
			if (/[▸►●›•→←]/.test(n.data) && !n.parentElement.closest('[aria-hidden="true"]')) decorative.push(n.parentElement.outerHTML.slice(0, 80));
		}
		return { Placeholders: placeholders, SmallButtons: small, Decorative: decorative };
	}`, &r)
	for _, p := range r.Placeholders {
		if p.Ratio < 4.5 {
			problems = append(problems, fmt.Sprintf("placeholder of #%s has contrast %.2f:1, want at least 4.5:1", p.ID, p.Ratio))
		}
	}
	if len(r.Placeholders) == 0 {
		problems = append(problems, "no placeholders found to check")
	}
	for _, b := range r.SmallButtons {
		problems = append(problems, fmt.Sprintf("button %q is smaller than 14 px", b))
	}
	for _, d := range r.Decorative {
		problems = append(problems, "decorative symbol read out by screen readers: "+d)
	}
	return problems
}

// TestDashboard_SkipLink: the first Tab shows a link that skips to the
// keys.
func TestDashboard_SkipLink(t *testing.T) {
	srv := startServer(t)
	page := openDashboard(t, srv)
	if err := page.Keyboard().Press("Tab"); err != nil {
		t.Fatal(err)
	}
	skip := page.GetByRole(*playwright.AriaRoleLink, playwright.PageGetByRoleOptions{Name: "Skip to the keys"})
	if err := expect.Locator(skip).ToBeFocused(); err != nil {
		t.Fatalf("the first Tab does not reach the skip link: %v", err)
	}
	if err := expect.Locator(skip).ToBeInViewport(); err != nil {
		t.Errorf("the focused skip link is not visible: %v", err)
	}
	if err := page.Keyboard().Press("Enter"); err != nil {
		t.Fatal(err)
	}
	if err := expect.Locator(page.Locator("#keys-title")).ToBeFocused(); err != nil {
		t.Errorf("the skip link does not move to the keys: %v", err)
	}
}

// TestDashboard_AccessibilityCheckCanFail plants two critical violations
// (a button without a name, a field without a label), a low-contrast
// placeholder, a small button and a symbol read out: the checks must
// report them, or a green run above would
// mean nothing.
func TestDashboard_AccessibilityCheckCanFail(t *testing.T) {
	srv := startServer(t)
	page := openDashboard(t, srv)
	if _, err := page.Evaluate(`() => {
		const main = document.getElementById('dashboard');
		main.append(document.createElement('button'));
		const input = document.createElement('input');
		input.type = 'text';
		main.append(input);
		document.getElementById('put-ttl').style.setProperty('--muted', '#dddddd');
		const tiny = document.createElement('button');
		tiny.textContent = 'Tiny';
		tiny.style.fontSize = '11px';
		main.append(tiny);
		const sym = document.createElement('span');
		sym.textContent = '▸ folder';
		main.append(sym);
	}`); err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, v := range runAxe(t, page) {
		found[v.ID] = true
	}
	if !found["button-name"] || !found["label"] {
		t.Errorf("axe found %v; want button-name and label among the planted violations", found)
	}
	got := strings.Join(checkBeyondAxe(t, page), "\n")
	for _, want := range []string{"placeholder of #put-ttl", "button \"Tiny\" is smaller than 14 px", "decorative symbol"} {
		if !strings.Contains(got, want) {
			t.Errorf("checks beyond axe reported %q; want it to mention %q", got, want)
		}
	}
}

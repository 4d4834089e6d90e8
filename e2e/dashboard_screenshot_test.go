package e2e

import (
	"bytes"
	"flag"
	"image/png"
	"os"
	"path/filepath"
	"testing"

	"github.com/playwright-community/playwright-go"
)

// updateScreenshot rewrites the README's screenshot of the dashboard:
//
//	go test ./e2e -run TestDashboard_Screenshot -update-screenshot
var updateScreenshot = flag.Bool("update-screenshot", false, "rewrite e2e/testdata/dashboard.png, the README's screenshot")

// screenshotPath is the README's picture of the dashboard, relative to the
// repository root.
const screenshotPath = "e2e/testdata/dashboard.png"

// TestDashboard_Screenshot opens the dashboard on a store with folders and
// an opened key, as the README shows it, and takes its picture. Without
// -update-screenshot it checks that the committed picture is there and has
// about the size a fresh one has (the page's layout did not change much).
func TestDashboard_Screenshot(t *testing.T) {
	srv := startServer(t)
	for _, kv := range [][2]string{
		{"config/app.json", `{"theme":"dark","retries":3,"features":["search","export"]}`},
		{"config/flags/beta", "on"},
		{"config/flags/new-editor", "off"},
		{"sessions/4f1c", "user=ada; ttl"},
		{"users/ada", `{"name":"Ada Lovelace","role":"admin"}`},
		{"users/alan", `{"name":"Alan Turing","role":"editor"}`},
		{"users/grace", `{"name":"Grace Hopper","role":"editor"}`},
		{"greeting", "hello, world"},
		{"empty", ""},
	} {
		query := ""
		if kv[0] == "sessions/4f1c" {
			query = "?ttl=1h"
		}
		apiPut(t, srv, kv[0], kv[1], query)
	}
	apiPut(t, srv, "users/ada", `{"name":"Ada Lovelace","role":"owner"}`, "")
	page := openDashboard(t, srv)
	if err := page.SetViewportSize(1280, 800); err != nil {
		t.Fatal(err)
	}
	if err := expect.Locator(page.GetByTestId("folder")).ToHaveCount(3); err != nil {
		t.Fatalf("folders not shown: %v", err)
	}
	if err := row(page, "users/ada").Click(); err != nil {
		t.Fatal(err)
	}
	if err := expect.Locator(page.GetByTestId("history-item")).ToHaveCount(2); err != nil {
		t.Fatalf("history not shown: %v", err)
	}
	if _, err := page.Evaluate(`() => { document.activeElement.blur(); window.scrollTo(0, 0); }`); err != nil {
		t.Fatal(err)
	}
	if os.Getenv("PYKV_PHONE_SHOT") != "" { // a look at the phone layout, for whoever works on it
		if err := page.SetViewportSize(390, 844); err != nil {
			t.Fatal(err)
		}
		phone, err := page.Screenshot(playwright.PageScreenshotOptions{FullPage: playwright.Bool(true)})
		if err == nil {
			err = os.WriteFile(os.Getenv("PYKV_PHONE_SHOT"), phone, 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := page.SetViewportSize(1280, 800); err != nil {
			t.Fatal(err)
		}
	}
	shot, err := page.Screenshot(playwright.PageScreenshotOptions{
		FullPage: playwright.Bool(true),
		Scale:    playwright.ScreenshotScaleCss,
	})
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := png.DecodeConfig(bytes.NewReader(shot))
	if err != nil {
		t.Fatalf("screenshot is not a PNG: %v", err)
	}
	path := filepath.Join(repoRoot, screenshotPath)
	if *updateScreenshot {
		if err := os.WriteFile(path, shot, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s (%d bytes)", path, len(shot))
		return
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("the README's screenshot: %v (run with -update-screenshot)", err)
	}
	defer f.Close()
	cfg, err := png.DecodeConfig(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	// The width is the viewport's; the height follows the fonts of the
	// machine, so only a large change (a panel gone or added) counts.
	if cfg.Width != fresh.Width || cfg.Height*5 < fresh.Height*4 || cfg.Height*4 > fresh.Height*5 {
		t.Errorf("%s is %dx%d, a fresh screenshot %dx%d: run with -update-screenshot", path, cfg.Width, cfg.Height, fresh.Width, fresh.Height)
	}
}

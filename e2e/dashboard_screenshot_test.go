package e2e

import (
	"bytes"
	"flag"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"os"
	"path/filepath"
	"slices"
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
		small, err := smallPNG(shot)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, small, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s (%d bytes; %d as Chromium took it)", path, len(small), len(shot))
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

// smallPNG re-encodes a screenshot with a palette of its 256 most used
// colours (a page's flat colours, plus the commonest shades of its
// anti-aliased text), so the README's picture stays a few tens of KB.
func smallPNG(data []byte) ([]byte, error) {
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	counts := map[color.RGBA]int{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			counts[color.RGBAModel.Convert(img.At(x, y)).(color.RGBA)]++
		}
	}
	colors := make([]color.RGBA, 0, len(counts))
	for c := range counts {
		colors = append(colors, c)
	}
	slices.SortFunc(colors, func(a, b color.RGBA) int {
		if d := counts[b] - counts[a]; d != 0 {
			return d
		}
		return int(a.R)<<16 + int(a.G)<<8 + int(a.B) - (int(b.R)<<16 + int(b.G)<<8 + int(b.B))
	})
	pal := make(color.Palette, 0, 256)
	for _, c := range colors[:min(256, len(colors))] {
		pal = append(pal, c)
	}
	out := image.NewPaletted(b, pal)
	draw.Draw(out, b, img, b.Min, draw.Src) // nearest palette colour, no dithering
	var buf bytes.Buffer
	if err := (&png.Encoder{CompressionLevel: png.BestCompression}).Encode(&buf, out); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

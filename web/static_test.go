package web_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"io/fs"
	"net/http"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/pykv/pykv/static"
	"github.com/pykv/pykv/web"
)

func TestStatic_Precompressed(t *testing.T) {
	plain := bytes.Repeat([]byte("\x00asm wasm body "), 100)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(plain)
	zw.Close()
	srv := mustOpenServer(t, func(o *web.Options) {
		o.Static = fstest.MapFS{
			"wasm/pykv.wasm":    {Data: plain},
			"wasm/pykv.wasm.gz": {Data: gz.Bytes()},
			"app.js":            {Data: []byte("console.log(1)")},
		}
	})
	get := func(path, enc, inm string) *response {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		if enc != "" {
			req.Header.Set("Accept-Encoding", enc)
		}
		if inm != "" {
			req.Header.Set("If-None-Match", inm)
		}
		return srv.send(req)
	}
	r := get("/static/wasm/pykv.wasm", "gzip, deflate", "")
	if r.StatusCode != 200 || r.Header.Get("Content-Encoding") != "gzip" || !bytes.Equal(r.Body, gz.Bytes()) {
		t.Fatalf("wasm with gzip accepted: %d, encoding %q, %d bytes; want the %d compressed bytes", r.StatusCode, r.Header.Get("Content-Encoding"), len(r.Body), gz.Len())
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/wasm" {
		t.Errorf("Content-Type = %q, want application/wasm (browsers need it to stream-compile)", ct)
	}
	zr, err := gzip.NewReader(bytes.NewReader(r.Body))
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := io.ReadAll(zr); !bytes.Equal(got, plain) {
		t.Fatal("compressed answer does not decompress to the file")
	}
	if r2 := get("/static/wasm/pykv.wasm", "gzip", r.Header.Get("ETag")); r2.StatusCode != http.StatusNotModified {
		t.Fatalf("revalidation with the ETag = %d, want 304", r2.StatusCode)
	}
	r = get("/static/wasm/pykv.wasm", "identity", "")
	if r.Header.Get("Content-Encoding") != "" || !bytes.Equal(r.Body, plain) {
		t.Fatalf("wasm without gzip: encoding %q, %d bytes; want the plain file", r.Header.Get("Content-Encoding"), len(r.Body))
	}
	r = get("/static/app.js", "gzip", "")
	if r.Header.Get("Content-Encoding") != "" || string(r.Body) != "console.log(1)" {
		t.Fatalf("a file without .gz: encoding %q, body %q", r.Header.Get("Content-Encoding"), r.Body)
	}
}

// TestStatic_ServiceWorker: the dashboard's service worker is in the binary
// and is sent with Service-Worker-Allowed: /, so that, served under
// /static/, it may control the dashboard at /; other files are not.
func TestStatic_ServiceWorker(t *testing.T) {
	sw, err := fs.ReadFile(static.FS, "sw.js")
	if err != nil || len(sw) == 0 {
		t.Fatalf("static.FS lacks sw.js: %v", err)
	}
	srv := mustOpenServer(t, func(o *web.Options) { o.Static = static.FS })
	for path, want := range map[string]string{"/static/sw.js": "/", "/static/dashboard.js": ""} {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		r := srv.send(req)
		if r.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: status %d", path, r.StatusCode)
		}
		if got := r.Header.Get("Service-Worker-Allowed"); got != want {
			t.Errorf("GET %s: Service-Worker-Allowed = %q, want %q", path, got, want)
		}
		if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/javascript") {
			t.Errorf("GET %s: Content-Type = %q; a service worker must be JavaScript", path, ct)
		}
	}
}

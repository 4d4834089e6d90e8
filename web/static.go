package web

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"
)

// serviceWorkerFile is the dashboard's service worker (static/sw.js): it is
// sent with Service-Worker-Allowed: / so that it may control the whole
// origin, the dashboard at / included, without a route of its own.
const serviceWorkerFile = "sw.js"

// staticHandler serves the files of Options.Static under /static/: no
// directory listings, and a problem answer for a missing file. A file with a
// precompressed NAME.gz beside it (the WebAssembly build: 4.5 MB, 1.2 MB
// compressed) is sent compressed to clients that accept gzip. Every file
// gets an ETag from its content, since embedded files have no modification
// time, so revalidation costs a 304 rather than the whole file.
func (s *server) staticHandler() http.Handler {
	var etags sync.Map // name -> quoted content hash
	etag := func(name string, data []byte) string {
		if v, ok := etags.Load(name); ok {
			return v.(string)
		}
		sum := sha256.Sum256(data)
		tag := `"` + hex.EncodeToString(sum[:12]) + `"`
		etags.Store(name, tag)
		return tag
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimPrefix(r.URL.Path, "/static/")
		if s.opts.Static == nil || !fs.ValidPath(name) {
			s.handleNotFound(w, r)
			return
		}
		if fi, err := fs.Stat(s.opts.Static, name); err != nil || fi.IsDir() {
			s.handleNotFound(w, r)
			return
		}
		send := name
		if strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
			if _, err := fs.Stat(s.opts.Static, name+".gz"); err == nil {
				send = name + ".gz"
				w.Header().Set("Content-Encoding", "gzip")
			}
		}
		data, err := fs.ReadFile(s.opts.Static, send)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		w.Header().Add("Vary", "Accept-Encoding")
		if ct := mime.TypeByExtension(path.Ext(name)); ct != "" {
			w.Header().Set("Content-Type", ct)
		}
		w.Header().Set("ETag", etag(send, data))
		// no-cache: revalidated each time, so a new binary's assets are
		// picked up at once.
		w.Header().Set("Cache-Control", "no-cache")
		if name == serviceWorkerFile {
			// Served under /static/ but controls the dashboard at /.
			w.Header().Set("Service-Worker-Allowed", "/")
		}
		http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(data))
	})
}

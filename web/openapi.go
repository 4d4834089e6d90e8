package web

import (
	"compress/gzip"
	"embed"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
)

// openapiJSON is the API's description, written by hand beside the
// handlers; TestOpenAPI checks that it names every route and that answers
// match it.
//
//go:embed openapi.json
var openapiJSON []byte

// swaggerUI holds Swagger UI (see swaggerui/README.md). The two large files
// are stored gzipped.
//
//go:embed swaggerui
var swaggerUI embed.FS

// docsCSP lets Swagger UI run from this server alone: its scripts and
// styles are files here, it sets inline styles, and it fetches /openapi.json
// and, with "Try it out", the API.
const docsCSP = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; " +
	"script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

// handleOpenAPI serves the OpenAPI 3.1 description.
func (s *server) handleOpenAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(openapiJSON)))
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write(openapiJSON)
}

// handleDocsRedirect sends /docs to /docs/, so the page's relative asset
// paths resolve under /docs/.
func (s *server) handleDocsRedirect(w http.ResponseWriter, r *http.Request) {
	http.Redirect(w, r, "/docs/", http.StatusMovedPermanently)
}

// handleDocs serves Swagger UI: the page at /docs/ and its assets. A file
// stored gzipped is sent as it is to clients that accept gzip, and unpacked
// for the others.
func (s *server) handleDocs(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(r.URL.Path, "/docs/")
	if name == "" {
		name = "index.html"
	}
	name = path.Join("swaggerui", path.Clean("/" + name)[1:])
	h := w.Header()
	if ct := mime.TypeByExtension(path.Ext(name)); ct != "" {
		h.Set("Content-Type", ct)
	}
	if strings.HasSuffix(name, ".html") {
		h.Set("Content-Security-Policy", docsCSP)
		h.Set("Cache-Control", "no-cache")
	} else {
		h.Set("Cache-Control", "public, max-age=3600")
	}
	if data, err := fs.ReadFile(swaggerUI, name); err == nil {
		h.Set("Content-Length", strconv.Itoa(len(data)))
		_, _ = w.Write(data)
		return
	}
	gz, err := swaggerUI.Open(name + ".gz")
	if err != nil {
		h.Del("Content-Type")
		h.Del("Cache-Control")
		s.handleNotFound(w, r)
		return
	}
	defer gz.Close()
	h.Add("Vary", "Accept-Encoding")
	if acceptsGzip(r) {
		h.Set("Content-Encoding", "gzip")
		_, _ = io.Copy(w, gz)
		return
	}
	zr, err := gzip.NewReader(gz)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	_, _ = io.Copy(w, zr)
}

// acceptsGzip reports whether the request's Accept-Encoding allows gzip.
func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		coding, q, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.TrimSpace(coding) == "gzip" {
			return strings.ReplaceAll(strings.TrimSpace(q), " ", "") != "q=0"
		}
	}
	return false
}

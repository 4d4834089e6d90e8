package web

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
)

// recoverPanics answers a panicking handler with a 500 problem and logs the
// panic with its stack; the client never sees the panic itself.
// http.ErrAbortHandler is passed on: it is how a handler cuts a response.
func (s *server) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.LogAttrs(r.Context(), slog.LevelError, "panic in handler",
				slog.String("method", r.Method), slog.String("path", r.URL.Path),
				slog.String("panic", fmt.Sprint(v)), slog.String("stack", string(debug.Stack())))
			writeProblem(w, newProblem(http.StatusInternalServerError, "Something went wrong on the server; it has been logged."))
		}()
		next.ServeHTTP(w, r)
	})
}

// securityHeaders sets the headers every answer carries. Pages set their
// own content security policy.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["Date"] = httpDate()
		h["X-Content-Type-Options"] = hdrNosniff
		h["X-Frame-Options"] = hdrDeny
		h["Referrer-Policy"] = hdrNoReferrer
		next.ServeHTTP(w, r)
	})
}

// crossOrigin refuses cross-site browser writes (CSRF) with a 403 problem.
func (s *server) crossOrigin() func(http.Handler) http.Handler {
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, crossOriginProblem(
			"Cross-origin writes from a browser are refused; use the page served by this server, or a non-browser client."))
	}))
	return cop.Handler
}

// handleNotFound answers an unknown path.
func (s *server) handleNotFound(w http.ResponseWriter, r *http.Request) {
	writeProblem(w, newProblem(http.StatusNotFound,
		fmt.Sprintf("There is no endpoint at %s; see /docs for the API.", r.URL.Path)))
}

// handleMethodNotAllowed answers a known path asked with the wrong method,
// naming in Allow the methods the path does answer: RFC 9110 (15.5.6)
// requires it of a 405, and chi sets it only in its own default handler.
func (s *server) handleMethodNotAllowed(w http.ResponseWriter, r *http.Request) {
	if allow := allowedMethods(r); allow != "" {
		w.Header().Set("Allow", allow)
	}
	writeProblem(w, newProblem(http.StatusMethodNotAllowed,
		fmt.Sprintf("%s is not allowed on %s; see /docs for the API.", r.Method, r.URL.Path)))
}

// accessLog logs every request at debug level (a no-op unless the logger
// takes debug records, so it costs nothing in production).
func (s *server) accessLog(next http.Handler) http.Handler {
	if !s.log.Enabled(context.Background(), slog.LevelDebug) {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
		next.ServeHTTP(ww, r)
		s.log.LogAttrs(r.Context(), slog.LevelDebug, "request",
			slog.String("method", r.Method), slog.String("path", r.URL.EscapedPath()),
			slog.Int("status", ww.Status()), slog.Int("bytes", ww.BytesWritten()),
			slog.Duration("took", time.Since(start)), slog.String("remote", r.RemoteAddr))
	})
}

// allowMethods are the methods a 405's Allow may name, in the order named.
var allowMethods = [...]string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
	http.MethodPatch, http.MethodDelete}

// allowedMethods returns the methods the route table answers at r's path,
// comma-separated, looked up as chi routes it (the escaped path when there
// is one); "" when r was not routed by chi or the path has no route.
func allowedMethods(r *http.Request) string {
	rctx := chi.RouteContext(r.Context())
	if rctx == nil || rctx.Routes == nil {
		return ""
	}
	path, allow := routingPath(r), ""
	for _, m := range allowMethods {
		if rctx.Routes.Match(chi.NewRouteContext(), m, path) {
			if allow != "" {
				allow += ", "
			}
			allow += m
		}
	}
	return allow
}

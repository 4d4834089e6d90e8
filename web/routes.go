package web

import (
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"
)

// mwFunc is a middleware: it wraps a handler in one that runs first.
type mwFunc = func(http.Handler) http.Handler

// routes returns the API: every route the server answers, with what it does.
// Keys are taken from the decoded path (see keyParam), so the key routes use
// a wildcard: a key may hold "/".
func (s *server) routes() http.Handler {
	r := chi.NewRouter()
	common := []mwFunc{
		s.instrument,    // requests counted and timed by route pattern and status (a panic's 500 too)
		s.checkHost,     // a Host that is not loopback, the connected address or allowed: 421 (DNS rebinding)
		s.recoverPanics, // a panic is logged and answered 500, never reaches the client raw
		s.accessLog,     // one debug line per request (--log-level debug)
		securityHeaders, // nosniff, frame and referrer policy on every answer
	}
	r.Use(common...)
	r.NotFound(s.handleNotFound)
	r.MethodNotAllowed(s.handleMethodNotAllowed)
	csrf := s.crossOrigin()

	// Open to everyone, also when tokens are set: probes, documentation, sign-in.
	r.Get("/healthz", s.handleHealthz)              // alive: 200 {"status":"ok"} once listening
	r.Get("/readyz", s.handleReadyz)                // 200 when the store is open and writable, else 503
	r.Get("/openapi.json", s.handleOpenAPI)         // the OpenAPI 3.1 description of this API
	r.Get("/docs", s.handleDocsRedirect)            // redirects to /docs/
	r.Get("/docs/*", s.handleDocs)                  // Swagger UI, served from the binary
	r.Get("/signin", s.handleSigninPage)            // sign-in form for browsers, when tokens are set
	r.With(csrf).Post("/signin", s.handleSignin)    // checks the token, sets the sign-in cookie
	r.With(csrf).Post("/signout", s.handleSignout)  // clears the sign-in cookie
	r.Method("GET", "/static/*", s.staticHandler()) // the dashboard's scripts and styles (Options.Static)

	// In cluster mode writes go to the leader (a follower forwards them)
	// and reads are linearizable unless they ask otherwise; on a single
	// node both wrappers are nothing.
	write, read := s.toLeader, s.consistent
	if s.cluster == nil {
		write = func(h http.Handler) http.Handler { return h }
		read = write
	}

	authenticated := []mwFunc{
		s.authenticate, // bearer token (or sign-in cookie) when tokens are configured
		csrf,           // cross-site browser writes refused with 403
	}
	r.Group(func(r chi.Router) {
		r.Use(authenticated...)

		r.Method("GET", "/", s.dashboardHandler())              // the dashboard page
		r.Method("GET", "/v1/watch", s.watchHandler())          // websocket change stream; lifts the server's deadlines once upgraded, keeps its own
		r.With(read).Get("/v1/kv", s.handleKVList)              // ordered, paginated listing by prefix
		r.With(read).Get("/v1/kv/*", s.handleKVGet)             // a key's raw value (or entry JSON), revision in ETag
		r.With(read).Head("/v1/kv/*", s.handleKVGet)            // the same headers without the body
		r.With(write).Put("/v1/kv/*", s.handleKVPut)            // set a key from the raw body; ?ttl=, If-Match, If-None-Match: *
		r.With(write).Delete("/v1/kv/*", s.handleKVDelete)      // remove a key; If-Match
		r.With(write).Delete("/v1/kv", s.handleKVDeletePrefix)  // remove every key under ?prefix= at one revision (?all=true: every key)
		r.With(read).Get("/v1/folders", s.handleFolders)        // the next level of "/" folders under ?prefix=, with key counts
		r.Get("/v1/history/*", s.handleHistory)                 // a key's changes still in the server's change history
		r.With(write).Post("/v1/txn", s.handleTxn)              // atomic batch of puts and deletes with conditions
		r.With(read).Get("/v1/export", s.handleExport)          // the whole store in the snapshot JSON format
		r.With(write).Post("/v1/import", s.handleImport)        // load a snapshot or an original PyKV flat file
		r.Get("/v1/status", s.handleStatus)                     // revision, keys, durability, sizes, last recovery
		r.Get("/metrics", s.handleMetrics)                      // Prometheus metrics
		r.With(write).Post("/put", s.handleLegacyPut)           // original PyKV: {"key","value"} → stored
		r.With(read).Get("/get/*", s.handleLegacyGet)           // original PyKV: {"key","value"} or 404
		r.With(write).Delete("/delete/*", s.handleLegacyDelete) // original PyKV: remove a key or 404
		if s.cluster != nil {
			r.Get("/v1/cluster", s.handleCluster)                               // members, leader, each one's applied revision and health
			r.With(write).Post("/v1/cluster/members", s.handleJoin)             // add a member (or update its addresses); on the leader
			r.With(write).Delete("/v1/cluster/members/*", s.handleRemoveMember) // remove a member; on the leader
			r.Get("/v1/cluster/leader-check", s.handleLeaderCheck)              // is this member ?member=, following ?leader= in ?term=: the leader's read confirmation
			r.Get("/v1/cluster/read-index", s.handleReadIndex)                  // the leader's read index, for followers' linearizable reads
		}
	})
	if s.noFastPath {
		return r
	}
	// The key routes again, for the fast path (see router): the same
	// handlers behind the same middleware, in the same order.
	kv := func(wrap mwFunc, h http.HandlerFunc) http.Handler {
		return chain(chain(chain(chain(h, wrap), authenticated...), routedKV), common...)
	}
	return &router{Mux: r, kvGet: kv(read, s.handleKVGet), kvPut: kv(write, s.handleKVPut),
		kvDelete: kv(write, s.handleKVDelete)}
}

// chain wraps h in mws, the first outermost, as chi's Use and With do.
func chain(h http.Handler, mws ...mwFunc) http.Handler {
	for i := len(mws) - 1; i >= 0; i-- {
		h = mws[i](h)
	}
	return h
}

// kvPattern is the key routes' pattern, as chi names it (for the metrics).
const kvPattern = "/v1/kv/*"

// routedKV names the route in r.Pattern where chi would: after the common
// middleware, so a request refused there (a foreign Host: 421) is counted
// as unmatched, as it is through chi. r.Pattern is set in place, as chi's
// routeHTTP and net/http's ServeMux set it.
func routedKV(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Pattern = kvPattern
		next.ServeHTTP(w, r)
	})
}

// router sends GET, HEAD, PUT and DELETE of /v1/kv/{key}, the store's hot
// path, straight to their handlers behind the same middleware as chi would,
// and every other request to chi. chi costs a copy of the request, a
// context, a path-value map and a tree walk per request (about a fifth of
// a GET's handler time); these four routes need none of it: the handlers
// take the key from the path themselves (keyParam) and nothing below them
// reads chi's routing context. Which requests take the fast path follows
// chi's own matching: the path it routes by (the escaped path when there is
// one) under "/v1/kv/" matches only the wildcard route there, for these
// methods; the rest (other methods: 405) go to chi. r.Pattern is set as chi
// sets it (see routedKV).
// TestRouter_FastPathSameAnswers runs requests through both and compares.
// It is a chi.Routes, as chi's router was, so the route table can be
// walked (TestOpenAPI_Routes).
type router struct {
	*chi.Mux               // everything else, and the table
	kvGet, kvPut, kvDelete http.Handler
}

// routingPath returns the path chi routes r by: the escaped path when
// there is one, so that "a%2Fb" stays one segment. The fast path and a
// 405's Allow must match as chi does, or they would answer differently.
func routingPath(r *http.Request) string {
	if r.URL.RawPath != "" {
		return r.URL.RawPath
	}
	return r.URL.Path
}

func (rt *router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(routingPath(r), "/v1/kv/") {
		var h http.Handler
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			h = rt.kvGet
		case http.MethodPut:
			h = rt.kvPut
		case http.MethodDelete:
			h = rt.kvDelete
		}
		if h != nil {
			h.ServeHTTP(w, r)
			return
		}
	}
	rt.Mux.ServeHTTP(w, r)
}

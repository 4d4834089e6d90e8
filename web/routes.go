package web

import (
	"net/http"

	"github.com/go-chi/chi/v5"
)

// routes returns the API: every route the server answers, with what it does.
// Keys are taken from the decoded path (see keyParam), so the key routes use
// a wildcard: a key may hold "/".
func (s *server) routes() http.Handler {
	r := chi.NewRouter()
	r.Use(s.instrument)    // requests counted and timed by route pattern and status (a panic's 500 too)
	r.Use(s.checkHost)     // a Host that is not loopback, the connected address or allowed: 421 (DNS rebinding)
	r.Use(s.recoverPanics) // a panic is logged and answered 500, never reaches the client raw
	r.Use(s.accessLog)     // one debug line per request (--log-level debug)
	r.Use(securityHeaders) // nosniff, frame and referrer policy on every answer
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

	r.Group(func(r chi.Router) {
		r.Use(s.authenticate) // bearer token (or sign-in cookie) when tokens are configured
		r.Use(csrf)           // cross-site browser writes refused with 403

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
			r.Get("/v1/cluster/leader-check", s.handleLeaderCheck)              // does this member follow ?leader= in ?term=: the leader's read confirmation
			r.Get("/v1/cluster/read-index", s.handleReadIndex)                  // the leader's read index, for followers' linearizable reads
		}
	})
	return r
}

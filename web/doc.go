// Package web is PyKV's HTTP server: the REST API under /v1, the original
// PyKV endpoints, probes and metrics, the OpenAPI description with Swagger
// UI, and (mounted from dashboard.go and watch.go) the dashboard and the
// websocket change stream.
//
// # Basics
//
// [NewServer] returns one http.Handler; routes.go lists every route, and
// the middleware every request passes through, once: chi routes them all
// but GET, HEAD, PUT and DELETE of /v1/kv/{key}, the store's hot path,
// which a small router in front sends straight to the same handlers behind
// the same middleware (TestRouter_FastPathSameAnswers holds the two equal).
//
// # Where a request goes
//
// cmd/pykv serves through [HotLoop] (hotloop.go) unless told not to: the
// listener's connections (behind the per-address limit and
// [ProblemListener]) are read, on a single node on Linux, by the poller
// (hotpoll_linux.go): one thread waiting in epoll for every idle
// connection, which takes every complete request each one has sent
// (hotparse.go, a strict subset of HTTP/1.1). GET and PUT of a key whose
// Host and token the chain would allow are answered by the loop itself
// when the value is found or the write done: the PUTs of every connection
// read in one turn form one engine.Batch, which the poller commits on its
// own thread (one log write, one fdatasync) before it writes their
// answers; a GET waits for the writes before it; the answers, the same
// bytes the handlers write, go out in one write (every 64 KiB). What
// would make the poller wait (a request not all read, an answer the
// socket does not take at once, a hand-off to net/http) goes to the
// connection's own goroutine, which serves it as the poller would, with
// the server's timeouts, its PUTs through the committer
// (engine.Store.Submit), and gives it back once idle; in cluster mode, or
// with [Options].NoPoller, every connection has its goroutine. Every other answer to a request it parsed (404, 400, 401, 403,
// 421, 429, 413, a refused write) is rendered by the handler chain itself,
// run on the same bytes read with http.ReadRequest, into a recorder; the
// connection stays on the loop. Anything else hands the connection, with
// its unread bytes, to the http.Server for good, and chi serves it as
// above. TestHotLoop_SameAnswers sends the same bytes to both and compares
// the answers, the closing of connections and the metrics. The loop keeps
// the http.Server's timeouts and header limit, recovers a panic by closing
// its connection, and its Shutdown answers batches in progress before the
// store may close. With a debug logger (the access log is the chain's) it
// hands every connection over. In cluster mode it answers the leader's
// linearizable GET itself, after the same read confirmation as the chain's
// consistent, and every member's ?consistency=local GET from its own
// copy, and the leader's PUT itself, proposed through raft (a write that
// finds leadership moved before it was proposed is rendered through the
// chain, which forwards it); it renders followers' linearizable reads and
// writes through the chain, which forwards them; TestHotLoop_Cluster.
// It is there for speed: in `make bench-peers` it takes about 1.4 × the
// durable PUTs of Redis (appendfsync always, behind webdis) and answers
// GETs at about 1.35 × a bare net/http handler, where the chain alone
// makes 0.9 × and 0.77 × (README, Measured).
// Keys
// travel in the path percent-encoded as one segment (encodeURIComponent):
// the handlers read them from the decoded path, so "a%2Fb" names the key
// "a/b" and an unencoded "/" is part of the key too. Values are raw bodies;
// JSON goes in and out through one decode/encode pair, and every error is
// answered by one writeError as an RFC 9457 problem, which logs only the
// server's own failures.
//
// Errors map to statuses as follows: malformed requests 400, a missing key
// 404, a failed If-Match or If-None-Match 412, a failed transaction
// condition 409, sizes over the limits 413 (bodies are cut off while being
// read, so a chunked body with no length is refused too), a body that is
// not JSON where JSON is wanted 415, writes refused after a storage
// failure 503 (reads keep working), a full disk 507. A panic is logged with
// its stack and answered 500.
//
// # Authentication
//
// With no token in [Options] every request is allowed; cmd/pykv refuses to
// listen beyond loopback that way. With tokens, everything but /healthz,
// /readyz, /openapi.json, /docs, /static and the sign-in page needs
// "Authorization: Bearer <token>" or the session cookie POST /signin sets
// (a random id of a server-side session, never the token; sessions.go):
// 401 without a valid one, 403 for a write with the read-only token, 429
// with Retry-After once a client address sent too many wrong tokens
// (ratelimit.go; behind Options.TrustedProxies the address comes from
// X-Forwarded-For, client.go). Cross-origin browser writes are refused
// (http.CrossOriginProtection) with a problem of their own type.
//
// # Host check
//
// Before anything else, a request whose Host is not a loopback name or
// address, the address the client connected to, or a name in
// Options.AllowedHosts is refused with 421 (host.go): the defence against
// DNS rebinding, where a page on an attacker's name resolving to 127.0.0.1
// looks same-origin to the browser. ProblemListener makes net/http's own
// plain-text refusals (431, 400, 501) problem documents too.
//
// # Caveats
//
// Browsers remove "." and ".." path segments, even percent-encoded, so
// those two keys cannot be reached by URL from a browser; POST /v1/txn
// can write and delete them. The listing's rev is the store's revision
// when the listing began: entries reflect at least that revision.
// Timeouts are the http.Server's, set by cmd/pykv (the hot loop takes them
// from it, each deadline exact to within a second); the stream lifts them
// for its connection once the upgrade succeeded and keeps its own
// deadlines.
package web

// The dashboard's templ components (dashboard.templ) are compiled to
// dashboard_templ.go, which is committed; `make generate-check` fails when it
// is stale.
//go:generate go tool templ generate

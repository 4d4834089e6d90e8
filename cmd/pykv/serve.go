package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/pykv/pykv/engine"
	"github.com/pykv/pykv/persist"
	"github.com/pykv/pykv/web"
)

// HTTP server limits. A slow client (slowloris) is cut off by the header and
// read timeouts; the websocket route lifts the read and write deadlines for
// its connection and keeps its own (see web.NewWatchHandler).
const (
	readHeaderTimeout = 5 * time.Second   // time to send the request line and headers
	readTimeout       = 60 * time.Second  // the whole request, body included (an import)
	writeTimeout      = 60 * time.Second  // the whole answer (an export)
	idleTimeout       = 120 * time.Second // a keep-alive connection between requests
	shutdownTimeout   = 10 * time.Second  // requests in flight get this long to finish
	maxHeaderBytes    = 64 << 10          // larger headers are answered 431
)

// serveConfig is what the flags of `pykv serve` say.
type serveConfig struct {
	addr           string
	dataDir        string
	fsync          string
	maxKeyBytes    int
	maxValueBytes  int
	maxTxnOps      int
	maxBodyBytes   int64
	maxImportBytes int64
	maxConnsPerIP  int
	logFormat      string
	logLevel       string
	authToken      string
	readToken      string
	insecureNoAuth bool
	hotLoop        bool // GET and PUT /v1/kv/{key} on web.HotLoop (default); false: net/http for everything
	poller         bool // the hot loop's idle connections on one epoll thread (default); false: a goroutine each
	// Cluster mode (set when nodeID is).
	nodeID         string
	raftAddr       string
	raftAdv        string
	snapEntries    uint64
	join           string
	peerCert       string
	peerKey        string
	peerCA         string
	allowedHosts   []string
	trustedProxies []netip.Prefix
	allowedOrigins []string // browser origins besides the server's own that may open /v1/watch
	sessionTTL     time.Duration
}

// Bounds of --session-ttl: a sign-in shorter than a minute is gone before
// anyone can use the dashboard, and the cookie's lifetime is counted in
// seconds; longer than engine.MaxTTL (100 years) is a mistake.
const (
	minSessionTTL = time.Minute
	maxSessionTTL = engine.MaxTTL
)

func parseServe(args []string, getenv func(string) string, stderr io.Writer) (serveConfig, error) {
	var c serveConfig
	fs := newFlagSet("serve", stderr)
	fs.StringVar(&c.addr, "addr", "127.0.0.1:8080", "address to listen on (host:port; port 0 picks a free one)")
	fs.StringVar(&c.dataDir, "data-dir", "./data", "folder holding the snapshot and the log")
	fs.StringVar(&c.fsync, "fsync", "always", "when writes reach the disk: always (before each answer), everysec, never")
	fs.IntVar(&c.maxKeyBytes, "max-key-bytes", engine.DefaultMaxKeyBytes, "longest key, in bytes")
	fs.IntVar(&c.maxValueBytes, "max-value-bytes", engine.DefaultMaxValueBytes, "longest value, in bytes")
	fs.IntVar(&c.maxTxnOps, "max-txn-ops", engine.DefaultMaxTxnOps, "most operations in one transaction")
	fs.Int64Var(&c.maxBodyBytes, "max-body-bytes", web.DefaultMaxBodyBytes, "largest JSON request body (a transaction), in bytes")
	fs.Int64Var(&c.maxImportBytes, "max-import-bytes", web.DefaultMaxImportBytes, "largest import file, in bytes")
	fs.IntVar(&c.maxConnsPerIP, "max-conns-per-ip", 256, "most open connections from one IP address (0: no limit)")
	fs.StringVar(&c.logFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&c.logLevel, "log-level", "info", "least severe log level: debug, info, warn, error")
	fs.StringVar(&c.authToken, "auth-token", "", "token for reading and writing (prefer PYKV_AUTH_TOKEN: flags show in ps)")
	fs.StringVar(&c.readToken, "read-token", "", "token for reading only (prefer PYKV_READ_TOKEN)")
	fs.BoolVar(&c.hotLoop, "hot-loop", true, "serve GET and PUT /v1/kv/{key} on PyKV's own connection loop, everything else through net/http; false: net/http for every request (for diagnosis)")
	fs.BoolVar(&c.poller, "poller", true, "with the hot loop, on Linux and a single node: serve idle connections from one epoll thread that reads them all, commits their PUTs together in line and answers them; false: a goroutine per connection (for diagnosis, or a machine with many cores)")
	fs.BoolVar(&c.insecureNoAuth, "insecure-no-auth", false, "allow listening beyond loopback without a token")
	fs.DurationVar(&c.sessionTTL, "session-ttl", web.DefaultSessionTTL, "how long a dashboard sign-in lasts before the browser must sign in again with the token (1m to 100 years)")
	fs.StringVar(&c.nodeID, "node-id", "", "cluster mode: this member's ID, unique and fixed for life (empty: a single node)")
	fs.StringVar(&c.raftAddr, "raft-addr", "", "cluster mode: host:port for raft traffic between members, as peers reach it")
	fs.StringVar(&c.raftAdv, "raft-advertise", "", "cluster mode: host:port peers dial to reach --raft-addr, when something forwards between (default: --raft-addr)")
	fs.Uint64Var(&c.snapEntries, "raft-snapshot-entries", 8192, "cluster mode: raft log entries between snapshots (and kept after one, plus 2048)")
	fs.StringVar(&c.join, "join", "", "cluster mode: HTTP URL of any member, to join its cluster (ignored once a member)")
	fs.StringVar(&c.peerCert, "peer-cert", "", "cluster mode: PEM certificate this member shows its peers (mutual TLS)")
	fs.StringVar(&c.peerKey, "peer-key", "", "cluster mode: PEM private key of --peer-cert")
	fs.StringVar(&c.peerCA, "peer-ca", "", "cluster mode: PEM CA certificate that signs every member's certificate")
	fs.Func("allowed-hosts", "comma-separated host names (\"*.example.com\" for the names under it, \"*\" for any) that requests may name in Host, "+
		"besides loopback names and addresses and the address they connected to; others get 421 (DNS rebinding)", func(v string) error {
		c.allowedHosts = nil
		for _, h := range strings.Split(v, ",") {
			if h = strings.TrimSpace(h); h != "" {
				if strings.ContainsAny(h, "/ ") {
					return fmt.Errorf("%q is not a host name", h)
				}
				c.allowedHosts = append(c.allowedHosts, h)
			}
		}
		return nil
	})
	fs.Func("allowed-origins", "comma-separated browser origins (scheme://host[:port], \"*\" for any) that may open the watch stream "+
		"(GET /v1/watch) besides the server's own; requests without an Origin (programs, not browsers) are always allowed", func(v string) error {
		origins, err := parseOrigins(v)
		c.allowedOrigins = origins
		return err
	})
	fs.Func("trusted-proxies", "comma-separated addresses or CIDR ranges of reverse proxies whose X-Forwarded-For and X-Forwarded-Proto are believed", func(v string) error {
		c.trustedProxies = nil
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p == "" {
				continue
			}
			pfx, err := netip.ParsePrefix(p)
			if err != nil {
				a, aerr := netip.ParseAddr(p)
				if aerr != nil {
					return fmt.Errorf("%q is neither an IP address nor a CIDR range like 10.0.0.0/8", p)
				}
				pfx = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
			}
			c.trustedProxies = append(c.trustedProxies, pfx.Masked())
		}
		return nil
	})
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: pykv serve [flags]\n\nEvery flag can also be set by the environment variable PYKV_<FLAG>,\ne.g. PYKV_DATA_DIR for --data-dir.\n\n")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args, getenv); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, usageError("serve takes no arguments, got %q", fs.Args())
	}
	if c.logFormat != "text" && c.logFormat != "json" {
		return c, usageError("--log-format (or PYKV_LOG_FORMAT) must be text or json, not %q", c.logFormat)
	}
	if _, err := persist.ParseSyncMode(c.fsync); err != nil {
		return c, usageError("--fsync (or PYKV_FSYNC): %v", err)
	}
	if c.authToken != "" && c.authToken == c.readToken {
		return c, usageError("--auth-token and --read-token must differ")
	}
	if c.sessionTTL < minSessionTTL || c.sessionTTL > maxSessionTTL {
		return c, usageError("--session-ttl (or PYKV_SESSION_TTL) must be between %v and 100 years (876000h), not %v", minSessionTTL, c.sessionTTL)
	}
	if err := checkClusterFlags(c); err != nil {
		return c, err
	}
	for _, t := range []struct{ flag, v string }{{"--auth-token", c.authToken}, {"--read-token", c.readToken}} {
		if t.v != "" && len(t.v) < web.MinTokenBytes {
			return c, usageError("%s is %d bytes; tokens must be at least %d bytes (make one with: openssl rand -hex 16)",
				t.flag, len(t.v), web.MinTokenBytes)
		}
	}
	return c, nil
}

// parseOrigins splits a comma-separated list of browser origins, each
// "*" or scheme://host[:port] with the scheme http or https and nothing
// after the host (an Origin header never has a path, so an entry with one
// would match nothing).
func parseOrigins(v string) ([]string, error) {
	var origins []string
	for _, o := range strings.Split(v, ",") {
		if o = strings.TrimSpace(o); o == "" {
			continue
		}
		if o != "*" {
			u, err := url.Parse(o)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
				strings.TrimSuffix(u.Path, "/") != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
				return nil, fmt.Errorf("%q is not an origin like https://example.com or http://localhost:3000", o)
			}
		}
		origins = append(origins, o)
	}
	return origins, nil
}

// newLogger returns the server's logger on w.
func newLogger(c serveConfig, w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.logLevel)); err != nil {
		return nil, usageError("--log-level (or PYKV_LOG_LEVEL): %v", err)
	}
	opts := &slog.HandlerOptions{Level: level}
	if c.logFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return slog.New(slog.NewTextHandler(w, opts)), nil
}

// serve runs the server until ctx is cancelled, then shuts down in order:
// stop accepting, let requests in flight finish (up to shutdownTimeout),
// close the store (which flushes and fsyncs the log). It prints where the
// dashboard and docs are on stdout and logs on stderr.
func serve(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	c, err := parseServe(args, getenv, stderr)
	if err != nil {
		return err
	}
	logger, err := newLogger(c, stderr)
	if err != nil {
		return err
	}
	host, _, err := net.SplitHostPort(c.addr)
	if err != nil {
		return usageError("--addr %q: %v", c.addr, err)
	}
	if c.authToken == "" && c.readToken == "" && !isLoopback(host) && !c.insecureNoAuth {
		return usageError("refusing to listen on %s without a token: set --auth-token (or PYKV_AUTH_TOKEN), "+
			"listen on 127.0.0.1, or pass --insecure-no-auth", c.addr)
	}

	metrics := web.NewMetrics()
	if c.nodeID != "" {
		return serveCluster(ctx, c, logger, metrics, stdout)
	}
	if err := refuseClusterFolder(c.dataDir); err != nil {
		return err
	}
	db, err := persist.Open(c.dataDir, persist.Options{
		Sync:         persist.SyncMode(c.fsync),
		Engine:       engine.Options{MaxKeyBytes: c.maxKeyBytes, MaxValueBytes: c.maxValueBytes, MaxTxnOps: c.maxTxnOps},
		Logger:       logger,
		SyncObserver: metrics.ObserveFsync,
	})
	if errors.Is(err, persist.ErrLocked) {
		return fmt.Errorf("data folder %s is in use by another PyKV process; stop it first or choose another --data-dir: %w", c.dataDir, err)
	}
	if err != nil {
		return fmt.Errorf("open data folder %s: %w", c.dataDir, err)
	}
	// Closed last, after the HTTP server has stopped; an error closing it
	// (the final fsync) is the command's error.
	closeDB := func() error {
		if err := db.Close(); err != nil {
			return fmt.Errorf("close store: %w", err)
		}
		logger.Info("store closed", "rev", db.Store().Rev())
		return nil
	}

	ln, err := net.Listen("tcp", c.addr)
	if err != nil {
		return errors.Join(fmt.Errorf("listen on %s: %w", c.addr, err), closeDB())
	}
	ln = limitConnsPerIP(web.ProblemListener(ln, maxHeaderBytes), c.maxConnsPerIP)

	srv := newHTTPServer(ctx, c, web.Options{Store: db.Store(), DB: db, Logger: logger, Metrics: metrics})

	base := "http://" + ln.Addr().String()
	fmt.Fprintf(stdout, "PyKV serving %s (data in %s, fsync %s)\n  dashboard  %s/\n  API docs   %s/docs\n",
		base, c.dataDir, c.fsync, base, base)
	logger.Info("listening", "addr", ln.Addr().String(), "data_dir", c.dataDir, "fsync", c.fsync,
		"auth", c.authToken != "" || c.readToken != "")

	return serveUntilDone(ctx, srv, ln, closeDB, logger)
}

// httpServer is what serveUntilDone runs: an *http.Server, or the hot loop
// in front of one (web.HotLoop), which serves, shuts down and closes the
// same way.
type httpServer interface {
	Serve(net.Listener) error
	Shutdown(context.Context) error
	Close() error
}

// newHTTPServer builds the HTTP server both modes run: o names the store
// (a single node's or a cluster member's) and the logger and metrics; the
// limits, tokens, host and origin rules and timeouts come from c, so a flag
// added here reaches both modes. With --hot-loop (the default) GET and PUT
// of a key are served by web.HotLoop, with the same timeouts (in cluster
// mode too), and every other request (every request with --log-level
// debug, which the loop leaves to net/http) by the http.Server.
func newHTTPServer(ctx context.Context, c serveConfig, o web.Options) httpServer {
	o.MaxBodyBytes, o.MaxImportBytes = c.maxBodyBytes, c.maxImportBytes
	o.AuthToken, o.ReadToken = c.authToken, c.readToken
	o.AllowedHosts, o.TrustedProxies = c.allowedHosts, c.trustedProxies
	o.SessionTTL = c.sessionTTL
	o.NoPoller = !c.poller
	o.Static = staticFS()
	o.Watch = web.WatchOptions{AllowedOrigins: c.allowedOrigins}
	srv := &http.Server{
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(o.Logger.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	// Shutdown runs this once it has closed the listener.
	srv.RegisterOnShutdown(trackUnusedConns(srv))
	if c.hotLoop {
		return web.NewHotLoop(o, srv) // sets srv.Handler
	}
	srv.Handler = web.NewServer(o)
	return srv
}

// serveUntilDone serves on ln until ctx is cancelled, then shuts down in
// order: stop accepting, close idle connections, let requests in flight
// finish (up to shutdownTimeout; the hot loop's pipelined batches are
// answered, their writes awaited), then closeStore, whose error is the
// command's.
func serveUntilDone(ctx context.Context, srv httpServer, ln net.Listener, closeStore func() error, logger *slog.Logger) error {
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	select {
	case err := <-served:
		// Serve only returns on its own when the listener fails.
		return errors.Join(fmt.Errorf("serve: %w", err), closeStore())
	case <-ctx.Done():
	}
	logger.Info("shutting down", "timeout", shutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	var shutErr error
	if err := srv.Shutdown(sctx); err != nil {
		logger.Warn("requests still running at the shutdown timeout were cut off", "err", err)
		_ = srv.Close()
	}
	<-served // http.ErrServerClosed
	// Closing the store also ends open watch streams (they are hijacked
	// connections, which Shutdown does not wait for).
	if err := closeStore(); err != nil {
		shutErr = err
	}
	return shutErr
}

// isLoopback reports whether host names only this machine.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// trackUnusedConns follows the server's connections and returns a function
// that closes those on which no request has started. Shutdown waits up to
// five seconds for such connections, which clients open ahead of need
// (Go's transport dials a spare one when a request waits for a
// connection); closing them at once lets a shutdown finish as soon as the
// requests in flight do. Registered with RegisterOnShutdown, it runs after
// the listener is closed, so no connection can become new after it. A
// request a client had sent on such a connection, unread yet, is then
// refused with the connection; it was not applied.
func trackUnusedConns(srv *http.Server) (closeUnused func()) {
	var mu sync.Mutex
	unused := map[net.Conn]bool{}
	srv.ConnState = func(c net.Conn, st http.ConnState) {
		mu.Lock()
		defer mu.Unlock()
		if st == http.StateNew {
			unused[c] = true
		} else {
			delete(unused, c)
		}
	}
	return func() {
		mu.Lock()
		defer mu.Unlock()
		for c := range unused {
			c.Close()
		}
	}
}

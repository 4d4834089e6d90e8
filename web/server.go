package web

import (
	"io/fs"
	"log/slog"
	"net/http"
	"net/netip"
	"time"

	"github.com/pykv/pykv/engine"
	"github.com/pykv/pykv/persist/cluster"
)

// Defaults for the zero values of Options.
const (
	// DefaultMaxBodyBytes bounds a JSON request body (a transaction, a
	// legacy put). Values alone are bounded by the store's MaxValueBytes.
	DefaultMaxBodyBytes = 16 << 20
	// DefaultMaxImportBytes bounds the body of POST /v1/import, which is
	// held in memory while it is checked.
	DefaultMaxImportBytes = 256 << 20
	// DefaultListLimit and MaxListLimit bound a page of GET /v1/kv.
	DefaultListLimit = 100
	MaxListLimit     = 1000
)

// Options configure the server. Store is required; the zero value of every
// other field gives the defaults.
type Options struct {
	Store *engine.Store
	// DB is the persistence behind Store, for /v1/status, /readyz, export
	// and import. Without one those endpoints answer 503.
	DB DB
	// Logger receives internal errors and recovered panics (default: discard).
	Logger *slog.Logger
	// Metrics, when set, is served at /metrics and counts every request.
	// Make one with NewMetrics so persist can report fsyncs into it.
	Metrics *Metrics
	// MaxBodyBytes bounds JSON request bodies (default 16 MiB);
	// MaxImportBytes bounds an import (default 256 MiB).
	MaxBodyBytes   int64
	MaxImportBytes int64
	// AuthToken grants reading and writing; ReadToken grants reading only.
	// With neither set, every request is allowed (see Auth in doc.go).
	AuthToken string
	ReadToken string
	// SessionTTL is how long a browser sign-in lasts (default 12 hours).
	SessionTTL time.Duration
	// AllowedHosts names the hosts, besides loopback names and addresses
	// and the address a client connected to, that requests may name in
	// their Host header; others are refused with 421 (DNS rebinding).
	// "*.example.com" allows the names under example.com, "*" any host.
	AllowedHosts []string
	// TrustedProxies are the reverse proxies whose X-Forwarded-For (the
	// client's address, for rate limits) and X-Forwarded-Proto (https
	// makes the sign-in cookie Secure) are believed.
	TrustedProxies []netip.Prefix
	// NoPoller makes NewHotLoop serve every connection on its own
	// goroutine, without the poller (see hotpoll_linux.go), which it
	// otherwise uses on Linux for a single node.
	NoPoller bool
	// Static holds the dashboard's assets, served under /static/ (nil: none).
	Static fs.FS
	// Watch configures the websocket change stream (GET /v1/watch): the
	// browser origins allowed besides the server's own, batching, pings
	// and timeouts. The zero value gives the defaults and same-origin
	// browsers only. In cluster mode its Leaderless is set for it when nil.
	Watch WatchOptions
	// Cluster, when set, makes this server a cluster member's: Store is
	// its replicated store, writes go through the cluster (a follower
	// forwards them to the leader), reads are linearizable unless they
	// ask for ?consistency=local, and /v1/cluster is served. DB is then
	// ignored. Nil: a single node.
	Cluster *cluster.Node
}

// server holds what the handlers close over.
type server struct {
	store   *engine.Store
	db      DB
	log     *slog.Logger
	metrics *Metrics
	opts    Options
	cluster *clusterState // nil on a single node

	// noFastPath sends every request through chi (tests compare the two).
	noFastPath bool

	hosts    hostAllowList
	tokens   tokenDigests
	failures *failLimiter
	sessions *sessions
}

// NewServer returns the HTTP handler of the whole API. It panics if
// opts.Store is nil, which is a programming error.
func NewServer(opts Options) http.Handler { return newServer(opts, false) }

func newServer(opts Options, noFastPath bool) http.Handler {
	return buildServer(opts, noFastPath).routes()
}

func buildServer(opts Options, noFastPath bool) *server {
	if opts.Store == nil && opts.Cluster == nil {
		panic("web.NewServer: Options.Store is nil")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if opts.MaxImportBytes <= 0 {
		opts.MaxImportBytes = DefaultMaxImportBytes
	}
	if opts.SessionTTL <= 0 {
		opts.SessionTTL = DefaultSessionTTL
	}
	s := &server{store: opts.Store, db: opts.DB, log: opts.Logger, metrics: opts.Metrics, opts: opts,
		hosts: newHostAllowList(opts.AllowedHosts), failures: newFailLimiter(), sessions: newSessions(opts.SessionTTL),
		tokens: newTokenDigests(opts), noFastPath: noFastPath}
	if opts.Cluster != nil {
		s.store = opts.Cluster.Store()
		s.db = clusterDB{node: opts.Cluster}
		s.cluster = newClusterState(s, opts.Cluster)
	}
	return s
}

package web

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/pykv/pykv/engine"
)

// latencyBuckets suit a store that answers in well under a millisecond:
// Prometheus's default buckets start at 5 ms and would hide everything.
var latencyBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}

// Metrics are the Prometheus metrics of a server and its store, on a
// registry of their own (so tests can make several). Make them before
// opening the store, so its fsyncs can be observed with ObserveFsync.
type Metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	fsync    prometheus.Histogram
	routes   sync.Map // routeKey -> *routeSeries, see series

	mu    sync.Mutex // guards store and db, set by NewServer
	store *engine.Store
	db    DB
}

// NewMetrics returns the metrics with Go runtime and process metrics
// registered beside PyKV's own.
func NewMetrics() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pykv_http_requests_total",
			Help: "HTTP requests answered, by route pattern, method and status code.",
		}, []string{"route", "method", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "pykv_http_request_duration_seconds",
			Help:    "Time to answer HTTP requests, by route pattern and method.",
			Buckets: latencyBuckets,
		}, []string{"route", "method"}),
		fsync: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "pykv_fsync_duration_seconds",
			Help:    "Latency of each fsync of the log.",
			Buckets: latencyBuckets,
		}),
	}
	m.reg.MustRegister(m.requests, m.latency, m.fsync, (*storeCollector)(m),
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// ObserveFsync records one fsync's latency; pass it as persist's SyncObserver.
func (m *Metrics) ObserveFsync(d time.Duration) { m.fsync.Observe(d.Seconds()) }

// attach makes the store's figures part of the metrics.
func (m *Metrics) attach(store *engine.Store, db DB) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.store, m.db = store, db
}

// storeCollector reads the store's figures at each scrape.
type storeCollector Metrics

var (
	descRev      = prometheus.NewDesc("pykv_revision", "Revision of the last write.", nil, nil)
	descKeys     = prometheus.NewDesc("pykv_keys", "Keys held (including expired keys not yet removed).", nil, nil)
	descLog      = prometheus.NewDesc("pykv_log_bytes", "Size of the write-ahead log.", nil, nil)
	descSnap     = prometheus.NewDesc("pykv_snapshot_bytes", "Size of the last snapshot.", nil, nil)
	descCompact  = prometheus.NewDesc("pykv_compactions_total", "Log compactions since start.", nil, nil)
	descFsyncs   = prometheus.NewDesc("pykv_fsyncs_total", "Fsyncs of the log since start.", nil, nil)
	descWritable = prometheus.NewDesc("pykv_writable", "1 while the store takes writes, 0 after a storage failure.", nil, nil)

	// Cluster mode only.
	descTerm          = prometheus.NewDesc("pykv_raft_term", "Current raft term.", nil, nil)
	descCommitIndex   = prometheus.NewDesc("pykv_raft_commit_index", "Highest raft log index this member knows is committed.", nil, nil)
	descAppliedIndex  = prometheus.NewDesc("pykv_raft_applied_index", "Raft log index this member has applied to its store.", nil, nil)
	descLastIndex     = prometheus.NewDesc("pykv_raft_last_index", "Last raft log index this member holds.", nil, nil)
	descApplyLag      = prometheus.NewDesc("pykv_raft_apply_lag", "Committed entries this member has not applied yet (replication lag as this member sees it).", nil, nil)
	descLeader        = prometheus.NewDesc("pykv_raft_is_leader", "1 on the leader, 0 elsewhere.", nil, nil)
	descHasLeader     = prometheus.NewDesc("pykv_raft_has_leader", "1 while this member knows a leader.", nil, nil)
	descLeaderChanges = prometheus.NewDesc("pykv_raft_leader_changes_total", "Leader changes this member has seen since it started.", nil, nil)
	descLastContact   = prometheus.NewDesc("pykv_raft_last_contact_seconds", "Seconds since a follower last heard from the leader (0 on the leader).", nil, nil)
)

var raftDescs = []*prometheus.Desc{descTerm, descCommitIndex, descAppliedIndex, descLastIndex, descApplyLag, descLeader, descHasLeader, descLeaderChanges, descLastContact}

func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRev, descKeys, descLog, descSnap, descCompact, descFsyncs, descWritable} {
		ch <- d
	}
	for _, d := range raftDescs {
		ch <- d
	}
}

func (c *storeCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	store, db := c.store, c.db
	c.mu.Unlock()
	if store == nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(descRev, prometheus.GaugeValue, float64(store.Rev()))
	ch <- prometheus.MustNewConstMetric(descKeys, prometheus.GaugeValue, float64(store.Len()))
	collectDB(ch, db)
}

// instrument counts and times every request by its route pattern (not its
// path, which would make one series per key), method (see methods) and
// status. The series a request lands in are looked up once per route,
// method and status and kept (see routeSeries): prometheus's own lookup
// hashes the label values on every call, and that was twice per request.
func (s *server) instrument(next http.Handler) http.Handler {
	if s.metrics == nil {
		return next
	}
	s.metrics.attach(s.store, s.db)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ww := statusWriter{ResponseWriter: w}
		next.ServeHTTP(&ww, r)
		// chi (and the key routes' fast path) leave the matched route's
		// pattern in r.Pattern; a request no route took has none.
		route := r.Pattern
		if route == "" {
			route = "unmatched"
		}
		code := ww.code
		if code == 0 {
			code = http.StatusOK
		}
		series := s.metrics.series(route, methodIndex(r.Method))
		series.counter(code).Inc()
		series.latency.Observe(time.Since(start).Seconds())
	})
}

// methods are the method labels: the standard methods, then "other" for
// the rest. The method is the client's to choose and instrument runs
// before authentication, so taking it as it came would let anyone add a
// series per made-up method, each kept for good (2,000 requests grew
// /metrics by 10 MB). Every label comes from a fixed set: route patterns
// (or "unmatched"), these methods, status codes.
var methods = [...]string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodDelete,
	http.MethodOptions, http.MethodPatch, http.MethodConnect, http.MethodTrace, "other"}

// methodIndex returns the index in methods of m's label: its own when it
// is a standard method, "other"'s when not (a client's "other" included).
func methodIndex(m string) int {
	if i := slices.Index(methods[:len(methods)-1], m); i >= 0 {
		return i
	}
	return len(methods) - 1
}

// routeSeries holds the series of one route pattern and method: its
// latency histogram and a counter per status code it has answered. Both
// are taken from the metric vectors once and kept; a route's set of codes
// is small, so it is a slice copied on the rare insert and read without a
// lock.
type routeSeries struct {
	route, method string
	requests      *prometheus.CounterVec
	latency       prometheus.Observer

	mu    sync.Mutex // serializes inserts into codes
	codes atomic.Pointer[[]codeCounter]
}

type codeCounter struct {
	code int
	c    prometheus.Counter
}

// counter returns the request counter of status code.
func (rs *routeSeries) counter(code int) prometheus.Counter {
	if p := rs.codes.Load(); p != nil {
		for _, cc := range *p {
			if cc.code == code {
				return cc.c
			}
		}
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	var old []codeCounter
	if p := rs.codes.Load(); p != nil {
		old = *p
		for _, cc := range old {
			if cc.code == code {
				return cc.c
			}
		}
	}
	c := rs.requests.WithLabelValues(rs.route, rs.method, statusLabel(code))
	codes := append(slices.Clip(old), codeCounter{code, c})
	rs.codes.Store(&codes)
	return c
}

// routeKey names a routeSeries.
type routeKey struct {
	route  string
	method int
}

// series returns the series of route and methods[method], made on first
// use. Routes are the router's patterns and "unmatched", so the map stays
// as small as the route table times the method labels.
func (m *Metrics) series(route string, method int) *routeSeries {
	key := routeKey{route, method}
	if rs, ok := m.routes.Load(key); ok {
		return rs.(*routeSeries)
	}
	rs := &routeSeries{route: route, method: methods[method], requests: m.requests,
		latency: m.latency.WithLabelValues(route, methods[method])}
	actual, _ := m.routes.LoadOrStore(key, rs)
	return actual.(*routeSeries)
}

// handleMetrics serves the metrics in the Prometheus text format.
func (s *server) handleMetrics(w http.ResponseWriter, r *http.Request) {
	if s.metrics == nil {
		s.writeError(w, r, errStatus(http.StatusNotFound, "This server was started without metrics."))
		return
	}
	promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{}).ServeHTTP(w, r)
}

// statusWriter records the status of an answer for the metrics. It is
// lighter than chi's WrapResponseWriter, which it replaced on the hot path
// (about 7% more GETs a second): no WriteHeader(200) of its own before the
// first Write, and WriteString passes strings through without a copy.
// Flush and deadlines reach the connection through Unwrap
// (http.ResponseController); a hijacked connection (the websocket upgrade)
// is recorded as 101.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 && code >= 200 { // 1xx answers are interim
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) WriteString(s string) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return io.WriteString(w.ResponseWriter, s)
}

func (w *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, rw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil && w.code == 0 {
		w.code = http.StatusSwitchingProtocols
	}
	return conn, rw, err
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// statusLabels holds the label of every status code, formatted once.
var statusLabels = func() (l [600]string) {
	for code := range l {
		l[code] = strconv.Itoa(code)
	}
	return l
}()

// statusLabel returns code as a metric label without allocating.
func statusLabel(code int) string {
	if code >= 0 && code < len(statusLabels) {
		return statusLabels[code]
	}
	return strconv.Itoa(code)
}

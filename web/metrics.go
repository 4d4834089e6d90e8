package web

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
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
// path, which would make one series per key), method (see methodLabel) and
// status.
func (s *server) instrument(next http.Handler) http.Handler {
	if s.metrics == nil {
		return next
	}
	s.metrics.attach(s.store, s.db)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ww := statusWriter{ResponseWriter: w}
		next.ServeHTTP(&ww, r)
		route := chi.RouteContext(r.Context()).RoutePattern()
		if route == "" {
			route = "unmatched"
		}
		code := ww.code
		if code == 0 {
			code = http.StatusOK
		}
		method := methodLabel(r.Method)
		s.metrics.requests.WithLabelValues(route, method, statusLabel(code)).Inc()
		s.metrics.latency.WithLabelValues(route, method).Observe(time.Since(start).Seconds())
	})
}

// methodLabel returns the method as a metric label: the standard methods
// by name, anything else as "other". The method is the client's to choose
// and instrument runs before authentication, so taking it as it came would
// let anyone add a series per made-up method, each kept for good (2,000
// requests grew /metrics by 10 MB). Every label now comes from a fixed
// set: route patterns (or "unmatched"), these methods, status codes.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodDelete,
		http.MethodOptions, http.MethodPatch, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "other"
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

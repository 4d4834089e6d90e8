package web_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	iofs "io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pykv/pykv/engine"
	"github.com/pykv/pykv/persist"
	"github.com/pykv/pykv/web"
)

// The load of issue 3's targets: 32 connections, 10k keys, 100-byte values.
const (
	benchConns     = 32
	benchKeys      = 10_000
	benchValueSize = 100
)

// baselineRate is the constant-answer server's requests per second in this
// run, so the others can report their ratio to it.
var baselineRate atomic.Uint64

// BenchmarkHTTP measures requests per second and p99 latency over real
// loopback connections: a bare net/http handler answering a constant (the
// ceiling of this machine and client), then GET and PUT /v1/kv/{key} on a
// store with fsync always.
//
// The fsync-always PUT runs also report what the disk did: the median time
// of a quiet fsync, before any load (fsync-quiet-ms), the median and mean
// fsync of the log under the load (fsync-ms, fsync-mean-ms), and how many
// writes shared an fsync. The last run, put-disk-at-quiet-latency, is a
// diagnostic and not a mode of PyKV: the log's writes reach the page cache
// as usual, but each fsync of the log is replaced by a sleep as long as the
// quiet fsync. It estimates what the server would do if fsyncs kept their
// quiet latency under load, telling the store's own limits apart from the
// disk's. The estimate is generous: a sleep costs no CPU and gives up its
// P at once, where a real fsync costs CPU and keeps its P for a while.
func BenchmarkHTTP(b *testing.B) {
	value := strings.Repeat("v", benchValueSize)
	quiet := quietFsync(b)
	b.Run("baseline", func(b *testing.B) {
		url := benchListen(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, value)
		}))
		rate := benchLoad(b, url, false, func(buf []byte, i int) []byte {
			return append(buf, "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"...)
		})
		baselineRate.Store(uint64(rate))
	})

	put := func(b *testing.B, url string, fsyncs *fsyncRecorder) {
		fsyncs.take() // drop the fsyncs of filling the store
		benchLoad(b, url, true, func(buf []byte, i int) []byte {
			return putRequest(buf, benchKey(i%benchKeys), value)
		})
		if d := fsyncs.take(); len(d) > 0 {
			var sum time.Duration
			for _, x := range d {
				sum += x
			}
			b.ReportMetric(ms(d[len(d)/2]), "fsync-ms")
			b.ReportMetric(ms(sum/time.Duration(len(d))), "fsync-mean-ms")
			b.ReportMetric(float64(b.N)/float64(len(d)), "writes/fsync")
		}
		b.ReportMetric(ms(quiet), "fsync-quiet-ms")
	}
	var fsyncs fsyncRecorder
	url := benchStore(b, persist.Options{Sync: persist.SyncAlways, SyncObserver: fsyncs.observe}, value)
	b.Run("get", func(b *testing.B) {
		benchLoad(b, url, true, func(buf []byte, i int) []byte {
			return getRequest(buf, benchKey(i%benchKeys))
		})
	})
	b.Run("put-fsync-always", func(b *testing.B) { put(b, url, &fsyncs) })
	// The same without waiting for the disk: what the HTTP layer and the
	// store cost, for telling them apart from fsync latency.
	urlNever := benchStore(b, persist.Options{Sync: persist.SyncNever}, value)
	b.Run("put-fsync-never", func(b *testing.B) {
		benchLoad(b, urlNever, true, func(buf []byte, i int) []byte {
			return putRequest(buf, benchKey(i%benchKeys), value)
		})
	})
	var simFsyncs fsyncRecorder
	urlSim := benchStore(b, persist.Options{Sync: persist.SyncAlways, SyncObserver: simFsyncs.observe,
		FS: sleepSyncFS{d: quiet}}, value)
	b.Run("put-disk-at-quiet-latency", func(b *testing.B) { put(b, urlSim, &simFsyncs) })
}

// benchStore opens a store with benchKeys keys in a temporary folder and
// serves the API on it until the benchmark ends.
func benchStore(b *testing.B, opts persist.Options, value string) string {
	db, err := persist.Open(b.TempDir(), opts)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	store := db.Store()
	for i := 0; i < benchKeys; i += 100 { // batches: one fsync per 100 keys
		ops := make([]engine.Op, 100)
		for j := range ops {
			ops[j] = engine.Op{Type: engine.OpPut, Key: benchKey(i + j), Value: value}
		}
		if _, err := store.Txn(ops); err != nil {
			b.Fatal(err)
		}
	}
	return benchListen(b, web.NewServer(web.Options{Store: store, DB: db, Metrics: web.NewMetrics()}))
}

// quietFsync returns the median time of appending a group commit's worth
// of log (1 KiB: about 7 records of a 100-byte value, the groups this
// benchmark's load forms) to a file and fsyncing it, on the disk the
// benchmark's stores use, before any load runs.
func quietFsync(b *testing.B) time.Duration {
	f, err := os.Create(filepath.Join(b.TempDir(), "probe"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	rec := bytes.Repeat([]byte("r"), 1<<10)
	d := make([]time.Duration, 200)
	for i := range d {
		start := time.Now()
		if _, err := f.Write(rec); err != nil {
			b.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
		d[i] = time.Since(start)
	}
	slices.Sort(d)
	return d[len(d)/2]
}

// fsyncRecorder keeps the latency of every fsync of a store (its
// persist.Options.SyncObserver).
type fsyncRecorder struct {
	mu sync.Mutex
	d  []time.Duration
}

func (r *fsyncRecorder) observe(d time.Duration) {
	r.mu.Lock()
	r.d = append(r.d, d)
	r.mu.Unlock()
}

// take returns the latencies recorded since the last take, sorted.
func (r *fsyncRecorder) take() []time.Duration {
	r.mu.Lock()
	d := r.d
	r.d = nil
	r.mu.Unlock()
	slices.Sort(d)
	return d
}

// cpuSample is a reading of CPU time: see sampleCPU.
type cpuSample struct {
	proc        time.Duration // used by this process
	busy, total int64         // the machine's, in clock ticks
	ok          bool
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// sleepSyncFS is the real file system, except that an fsync of a log
// segment (wal-*.jsonl) sleeps for d instead (see BenchmarkHTTP): a
// simulated disk, for diagnosis only. Snapshots written by compaction are
// fsynced for real, as they are in the fsync-always run.
type sleepSyncFS struct {
	persist.OSFS
	d time.Duration
}

func (fs sleepSyncFS) OpenFile(name string, flag int, perm iofs.FileMode) (persist.File, error) {
	f, err := fs.OSFS.OpenFile(name, flag, perm)
	if err != nil || !strings.HasPrefix(filepath.Base(name), "wal-") {
		return f, err
	}
	return sleepSyncFile{f, fs.d}, nil
}

type sleepSyncFile struct {
	persist.File
	d time.Duration
}

func (f sleepSyncFile) Sync() error {
	time.Sleep(f.d)
	return nil
}

// Datasync is what the log calls to make its records durable.
func (f sleepSyncFile) Datasync() error {
	time.Sleep(f.d)
	return nil
}

func benchKey(i int) string { return fmt.Sprintf("key-%05d", i) }

// benchListen serves h on a loopback port until the benchmark ends.
func benchListen(b *testing.B, h http.Handler) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	b.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	return "http://" + ln.Addr().String()
}

// benchLoad sends b.N requests from benchConns goroutines, each with its
// own keep-alive connection, and reports req/s, p99-ms and, when the
// baseline ran, the ratio to it. It returns the rate. Where it can read
// them, it also reports the CPU time per request of this process (server
// and load generator together) and how busy the whole machine was.
//
// The load generator is a bare HTTP/1.1 client (see loadConn), not
// net/http's: it shares the two cores with the server, and net/http's
// client would spend as much CPU as the server does. Like wrk, it writes
// each request in one write and reads the answer by its Content-Length.
func benchLoad(b *testing.B, url string, vsBaseline bool, newReq func(buf []byte, i int) []byte) float64 {
	addr := strings.TrimPrefix(url, "http://")
	var (
		next      atomic.Int64
		mu        sync.Mutex
		latencies = make([]time.Duration, 0, b.N)
		failure   atomic.Value // always fmt.Errorf("load: %w"): Store panics on a second type
		wg        sync.WaitGroup
	)
	conns := make([]*loadConn, benchConns)
	for i := range conns {
		c, err := dialLoad(addr)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		conns[i] = c
	}
	b.ResetTimer()
	cpu0 := sampleCPU()
	start := time.Now()
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := make([]time.Duration, 0, b.N/benchConns+1)
			var req []byte
			for {
				i := int(next.Add(1)) - 1
				if i >= b.N {
					break
				}
				req = newReq(req[:0], i)
				t0 := time.Now()
				status, err := c.roundTrip(req)
				if err != nil {
					failure.Store(fmt.Errorf("load: %w", err))
					return
				}
				local = append(local, time.Since(t0))
				if status >= 300 {
					failure.Store(fmt.Errorf("load: %w", fmt.Errorf("request %d: status %d", i, status)))
					return
				}
			}
			mu.Lock()
			latencies = append(latencies, local...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu1 := sampleCPU()
	b.StopTimer()
	if err, ok := failure.Load().(error); ok {
		b.Fatal(err)
	}
	slices.Sort(latencies)
	rate := float64(b.N) / elapsed.Seconds()
	b.ReportMetric(rate, "req/s")
	if len(latencies) > 0 {
		b.ReportMetric(float64(latencies[len(latencies)*99/100].Microseconds())/1000, "p99-ms")
	}
	if cpu0.ok && cpu1.ok {
		b.ReportMetric(float64((cpu1.proc-cpu0.proc).Microseconds())/float64(b.N), "cpu-us/req")
		if total := cpu1.total - cpu0.total; total > 0 {
			b.ReportMetric(100*float64(cpu1.busy-cpu0.busy)/float64(total), "machine-busy-%")
		}
	}
	if base := baselineRate.Load(); base > 0 && vsBaseline {
		b.ReportMetric(rate/float64(base), "x-baseline")
	}
	b.ReportMetric(0, "ns/op") // req/s says it better
	return rate
}

// getRequest and putRequest append one request for key to buf.
func getRequest(buf []byte, key string) []byte {
	buf = append(buf, "GET /v1/kv/"...)
	buf = append(buf, key...)
	return append(buf, " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"...)
}

func putRequest(buf []byte, key, value string) []byte {
	buf = append(buf, "PUT /v1/kv/"...)
	buf = append(buf, key...)
	buf = append(buf, " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\nContent-Length: "...)
	buf = strconv.AppendInt(buf, int64(len(value)), 10)
	buf = append(buf, "\r\n\r\n"...)
	return append(buf, value...)
}

// loadConn is one keep-alive HTTP/1.1 connection of the load generator.
type loadConn struct {
	net.Conn
	r *bufio.Reader
}

func dialLoad(addr string) (*loadConn, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	return &loadConn{Conn: c, r: bufio.NewReaderSize(c, 16<<10)}, nil
}

// roundTrip writes one request and reads its answer, returning the status.
// Answers must carry a Content-Length (the server's small answers do);
// anything else is an error rather than a guess.
func (c *loadConn) roundTrip(req []byte) (int, error) {
	if _, err := c.Write(req); err != nil {
		return 0, err
	}
	line, err := c.r.ReadSlice('\n')
	if err != nil {
		return 0, err
	}
	// "HTTP/1.1 200 OK\r\n"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.1 ")) {
		return 0, fmt.Errorf("bad status line %q", line)
	}
	status, err := strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, fmt.Errorf("bad status line %q", line)
	}
	length := -1
	for {
		line, err = c.r.ReadSlice('\n')
		if err != nil {
			return 0, err
		}
		if len(line) <= 2 { // the blank line ending the headers
			break
		}
		if name, value, ok := bytes.Cut(line, []byte(":")); ok && bytes.EqualFold(name, []byte("Content-Length")) {
			if length, err = strconv.Atoi(string(bytes.TrimSpace(value))); err != nil {
				return 0, fmt.Errorf("bad Content-Length %q", value)
			}
		}
	}
	if length < 0 {
		return 0, fmt.Errorf("status %d: answer without Content-Length", status)
	}
	_, err = c.r.Discard(length)
	return status, err
}

// BenchmarkHandler runs requests through the whole handler chain (router,
// middleware, metrics, store) without sockets: the CPU and allocations that
// PyKV adds to each request on top of net/http's own.
func BenchmarkHandler(b *testing.B) {
	value := strings.Repeat("v", benchValueSize)
	db, err := persist.Open(b.TempDir(), persist.Options{Sync: persist.SyncNever})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	store := db.Store()
	for i := range benchKeys {
		if _, err := store.Put(benchKey(i), value); err != nil {
			b.Fatal(err)
		}
	}
	// The production chain: a token configured (so authentication runs),
	// metrics, the host check and every other middleware.
	const token = "bench-handler-token"
	h := web.NewServer(web.Options{Store: store, DB: db, Metrics: web.NewMetrics(), AuthToken: token})
	run := func(b *testing.B, newReq func(i int) *http.Request) {
		w := &discardWriter{h: http.Header{}}
		i := 0
		for b.Loop() {
			clear(w.h)
			w.code = 0
			h.ServeHTTP(w, newReq(i%benchKeys))
			if w.code >= 300 {
				b.Fatalf("status %d", w.code)
			}
			i++
		}
	}
	// Requests are built by hand, as cheaply as net/http's server does, so
	// that building them does not hide what serving them costs.
	newReq := func(method string, i int, body string) *http.Request {
		r := &http.Request{Method: method, URL: &url.URL{Path: "/v1/kv/" + benchKey(i)}, Proto: "HTTP/1.1",
			ProtoMajor: 1, ProtoMinor: 1, Header: http.Header{"Authorization": {"Bearer " + token}},
			Host: "127.0.0.1", RemoteAddr: "127.0.0.1:1"}
		if body != "" {
			r.Body, r.ContentLength = io.NopCloser(strings.NewReader(body)), int64(len(body))
			r.Header["Content-Type"] = []string{"text/plain"}
		}
		return r.WithContext(context.Background())
	}
	b.Run("get", func(b *testing.B) {
		run(b, func(i int) *http.Request { return newReq("GET", i, "") })
	})
	b.Run("put-fsync-never", func(b *testing.B) {
		run(b, func(i int) *http.Request { return newReq("PUT", i, value) })
	})
}

// discardWriter is a ResponseWriter that keeps only the status.
type discardWriter struct {
	h    http.Header
	code int
}

func (w *discardWriter) Header() http.Header { return w.h }
func (w *discardWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
}
func (w *discardWriter) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return len(p), nil
}

package web_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
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
func BenchmarkHTTP(b *testing.B) {
	value := strings.Repeat("v", benchValueSize)
	b.Run("baseline", func(b *testing.B) {
		url := benchListen(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, value)
		}))
		rate := benchLoad(b, false, func(c *http.Client, i int) (*http.Request, error) {
			return http.NewRequest("GET", url+"/", nil)
		})
		baselineRate.Store(uint64(rate))
	})

	url := benchStore(b, persist.SyncAlways, value)
	b.Run("get", func(b *testing.B) {
		benchLoad(b, true, func(c *http.Client, i int) (*http.Request, error) {
			return http.NewRequest("GET", url+"/v1/kv/"+benchKey(i%benchKeys), nil)
		})
	})
	b.Run("put-fsync-always", func(b *testing.B) {
		benchLoad(b, true, func(c *http.Client, i int) (*http.Request, error) {
			return http.NewRequest("PUT", url+"/v1/kv/"+benchKey(i%benchKeys), strings.NewReader(value))
		})
	})
	// The same without waiting for the disk: what the HTTP layer and the
	// store cost, for telling them apart from fsync latency.
	urlNever := benchStore(b, persist.SyncNever, value)
	b.Run("put-fsync-never", func(b *testing.B) {
		benchLoad(b, true, func(c *http.Client, i int) (*http.Request, error) {
			return http.NewRequest("PUT", urlNever+"/v1/kv/"+benchKey(i%benchKeys), strings.NewReader(value))
		})
	})
}

// benchStore opens a store with benchKeys keys in a temporary folder and
// serves the API on it until the benchmark ends.
func benchStore(b *testing.B, mode persist.SyncMode, value string) string {
	db, err := persist.Open(b.TempDir(), persist.Options{Sync: mode})
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
// baseline ran, the ratio to it. It returns the rate.
func benchLoad(b *testing.B, vsBaseline bool, newReq func(*http.Client, int) (*http.Request, error)) float64 {
	tr := &http.Transport{MaxIdleConnsPerHost: benchConns, MaxConnsPerHost: benchConns, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	var (
		next      atomic.Int64
		mu        sync.Mutex
		latencies = make([]time.Duration, 0, b.N)
		failure   atomic.Value
		wg        sync.WaitGroup
	)
	b.ResetTimer()
	start := time.Now()
	for range benchConns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := make([]time.Duration, 0, b.N/benchConns+1)
			for {
				i := int(next.Add(1)) - 1
				if i >= b.N {
					break
				}
				req, err := newReq(client, i)
				if err != nil {
					failure.Store(err)
					return
				}
				t0 := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					failure.Store(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				local = append(local, time.Since(t0))
				if resp.StatusCode >= 300 {
					failure.Store(fmt.Errorf("%s %s: %s", req.Method, req.URL, resp.Status))
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
	if base := baselineRate.Load(); base > 0 && vsBaseline {
		b.ReportMetric(rate/float64(base), "x-baseline")
	}
	b.ReportMetric(0, "ns/op") // req/s says it better
	return rate
}

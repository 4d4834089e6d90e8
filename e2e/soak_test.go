package e2e

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// soakDuration is how long TestSoak runs: 15 s in make test, 10 minutes in
// make soak (PYKV_SOAK=1), or PYKV_SOAK_DURATION (a Go duration).
func soakDuration() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("PYKV_SOAK_DURATION")); err == nil {
		return d
	}
	if os.Getenv("PYKV_SOAK") != "" {
		return 10 * time.Minute
	}
	return 15 * time.Second
}

// metric reads one unlabelled sample from the server's /metrics.
func metrics(t testing.TB, c *http.Client, base string, names ...string) map[string]float64 {
	t.Helper()
	resp, err := c.Get(base + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && slices.Contains(names, f[0]) {
			v, _ := strconv.ParseFloat(f[1], 64)
			out[f[0]] = v
		}
	}
	for _, n := range names {
		if _, ok := out[n]; !ok {
			t.Fatalf("/metrics has no %s", n)
		}
	}
	return out
}

// TestSoak puts the real server under a steady mixed load (writes, reads,
// listings, 50 stream subscribers) and samples its goroutines, open files
// and resident memory: none may grow without bound. In make soak it also
// holds the p99 latency of every minute to at most twice the first minute's.
func TestSoak(t *testing.T) {
	dur := soakDuration()
	srv := startServer(t)
	c := kvClient()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var errs atomic.Int64

	// 50 subscribers reading the change stream.
	var events atomic.Int64
	wsURL := "ws" + strings.TrimPrefix(srv.URL, "http") + "/v1/watch"
	for range 50 {
		conn, _, err := websocket.DefaultDialer.Dial(wsURL, nil)
		if err != nil {
			t.Fatalf("dial %s: %v", wsURL, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer conn.Close()
			go func() { <-stop; conn.Close() }()
			for {
				if _, _, err := conn.ReadMessage(); err != nil {
					return
				}
				events.Add(1)
			}
		}()
	}

	// Latencies, per window.
	var mu sync.Mutex
	window := dur / 10
	lat := map[int][]time.Duration{}
	start := time.Now()
	record := func(d time.Duration) {
		mu.Lock()
		w := int(time.Since(start) / window)
		lat[w] = append(lat[w], d)
		mu.Unlock()
	}
	worker := func(op func(rng *rand.Rand) error) {
		defer wg.Done()
		rng := rand.New(rand.NewPCG(rand.Uint64(), 1))
		tick := time.NewTicker(5 * time.Millisecond) // a steady 200 operations/s per worker
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			t0 := time.Now()
			if err := op(rng); err != nil {
				errs.Add(1)
				continue
			}
			record(time.Since(t0))
		}
	}
	value := strings.Repeat("x", 100)
	for range 4 {
		wg.Add(2)
		go worker(func(rng *rand.Rand) error {
			_, _, err := putKV(c, srv.URL, fmt.Sprintf("soak/%d", rng.IntN(2000)), value, nil)
			return err
		})
		go worker(func(rng *rand.Rand) error {
			resp, err := c.Get(srv.URL + "/v1/kv/" + url.PathEscape(fmt.Sprintf("soak/%d", rng.IntN(2000))))
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode != 200 && resp.StatusCode != 404 {
				return fmt.Errorf("GET: %s", resp.Status)
			}
			return nil
		})
	}
	wg.Add(1)
	go worker(func(rng *rand.Rand) error {
		resp, err := c.Get(srv.URL + "/v1/kv?prefix=soak/" + strconv.Itoa(rng.IntN(10)) + "&limit=100")
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	})

	// Samples of the server's resources.
	names := []string{"go_goroutines", "process_open_fds", "process_resident_memory_bytes"}
	var samples []map[string]float64
	sampleEvery := dur / 15
	for time.Since(start) < dur {
		time.Sleep(sampleEvery)
		samples = append(samples, metrics(t, c, srv.URL, names...))
	}
	close(stop)
	wg.Wait()

	if n := errs.Load(); n > 0 {
		t.Errorf("%d operations failed under steady load", n)
	}
	if events.Load() == 0 {
		t.Error("the subscribers received nothing")
	}
	// Growth: the last third of the run against the first third (after a
	// warm-up sample), with room for noise.
	third := len(samples) / 3
	avg := func(s []map[string]float64, name string) float64 {
		sum := 0.0
		for _, m := range s {
			sum += m[name]
		}
		return sum / float64(len(s))
	}
	slack := map[string]float64{"go_goroutines": 20, "process_open_fds": 20, "process_resident_memory_bytes": 32 << 20}
	for _, name := range names {
		first, last := avg(samples[1:1+third], name), avg(samples[len(samples)-third:], name)
		t.Logf("%s: %.0f at first, %.0f at the end", name, first, last)
		if last > first*1.5+slack[name] {
			t.Errorf("%s grew from %.0f to %.0f under a steady load", name, first, last)
		}
	}
	// Latency per window.
	p99 := func(ds []time.Duration) time.Duration {
		slices.Sort(ds)
		return ds[len(ds)*99/100]
	}
	first := p99(lat[0])
	for w := 1; w < 10; w++ {
		if len(lat[w]) == 0 {
			continue
		}
		p := p99(lat[w])
		t.Logf("window %d: %d operations, p99 %v (first window %v)", w, len(lat[w]), p, first)
		if os.Getenv("PYKV_SOAK") != "" && p > 2*first && p > first+10*time.Millisecond {
			t.Errorf("window %d: p99 %v is more than twice the first window's %v", w, p, first)
		}
	}
}

package persist_test

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pykv/pykv/engine"
	"github.com/pykv/pykv/persist"
	"github.com/pykv/pykv/persist/codec"
)

// BenchmarkDB_PutAlways: durable puts (fsync before every answer, shared
// through group commit) from 64 concurrent writers, 100-byte values. It
// also reports the median and mean latency of the log's syncs.
func BenchmarkDB_PutAlways(b *testing.B) {
	var syncMu sync.Mutex
	var syncs []time.Duration
	observe := func(d time.Duration) {
		syncMu.Lock()
		syncs = append(syncs, d)
		syncMu.Unlock()
	}
	db := mustOpen(b, b.TempDir(), persist.Options{Sync: persist.SyncAlways, CompactMinBytes: 64 << 20, SyncObserver: observe})
	value := strings.Repeat("v", 100)
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	for w := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1); i <= int64(b.N); i = next.Add(1) {
				if _, err := db.Store().Put(fmt.Sprintf("key-%d-%d", w, i%1000), value); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	st := db.Status()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "puts/s")
	b.ReportMetric(float64(b.N)/float64(max(st.Fsyncs, 1)), "puts/fsync")
	syncMu.Lock()
	defer syncMu.Unlock()
	if len(syncs) > 0 {
		reportLatencies(b, syncs, "sync-")
	}
}

// reportLatencies reports the median and the mean of d (which it sorts),
// in milliseconds, as the metrics prefix+"p50-ms" and prefix+"mean-ms".
func reportLatencies(b *testing.B, d []time.Duration, prefix string) {
	var sum time.Duration
	for _, x := range d {
		sum += x
	}
	slices.Sort(d)
	b.ReportMetric(float64(d[len(d)/2].Microseconds())/1000, prefix+"p50-ms")
	b.ReportMetric(float64((sum/time.Duration(len(d))).Microseconds())/1000, prefix+"mean-ms")
}

// BenchmarkDB_Open1M opens a folder holding a snapshot of one million keys
// with 100-byte values, and reports how long it took and the resident
// memory the store added, as a ratio to the raw bytes of keys and values.
func BenchmarkDB_Open1M(b *testing.B) {
	const n = 1_000_000
	dir := b.TempDir()
	value := strings.Repeat("v", 100)
	entries := make([]*engine.Entry, n)
	raw := 0
	for i := range entries {
		k := fmt.Sprintf("key-%07d", i)
		entries[i] = &engine.Entry{Key: k, Value: value, CreateRev: int64(i + 1), ModRev: int64(i + 1), Version: 1}
		raw += len(k) + len(value)
	}
	f, err := os.Create(filepath.Join(dir, "snapshot.json"))
	if err != nil {
		b.Fatal(err)
	}
	if err := codec.WriteSnapshot(f, n, entries); err != nil {
		b.Fatal(err)
	}
	f.Close()
	entries = nil
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		runtime.GC()
		debug.FreeOSMemory()
		before := rss(b)
		b.StartTimer()
		start := time.Now()
		db, err := persist.Open(dir, persist.Options{})
		if err != nil {
			b.Fatal(err)
		}
		took := time.Since(start)
		b.StopTimer()
		if db.Store().Len() != n {
			b.Fatalf("opened %d keys, want %d", db.Store().Len(), n)
		}
		runtime.GC()
		debug.FreeOSMemory()
		after := rss(b)
		b.ReportMetric(took.Seconds(), "open-s")
		b.ReportMetric(float64(after-before)/float64(raw), "rss/raw")
		db.Close()
		b.StartTimer()
	}
}

// rss returns the process's resident set size in bytes (Linux).
func rss(tb testing.TB) int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		tb.Skip("no /proc/self/status here")
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	tb.Fatal("no VmRSS line")
	return 0
}

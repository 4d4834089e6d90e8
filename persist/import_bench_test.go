package persist_test

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pykv/pykv/persist"
)

// BenchmarkImportMemory imports a flat file of 600,000 keys (about 65 MB,
// the size of the hostile probe in issue 14) into an empty store with its
// log on disk, reading the file from disk as a request body would arrive,
// and reports the heap it needs:
//
//   - peak-extra/file: the most heap in use during the import beyond what
//     the store holds afterwards, as a multiple of the file's size (the
//     target is at most 2);
//   - store/file: what the store holds afterwards (entries, index, recent
//     history), as a multiple of the file's size.
//
// The collector runs at GOGC=10 meanwhile, so the heap sampled (every
// 100 µs, from runtime/metrics) is close to what is live: the figures are
// upper bounds. The store's own entries are built from the strings the
// import decoded, so they are not counted twice.
func BenchmarkImportMemory(b *testing.B) {
	const keys = 600_000
	path := filepath.Join(b.TempDir(), "import.json")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriter(f)
	w.WriteString("{")
	value := strings.Repeat("v", 84)
	for i := range keys {
		if i > 0 {
			w.WriteString(",")
		}
		fmt.Fprintf(w, "\n%q:%q", fmt.Sprintf("user/%07d/profile", i), value)
	}
	w.WriteString("\n}\n")
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	st, _ := f.Stat()
	f.Close()
	size := float64(st.Size())

	defer debug.SetGCPercent(debug.SetGCPercent(10))
	b.ResetTimer()
	var peakExtra, stored float64
	for range b.N {
		db := mustOpen(b, b.TempDir(), persist.Options{Sync: persist.SyncNever, CompactMinBytes: 1 << 40})
		runtime.GC()
		base := heapInUse()
		stop := make(chan struct{})
		var peak uint64
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTicker(100 * time.Microsecond)
			defer t.Stop()
			for {
				peak = max(peak, heapInUse())
				select {
				case <-stop:
					return
				case <-t.C:
				}
			}
		}()
		in, err := os.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		res, err := db.Import(bufio.NewReader(in), persist.ImportMerge)
		in.Close()
		close(stop)
		wg.Wait()
		if err != nil || res.Added != keys {
			b.Fatalf("import: %+v, %v", res, err)
		}
		runtime.GC()
		after := heapInUse()
		peak = max(peak, after)
		peakExtra += float64(peak-after) / size
		stored += float64(after-base) / size
		b.StopTimer()
		db.Close()
		b.StartTimer()
	}
	b.ReportMetric(size/1e6, "file-MB")
	b.ReportMetric(peakExtra/float64(b.N), "peak-extra/file")
	b.ReportMetric(stored/float64(b.N), "store/file")
}

// heapInUse returns the bytes of heap objects, live or not yet swept.
func heapInUse() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

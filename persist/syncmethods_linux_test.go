//go:build linux

package persist_test

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// BenchmarkSyncMethods times three ways of making one group commit's worth
// of log (1 KiB) durable on the disk under the temporary folder:
//
//   - append-fsync: write at the end of the file, then fsync. The log does
//     this. The file grows, so each fsync also commits the file system's
//     journal (the new size and blocks).
//   - prealloc-fdatasync: overwrite a file whose blocks were written (with
//     zeros) and fsynced beforehand, then fdatasync: no metadata to commit.
//   - direct-dsync: the same file opened O_DIRECT|O_DSYNC, written a whole
//     4 KiB block at a time from an aligned buffer, bypassing the page
//     cache: each write returns once it is on stable storage.
//
// It reports the median and mean time per commit, and the CPU time this
// process spent per commit (the kernel's work on its behalf included,
// interrupts and kernel threads not). direct-dsync writes 4 KiB per commit,
// the others 1 KiB. Run it alone for the quiet figures, and beside a CPU
// load for the latency a busy server sees; the README's figures come from
//
//	go test -run '^$' -bench SyncMethods -count 3 ./persist/
//
// alone, and again started 3 s after
//
//	go test -run '^$' -bench '^BenchmarkHTTP$/put-fsync-never' -benchtime=2000000x ./web/
//
// (which runs for a minute or two; stop it once this one is done).
func BenchmarkSyncMethods(b *testing.B) {
	const group = 1 << 10
	rec := make([]byte, group)
	for i := range rec {
		rec[i] = 'r'
	}
	// prealloc opens a file whose first size bytes are zeros on disk.
	prealloc := func(b *testing.B, size int, flag int) *os.File {
		name := filepath.Join(b.TempDir(), "log")
		f, err := os.Create(name)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := f.Write(make([]byte, size)); err != nil {
			b.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
		f.Close()
		if f, err = os.OpenFile(name, os.O_WRONLY|flag, 0); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { f.Close() })
		return f
	}
	run := func(b *testing.B, commit func(i int) error) {
		var d []time.Duration
		cpu0 := cpuTime(b)
		for i := 0; b.Loop(); i++ {
			start := time.Now()
			if err := commit(i); err != nil {
				b.Fatal(err)
			}
			d = append(d, time.Since(start))
		}
		cpu := cpuTime(b) - cpu0
		reportLatencies(b, d, "")
		b.ReportMetric(float64(cpu.Microseconds())/float64(len(d)), "cpu-us/op")
		b.ReportMetric(0, "ns/op")
	}
	b.Run("append-fsync", func(b *testing.B) {
		f, err := os.OpenFile(filepath.Join(b.TempDir(), "log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		run(b, func(int) error {
			if _, err := f.Write(rec); err != nil {
				return err
			}
			return f.Sync()
		})
	})
	// A run may make more commits than a file has room for: it wraps
	// around to the start of the file.
	const room = 64 << 20
	b.Run("prealloc-fdatasync", func(b *testing.B) {
		f := prealloc(b, room, 0)
		run(b, func(i int) error {
			if _, err := f.WriteAt(rec, int64(i*group%room)); err != nil {
				return err
			}
			return syscall.Fdatasync(int(f.Fd()))
		})
	})
	b.Run("direct-dsync", func(b *testing.B) {
		f := prealloc(b, room, syscall.O_DIRECT|syscall.O_DSYNC)
		const block = 4 << 10
		raw := make([]byte, 2*block)
		off := (block - int(uintptr(unsafe.Pointer(&raw[0])))%block) % block
		buf := raw[off : off+block]
		run(b, func(i int) error {
			pos := i * group % room
			// Only the timing matters: the block's bytes before pos are
			// whatever buf last held, earlier records or another block's.
			copy(buf[pos%block:], rec)
			_, err := f.WriteAt(buf, int64(pos/block*block))
			return err
		})
	})
}

// cpuTime returns the CPU time (user and system) this process has used.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

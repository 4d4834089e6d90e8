package web

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/pykv/pykv/engine"
	"github.com/pykv/pykv/persist"
)

// The stream benchmark. It runs its workload once, whatever b.N, and
// reports figures with b.ReportMetric; it takes about 25 seconds.
const (
	benchSubscribers = 100
	benchRate        = 5000 // writes per second in the delivery phase
	benchPaced       = 3 * time.Second
	benchClosedLoop  = time.Second
	benchRounds      = 5 // of the throughput phase; the median is reported
	benchWriters     = 8 // goroutines writing in the throughput phase
)

// BenchmarkWatch_100Subscribers measures the change stream under load:
//
//   - delivery: 100 subscribers while 5,000 writes/s go on for 3 s to an
//     in-memory store: the share of events every subscriber got (in
//     order, none missing), and the latency from just before the write to
//     the subscriber reading it (p50, p99, max);
//   - throughput: 8 goroutines writing as fast as they can for 1 s,
//     without subscribers and then with 100, five times over, to a
//     durable store (persist, fsync always, the server's default) and to
//     an in-memory one: the medians of the rates and of the five ratios,
//     and how many subscribers were cut off as too slow (per round).
//
// The subscribers are websocket clients in another process (this test
// binary started again, see TestMain), as they are other programs in real
// use. They share the machine's two cores with the server all the same, so
// their CPU time counts against the writers too.
func BenchmarkWatch_100Subscribers(b *testing.B) {
	b.Run("delivery", benchDelivery)
	b.Run("throughput/durable", func(b *testing.B) {
		db, err := persist.Open(b.TempDir(), persist.Options{Sync: persist.SyncAlways})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { db.Close() })
		benchThroughput(b, db.Store())
	})
	b.Run("throughput/memory", func(b *testing.B) {
		benchThroughput(b, mustNewStore(b, engine.Options{}))
	})
}

func benchDelivery(b *testing.B) {
	store := mustNewStore(b, engine.Options{})
	subs := startBenchSubs(b, store)
	b.ResetTimer()
	total := int(benchRate * benchPaced.Seconds())
	start := time.Now()
	for i := 0; i < total; {
		due := min(total, int(time.Since(start).Seconds()*benchRate)+1)
		for ; i < due; i++ {
			// The value is the time of the write, for the subscriber to
			// measure the latency against.
			if _, err := store.Put(fmt.Sprintf("bench/%04d", i%1000), strconv.FormatInt(time.Now().UnixNano(), 10)); err != nil {
				b.Fatal(err)
			}
		}
		time.Sleep(200 * time.Microsecond)
	}
	writeTime := time.Since(start)
	rep := subs.finish(b, store.Rev())
	b.StopTimer()

	want := benchSubscribers * total
	b.ReportMetric(float64(total)/writeTime.Seconds(), "writes/s")
	b.ReportMetric(100*float64(rep.Delivered)/float64(want), "delivered-%")
	b.ReportMetric(float64(rep.P50)/1e6, "p50-ms")
	b.ReportMetric(float64(rep.P99)/1e6, "p99-ms")
	b.ReportMetric(float64(rep.Max)/1e6, "max-ms")
	b.ReportMetric(float64(rep.Cut), "cut-off")
	if rep.Delivered != want {
		b.Errorf("delivered %d events, want %d (%d subscribers x %d writes); %d subscribers cut off", rep.Delivered, want, benchSubscribers, total, rep.Cut)
	}
}

func benchThroughput(b *testing.B, store *engine.Store) {
	// Rounds of writing alone then with the subscribers, back to back, so
	// a slow stretch of the shared machine hits both sides of a ratio.
	var alone, with, ratio []float64
	cut := 0
	for range benchRounds {
		a := benchClosedLoopWrites(b, store)
		subs := startBenchSubs(b, store)
		w := benchClosedLoopWrites(b, store)
		cut += subs.finish(b, store.Rev()).Cut
		alone, with, ratio = append(alone, a), append(with, w), append(ratio, 100*w/a)
	}
	median := func(x []float64) float64 {
		slices.Sort(x)
		return x[len(x)/2]
	}
	b.ReportMetric(median(alone), "writes/s-alone")
	b.ReportMetric(median(with), "writes/s-with-100")
	b.ReportMetric(median(ratio), "ratio-%")
	b.ReportMetric(float64(cut)/benchRounds, "cut-off")
}

// benchClosedLoopWrites writes from benchWriters goroutines for
// benchClosedLoop and returns the writes per second.
func benchClosedLoopWrites(b *testing.B, store *engine.Store) float64 {
	var n atomic.Int64
	var wg sync.WaitGroup
	stop := time.Now().Add(benchClosedLoop)
	start := time.Now()
	for w := range benchWriters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Now().Before(stop); i++ {
				if _, err := store.Put(fmt.Sprintf("tp/%d/%03d", w, i%500), strconv.FormatInt(time.Now().UnixNano(), 10)); err != nil {
					b.Error(err)
					return
				}
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	return float64(n.Load()) / time.Since(start).Seconds()
}

// benchSubsEnv, set to a stream's URL, makes this test binary the
// subscribers' process of BenchmarkWatch_100Subscribers rather than run
// tests (see TestMain).
const benchSubsEnv = "PYKV_BENCH_SUBSCRIBERS"

// TestMain runs the package's tests, or the benchmark's subscribers.
func TestMain(m *testing.M) {
	if url := os.Getenv(benchSubsEnv); url != "" {
		os.Exit(runBenchSubs(url, os.Stdin, os.Stdout))
	}
	os.Exit(m.Run())
}

// benchSubs is the subscribers' process, seen from the benchmark.
type benchSubs struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout *bufio.Reader
}

// benchSubsReport is what the subscribers' process reports at the end.
type benchSubsReport struct {
	Delivered     int           `json:"delivered"` // events, over all subscribers
	Gap           bool          `json:"gap"`       // one saw a gap or a repeat in revisions
	Cut           int           `json:"cut"`       // subscribers the server cut off
	P50, P99, Max time.Duration // from just before the write to the read
}

// startBenchSubs serves the stream of store and starts benchSubscribers
// subscribers to it in another process, all connected when it returns.
func startBenchSubs(b *testing.B, store *engine.Store) *benchSubs {
	b.Helper()
	srv := startWatchServer(b, store, WatchOptions{})
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	// The context bounds the process's life, whatever happens here.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	b.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, exe)
	cmd.Env = append(os.Environ(), benchSubsEnv+"="+wsURL(srv, ""))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	s := &benchSubs{cmd: cmd, stdin: stdin, stdout: bufio.NewReader(stdout)}
	b.Cleanup(func() { // by now finish has had the report, or the benchmark failed
		stdin.Close()
		cancel() // kills the process if it is still running
		_ = cmd.Wait()
	})
	if line, err := s.stdout.ReadString('\n'); line != "ready\n" {
		b.Fatalf("subscribers' process: %q, %v; want ready", line, err)
	}
	return s
}

// finish waits until every subscriber not cut off has seen rev (at most 10
// seconds), then stops the subscribers and returns their report.
func (s *benchSubs) finish(b *testing.B, rev int64) benchSubsReport {
	b.Helper()
	var rep benchSubsReport
	if _, err := fmt.Fprintf(s.stdin, "%d\n", rev); err != nil {
		b.Fatal(err)
	}
	line, err := s.stdout.ReadBytes('\n')
	if err == nil {
		err = json.Unmarshal(line, &rep)
	}
	if err != nil {
		b.Fatalf("subscribers' report %q: %v", line, err)
	}
	if rep.Gap {
		b.Errorf("a subscriber saw a gap or a repeat in the revisions")
	}
	return rep
}

// runBenchSubs is the subscribers' process: it connects benchSubscribers
// streams to url, says "ready", reads on all of them until its input gives a
// revision and they have all seen it (or were cut off), then writes its
// report as one line of JSON. It returns the exit code.
func runBenchSubs(url string, in io.Reader, out io.Writer) int {
	subs := make([]*benchSub, benchSubscribers)
	for i := range subs {
		c, _, err := websocket.DefaultDialer.Dial(url, nil)
		if err != nil {
			fmt.Fprintln(os.Stderr, "subscriber:", err)
			return 1
		}
		s := &benchSub{conn: c, done: make(chan struct{})}
		// The first message is the revision the stream starts after.
		m, err := tryReadMsg(c, 5*time.Second)
		if err != nil || m.Type != "progress" {
			fmt.Fprintf(os.Stderr, "subscriber: first message %+v, %v; want progress\n", m, err)
			return 1
		}
		c.SetReadDeadline(time.Time{})
		s.last.Store(m.Rev)
		subs[i] = s
		go s.read()
	}
	fmt.Fprintln(out, "ready")
	var rev int64
	if _, err := fmt.Fscan(in, &rev); err != nil {
		fmt.Fprintln(os.Stderr, "subscribers: no revision to wait for:", err)
		return 1
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, s := range subs {
		for s.last.Load() < rev && !s.lagged.Load() && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
	}
	for _, s := range subs {
		s.conn.Close()
	}
	var rep benchSubsReport
	var lat []time.Duration
	for _, s := range subs {
		<-s.done
		lat = append(lat, s.lat...)
		rep.Gap = rep.Gap || s.gap
		if s.lagged.Load() {
			rep.Cut++
		}
	}
	rep.Delivered = len(lat)
	if len(lat) > 0 {
		slices.Sort(lat)
		rep.P50, rep.P99, rep.Max = lat[len(lat)/2], lat[len(lat)*99/100], lat[len(lat)-1]
	}
	if err := json.NewEncoder(out).Encode(rep); err != nil {
		return 1
	}
	return 0
}

// benchSub is one subscriber: a websocket client reading the whole stream
// on its own goroutine, checking the revisions follow one another.
type benchSub struct {
	conn   *websocket.Conn
	last   atomic.Int64 // the last revision seen
	lagged atomic.Bool  // the server cut it off
	gap    bool
	lat    []time.Duration
	done   chan struct{}
}

var (
	benchValueTag = []byte(`value":"`)
	benchRevTag   = []byte(`","rev":`)
	benchCompact  = []byte(`{"type":"compacted"`)
)

// read scans messages by hand rather than decoding them, and reads each
// into the same buffer: a hundred subscribers decoding 5,000 events a
// second each with encoding/json, or allocating a buffer per message,
// would measure the test's client more than the server. Real subscribers
// are browsers on other machines; only the server's side is under test. It still reads every event's value and revision, relying on
// the order appendEvent writes the fields in: the value (here a number)
// then the revision. Searching for 'v' rather than '"' stops twice an
// event (value, version) rather than at every quote.
func (s *benchSub) read() {
	defer close(s.done)
	var buf bytes.Buffer
	for {
		_, r, err := s.conn.NextReader()
		if err == nil {
			buf.Reset()
			_, err = buf.ReadFrom(r)
		}
		if err != nil {
			return
		}
		now := time.Now().UnixNano()
		msg := buf.Bytes()
		if bytes.HasPrefix(msg, benchCompact) { // the type comes first
			s.lagged.Store(true)
			continue
		}
		for {
			i := bytes.Index(msg, benchValueTag)
			if i < 0 {
				break
			}
			msg = msg[i+len(benchValueTag):]
			ts, n := benchNumber(msg)
			msg = msg[n:]
			if !bytes.HasPrefix(msg, benchRevTag) {
				s.gap = true // not the shape this scan knows: fail loudly
				break
			}
			msg = msg[len(benchRevTag):]
			rev, n := benchNumber(msg)
			msg = msg[n:]
			if rev != s.last.Load()+1 {
				s.gap = true
			}
			s.last.Store(rev)
			s.lat = append(s.lat, time.Duration(now-ts))
		}
	}
}

// benchNumber parses the digits at the start of b.
func benchNumber(b []byte) (int64, int) {
	var n int64
	i := 0
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		n = n*10 + int64(b[i]-'0')
	}
	return n, i
}

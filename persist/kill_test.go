package persist_test

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pykv/pykv/persist"
)

// childEnv makes the test binary act as a writer process for TestDB_Kill9.
const (
	childEnv = "PYKV_KILL9_CHILD_DIR"
	cycleEnv = "PYKV_KILL9_CYCLE" // written into values: "cycle-sequence"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(childEnv); dir != "" {
		killChild(dir)
		return
	}
	os.Exit(m.Run())
}

// killChild writes from 8 goroutines until killed, printing "ack KEY VALUE"
// for every write that returned success.
func killChild(dir string) {
	db, err := persist.Open(dir, persist.Options{Sync: persist.SyncAlways, CompactMinBytes: 64 << 10})
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(2)
	}
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				key := fmt.Sprintf("g%d/%d", g, i%50)
				val := fmt.Sprintf("%s-%d", os.Getenv(cycleEnv), i)
				if _, err := db.Store().Put(key, val); err != nil {
					fmt.Fprintln(os.Stderr, "put:", err)
					os.Exit(3)
				}
				mu.Lock()
				fmt.Fprintf(out, "ack %s %s\n", key, val)
				out.Flush() // the parent must see it only after the write returned
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
}

// TestDB_Kill9 runs a writer process, kills it with SIGKILL at a random
// moment, reopens the folder and checks that every write the child saw
// acknowledged is there (the last acknowledged value of each key, or a later
// one that was written but not yet acknowledged), over many cycles.
func TestDB_Kill9(t *testing.T) {
	cycles := 25
	if testing.Short() {
		cycles = 5
	}
	if os.Getenv("PYKV_SOAK") != "" {
		cycles = 300
	}
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	acked := map[string]string{} // key -> last acknowledged value
	// later reports whether value a was written after value b.
	later := func(a, b string) bool {
		var ca, ia, cb, ib int
		fmt.Sscanf(a, "%d-%d", &ca, &ia)
		fmt.Sscanf(b, "%d-%d", &cb, &ib)
		return ca > cb || (ca == cb && ia > ib)
	}
	for c := range cycles {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), childEnv+"="+dir, fmt.Sprint(cycleEnv, "=", c))
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		pid := cmd.Process.Pid
		lines := make(chan string, 1024)
		go func() {
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				lines <- sc.Text()
			}
			close(lines)
		}()
		// Let it write a random number of acknowledged writes, then kill it
		// mid-flight after a random pause (counting acknowledgements rather
		// than time keeps a slow, shared machine from killing it too early).
		killAfter := 1 + rng.IntN(400)
		var killAt <-chan time.Time
		cycleAcks := 0
	read:
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					break read
				}
				var k, v string
				if _, err := fmt.Sscanf(l, "ack %s %s", &k, &v); err != nil {
					t.Fatalf("cycle %d: child said %q (stderr %s)", c, l, stderr.String())
				}
				acked[k] = v
				cycleAcks++
				if cycleAcks == killAfter {
					killAt = time.After(time.Duration(rng.IntN(5)) * time.Millisecond)
				}
			case <-killAt:
				syscall.Kill(pid, syscall.SIGKILL)
				killAt = nil
			}
		}
		cmd.Wait()
		if cycleAcks == 0 {
			t.Fatalf("cycle %d: the child acknowledged nothing before the kill (stderr %s)", c, stderr.String())
		}
		db, err := persist.Open(dir, persist.Options{})
		if err != nil {
			t.Fatalf("cycle %d: reopen after kill -9: %v", c, err)
		}
		for k, v := range acked {
			e, err := db.Store().Get(k)
			if err != nil {
				db.Close()
				t.Fatalf("cycle %d: acknowledged key %s lost: %v", c, k, err)
			}
			if e.Value != v {
				if !later(e.Value, v) {
					db.Close()
					t.Fatalf("cycle %d: key %s is %s, but %s was acknowledged after it", c, k, e.Value, v)
				}
				acked[k] = e.Value // a later write landed without its answer
			}
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

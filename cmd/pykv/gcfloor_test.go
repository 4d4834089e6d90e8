package main

import (
	"runtime"
	"sync"
	"testing"
	"time"
)

func TestGCFloorPercent(t *testing.T) {
	const mib = 1 << 20
	for _, c := range []struct {
		live, floor uint64
		want        int
	}{
		{live: 4 * mib, floor: 64 * mib, want: 1600},      // a small store: the floor
		{live: 6 * mib, floor: 64 * mib, want: 1070},      // rounded up to a step of 10
		{live: 64 * mib, floor: 64 * mib, want: 100},      // the floor equals GOGC's growth
		{live: 1 << 30, floor: 64 * mib, want: 100},       // a large store: GOGC's 100%
		{live: 1, floor: 64 * mib, want: maxGCPercent},    // next to nothing live: capped
		{live: 0, floor: 64 * mib, want: maxGCPercent},    // nothing live yet
		{live: 10 * mib, floor: 0, want: 100},             // no floor
		{live: 30 * mib, floor: 64 * mib, want: 220},      // 213% rounded up
		{live: 640 * 1024, floor: 64 * mib, want: 10_000}, // exactly at the cap
		{live: 700 * 1024, floor: 64 * mib, want: 9370},   // just under it
		{live: 65 * mib, floor: 64 * mib, want: 100},      // past the floor
		{live: 63 * mib, floor: 64 * mib, want: 110},      // 101% rounded up
		{live: 32 * mib, floor: 64 * mib, want: 200},      // exact
		{live: 16 * mib, floor: 64 * mib, want: 400},      // exact
		{live: 1 * mib, floor: 64 * mib, want: 6400},      // exact
		{live: 3 * mib, floor: 64 * mib, want: 2140},      // 2133% rounded up
		{live: 100 * mib, floor: 64 * mib, want: 100},     // past the floor
	} {
		if got := gcFloorPercent(c.live, c.floor, 100); got != c.want {
			t.Errorf("gcFloorPercent(live %d, floor %d) = %d, want %d", c.live, c.floor, got, c.want)
		}
	}
}

// TestGCTuner_RetunesEachCollection checks that the tuner follows the live
// heap from one collection to the next: raised above GOGC's 100 while
// little is live, back to 100 once the live heap passes the floor, and
// back to 100 when stopped, after which it sets nothing. The tuner under
// test records its settings instead of making them, since the package's
// other tests start the server's own tuner, which sets the process's.
func TestGCTuner_RetunesEachCollection(t *testing.T) {
	var mu sync.Mutex
	var set []int
	last := func() (int, int) {
		mu.Lock()
		defer mu.Unlock()
		if len(set) == 0 {
			return 0, 0
		}
		return set[len(set)-1], len(set)
	}
	// waitFor runs collections until the tuner's cleanup has set a
	// percent that ok accepts.
	waitFor := func(ok func(int) bool, what string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			runtime.GC()
			time.Sleep(time.Millisecond) // the cleanup runs on its own goroutine
			if got, _ := last(); ok(got) {
				return
			} else if time.Now().After(deadline) {
				t.Fatalf("%s: GC percent stays %d", what, got)
			}
		}
	}
	raised := func(p int) bool { return p > 100 }
	const floor = 32 << 20
	tr := &gcTuner{floor: floor, base: 100, set: func(p int) int {
		mu.Lock()
		defer mu.Unlock()
		set = append(set, p)
		return 0
	}}
	tr.tune()
	tr.arm()
	if got, _ := last(); !raised(got) {
		t.Fatalf("with a test binary's small heap live, GC percent %d, want above 100", got)
	}
	keep := make([][]byte, 0, 64)
	for range 64 { // 64 MiB live: past the floor
		keep = append(keep, make([]byte, 1<<20))
	}
	waitFor(func(p int) bool { return p == 100 }, "64 MiB live, floor 32 MiB, want 100")
	runtime.KeepAlive(keep)
	waitFor(raised, "64 MiB no longer live, want above 100")
	tr.stop()
	if got, _ := last(); got != 100 {
		t.Fatalf("after stop, GC percent %d, want 100", got)
	}
	_, n := last()
	for range 3 {
		runtime.GC()
		time.Sleep(5 * time.Millisecond)
	}
	if got, m := last(); m != n {
		t.Fatalf("collections after stop set the GC percent to %d", got)
	}
}

package main

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// gcFloorBytes is how far the heap may grow past what the last collection
// left live before the next one starts, at the least. Go's default
// (GOGC=100: grow by as much as is live) makes a small store collect very
// often: with 10,000 keys about 6 MB are live, and 30,000 durable PUTs a
// second under wrk ran 89 collections in 4 s; with the floor, 2. Measured
// in interleaved wrk -t1 -c32 rounds against the same binary with and
// without it (GOGC=100 in the environment turns it off), 2026-12-03
// 07:17-07:25 UTC on a shared, busy machine: server CPU per durable PUT
// 2-6% lower (medians 32.6 -> 31.8 and 32.7 -> 30.6 us), PUT/s the same to
// 5% higher. Large stores keep GOGC's proportional growth: the heap is at
// most about live + max(live, 64 MiB).
const gcFloorBytes = 64 << 20

// gcFloor is the garbage collector policy of `pykv serve`: after each
// collection it sets the GC percentage so the next collection starts once
// the heap has grown by gcFloorBytes or by the live heap, whichever is more
// (see gcFloorPercent). It does nothing when GOGC is set in the environment:
// the operator's choice stands. It starts the tuner once per process (tests
// run serve many times) and leaves it running for the process's life.
func gcFloor(getenv func(string) string) {
	if getenv("GOGC") != "" {
		return
	}
	gcFloorOnce.Do(func() {
		t := &gcTuner{floor: gcFloorBytes, base: 100, set: debug.SetGCPercent}
		t.tune()
		t.arm()
	})
}

var gcFloorOnce sync.Once

// gcTuner re-tunes the GC percentage once per collection: a sentinel object
// with a cleanup is dropped at once, so each collection finds it unreachable
// and runs the cleanup, which tunes and drops a new sentinel. The runtime
// sets the next heap goal from the old percentage at the end of a
// collection; the cleanup corrects it moments later, so the goal can
// overshoot only between the two.
type gcTuner struct {
	floor   uint64
	base    int                   // the percentage beyond the floor (GOGC's default)
	set     func(percent int) int // debug.SetGCPercent; tests record instead
	mu      sync.Mutex
	percent int // last set; 0 before the first tune
	stopped bool
}

// sentinel is what the tuner's cleanup hangs on. It holds a pointer so it
// is not batched with other tiny allocations, whose cleanups may never run.
type sentinel struct{ _ *int }

func (t *gcTuner) arm() {
	runtime.AddCleanup(new(sentinel), func(t *gcTuner) {
		t.mu.Lock()
		stopped := t.stopped
		t.mu.Unlock()
		if !stopped {
			t.tune()
			t.arm()
		}
	}, t)
}

// tune reads the live heap and sets the percentage for it.
func (t *gcTuner) tune() {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return // unknown to this runtime: leave GOGC's default
	}
	p := gcFloorPercent(s[0].Value.Uint64(), t.floor, t.base)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped || p == t.percent {
		return
	}
	t.percent = p
	t.set(p)
}

func (t *gcTuner) stop() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.stopped {
		t.stopped = true
		t.set(t.base)
	}
}

// maxGCPercent bounds the percentage: with almost nothing live (a server
// just started) the floor alone would ask for an absurd one. Past it the
// floor is not reached exactly, which does not matter at that size.
const maxGCPercent = 10_000

// gcFloorPercent returns the GC percentage that lets a heap with live bytes
// grow by floor bytes or by base percent of live, whichever is more,
// rounded to a step of 10% (so a heap that changes a little does not
// change the setting each collection), at most maxGCPercent.
func gcFloorPercent(live, floor uint64, base int) int {
	if live == 0 {
		return maxGCPercent
	}
	p := int(min(floor*100/live, maxGCPercent))
	if p <= base {
		return base
	}
	return min((p+9)/10*10, maxGCPercent)
}

package cluster

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/pykv/pykv/engine"
)

// The batcher holds the next entry until as many writes are pending as
// it expects (the last entry's writers, back again), and no longer than
// its limit after the last commit; a stopping member ends the hold.
func TestBatcher_Hold(t *testing.T) {
	newB := func(limit time.Duration) *batcher {
		b := newBatcher(&Node{stop: make(chan struct{})})
		b.maxHold = limit
		b.committed = time.Now()
		return b
	}
	hold := func(b *batcher) chan bool {
		ch := make(chan bool, 1)
		go func() { ch <- b.hold() }()
		return ch
	}

	b := newB(time.Hour)
	b.expect = 3
	b.add(nil)
	done := hold(b)
	b.add(nil)
	select {
	case <-done:
		t.Fatal("the hold ended with 2 of 3 expected writes pending")
	case <-time.After(50 * time.Millisecond):
	}
	b.add(nil)
	select {
	case ok := <-done:
		if !ok {
			t.Fatal("the hold reported a stop")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the hold goes on with every expected write pending")
	}

	// Nothing expected: no hold at all.
	b = newB(time.Hour)
	b.add(nil)
	select {
	case <-hold(b):
	case <-time.After(10 * time.Second):
		t.Fatal("the hold waits with nothing expected")
	}

	// The limit ends it.
	b = newB(time.Millisecond)
	b.expect = 5
	b.add(nil)
	select {
	case ok := <-hold(b):
		if !ok {
			t.Fatal("the hold reported a stop")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the hold outlasts its limit")
	}

	// ... and what it learnt: the writers that did not come back are not
	// waited for again.
	if b.expect != 1 {
		t.Fatalf("after a hold that ran out with 1 write pending, %d are expected", b.expect)
	}

	// Pending writes that fill an entry are not held: take would stop
	// there anyway.
	b = newB(time.Hour)
	b.expect = 2
	b.add(make([]byte, maxBatchBytes+1))
	select {
	case <-hold(b):
	case <-time.After(10 * time.Second):
		t.Fatal("the hold waits with a full entry pending")
	}
	b = newB(time.Hour)
	b.expect = maxBatchWrites + 1
	for range maxBatchWrites {
		b.add(nil)
	}
	select {
	case <-hold(b):
	case <-time.After(10 * time.Second):
		t.Fatal("the hold waits with maxBatchWrites pending")
	}

	// The limit counts from the last commit: a write arriving after it
	// (a lone client, or after a pause) is not held at all.
	b = newB(time.Hour)
	b.committed = time.Now().Add(-2 * time.Hour)
	b.expect = 8
	b.add(nil)
	select {
	case <-hold(b):
	case <-time.After(10 * time.Second):
		t.Fatal("a write arriving long after the last commit is held")
	}

	// A stop ends it, reported.
	b = newB(time.Hour)
	b.expect = 5
	done = hold(b)
	close(b.n.stop)
	select {
	case ok := <-done:
		if ok {
			t.Fatal("the hold did not report the stop")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the hold outlasts the member")
	}
}

// On a real member: after a burst of writers has gone, the hold that
// waited for them runs out and the batcher expects no one, so a lone
// write is not held for them.
func TestBatcher_LoneWriteAfterBurst(t *testing.T) {
	n, err := Open(Options{ID: "n1", Dir: t.TempDir(), RaftAddr: "127.0.0.1:0", Bootstrap: true, ElectionTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	for deadline := time.Now().Add(10 * time.Second); !n.IsLeader(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no leader")
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var ws []*PendingWrite
	for i := range 8 {
		ws = append(ws, n.SubmitWrite([]engine.Op{{Type: engine.OpPut, Key: fmt.Sprintf("burst%d", i), Value: "v"}}, false))
	}
	for _, w := range ws {
		if _, err := w.Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	expect := func() int {
		n.batch.mu.Lock()
		defer n.batch.mu.Unlock()
		return n.batch.expect
	}
	// Waited for, not timed: the deadline only stops a hang.
	for deadline := time.Now().Add(10 * time.Second); expect() != 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the burst's writers are gone, and %d are still expected", expect())
		}
	}
	if _, err := n.Write(ctx, []engine.Op{{Type: engine.OpPut, Key: "lone", Value: "v"}}, false); err != nil {
		t.Fatalf("a lone write after a burst: %v", err)
	}
}

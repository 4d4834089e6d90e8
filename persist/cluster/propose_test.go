package cluster

import (
	"testing"
	"time"
)

// The batcher holds the next entry until as many writes are pending as
// it expects (the last entry's writers, back again), and no longer than
// its limit; a stopping member ends the hold.
func TestBatcher_Hold(t *testing.T) {
	newB := func(limit time.Duration) *batcher {
		b := newBatcher(&Node{stop: make(chan struct{})})
		b.maxHold = limit
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

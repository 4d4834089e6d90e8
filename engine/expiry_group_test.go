package engine_test

import (
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/pykv/pykv/engine"
)

func testExpiryInSameGroup(t *testing.T, expireFirst bool) {
	clk := newClock()
	gate := make(chan struct{})
	entered := make(chan struct{}, 1)
	var blockOnce sync.Once
	var armed bool
	var mu sync.Mutex
	j := &hookJournal{before: func() {
		mu.Lock()
		a := armed
		mu.Unlock()
		if a {
			blockOnce.Do(func() { entered <- struct{}{}; <-gate })
		}
	}}
	s := mustNew(t, engine.Options{Journal: j, Now: clk.Now, ExpireInterval: time.Hour})
	if _, err := s.Do(engine.Op{Type: engine.OpPut, Key: "k", Value: "old", TTL: time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Second) // k expired, still in the map

	mu.Lock()
	armed = true
	mu.Unlock()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); s.Put("blocker", "x") }() // committer now stuck in Append
	<-entered

	var putErr error
	put := func() {
		defer wg.Done()
		_, putErr = s.Do(engine.Op{Type: engine.OpPut, Key: "k", Value: "new", IfRev: engine.Absent})
	}
	expire := func() { defer wg.Done(); s.ExpireDue() }
	first, second := put, expire
	if expireFirst {
		first, second = expire, put
	}
	wg.Add(2)
	go first()
	time.Sleep(100 * time.Millisecond) // queued on the committer's channel
	go second()
	time.Sleep(100 * time.Millisecond)
	close(gate)
	wg.Wait()

	if putErr != nil {
		t.Fatalf("put: %v", putErr)
	}
	if e, err := s.Get("k"); err != nil || e.Value != "new" {
		t.Errorf("after an acknowledged put of k=new: Get = %+v, %v (write lost)", e, err)
	}
	// Replay the journal as persist does: decoded from JSON (so checked).
	_, err := engine.Restore(engine.Options{Now: clk.Now, ExpireInterval: time.Hour}, func(l *engine.Loader) error {
		for _, c := range j.commands() {
			b, _ := json.Marshal(c)
			var d engine.Command
			if err := json.Unmarshal(b, &d); err != nil {
				return err
			}
			if err := l.Apply(d); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Errorf("replaying the journal fails: %v\ncommands: %s", err, dump(j.commands()))
	}
}

func dump(cmds []engine.Command) string {
	b, _ := json.Marshal(cmds)
	return string(b)
}

type hookJournal struct {
	memJournal
	before func()
}

func (j *hookJournal) Append(cmds []engine.Command) error {
	j.before()
	return j.memJournal.Append(cmds)
}

// Review: an expiry request committed in the same group as a write to the
// same key resolves against s.m, not the group's overlay.
func TestStore_ExpiryInGroup_PutThenExpire(t *testing.T) {
	testExpiryInSameGroup(t, false)
}

func TestStore_ExpiryInGroup_ExpireThenPut(t *testing.T) {
	testExpiryInSameGroup(t, true)
}

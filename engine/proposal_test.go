package engine_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/pykv/pykv/engine"
)

// TestStore_ApplyProposal checks that replicas applying the same proposals
// reach exactly what a single store reaches carrying out the same writes at
// the proposer's moments, whatever their own clocks say when they apply:
// same results, revisions, entries and change feed.
func TestStore_ApplyProposal(t *testing.T) {
	for seed := range uint64(4) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 7))
			clk := newClock()
			ref := mustNew(t, engine.Options{Now: clk.Now, ExpireInterval: time.Hour})
			// The replicas' clocks are far off the proposer's, and differ.
			late := func(d time.Duration) func() time.Time {
				return func() time.Time { return clk.Now().Add(d) }
			}
			a := mustNew(t, engine.Options{Now: late(time.Hour), Replicated: true})
			b := mustNew(t, engine.Options{Now: late(-time.Hour), Replicated: true})
			proposer := mustNew(t, engine.Options{Now: clk.Now, Replicated: true}) // only prepares
			key := func() string { return fmt.Sprintf("k/%d", rng.IntN(20)) }
			for step := range 2000 {
				var p engine.Proposal
				var want engine.TxnResult
				var werr error
				if rng.IntN(10) == 0 {
					clk.Advance(time.Duration(rng.IntN(30)) * time.Millisecond)
					due := a.DueExpiry(clk.ms.Load(), 1000)
					if len(due) == 0 {
						continue
					}
					p = engine.Proposal{At: clk.ms.Load(), Expire: due}
					_, werr = ref.ExpireDue()
					want.Rev = ref.Rev()
				} else {
					var ops []engine.Op
					for n := 1 + rng.IntN(3); len(ops) < n; {
						op := engine.Op{Type: engine.OpPut, Key: key(), Value: fmt.Sprint(rng.Uint32())}
						switch rng.IntN(12) {
						case 0, 1, 2:
							op.Type, op.Value = engine.OpDelete, ""
						case 3:
							op = engine.Op{Type: engine.OpDeletePrefix, Key: fmt.Sprintf("k/%d", rng.IntN(3))}
						}
						if op.Type == engine.OpPut && rng.IntN(4) == 0 {
							op.TTL = time.Duration(1+rng.IntN(40)) * time.Millisecond
						}
						if op.Type != engine.OpDeletePrefix && rng.IntN(5) == 0 {
							if e, err := ref.Get(op.Key); err == nil && rng.IntN(2) == 0 {
								op.IfRev = e.ModRev
							} else {
								op.IfRev = engine.Absent
							}
						}
						ops = append(ops, op)
					}
					var err error
					if p, err = proposer.Prepare(ops, 0); err != nil {
						t.Fatalf("step %d: Prepare: %v", step, err)
					}
					want, werr = ref.Txn(ops)
				}
				clk.Advance(time.Duration(rng.IntN(3)) * time.Millisecond) // apply happens later
				for _, s := range []*engine.Store{a, b} {
					got, err := s.ApplyProposal(&p)
					if !reflect.DeepEqual(err, werr) || (err == nil && got.Rev != want.Rev) {
						t.Fatalf("step %d: ApplyProposal(%+v) = rev %d, %v; single store: rev %d, %v", step, p, got.Rev, err, want.Rev, werr)
					}
					if err == nil && len(p.Ops) > 0 && !reflect.DeepEqual(got.Results, want.Results) {
						t.Fatalf("step %d: results %+v, single store %+v", step, got.Results, want.Results)
					}
				}
			}
			for _, s := range []*engine.Store{a, b} {
				if !reflect.DeepEqual(snapshotOf(t, s), snapshotOf(t, ref)) {
					t.Fatalf("replica state differs from the single store's")
				}
				if !reflect.DeepEqual(feedOf(t, s), feedOf(t, ref)) {
					t.Fatalf("replica change feed differs from the single store's")
				}
			}
		})
	}
}

func snapshotOf(t *testing.T, s *engine.Store) map[string]engine.Entry {
	t.Helper()
	_, entries, err := s.Checkpoint(func(int64) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]engine.Entry{}
	for _, e := range entries {
		m[e.Key] = *e
	}
	return m
}

// feedOf returns every event the feed holds, as (rev, type, key, value).
func feedOf(t *testing.T, s *engine.Store) []string {
	t.Helper()
	w, err := s.Watch(0, "")
	if err != nil {
		t.Fatal(err)
	}
	evs, err := w.Read(s.Rev(), 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, ev := range evs {
		v := ""
		if ev.Entry != nil {
			v = fmt.Sprintf("%+v", *ev.Entry)
		}
		out = append(out, fmt.Sprint(ev.Rev, ev.Type, ev.Key, v))
	}
	return out
}

func TestStore_Replicated(t *testing.T) {
	s := mustNew(t, engine.Options{Replicated: true})
	t.Run("ErrReplicated", func(t *testing.T) {
		if _, err := s.Put("a", "1"); !errors.Is(err, engine.ErrReplicated) {
			t.Errorf("Put = %v, want ErrReplicated", err)
		}
		if _, err := s.Txn([]engine.Op{{Type: engine.OpPut, Key: "a"}}); !errors.Is(err, engine.ErrReplicated) {
			t.Errorf("Txn = %v, want ErrReplicated", err)
		}
		if _, err := s.ExpireDue(); !errors.Is(err, engine.ErrReplicated) {
			t.Errorf("ExpireDue = %v, want ErrReplicated", err)
		}
	})
	t.Run("Malformed", func(t *testing.T) {
		for _, p := range []engine.Proposal{
			{},
			{Ops: []engine.Op{{Type: "rename", Key: "a"}}},
			{Ops: []engine.Op{{Type: engine.OpPut, Key: ""}}},
			{Ops: []engine.Op{{Type: engine.OpPut, Key: "a", TTL: time.Second}}},
			{Ops: []engine.Op{{Type: engine.OpDeletePrefix, Key: "a", IfRev: 3}}},
		} {
			if _, err := s.ApplyProposal(&p); !errors.Is(err, engine.ErrCorrupt) {
				t.Errorf("ApplyProposal(%+v) = %v, want ErrCorrupt", p, err)
			}
		}
		if s.Rev() != 0 {
			t.Errorf("rev %d after refused proposals", s.Rev())
		}
	})
	t.Run("NotReplicated", func(t *testing.T) {
		plain := mustNew(t, engine.Options{})
		p := engine.Proposal{Ops: []engine.Op{{Type: engine.OpPut, Key: "a"}}}
		if _, err := plain.ApplyProposal(&p); err == nil {
			t.Error("ApplyProposal on a plain store succeeded")
		}
	})
	t.Run("Prepare", func(t *testing.T) {
		clk := newClock()
		s := mustNew(t, engine.Options{Replicated: true, Now: clk.Now, MaxKeyBytes: 4})
		p, err := s.Prepare([]engine.Op{{Type: engine.OpPut, Key: "a", TTL: 1500 * time.Microsecond}}, 0)
		if err != nil {
			t.Fatal(err)
		}
		if p.At != clk.ms.Load() || p.Ops[0].TTL != 0 || p.Ops[0].ExpiresAt != p.At+2 {
			t.Errorf("Prepare = %+v, want At now and the TTL rounded up to an expiry 2ms later", p)
		}
		if _, err := s.Prepare([]engine.Op{{Type: engine.OpPut, Key: "toolong"}}, 0); !errors.Is(err, engine.ErrKeyTooLarge) {
			t.Errorf("Prepare of a long key = %v, want ErrKeyTooLarge", err)
		}
	})
}

func TestStore_Replace(t *testing.T) {
	s := mustNew(t, engine.Options{Replicated: true})
	p := engine.Proposal{Ops: []engine.Op{{Type: engine.OpPut, Key: "old", Value: "1"}}}
	if _, err := s.ApplyProposal(&p); err != nil {
		t.Fatal(err)
	}
	w, err := s.Watch(0, "")
	if err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() {
		if _, err := w.Next(context.Background(), 0); err != nil { // the put at rev 1
			waited <- err
			return
		}
		_, err := w.Next(context.Background(), 0)
		waited <- err
	}()
	if err := s.Replace(7, []engine.Entry{{Key: "new", Value: "x", CreateRev: 3, ModRev: 7, Version: 2}}); err != nil {
		t.Fatal(err)
	}
	if err := <-waited; !errors.Is(err, engine.ErrCompacted) {
		t.Errorf("watcher across Replace: %v, want ErrCompacted", err)
	}
	if _, err := s.Get("old"); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("old key after Replace: %v", err)
	}
	if e, err := s.Get("new"); err != nil || e.ModRev != 7 || s.Rev() != 7 {
		t.Errorf("after Replace: Get = %+v, %v; rev %d", e, err, s.Rev())
	}
	if _, err := s.Watch(6, ""); !errors.Is(err, engine.ErrCompacted) {
		t.Errorf("Watch(6) after Replace at 7 = %v, want ErrCompacted", err)
	}
	if err := s.Replace(1, []engine.Entry{{Key: "bad", CreateRev: 5, ModRev: 5, Version: 1}}); !errors.Is(err, engine.ErrCorrupt) {
		t.Errorf("Replace with an entry newer than the snapshot = %v, want ErrCorrupt", err)
	}
	if s.Rev() != 7 {
		t.Errorf("a refused Replace changed the store: rev %d", s.Rev())
	}
}

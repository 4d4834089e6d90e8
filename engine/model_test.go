package engine_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/pykv/pykv/engine"
)

// model is the plain-map reference the store is checked against.
type model struct {
	rev  int64
	keys map[string]engine.Entry
}

func (m *model) live(key string, now int64) (engine.Entry, bool) {
	e, ok := m.keys[key]
	if !ok || (e.ExpiresAt != 0 && now >= e.ExpiresAt) {
		return engine.Entry{}, false
	}
	return e, true
}

// txn applies ops to the model the way the store promises to: conditions
// against the state before, then every op in order under one revision.
func (m *model) txn(ops []engine.Op, now int64) error {
	for i, op := range ops {
		if op.IfRev == 0 {
			continue
		}
		var have int64
		if e, ok := m.live(op.Key, now); ok {
			have = e.ModRev
		}
		want := op.IfRev
		if want == engine.Absent {
			want = 0
		}
		if have != want {
			return &engine.ConditionError{Index: i, Key: op.Key, Want: want, Have: have}
		}
	}
	rev := m.rev + 1
	changed := false
	for _, op := range ops {
		cur, ok := m.live(op.Key, now)
		if _, phys := m.keys[op.Key]; phys && !ok {
			delete(m.keys, op.Key) // expired: removed first
			changed = true
		}
		switch op.Type {
		case engine.OpPut:
			e := engine.Entry{Key: op.Key, Value: op.Value, CreateRev: rev, ModRev: rev, Version: 1}
			if ok {
				e.CreateRev, e.Version = cur.CreateRev, cur.Version+1
			}
			if op.TTL > 0 {
				e.ExpiresAt = now + op.TTL.Milliseconds()
			}
			m.keys[op.Key] = e
			changed = true
		case engine.OpDelete:
			if ok {
				delete(m.keys, op.Key)
				changed = true
			}
		}
	}
	if changed {
		m.rev = rev
	}
	return nil
}

// TestStore_Model runs long random operation sequences against the store and
// the model and compares every answer and, at the end, the whole state. It
// then replays the journal into a fresh store, which must come out equal.
func TestStore_Model(t *testing.T) {
	for seed := range uint64(8) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 42))
			clk := newClock()
			j := &memJournal{}
			opts := engine.Options{Now: clk.Now, ExpireInterval: time.Hour}
			if seed%2 == 1 {
				opts.Journal = j
				opts.InlineCommit = seed%4 == 3
			}
			s := mustNew(t, opts)
			m := &model{keys: map[string]engine.Entry{}}
			key := func() string { return fmt.Sprintf("k/%d", rng.IntN(40)) }
			randOp := func() engine.Op {
				op := engine.Op{Type: engine.OpPut, Key: key(), Value: fmt.Sprint(rng.Uint32())}
				if rng.IntN(4) == 0 {
					op.Type, op.Value = engine.OpDelete, ""
				}
				if op.Type == engine.OpPut && rng.IntN(5) == 0 {
					op.TTL = time.Duration(1+rng.IntN(50)) * time.Millisecond
				}
				switch rng.IntN(6) {
				case 0:
					op.IfRev = engine.Absent
				case 1:
					if e, ok := m.live(op.Key, clk.ms.Load()); ok {
						op.IfRev = e.ModRev
					} else {
						op.IfRev = 1 + rng.Int64N(m.rev+1)
					}
				}
				return op
			}
			for step := range 3000 {
				now := clk.ms.Load()
				switch r := rng.IntN(100); {
				case r < 45:
					ops := []engine.Op{randOp()}
					for rng.IntN(3) == 0 && len(ops) < 6 {
						ops = append(ops, randOp())
					}
					res, err := s.Txn(ops)
					werr := m.txn(ops, now)
					if !reflect.DeepEqual(err, werr) {
						t.Fatalf("step %d: Txn(%+v) = %v, model says %v", step, ops, err, werr)
					}
					if err == nil && res.Rev != m.rev {
						t.Fatalf("step %d: Txn rev %d, model %d", step, res.Rev, m.rev)
					}
				case r < 75:
					k := key()
					got, err := s.Get(k)
					want, ok := m.live(k, now)
					if ok != (err == nil) || (ok && got != want) {
						t.Fatalf("step %d: Get(%s) = %+v, %v; model %+v, %v", step, k, got, err, want, ok)
					}
					if !ok && !errors.Is(err, engine.ErrNotFound) {
						t.Fatalf("step %d: Get(%s) error %v", step, k, err)
					}
				case r < 85:
					prefix := fmt.Sprintf("k/%d", rng.IntN(5))
					after := ""
					if rng.IntN(2) == 0 {
						after = key()
					}
					limit := rng.IntN(6)
					got, more := s.List(prefix, after, limit)
					var want []engine.Entry
					for k := range m.keys {
						if e, ok := m.live(k, now); ok && strings.HasPrefix(k, prefix) && k > after {
							want = append(want, e)
						}
					}
					sort.Slice(want, func(i, j int) bool { return want[i].Key < want[j].Key })
					wmore := limit > 0 && len(want) > limit
					if wmore {
						want = want[:limit]
					}
					if !reflect.DeepEqual(got, want) && !(len(got) == 0 && len(want) == 0) || more != wmore {
						t.Fatalf("step %d: List(%q, %q, %d) = %+v more=%v; model %+v more=%v", step, prefix, after, limit, got, more, want, wmore)
					}
				case r < 95:
					clk.Advance(time.Duration(rng.IntN(20)) * time.Millisecond)
				default:
					if _, err := s.ExpireDue(); err != nil {
						t.Fatal(err)
					}
					now := clk.ms.Load()
					changed := false
					for k, e := range m.keys {
						if e.ExpiresAt != 0 && now >= e.ExpiresAt {
							delete(m.keys, k)
							changed = true
						}
					}
					if changed {
						m.rev++
					}
					if s.Rev() != m.rev || s.Len() != len(m.keys) {
						t.Fatalf("step %d: after ExpireDue rev %d len %d; model rev %d len %d", step, s.Rev(), s.Len(), m.rev, len(m.keys))
					}
				}
			}
			checkState(t, s, m)
			if opts.Journal == nil {
				return
			}
			// Replaying the journal must rebuild the same state.
			r, err := engine.Restore(engine.Options{Now: clk.Now, ExpireInterval: time.Hour}, func(l *engine.Loader) error {
				for _, c := range j.commands() {
					if err := l.Apply(c); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				t.Fatalf("replaying the journal: %v", err)
			}
			defer r.Close()
			checkState(t, r, m)
		})
	}
}

// checkState compares every entry of s, expired or not, with the model.
func checkState(t *testing.T, s *engine.Store, m *model) {
	t.Helper()
	if s.Rev() != m.rev {
		t.Fatalf("Rev = %d, model %d", s.Rev(), m.rev)
	}
	rev, entries, err := s.Checkpoint(func(int64) error { return nil })
	if err != nil || rev != m.rev {
		t.Fatalf("Checkpoint = rev %d, %v", rev, err)
	}
	got := map[string]engine.Entry{}
	for _, e := range entries {
		got[e.Key] = *e
	}
	if !reflect.DeepEqual(got, m.keys) {
		t.Fatalf("state differs from the model:\n got %+v\nwant %+v", got, m.keys)
	}
}

func TestRestore_Refuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		load func(l *engine.Loader) error
	}{
		{"gap", func(l *engine.Loader) error {
			return l.Apply(engine.Command{Rev: 2, Changes: []engine.Change{{Op: engine.OpPut, Key: "a"}}})
		}},
		{"deleteMissing", func(l *engine.Loader) error {
			return l.Apply(engine.Command{Rev: 1, Changes: []engine.Change{{Op: engine.OpDelete, Key: "a"}}})
		}},
		{"unknownOp", func(l *engine.Loader) error {
			return l.Apply(engine.Command{Rev: 1, Changes: []engine.Change{{Op: "zap", Key: "a"}}})
		}},
		{"empty", func(l *engine.Loader) error { return l.Apply(engine.Command{Rev: 1}) }},
		{"duplicateKey", func(l *engine.Loader) error {
			return l.Load(5, []engine.Entry{{Key: "a", CreateRev: 1, ModRev: 1, Version: 1}, {Key: "a", CreateRev: 2, ModRev: 2, Version: 1}})
		}},
		{"futureRev", func(l *engine.Loader) error {
			return l.Load(5, []engine.Entry{{Key: "a", CreateRev: 1, ModRev: 6, Version: 1}})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := engine.Restore(engine.Options{}, tc.load)
			if !errors.Is(err, engine.ErrCorrupt) {
				t.Fatalf("Restore = %v, want ErrCorrupt", err)
			}
		})
	}
	// A failed command leaves the state as it was.
	_, err := engine.Restore(engine.Options{}, func(l *engine.Loader) error {
		l.Apply(engine.Command{Rev: 1, Changes: []engine.Change{{Op: engine.OpPut, Key: "a", Value: "1"}}})
		err := l.Apply(engine.Command{Rev: 2, Changes: []engine.Change{{Op: engine.OpPut, Key: "b"}, {Op: engine.OpDelete, Key: "zz"}}})
		if err == nil || l.Rev() != 1 {
			return fmt.Errorf("bad command applied partly: err %v rev %d", err, l.Rev())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

package engine_test

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pykv/pykv/engine"
)

// clock is a fake time source for TTL tests.
type clock struct{ ms atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ms.Store(1_700_000_000_000)
	return c
}
func (c *clock) Now() time.Time          { return time.UnixMilli(c.ms.Load()) }
func (c *clock) Advance(d time.Duration) { c.ms.Add(d.Milliseconds()) }

// memJournal records commands in memory and can be told to fail.
type memJournal struct {
	mu   sync.Mutex
	cmds []engine.Command
	fail error
}

func (j *memJournal) Append(cmds []engine.Command) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.fail != nil {
		return j.fail
	}
	j.cmds = append(j.cmds, cmds...)
	return nil
}

func (j *memJournal) commands() []engine.Command {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]engine.Command(nil), j.cmds...)
}

// mustNew returns a store (with a journal when j is not nil) closed at cleanup.
func mustNew(tb testing.TB, opts engine.Options) *engine.Store {
	tb.Helper()
	s := engine.New(opts)
	tb.Cleanup(func() { s.Close() })
	return s
}

// modes runs f against a store without and with a journal.
func modes(t *testing.T, f func(t *testing.T, opts engine.Options)) {
	t.Run("Memory", func(t *testing.T) { f(t, engine.Options{}) })
	t.Run("Journal", func(t *testing.T) { f(t, engine.Options{Journal: &memJournal{}}) })
	t.Run("InlineJournal", func(t *testing.T) { f(t, engine.Options{Journal: &memJournal{}, InlineCommit: true}) })
}

func TestStore_PutGetDelete(t *testing.T) {
	modes(t, func(t *testing.T, opts engine.Options) {
		s := mustNew(t, opts)
		if _, err := s.Get("a"); !errors.Is(err, engine.ErrNotFound) {
			t.Fatalf("Get(a) on empty store = %v, want ErrNotFound", err)
		}
		e1, err := s.Put("a", "1")
		if err != nil {
			t.Fatal(err)
		}
		want := engine.Entry{Key: "a", Value: "1", CreateRev: 1, ModRev: 1, Version: 1}
		if e1 != want {
			t.Fatalf("Put(a, 1) = %+v, want %+v", e1, want)
		}
		e2, _ := s.Put("a", "2")
		want = engine.Entry{Key: "a", Value: "2", CreateRev: 1, ModRev: 2, Version: 2}
		if e2 != want {
			t.Fatalf("second Put(a, 2) = %+v, want %+v", e2, want)
		}
		if got, _ := s.Get("a"); got != want {
			t.Fatalf("Get(a) = %+v, want %+v", got, want)
		}
		rev, err := s.Delete("a")
		if err != nil || rev != 3 {
			t.Fatalf("Delete(a) = %d, %v; want 3, nil", rev, err)
		}
		if _, err := s.Delete("a"); !errors.Is(err, engine.ErrNotFound) {
			t.Fatalf("second Delete(a) = %v, want ErrNotFound", err)
		}
		if s.Rev() != 3 {
			t.Fatalf("Rev() = %d after a failed delete, want 3", s.Rev())
		}
		e3, _ := s.Put("a", "3")
		want = engine.Entry{Key: "a", Value: "3", CreateRev: 4, ModRev: 4, Version: 1}
		if e3 != want {
			t.Fatalf("Put after delete = %+v, want %+v (a new key)", e3, want)
		}
	})
}

func TestStore_Limits(t *testing.T) {
	s := mustNew(t, engine.Options{MaxKeyBytes: 4, MaxValueBytes: 8, MaxTxnOps: 2})
	for _, tc := range []struct {
		name string
		op   engine.Op
		want error
	}{
		{"ErrEmptyKey", engine.Op{Type: engine.OpPut, Key: "", Value: "v"}, engine.ErrEmptyKey},
		{"ErrKeyTooLarge", engine.Op{Type: engine.OpPut, Key: "12345", Value: "v"}, engine.ErrKeyTooLarge},
		{"ErrValueTooLarge", engine.Op{Type: engine.OpPut, Key: "k", Value: "123456789"}, engine.ErrValueTooLarge},
		{"ErrInvalidUTF8Key", engine.Op{Type: engine.OpPut, Key: "\xff", Value: "v"}, engine.ErrInvalidUTF8},
		{"ErrInvalidUTF8Value", engine.Op{Type: engine.OpPut, Key: "k", Value: "\xc3"}, engine.ErrInvalidUTF8},
		{"ErrBadTTL", engine.Op{Type: engine.OpPut, Key: "k", Value: "v", TTL: -time.Second}, engine.ErrBadTTL},
		{"ErrBadOp", engine.Op{Type: "rename", Key: "k"}, engine.ErrBadOp},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Do(tc.op)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Do(%+v) = %v, want %v", tc.op, err, tc.want)
			}
			_, err = s.Txn([]engine.Op{{Type: engine.OpPut, Key: "ok", Value: "v"}, tc.op})
			var oe *engine.OpError
			if !errors.As(err, &oe) || oe.Index != 1 || !errors.Is(err, tc.want) {
				t.Fatalf("Txn([ok, %+v]) = %v, want an OpError at index 1 wrapping %v", tc.op, err, tc.want)
			}
		})
	}
	if s.Rev() != 0 || s.Len() != 0 {
		t.Fatalf("refused writes changed the store: rev %d, %d keys", s.Rev(), s.Len())
	}
	if _, err := s.Txn(nil); !errors.Is(err, engine.ErrEmptyTxn) {
		t.Fatalf("Txn(nil) = %v, want ErrEmptyTxn", err)
	}
	three := []engine.Op{{Type: engine.OpPut, Key: "a"}, {Type: engine.OpPut, Key: "b"}, {Type: engine.OpPut, Key: "c"}}
	if _, err := s.Txn(three); !errors.Is(err, engine.ErrTxnTooLarge) {
		t.Fatalf("Txn of 3 ops with MaxTxnOps 2 = %v, want ErrTxnTooLarge", err)
	}
}

func TestStore_Conditions(t *testing.T) {
	modes(t, func(t *testing.T, opts engine.Options) {
		s := mustNew(t, opts)
		e, err := s.Do(engine.Op{Type: engine.OpPut, Key: "k", Value: "1", IfRev: engine.Absent})
		if err != nil {
			t.Fatalf("put if absent on a new key: %v", err)
		}
		_, err = s.Do(engine.Op{Type: engine.OpPut, Key: "k", Value: "2", IfRev: engine.Absent})
		var ce *engine.ConditionError
		if !errors.As(err, &ce) || ce.Have != e.ModRev || ce.Want != 0 || !errors.Is(err, engine.ErrConflict) {
			t.Fatalf("put if absent on an existing key = %v, want ConditionError{Want 0, Have %d}", err, e.ModRev)
		}
		if _, err := s.Do(engine.Op{Type: engine.OpPut, Key: "k", Value: "2", IfRev: e.ModRev + 5}); !errors.Is(err, engine.ErrConflict) {
			t.Fatalf("put at a wrong revision = %v, want ErrConflict", err)
		}
		e2, err := s.Do(engine.Op{Type: engine.OpPut, Key: "k", Value: "2", IfRev: e.ModRev})
		if err != nil || e2.Value != "2" {
			t.Fatalf("put at the right revision = %+v, %v", e2, err)
		}
		if _, err := s.Do(engine.Op{Type: engine.OpDelete, Key: "k", IfRev: e.ModRev}); !errors.Is(err, engine.ErrConflict) {
			t.Fatalf("delete at a stale revision = %v, want ErrConflict", err)
		}
		if _, err := s.Do(engine.Op{Type: engine.OpDelete, Key: "k", IfRev: e2.ModRev}); err != nil {
			t.Fatalf("delete at the right revision: %v", err)
		}
	})
}

func TestStore_Txn(t *testing.T) {
	modes(t, func(t *testing.T, opts engine.Options) {
		s := mustNew(t, opts)
		a, _ := s.Put("a", "1")
		s.Put("b", "1")
		// A failing condition anywhere leaves everything untouched.
		_, err := s.Txn([]engine.Op{
			{Type: engine.OpPut, Key: "a", Value: "2", IfRev: a.ModRev},
			{Type: engine.OpDelete, Key: "b"},
			{Type: engine.OpPut, Key: "c", Value: "1", IfRev: 99},
		})
		var ce *engine.ConditionError
		if !errors.As(err, &ce) || ce.Index != 2 || ce.Key != "c" {
			t.Fatalf("txn with a failing third condition = %v, want ConditionError at op 2", err)
		}
		if got, _ := s.Get("a"); got.Value != "1" {
			t.Fatalf("failed txn changed a to %q", got.Value)
		}
		if _, err := s.Get("b"); err != nil {
			t.Fatalf("failed txn deleted b: %v", err)
		}
		res, err := s.Txn([]engine.Op{
			{Type: engine.OpPut, Key: "a", Value: "2", IfRev: a.ModRev},
			{Type: engine.OpDelete, Key: "b"},
			{Type: engine.OpPut, Key: "c", Value: "1", IfRev: engine.Absent},
			{Type: engine.OpPut, Key: "c", Value: "2"},
			{Type: engine.OpDelete, Key: "nope"},
		})
		if err != nil {
			t.Fatal(err)
		}
		if res.Rev != 3 {
			t.Fatalf("txn rev = %d, want 3 (one revision for the whole batch)", res.Rev)
		}
		c, _ := s.Get("c")
		if c.Value != "2" || c.Version != 2 || c.CreateRev != 3 {
			t.Fatalf("c after put twice in one txn = %+v, want value 2, version 2, created at 3", c)
		}
		if !res.Results[1].Deleted || res.Results[4].Deleted {
			t.Fatalf("Deleted flags = %v, %v; want true, false", res.Results[1].Deleted, res.Results[4].Deleted)
		}
		// A transaction that changes nothing takes no revision.
		res, err = s.Txn([]engine.Op{{Type: engine.OpDelete, Key: "nope"}})
		if err != nil || res.Rev != 3 || s.Rev() != 3 {
			t.Fatalf("no-op txn = rev %d, %v; store rev %d; want 3", res.Rev, err, s.Rev())
		}
	})
}

func TestStore_List(t *testing.T) {
	s := mustNew(t, engine.Options{})
	for _, k := range []string{"b/2", "a", "b/1", "b/3", "c", "b", "b/10"} {
		s.Put(k, "v-"+k)
	}
	keys := func(es []engine.Entry) string {
		var ks []string
		for _, e := range es {
			ks = append(ks, e.Key)
		}
		return strings.Join(ks, ",")
	}
	for _, tc := range []struct {
		prefix, after string
		limit         int
		want          string
		more          bool
	}{
		{"", "", 0, "a,b,b/1,b/10,b/2,b/3,c", false},
		{"b/", "", 0, "b/1,b/10,b/2,b/3", false},
		{"b/", "", 2, "b/1,b/10", true},
		{"b/", "b/10", 2, "b/2,b/3", false},
		{"b/", "b/3", 2, "", false},
		{"b/", "a", 1, "b/1", true},
		{"x", "", 0, "", false},
		{"", "b/2", 3, "b/3,c", false},
	} {
		got, more := s.List(tc.prefix, tc.after, tc.limit)
		if keys(got) != tc.want || more != tc.more {
			t.Errorf("List(%q, %q, %d) = %q, more=%v; want %q, more=%v", tc.prefix, tc.after, tc.limit, keys(got), more, tc.want, tc.more)
		}
	}
	if _, _, rev := s.ListAt("", "", 1); rev != 7 {
		t.Errorf("ListAt after 7 puts gives revision %d", rev)
	}
}

// TestStore_PastExpiryInTxn: a put whose absolute expiry has passed leaves
// nothing a later operation of the same transaction could delete, whether
// or not any other key has an expiry (the store reads the clock only when
// some expiry is involved).
func TestStore_PastExpiryInTxn(t *testing.T) {
	modes(t, func(t *testing.T, opts engine.Options) {
		clk := newClock()
		opts.Now = clk.Now
		opts.ExpireInterval = time.Hour
		s := mustNew(t, opts)
		past := clk.ms.Load() - 1000
		res, err := s.Txn([]engine.Op{
			{Type: engine.OpPut, Key: "k", Value: "v", ExpiresAt: past},
			{Type: engine.OpDelete, Key: "k"},
		})
		if err != nil {
			t.Fatal(err)
		}
		if res.Results[1].Deleted {
			t.Error("deleted a key whose expiry had passed when it was put")
		}
		if _, err := s.Get("k"); !errors.Is(err, engine.ErrNotFound) {
			t.Errorf("Get(k) = %v, want ErrNotFound", err)
		}
	})
}

func TestStore_TTL(t *testing.T) {
	modes(t, func(t *testing.T, opts engine.Options) {
		clk := newClock()
		opts.Now = clk.Now
		opts.ExpireInterval = time.Hour // expiry driven by the test
		s := mustNew(t, opts)
		w, _ := s.Watch(0, "")
		e, err := s.Do(engine.Op{Type: engine.OpPut, Key: "t", Value: "v", TTL: 1500 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		if e.ExpiresAt != clk.ms.Load()+1500 {
			t.Fatalf("ExpiresAt = %d, want now+1500", e.ExpiresAt)
		}
		s.Put("keep", "v")
		clk.Advance(1499 * time.Millisecond)
		if _, err := s.Get("t"); err != nil {
			t.Fatalf("Get before expiry: %v", err)
		}
		clk.Advance(time.Millisecond)
		if _, err := s.Get("t"); !errors.Is(err, engine.ErrNotFound) {
			t.Fatalf("Get at expiry = %v, want ErrNotFound", err)
		}
		if l, _ := s.List("", "", 0); len(l) != 1 || l[0].Key != "keep" {
			t.Fatalf("List at expiry = %+v, want only keep", l)
		}
		if s.Len() != 2 {
			t.Fatalf("Len before the sweep = %d, want 2", s.Len())
		}
		n, err := s.ExpireDue()
		if err != nil || n != 1 || s.Len() != 1 {
			t.Fatalf("ExpireDue = %d, %v; Len %d; want 1, nil, 1", n, err, s.Len())
		}
		evs := readEvents(t, w, 3)
		if evs[2].Type != engine.OpExpire || evs[2].Key != "t" || evs[2].Rev != 3 {
			t.Fatalf("third event = %+v, want expire of t at rev 3", evs[2])
		}
		// A put on an expired key that was not swept yet creates it anew.
		s.Do(engine.Op{Type: engine.OpPut, Key: "u", Value: "1", TTL: time.Second})
		clk.Advance(2 * time.Second)
		u, err := s.Put("u", "2")
		if err != nil || u.Version != 1 || u.CreateRev != u.ModRev {
			t.Fatalf("put over an expired key = %+v, %v; want a fresh key", u, err)
		}
		if n, _ := s.ExpireDue(); n != 0 {
			t.Fatalf("ExpireDue removed %d keys after the key was rewritten without TTL", n)
		}
		if _, err := s.Get("u"); err != nil {
			t.Fatalf("rewritten key u lost: %v", err)
		}
	})
}

func TestStore_BackgroundExpiry(t *testing.T) {
	s := mustNew(t, engine.Options{ExpireInterval: 5 * time.Millisecond})
	w, _ := s.Watch(0, "")
	s.Do(engine.Op{Type: engine.OpPut, Key: "t", Value: "v", TTL: 20 * time.Millisecond})
	evs := readEvents(t, w, 2)
	if evs[1].Type != engine.OpExpire {
		t.Fatalf("second event = %+v, want the background expiry", evs[1])
	}
	if s.Len() != 0 {
		t.Fatalf("Len after background expiry = %d", s.Len())
	}
}

func TestStore_JournalFailure(t *testing.T) {
	for _, inline := range []bool{false, true} {
		t.Run(fmt.Sprint("inline=", inline), func(t *testing.T) { testJournalFailure(t, inline) })
	}
}

func testJournalFailure(t *testing.T, inline bool) {
	j := &memJournal{}
	s := mustNew(t, engine.Options{Journal: j, InlineCommit: inline})
	s.Put("a", "1")
	boom := errors.New("disk on fire")
	j.mu.Lock()
	j.fail = boom
	j.mu.Unlock()
	if _, err := s.Put("a", "2"); !errors.Is(err, boom) {
		t.Fatalf("Put with a failing journal = %v, want %v", err, boom)
	}
	if _, err := s.Put("b", "1"); !errors.Is(err, boom) {
		t.Fatalf("Put with a failing journal = %v, want %v", err, boom)
	}
	if got, _ := s.Get("a"); got.Value != "1" || s.Rev() != 1 || s.Len() != 1 {
		t.Fatalf("a failed journal changed memory: a=%+v rev=%d len=%d", got, s.Rev(), s.Len())
	}
	j.mu.Lock()
	j.fail = nil
	j.mu.Unlock()
	e, err := s.Put("a", "3")
	if err != nil || e.ModRev != 2 {
		t.Fatalf("Put after the journal recovered = %+v, %v; want revision 2 (no revision lost or reused)", e, err)
	}
}

func TestStore_Closed(t *testing.T) {
	modes(t, func(t *testing.T, opts engine.Options) {
		s := engine.New(opts)
		s.Put("a", "1")
		s.Close()
		if _, err := s.Put("b", "1"); !errors.Is(err, engine.ErrClosed) {
			t.Fatalf("Put after Close = %v, want ErrClosed", err)
		}
		if e, err := s.Get("a"); err != nil || e.Value != "1" {
			t.Fatalf("Get after Close = %+v, %v; reads should keep working", e, err)
		}
	})
}

// TestStore_Concurrent hammers one store from many goroutines; with -race
// it checks the locking, and the final counts check nothing was lost.
func TestStore_Concurrent(t *testing.T) {
	modes(t, func(t *testing.T, opts engine.Options) {
		s := mustNew(t, opts)
		const workers, each = 8, 300
		var wg sync.WaitGroup
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					key := fmt.Sprintf("k%d", i%17)
					for {
						cur, err := s.Get(key)
						cond := cur.ModRev
						if errors.Is(err, engine.ErrNotFound) {
							cond = engine.Absent
						}
						n := 0
						fmt.Sscan(cur.Value, &n)
						_, err = s.Do(engine.Op{Type: engine.OpPut, Key: key, Value: fmt.Sprint(n + 1), IfRev: cond})
						if err == nil {
							break
						}
						if !errors.Is(err, engine.ErrConflict) {
							t.Error(err)
							return
						}
					}
					s.List("k1", "", 5)
				}
			}()
		}
		wg.Wait()
		total := 0
		for i := range 17 {
			e, _ := s.Get(fmt.Sprintf("k%d", i))
			n := 0
			fmt.Sscan(e.Value, &n)
			total += n
		}
		if total != workers*each {
			t.Fatalf("compare-and-swap counters add up to %d, want %d", total, workers*each)
		}
		if s.Rev() != workers*each {
			t.Fatalf("Rev = %d, want %d", s.Rev(), workers*each)
		}
	})
}

// TestStore_TTLCap: a TTL beyond MaxTTL is refused, not turned into an
// expiry time that wrapped around to the past.
func TestStore_TTLCap(t *testing.T) {
	s := engine.New(engine.Options{})
	defer s.Close()
	for _, ttl := range []time.Duration{engine.MaxTTL + time.Millisecond, math.MaxInt64} {
		if _, err := s.Do(engine.Op{Type: engine.OpPut, Key: "k", Value: "v", TTL: ttl}); !errors.Is(err, engine.ErrTTLTooLong) {
			t.Errorf("put with TTL %v: err %v, want ErrTTLTooLong", ttl, err)
		}
	}
	e, err := s.Do(engine.Op{Type: engine.OpPut, Key: "k", Value: "v", TTL: engine.MaxTTL})
	if err != nil || e.ExpiresAt <= time.Now().UnixMilli() {
		t.Fatalf("put with TTL MaxTTL: %+v, %v; want an expiry in the future", e, err)
	}
}

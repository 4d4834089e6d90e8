package engine_test

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pykv/pykv/engine"
)

// syncJournal is a journal whose Append takes a while, like an fsync, and
// which asks the committer to hold groups open for a delay
// (engine.GroupDelayer). It records the size of every group.
type syncJournal struct {
	took  time.Duration
	delay atomic.Int64 // ns

	mu     sync.Mutex
	groups []int
}

func (j *syncJournal) Append(cmds []engine.Command) error {
	time.Sleep(j.took)
	j.mu.Lock()
	j.groups = append(j.groups, len(cmds))
	j.mu.Unlock()
	return nil
}

func (j *syncJournal) CommitDelay() time.Duration { return time.Duration(j.delay.Load()) }

func (j *syncJournal) sizes() []int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return slices.Clone(j.groups)
}

// TestCommit_HoldsGroupForActiveWriters checks that with a GroupDelayer
// journal the committer waits for the writers it just answered, so that
// writers looping on the store, as HTTP clients on keep-alive connections
// do, share each Append: after the first few groups (while the committer
// learns how many writers there are), every group holds all of them.
// Taking only the writers already waiting, as the committer did before,
// splits them into groups of a few.
func TestCommit_HoldsGroupForActiveWriters(t *testing.T) {
	const writers, groups = 8, 40
	j := &syncJournal{took: time.Millisecond}
	// Far longer than writers take to come back even on a loaded machine,
	// so a group is sealed by its last writer joining.
	j.delay.Store(int64(2 * time.Second))
	s := mustNew(t, engine.Options{Journal: j})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := s.Put(fmt.Sprintf("w%d", w), fmt.Sprint(i)); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	deadline := time.Now().Add(time.Minute)
	for len(j.sizes()) < groups && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	sizes := j.sizes()
	j.delay.Store(0) // writers leaving one by one must not be waited for
	close(stop)
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	if len(sizes) < groups {
		t.Fatalf("only %d groups in a minute: %v", len(sizes), sizes)
	}
	full := 0
	for _, n := range sizes[4:groups] {
		if n == writers {
			full++
		}
	}
	if want := (groups - 4) * 9 / 10; full < want {
		t.Errorf("only %d of groups 5 to %d held all %d writers, want at least %d; group sizes %v",
			full, groups, writers, want, sizes)
	}
}

// TestCommit_LoneWriterNotHeld checks that a writer with no others
// active is committed at once, however long the journal allows holding
// a group: 300 writes in a row with a 10 s delay must not take 10 s.
//
// The committer and the writer race after each answer: the writer may
// queue its next write before the committer looks again. The committer
// once counted such a writer twice (answered and waiting) and held its
// write for a second writer who did not exist; with 5 writes that showed
// only now and then under load, with 300 it shows in most runs.
func TestCommit_LoneWriterNotHeld(t *testing.T) {
	const writes = 300
	j := &syncJournal{}
	j.delay.Store(int64(10 * time.Second))
	s := mustNew(t, engine.Options{Journal: j})
	start := time.Now()
	for i := range writes {
		if _, err := s.Put("k", fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("%d writes by one writer took %v: the committer held groups for writers that do not exist", writes, took)
	}
	if got := j.sizes(); len(got) != writes || slices.ContainsFunc(got, func(n int) bool { return n != 1 }) {
		t.Errorf("%d groups, want %d of one write: %v", len(got), writes, got)
	}
}

// heldGroup sets up a held group: writer X's write blocks in Append
// while two more writers queue behind it; once X is answered, the
// committer expects three writers (X again and the two waiting) and holds
// the two for X, who never writes again. It returns the channel on which
// the two report their answers, and when X's group was released.
func heldGroup(t *testing.T, s *engine.Store, j *gateJournal) (<-chan error, time.Time) {
	t.Helper()
	if _, err := s.Put("warm", "x"); err != nil { // a first group of one
		t.Fatal(err)
	}
	j.gate = make(chan struct{})
	x := make(chan error, 1)
	go func() { _, err := s.Put("x", "1"); x <- err }()
	<-j.entered // X's group is in Append
	answers := make(chan error, 2)
	for _, k := range []string{"y", "z"} {
		go func() { _, err := s.Put(k, "1"); answers <- err }()
	}
	time.Sleep(100 * time.Millisecond) // let both queue up behind X
	released := time.Now()
	close(j.gate)
	if err := <-x; err != nil {
		t.Fatal(err)
	}
	return answers, released
}

// gateJournal blocks the first Append after gate is set until it is
// closed, and asks for a fixed delay.
type gateJournal struct {
	delay   time.Duration
	gate    chan struct{}
	entered chan struct{}
	once    sync.Once
}

func (j *gateJournal) Append(cmds []engine.Command) error {
	if j.gate != nil {
		j.once.Do(func() {
			j.entered <- struct{}{}
			<-j.gate
		})
	}
	return nil
}

func (j *gateJournal) CommitDelay() time.Duration { return j.delay }

// TestCommit_HoldBoundedByDelay checks that a group held for a writer who
// does not come back is committed once the delay has passed, and not
// before: the hold is real and bounded.
func TestCommit_HoldBoundedByDelay(t *testing.T) {
	j := &gateJournal{delay: 300 * time.Millisecond, entered: make(chan struct{}, 1)}
	s := mustNew(t, engine.Options{Journal: j})
	answers, released := heldGroup(t, s, j)
	for range 2 {
		select {
		case err := <-answers:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("held writes not answered 30 s after the group was released; the delay is %v", j.delay)
		}
	}
	// Timers never fire early, so the two cannot be answered before the
	// delay unless the committer did not hold them.
	if took := time.Since(released); took < j.delay {
		t.Errorf("held writes answered after %v, before the delay of %v: not held", took, j.delay)
	}
}

// TestCommit_CloseEndsHold checks that Close does not wait out a held
// group's delay (an hour here): the writes held are answered (committed
// or ErrClosed) and Close returns.
func TestCommit_CloseEndsHold(t *testing.T) {
	j := &gateJournal{delay: time.Hour, entered: make(chan struct{}, 1)}
	s := engine.New(engine.Options{Journal: j})
	answers, _ := heldGroup(t, s, j)
	time.Sleep(50 * time.Millisecond) // the committer is holding y and z
	closed := make(chan struct{})
	go func() { s.Close(); close(closed) }()
	for range 2 {
		select {
		case err := <-answers:
			if err != nil && !errors.Is(err, engine.ErrClosed) {
				t.Errorf("held write answered %v, want success or ErrClosed", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("a held write was not answered 30 s after Close")
		}
	}
	select {
	case <-closed:
	case <-time.After(30 * time.Second):
		t.Fatal("Close did not return while a group was held")
	}
}

// TestCommit_PooledRequestsKeepTheirAnswers checks that writers sharing
// groups each get their own write's answer. Do's requests are recycled
// (see getRequest): a request handed back before its writer copied the
// answer out, or answered twice, would give a writer another write's
// entry or revision, or a reused channel's stale signal.
func TestCommit_PooledRequestsKeepTheirAnswers(t *testing.T) {
	j := &syncJournal{took: 200 * time.Microsecond}
	j.delay.Store(int64(time.Millisecond))
	s := engine.New(engine.Options{Journal: j})
	defer s.Close()
	const writers, each = 16, 150
	var mu sync.Mutex
	seen := map[int64]string{} // revision -> key
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				key, value := fmt.Sprintf("w%d-%d", w, i%7), fmt.Sprintf("v%d-%d", w, i)
				op := engine.Op{Type: engine.OpPut, Key: key, Value: value}
				if i%5 == 4 {
					op = engine.Op{Type: engine.OpDelete, Key: key}
				}
				e, err := s.Do(op)
				if op.Type == engine.OpDelete {
					// The key was put by this writer just before (i%7 cycles
					// faster than every fifth op deletes), unless deleted already.
					if err != nil && !errors.Is(err, engine.ErrNotFound) {
						t.Errorf("delete %s: %v", key, err)
						return
					}
					if err == nil && e.Key != key {
						t.Errorf("delete %s answered for key %q", key, e.Key)
					}
				} else {
					if err != nil {
						t.Errorf("put %s: %v", key, err)
						return
					}
					if e.Key != key || e.Value != value {
						t.Errorf("put %s=%s answered %s=%s", key, value, e.Key, e.Value)
					}
				}
				if err != nil {
					continue
				}
				mu.Lock()
				if other, dup := seen[e.ModRev]; dup {
					t.Errorf("revision %d answered to both %s and %s", e.ModRev, other, key)
				}
				seen[e.ModRev] = key
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if rev := s.Rev(); int(rev) != len(seen) {
		t.Errorf("store at revision %d, but %d writes were answered with a revision", rev, len(seen))
	}
	if groups := j.sizes(); len(groups) >= writers*each {
		t.Errorf("%d groups for %d writes: writers did not share appends", len(groups), writers*each)
	}
}

// heldJournal holds its first Append until release is closed, and records
// every group it is given (the keys of each command, in order).
type heldJournal struct {
	entered chan struct{} // closed when the first Append begins
	release chan struct{}

	mu     sync.Mutex
	calls  int
	groups [][]string
}

func (j *heldJournal) Append(cmds []engine.Command) error {
	j.mu.Lock()
	j.calls++
	first := j.calls == 1
	var keys []string
	for _, c := range cmds {
		for _, ch := range c.Changes {
			keys = append(keys, ch.Key)
		}
	}
	j.groups = append(j.groups, keys)
	j.mu.Unlock()
	if first {
		close(j.entered)
		<-j.release
	}
	return nil
}

// TestStore_SubmitSharesGroupInOrder submits writes from one goroutine
// while the committer is busy with an earlier group, as a connection
// serving pipelined PUTs does: they must all be in the committer's next
// group, in the order submitted, with increasing revisions, and each
// answer must be its own write's. Do goes through the same queue, so a Do
// issued meanwhile lands after them.
func TestStore_SubmitSharesGroupInOrder(t *testing.T) {
	j := &heldJournal{entered: make(chan struct{}), release: make(chan struct{})}
	s := mustNew(t, engine.Options{Journal: j})
	first := s.Submit(engine.Op{Type: engine.OpPut, Key: "first", Value: "0"})
	<-j.entered // the committer is inside Append with "first"
	const n = 20
	pending := make([]engine.Pending, n)
	for i := range pending {
		pending[i] = s.Submit(engine.Op{Type: engine.OpPut, Key: fmt.Sprintf("k%02d", i), Value: fmt.Sprint(i)})
	}
	bad := s.Submit(engine.Op{Type: engine.OpPut, Key: "", Value: "x"}) // refused before queueing
	close(j.release)
	if _, err := first.Wait(); err != nil {
		t.Fatal(err)
	}
	var lastRev int64
	for i := range pending {
		e, err := pending[i].Wait()
		if err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		if e.Key != fmt.Sprintf("k%02d", i) || e.Value != fmt.Sprint(i) || e.ModRev <= lastRev {
			t.Fatalf("write %d answered %+v after revision %d", i, e, lastRev)
		}
		lastRev = e.ModRev
	}
	if _, err := bad.Wait(); !errors.Is(err, engine.ErrEmptyKey) {
		t.Fatalf("empty key: Wait() error = %v, want ErrEmptyKey", err)
	}
	if e, err := s.Do(engine.Op{Type: engine.OpDelete, Key: "k00"}); err != nil || e.ModRev != lastRev+1 {
		t.Fatalf("Do after the batch = %+v, %v; want revision %d", e, err, lastRev+1)
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	want := make([]string, n)
	for i := range want {
		want[i] = fmt.Sprintf("k%02d", i)
	}
	if len(j.groups) < 2 || !slices.Equal(j.groups[0], []string{"first"}) || !slices.Equal(j.groups[1], want) {
		t.Fatalf("groups = %q, want [first] then all %d submitted writes in one group, in order", j.groups, n)
	}
}

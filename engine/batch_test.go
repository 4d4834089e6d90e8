package engine_test

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pykv/pykv/engine"
)

// TestBatch_CommitsInOneAppend checks that a Batch's writes reach the
// journal as one Append, in the order submitted, and that each Pending
// then has its own write's answer: refusals (a bad key, a delete of a
// missing key) included, without a record.
func TestBatch_CommitsInOneAppend(t *testing.T) {
	j := &syncJournal{}
	s := mustNew(t, engine.Options{Journal: j})
	b := s.NewBatch()
	const n = 10
	pending := make([]engine.Pending, n)
	for i := range pending {
		pending[i] = b.Submit(engine.Op{Type: engine.OpPut, Key: fmt.Sprintf("k%02d", i), Value: fmt.Sprint(i)})
	}
	bad := b.Submit(engine.Op{Type: engine.OpPut, Key: "", Value: "x"})
	missing := b.Submit(engine.Op{Type: engine.OpDelete, Key: "nothing"})
	if b.Len() != n+1 {
		t.Fatalf("Len() = %d before Commit, want %d (the bad key is refused at once)", b.Len(), n+1)
	}
	if _, err := s.Get("k00"); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("Get before Commit: err = %v, want ErrNotFound", err)
	}
	b.Commit()
	if b.Len() != 0 {
		t.Fatalf("Len() = %d after Commit, want 0", b.Len())
	}
	var last int64
	for i := range pending {
		e, err := pending[i].Wait()
		if err != nil || e.Key != fmt.Sprintf("k%02d", i) || e.Value != fmt.Sprint(i) || e.ModRev != last+1 {
			t.Fatalf("write %d answered %+v, %v after revision %d", i, e, err, last)
		}
		last = e.ModRev
	}
	if _, err := bad.Wait(); !errors.Is(err, engine.ErrEmptyKey) {
		t.Fatalf("empty key: Wait() error = %v, want ErrEmptyKey", err)
	}
	if _, err := missing.Wait(); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("delete of a missing key: Wait() error = %v, want ErrNotFound", err)
	}
	if got := j.sizes(); len(got) != 1 || got[0] != n {
		t.Fatalf("journal groups = %v, want one of %d", got, n)
	}
	if e, err := s.Get("k09"); err != nil || e.Value != "9" {
		t.Fatalf("Get after Commit = %+v, %v", e, err)
	}
	b.Commit() // nothing submitted: no Append
	if got := j.sizes(); len(got) != 1 {
		t.Fatalf("an empty Commit appended: groups = %v", got)
	}
}

// overlapJournal fails the test's check if two Appends ever run at once:
// the committer and a Batch must take turns.
type overlapJournal struct {
	in, overlaps atomic.Int32
}

func (j *overlapJournal) Append([]engine.Command) error {
	if j.in.Add(1) > 1 {
		j.overlaps.Add(1)
	}
	time.Sleep(50 * time.Microsecond)
	j.in.Add(-1)
	return nil
}

// TestBatch_TakesTurnsWithCommitter runs Batch commits beside writers
// going through the committer: no two Appends may overlap, and every
// write gets a revision of its own.
func TestBatch_TakesTurnsWithCommitter(t *testing.T) {
	j := &overlapJournal{}
	s := mustNew(t, engine.Options{Journal: j})
	const writers, each = 4, 100
	var mu sync.Mutex
	revs := map[int64]string{}
	record := func(e engine.Entry, err error) {
		if err != nil {
			t.Error(err)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if other, ok := revs[e.ModRev]; ok {
			t.Errorf("revision %d given to both %s and %s", e.ModRev, other, e.Key)
		}
		revs[e.ModRev] = e.Key
	}
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				record(s.Do(engine.Op{Type: engine.OpPut, Key: fmt.Sprintf("do%d-%d", w, i), Value: "v"}))
			}
		})
	}
	wg.Go(func() {
		b := s.NewBatch()
		for i := range each {
			p := [3]engine.Pending{}
			for k := range p {
				p[k] = b.Submit(engine.Op{Type: engine.OpPut, Key: fmt.Sprintf("batch%d-%d", i, k), Value: "v"})
			}
			b.Commit()
			for k := range p {
				record(p[k].Wait())
			}
		}
	})
	wg.Wait()
	if n := j.overlaps.Load(); n > 0 {
		t.Fatalf("%d Appends overlapped another", n)
	}
	if want := writers*each + 3*each; len(revs) != want || s.Rev() != int64(want) {
		t.Fatalf("%d revisions given, store at %d; want %d", len(revs), s.Rev(), want)
	}
}

// TestBatch_ClosedStore checks that a Commit after Close answers its
// writes with ErrClosed and records nothing.
func TestBatch_ClosedStore(t *testing.T) {
	j := &syncJournal{}
	s := engine.New(engine.Options{Journal: j})
	b := s.NewBatch()
	p := b.Submit(engine.Op{Type: engine.OpPut, Key: "k", Value: "v"})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	b.Commit()
	if _, err := p.Wait(); !errors.Is(err, engine.ErrClosed) {
		t.Fatalf("Wait() error = %v, want ErrClosed", err)
	}
	if got := j.sizes(); len(got) != 0 {
		t.Fatalf("journal groups = %v after Close, want none", got)
	}
}

// TestBatch_NoCommitter checks that without a committer (no journal) a
// Batch's write is carried out at Submit, as Store.Submit's is.
func TestBatch_NoCommitter(t *testing.T) {
	s := mustNew(t, engine.Options{})
	b := s.NewBatch()
	p := b.Submit(engine.Op{Type: engine.OpPut, Key: "k", Value: "v"})
	if e, err := s.Get("k"); err != nil || e.Value != "v" {
		t.Fatalf("Get after Submit = %+v, %v; want the write carried out", e, err)
	}
	if b.Len() != 0 {
		t.Fatalf("Len() = %d, want 0", b.Len())
	}
	if e, err := p.Wait(); err != nil || e.ModRev != 1 {
		t.Fatalf("Wait() = %+v, %v", e, err)
	}
}

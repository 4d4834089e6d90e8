package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pykv/pykv/engine"
	"github.com/pykv/pykv/persist/cluster"
)

func TestNode_Replication(t *testing.T) {
	c := mustCluster(t, 3, nil)
	l := c.leader()
	var last int64
	for i := range 50 {
		res := c.put(fmt.Sprintf("k%02d", i), fmt.Sprint(i))
		if res.Rev <= last {
			t.Fatalf("write %d got revision %d after %d", i, res.Rev, last)
		}
		last = res.Rev
		l = c.leader()
		// Acknowledged means applied on the member that answered.
		if e, err := l.node.Store().Get(fmt.Sprintf("k%02d", i)); err != nil || e.ModRev != res.Rev {
			t.Fatalf("acknowledged write %d not applied on the leader: %+v, %v", i, e, err)
		}
	}
	c.converged()
	c.noDivergence()

	t.Run("FollowerRefusesWrites", func(t *testing.T) {
		for _, m := range c.running() {
			if m == l {
				continue
			}
			_, err := m.node.Write(testCtx(t), []engine.Op{{Type: engine.OpPut, Key: "x"}}, false)
			var nl *cluster.NotLeaderError
			if !errors.As(err, &nl) || nl.LeaderID != l.id || nl.LeaderAPI != l.opts.APIAddr {
				t.Errorf("write on follower %s = %v, want NotLeaderError naming %s at %s", m.id, err, l.id, l.opts.APIAddr)
			}
			if _, err := m.node.Store().Put("x", "1"); !errors.Is(err, engine.ErrReplicated) {
				t.Errorf("direct store write on %s = %v, want ErrReplicated", m.id, err)
			}
		}
	})
	t.Run("ConditionsAtApply", func(t *testing.T) {
		ctx := testCtx(t)
		k00, err := l.node.Store().Get("k00")
		if err != nil {
			t.Fatal(err)
		}
		// write retries while leadership moves; a refused condition
		// changes nothing, so retrying it is safe.
		write := func(op engine.Op) error {
			for {
				l := c.leader()
				_, err := l.node.Write(ctx, []engine.Op{op}, false)
				if ctx.Err() != nil || !errors.Is(err, cluster.ErrNotLeader) && !errors.Is(err, cluster.ErrOutcomeUnknown) {
					return err
				}
			}
		}
		err = write(engine.Op{Type: engine.OpPut, Key: "k00", Value: "v", IfRev: engine.Absent})
		var ce *engine.ConditionError
		if !errors.As(err, &ce) || ce.Have != k00.ModRev {
			t.Fatalf("conditional write on an existing key = %v, want a ConditionError with revision %d", err, k00.ModRev)
		}
		before := c.leader().node.Store().Rev()
		if err := write(engine.Op{Type: engine.OpPut, Key: "k00", Value: "v", IfRev: k00.ModRev}); err != nil {
			t.Fatal(err)
		}
		if e, _ := c.leader().node.Store().Get("k00"); e.ModRev != before+1 {
			t.Fatalf("a failed condition took a revision: the store was at %d, the write got %d", before, e.ModRev)
		}
		c.converged()
	})
	t.Run("Members", func(t *testing.T) {
		// Addresses are log entries: a follower may lag a moment.
		deadline := time.Now().Add(5 * time.Second)
		for {
			ms, err := c.member("n2").node.Members()
			if err != nil {
				t.Fatal(err)
			}
			var bad []string
			for _, m := range ms {
				want := c.member(m.ID)
				if m.RaftAddr != want.addr || !m.Voter || (m.Role == "leader") != (m.ID == l.id) || m.APIAddr != want.opts.APIAddr {
					bad = append(bad, fmt.Sprintf("%+v", m))
				}
			}
			if len(ms) == 3 && bad == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("Members = %+v; wrong: %v", ms, bad)
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}

// TestNode_PeerTLS runs a cluster whose raft traffic is mutual TLS.
func TestNode_PeerTLS(t *testing.T) {
	certs := cluster.MakeCerts(t, "n1", "n2", "n3")
	c := mustCluster(t, 3, func(o *cluster.Options) { o.PeerTLS = certs[o.ID] })
	c.put("a", "1")
	c.converged()
	if _, err := cluster.Open(cluster.Options{ID: "x", RaftAddr: "0.0.0.0:0", Dir: t.TempDir()}); err == nil {
		t.Error("a member on a wildcard address started")
	}
	if _, err := cluster.Open(cluster.Options{ID: "x", RaftAddr: "192.0.2.1:0", Dir: t.TempDir()}); !errors.Is(err, cluster.ErrPlainBeyondLoopback) {
		t.Errorf("plain raft beyond loopback = %v, want ErrPlainBeyondLoopback", err)
	}
}

func TestNode_TTL(t *testing.T) {
	c := mustCluster(t, 3, nil)
	ctx := testCtx(t)
	for {
		_, err := c.leader().node.Write(ctx, []engine.Op{{Type: engine.OpPut, Key: "t", Value: "v", TTL: 50 * time.Millisecond}}, false)
		if err == nil {
			break
		}
		if ctx.Err() != nil || !errors.Is(err, cluster.ErrNotLeader) && !errors.Is(err, cluster.ErrOutcomeUnknown) {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for c.leader().node.Store().Len() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the expired key was never removed")
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.converged()
	c.noDivergence() // the expire change has the same revision everywhere
}

// TestNode_QuorumAndFailover: a write is acknowledged with one follower
// down, not with both; when the leader dies another takes over with every
// acknowledged write, and the old leader catches up when it returns.
func TestNode_QuorumAndFailover(t *testing.T) {
	c := mustCluster(t, 3, nil)
	for i := range 20 {
		c.put(fmt.Sprint("a", i), "1")
	}
	l := c.leader()
	var followers []*member
	for _, m := range c.running() {
		if m != l {
			followers = append(followers, m)
		}
	}
	followers[0].stop()
	c.put("one-down", "1") // a majority (2 of 3) still answers

	followers[1].stop()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	_, err := l.node.Write(ctx, []engine.Op{{Type: engine.OpPut, Key: "no-quorum", Value: "1"}}, false)
	cancel()
	if err == nil {
		t.Fatal("a write was acknowledged without a quorum")
	}
	if !errors.Is(err, cluster.ErrOutcomeUnknown) && !errors.Is(err, cluster.ErrNotLeader) {
		t.Fatalf("write without quorum = %v, want ErrOutcomeUnknown or ErrNotLeader", err)
	}
	c.start(followers[0])
	c.start(followers[1])
	c.converged()

	// Kill the leader: a new one is elected with every acknowledged write.
	old := c.leader()
	old.stop()
	nl := c.leader()
	if nl == old {
		t.Fatal("the stopped leader still leads")
	}
	for i := range 20 {
		if _, err := nl.node.Store().Get(fmt.Sprint("a", i)); err != nil {
			t.Fatalf("acknowledged write a%d lost after failover: %v", i, err)
		}
	}
	c.put("after-failover", "1")
	c.start(old)
	c.converged()
	c.noDivergence()
}

// TestNode_Snapshots: members restart from raft snapshots (in persist's
// format) plus the log after them, and a member joining late is brought up
// to date by a snapshot.
func TestNode_Snapshots(t *testing.T) {
	small := func(o *cluster.Options) { o.SnapshotThreshold, o.TrailingLogs = 20, 5 }
	c := mustCluster(t, 3, small)
	for i := range 100 {
		c.put(fmt.Sprint("s", i), fmt.Sprint(i))
	}
	for _, m := range c.running() {
		if err := m.node.Snapshot(); err != nil {
			t.Fatalf("snapshot on %s: %v", m.id, err)
		}
	}
	for i := range 10 {
		c.put(fmt.Sprint("after", i), "x") // in the log after the snapshot
	}
	c.converged()

	// A restart loads the snapshot and replays the rest of the log.
	m := c.member("n2")
	m.stop()
	c.start(m)
	c.converged()

	// A new member, far behind trimmed logs, installs a snapshot.
	n4 := c.add("n4", false, small)
	c.converged()
	if _, err := n4.node.Store().Watch(1, ""); !errors.Is(err, engine.ErrCompacted) {
		t.Errorf("a member built from a snapshot offers history from revision 1: %v", err)
	}
	if ms, _ := n4.node.Members(); len(ms) != 4 {
		t.Errorf("the new member sees %d members, want 4", len(ms))
	}
}

// TestNode_Membership removes a member under load and adds one back.
func TestNode_Membership(t *testing.T) {
	c := mustCluster(t, 3, nil)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var acked sync.Map
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			for _, m := range c.runningNodes() {
				if !m.IsLeader() {
					continue
				}
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				k := fmt.Sprint("load", i)
				if _, err := m.Write(ctx, []engine.Op{{Type: engine.OpPut, Key: k, Value: "v"}}, false); err == nil {
					acked.Store(k, true)
				}
				cancel()
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	time.Sleep(200 * time.Millisecond)
	l := c.leader()
	var victim *member
	for _, m := range c.running() {
		if m != l {
			victim = m
		}
	}
	ctx := testCtx(t)
	if err := c.member("n1").node.Remove(ctx, victim.id); err != nil && !errors.Is(err, cluster.ErrNotLeader) {
		t.Fatal(err)
	}
	if err := c.leader().node.Remove(ctx, victim.id); err != nil && !errors.Is(err, cluster.ErrUnknownMember) {
		t.Fatalf("remove %s: %v", victim.id, err)
	}
	if err := c.leader().node.Remove(ctx, "nobody"); !errors.Is(err, cluster.ErrUnknownMember) {
		t.Errorf("remove of an unknown member = %v, want ErrUnknownMember", err)
	}
	victim.stop()
	time.Sleep(200 * time.Millisecond)
	if ms, _ := c.leader().node.Members(); len(ms) != 2 {
		t.Fatalf("after removal %d members, want 2", len(ms))
	}
	c.add("n5", false, nil)
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()
	c.converged()
	c.noDivergence()
	l = c.leader()
	n := 0
	acked.Range(func(k, _ any) bool {
		n++
		if _, err := l.node.Store().Get(k.(string)); err != nil {
			t.Errorf("acknowledged write %s lost: %v", k, err)
		}
		return true
	})
	if n == 0 {
		t.Fatal("no write was acknowledged under load")
	}
	if ms, _ := l.node.Members(); len(ms) != 3 {
		t.Fatalf("after adding n5 %d members, want 3", len(ms))
	}
}

// TestNode_LinearizableRead: a follower reading at the leader's read index
// sees every write acknowledged before it asked.
func TestNode_LinearizableRead(t *testing.T) {
	t.Run("Barrier", func(t *testing.T) { testLinearizableRead(t, false) })
	t.Run("PeerCheck", func(t *testing.T) { testLinearizableRead(t, true) })
}

func testLinearizableRead(t *testing.T, peerCheck bool) {
	var byAPI sync.Map // API address → *member
	c := mustCluster(t, 3, func(o *cluster.Options) {
		if !peerCheck {
			return
		}
		o.PeerCheck = peerCheckIn(&byAPI)
	})
	for _, m := range c.members {
		byAPI.Store(m.opts.APIAddr, m)
	}
	l := c.leader()
	var f *member
	for _, m := range c.running() {
		if m != l {
			f = m
		}
	}
	ctx := testCtx(t)
	if _, err := f.node.ReadIndex(ctx); !errors.Is(err, cluster.ErrNotLeader) {
		t.Fatalf("ReadIndex on a follower = %v, want ErrNotLeader", err)
	}
	for i := range 30 {
		res := c.put("r", fmt.Sprint(i))
		idx, err := l.node.ReadIndex(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.node.WaitApplied(ctx, idx); err != nil {
			t.Fatal(err)
		}
		if e, err := f.node.Store().Get("r"); err != nil || e.ModRev < res.Rev {
			t.Fatalf("follower read after the read index: %+v, %v; want revision >= %d", e, err, res.Rev)
		}
	}
	// Many concurrent reads share confirmation rounds and all succeed.
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := l.node.Linearize(ctx); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// A leader cut off from its followers cannot confirm it leads.
	for _, m := range c.running() {
		if m != l {
			m.stop()
		}
	}
	rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if rev, err := l.node.Linearize(rctx); err == nil {
		t.Fatalf("an isolated leader served a linearizable read at %d: %+v", rev, l.node.Status())
	}
}

// TestNode_Ready: a member is ready with a leader; cut off from the
// others, it is not, and counts how long it has had no leader.
func TestNode_Ready(t *testing.T) {
	c := mustCluster(t, 3, nil)
	l := c.leader()
	c.put("x", "1")
	for _, m := range c.running() {
		deadline := time.Now().Add(5 * time.Second)
		for err := m.node.Ready(); err != nil; err = m.node.Ready() {
			if time.Now().After(deadline) {
				t.Fatalf("%s not ready in a healthy cluster after 5s: %v", m.id, err)
			}
			time.Sleep(10 * time.Millisecond)
		}
		if d := m.node.LeaderlessFor(); d != 0 {
			t.Errorf("%s leaderless for %v with a leader", m.id, d)
		}
	}
	for _, m := range c.running() {
		if m != l {
			m.stop()
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for l.node.LeaderlessFor() < 3*testElection {
		if time.Now().After(deadline) {
			t.Fatalf("isolated member leaderless for only %v after 10s", l.node.LeaderlessFor())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := l.node.Ready(); !errors.Is(err, cluster.ErrNoLeader) {
		t.Errorf("Ready of an isolated member = %v, want ErrNoLeader", err)
	}
}

// TestNode_BatchedWrites sends many writes at once, a third of them with a
// condition that fails: they share raft log entries (fewer entries than
// writes), yet each gets its own answer and revision, a failed condition
// takes no revision and changes nothing, and every member ends equal.
func TestNode_BatchedWrites(t *testing.T) {
	c := mustCluster(t, 3, nil)
	c.put("seed", "0")
	// A leadership change in the middle leaves outcomes unknown and
	// entries from two terms: try again on the new leader.
	for attempt := range 3 {
		if batchedWrites(t, c, fmt.Sprintf("a%d-", attempt)) {
			c.converged()
			c.noDivergence()
			return
		}
	}
	t.Fatal("leadership moved during each of three attempts")
}

// batchedWrites runs one attempt of TestNode_BatchedWrites; false if
// leadership moved meanwhile.
func batchedWrites(t *testing.T, c *testCluster, prefix string) bool {
	l := c.leader()
	before := l.node.Status()
	const writers = 96
	type answer struct {
		rev int64
		err error
	}
	answers := make([]answer, writers)
	var wg sync.WaitGroup
	start := make(chan struct{})
	key := func(i int) string { return fmt.Sprintf("%s%03d", prefix, i) }
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			op := engine.Op{Type: engine.OpPut, Key: key(i), Value: fmt.Sprint(i)}
			if i%3 == 0 {
				op.Key, op.IfRev = "seed", engine.Absent // "seed" exists: refused at apply
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			res, err := l.node.Write(ctx, []engine.Op{op}, false)
			answers[i] = answer{res.Rev, err}
		}()
	}
	close(start)
	wg.Wait()
	after := l.node.Status()
	if after.Term != before.Term || after.State != "Leader" {
		t.Logf("leadership moved during the writes (term %d to %d)", before.Term, after.Term)
		return false
	}
	revs := map[int64]int{}
	for i, a := range answers {
		var ce *engine.ConditionError
		switch {
		case i%3 == 0:
			if !errors.As(a.err, &ce) {
				t.Errorf("write %d (condition fails) = rev %d, %v; want a ConditionError", i, a.rev, a.err)
			}
		case a.err != nil:
			t.Errorf("write %d: %v", i, a.err)
		default:
			if j, dup := revs[a.rev]; dup {
				t.Errorf("writes %d and %d both got revision %d", j, i, a.rev)
			}
			revs[a.rev] = i
			if e, err := l.node.Store().Get(key(i)); err != nil || e.ModRev != a.rev || e.Value != fmt.Sprint(i) {
				t.Errorf("write %d answered revision %d; the leader holds %+v, %v", i, a.rev, e, err)
			}
		}
	}
	ok := writers - writers/3
	if got := l.node.Store().Rev() - before.Rev; got != int64(ok) {
		t.Errorf("the store moved %d revisions for %d successful writes", got, ok)
	}
	if entries := after.LastIndex - before.LastIndex; entries >= writers {
		t.Errorf("%d concurrent writes took %d raft log entries: they were not batched", writers, entries)
	} else {
		t.Logf("%d concurrent writes in %d raft log entries", writers, entries)
	}
	return true
}

// TestNode_ReadAsksOnePeerFirst: with three voters one other member's yes
// makes a majority, so a read confirmation asks one follower, taking turns,
// and the other only when the first says no or is slow: half the requests
// of asking both every time.
func TestNode_ReadAsksOnePeerFirst(t *testing.T) {
	var calls sync.Map // API address → *atomic.Int64
	var refuse sync.Map
	count := func(api string) *atomic.Int64 {
		v, _ := calls.LoadOrStore(api, new(atomic.Int64))
		return v.(*atomic.Int64)
	}
	c := mustCluster(t, 3, func(o *cluster.Options) {
		o.PeerCheck = func(ctx context.Context, api, id string, term uint64, leader string) error {
			count(api).Add(1)
			if _, no := refuse.Load(api); no {
				return errors.New("does not follow")
			}
			return nil
		}
	})
	l := c.leader()
	ctx := testCtx(t)
	const reads = 20
	for range reads {
		if _, err := l.node.ReadIndex(ctx); err != nil {
			t.Fatal(err)
		}
	}
	var peers []string
	total := int64(0)
	for _, m := range c.running() {
		if m != l {
			peers = append(peers, m.opts.APIAddr)
			total += count(m.opts.APIAddr).Load()
		}
	}
	if total != reads {
		t.Errorf("%d sequential reads asked %d times, want one peer each", reads, total)
	}
	for _, p := range peers {
		if n := count(p).Load(); n < reads/2-1 {
			t.Errorf("peer %s asked %d times of %d: the peers do not take turns", p, n, reads)
		}
	}
	// One peer refuses: every read still succeeds by asking the other.
	refuse.Store(peers[0], true)
	for range reads {
		if _, err := l.node.ReadIndex(ctx); err != nil {
			t.Fatalf("read with one peer refusing: %v", err)
		}
	}
	// Both refuse: no majority, no read.
	refuse.Store(peers[1], true)
	if _, err := l.node.ReadIndex(ctx); !errors.Is(err, cluster.ErrNotLeader) {
		t.Errorf("read with both peers refusing = %v, want ErrNotLeader", err)
	}
}

// TestNode_ReadAsksAnotherWhenSlow: a read confirmation that asked one
// follower asks the other too once the first is slower than a twentieth
// of the election timeout, so a follower that answers nothing (cut off,
// paused) slows reads by that much, not by the whole election timeout
// (after which the round's context has ended and no yes can come).
func TestNode_ReadAsksAnotherWhenSlow(t *testing.T) {
	var slow sync.Map // API address → struct{}: never answers
	var slowAsked atomic.Int64
	c := mustCluster(t, 3, func(o *cluster.Options) {
		o.PeerCheck = func(ctx context.Context, api, id string, term uint64, leader string) error {
			if _, ok := slow.Load(api); ok {
				slowAsked.Add(1)
				<-ctx.Done()
				return ctx.Err()
			}
			return nil
		}
	})
	l := c.leader()
	for _, m := range c.running() {
		if m != l {
			slow.Store(m.opts.APIAddr, struct{}{})
			break
		}
	}
	ctx := testCtx(t)
	const reads = 6 // the peers take turns: half ask the slow one first
	for i := range reads {
		rctx, cancel := context.WithTimeout(ctx, testElection/2)
		_, err := l.node.ReadIndex(rctx)
		cancel()
		if err != nil {
			t.Fatalf("read %d with one follower never answering: %v", i, err)
		}
	}
	if slowAsked.Load() == 0 {
		t.Fatal("no read asked the slow follower: the test did not exercise asking another")
	}
}

// TestNode_ReadYesFromTheMemberAsked: a yes counts for the voter it was
// asked of only if that voter gave it. A voter's recorded API address
// can be stale (it moved; followers' addresses are recorded when they
// join or lead), and another member, following the leader, may answer
// there: counting its yes for the absent voter makes a majority that is
// not one, and a deposed leader could serve a stale read.
func TestNode_ReadYesFromTheMemberAsked(t *testing.T) {
	var route sync.Map // API address → *member answering there
	c := mustCluster(t, 3, func(o *cluster.Options) {
		o.PeerCheck = peerCheckIn(&route)
	})
	l := c.leader()
	var fs []*member
	for _, m := range c.running() {
		if m != l {
			fs = append(fs, m)
		}
	}
	a, b := fs[0], fs[1]
	route.Store(a.opts.APIAddr, a)
	route.Store(b.opts.APIAddr, b)
	ctx := testCtx(t)
	if _, err := l.node.ReadIndex(ctx); err != nil {
		t.Fatalf("read with both followers answering: %v", err)
	}
	// b is gone; a answers at b's recorded address, not at its own.
	b.stop()
	route.Delete(a.opts.APIAddr)
	route.Store(b.opts.APIAddr, a)
	rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if _, err := l.node.ReadIndex(rctx); err == nil {
		t.Fatalf("the leader confirmed a read with %s's yes counted for %s", a.id, b.id)
	}
}

// TestNode_LogMemoryBounded: large writes are not kept in memory after
// they are applied. Writing one key over and over with a value near the
// limit leaves one value in the store; the raft log's in-memory cache of
// recent entries must not pin every one of them (before, it kept the
// newest 512 entries whatever their size: up to 512 MiB of 1 MiB values,
// and batches of up to 1 MiB each).
func TestNode_LogMemoryBounded(t *testing.T) {
	// The engine keeps recent changes for watchers, values included, up
	// to HistoryBytes (by design): keep that small to see the log's share.
	c := mustCluster(t, 1, func(o *cluster.Options) { o.Engine.HistoryBytes = 1 << 20 })
	heap := func() uint64 {
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	value := strings.Repeat("v", engine.DefaultMaxValueBytes-64)
	c.put("warm", value)
	before := heap()
	const writes = 48
	for range writes {
		c.put("big", value)
	}
	grew := int64(heap()) - int64(before)
	t.Logf("heap grew %.1f MiB after %d writes of %d KiB to one key", float64(grew)/(1<<20), writes, len(value)>>10)
	if limit := int64(writes/3) << 20; grew > limit {
		t.Errorf("the heap grew %.1f MiB after %d writes of 1 MiB to one key (limit %d MiB): old log entries are kept in memory",
			float64(grew)/(1<<20), writes, limit>>20)
	}
}

// TestNode_ReadLeaderNotVoter: a leader counts itself toward a read's
// majority only while the configuration has it as a voter. Removing
// itself, it leads until the change commits, with a configuration that
// no longer holds it: here two members, the other stopped, so the change
// cannot commit; the leader alone is no majority of {the other}, and
// must not confirm reads. (With four members, the three others could
// elect a leader while it counted one yes and itself.)
func TestNode_ReadLeaderNotVoter(t *testing.T) {
	var byAPI sync.Map // API address → *member
	c := mustCluster(t, 2, func(o *cluster.Options) {
		o.PeerCheck = peerCheckIn(&byAPI)
	})
	for _, m := range c.members {
		byAPI.Store(m.opts.APIAddr, m)
	}
	l := c.leader()
	ctx := testCtx(t)
	if _, err := l.node.ReadIndex(ctx); err != nil {
		t.Fatalf("read with both members: %v", err)
	}
	for _, m := range c.running() {
		if m != l {
			m.stop()
		}
	}
	go l.node.Remove(ctx, l.id) // cannot commit: ends when l steps down or stops
	deadline := time.Now().Add(testElection / 2)
	for {
		ms, err := l.node.Members()
		if err == nil && len(ms) == 1 && ms[0].ID != l.id {
			break // the latest configuration no longer has l
		}
		if time.Now().After(deadline) {
			t.Fatalf("the leader's configuration still has it: %+v, %v", ms, err)
		}
		time.Sleep(time.Millisecond)
	}
	rctx, cancel := context.WithTimeout(ctx, testElection/4)
	defer cancel()
	if idx, err := l.node.ReadIndex(rctx); err == nil {
		t.Fatalf("a leader outside the configuration, its only voter stopped, confirmed a read at %d: %+v", idx, l.node.Status())
	}
}

// peerCheckIn answers a leader's read confirmation in process, as
// GET /v1/cluster/leader-check does over HTTP: the member at the API
// address (byAPI: address → *member) must be running and follow the
// leader in the term.
func peerCheckIn(byAPI *sync.Map) func(ctx context.Context, api, id string, term uint64, leader string) error {
	return func(ctx context.Context, api, id string, term uint64, leader string) error {
		v, ok := byAPI.Load(api)
		if !ok {
			return errors.New("connection refused")
		}
		m := v.(*member)
		m.mu.Lock()
		node := m.node
		m.mu.Unlock()
		if node == nil || !node.Follows(id, term, leader) {
			return errors.New("does not follow")
		}
		return nil
	}
}

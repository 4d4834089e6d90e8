package cluster_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"reflect"
	"runtime/pprof"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pykv/pykv/engine"
	"github.com/pykv/pykv/persist/cluster"
)

// testElection is the election timeout of test clusters: the production
// default, since -race on two cores shared with other work starves
// heartbeats for hundreds of milliseconds and shorter timeouts make
// leadership flap.
const testElection = time.Second

// member is a test cluster member that can be stopped and restarted on
// the same folder and raft address.
type member struct {
	id   string
	dir  string
	addr string // raft address, fixed after the first start
	opts cluster.Options
	node *cluster.Node
	mu   *sync.Mutex // guards node against runningNodes
	t    *testing.T
}

type testCluster struct {
	t       *testing.T
	mu      sync.Mutex
	members []*member
}

// mustCluster starts n members on loopback: the first bootstraps, the
// others join through the leader. change, if not nil, adjusts each
// member's options.
func mustCluster(t *testing.T, n int, change func(*cluster.Options)) *testCluster {
	t.Helper()
	c := &testCluster{t: t}
	for i := range n {
		c.add(fmt.Sprintf("n%d", i+1), i == 0, change)
	}
	return c
}

// add starts a new member; unless bootstrap, it joins through the leader.
func (c *testCluster) add(id string, bootstrap bool, change func(*cluster.Options)) *member {
	c.t.Helper()
	m := &member{id: id, dir: c.t.TempDir(), addr: "127.0.0.1:0", mu: &c.mu, t: c.t}
	m.opts = cluster.Options{ID: id, Dir: m.dir, APIAddr: "http://api-of-" + id, Bootstrap: bootstrap,
		ElectionTimeout: testElection}
	if change != nil {
		change(&m.opts)
	}
	c.start(m)
	c.mu.Lock()
	c.members = append(c.members, m)
	c.mu.Unlock()
	if !bootstrap {
		// Joining is safe to repeat; it fails while leadership moves
		// (a busy machine can make the grown cluster miss a heartbeat).
		deadline := time.Now().Add(20 * time.Second)
		for {
			l := c.leaderExcept(m)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := l.node.Join(ctx, id, m.node.RaftAddr(), m.opts.APIAddr)
			cancel()
			if err == nil {
				break
			}
			if time.Now().After(deadline) || !(errors.Is(err, cluster.ErrNotLeader) || errors.Is(err, cluster.ErrOutcomeUnknown)) {
				c.t.Fatalf("join %s: %v", id, err)
			}
		}
	}
	return m
}

func (c *testCluster) start(m *member) {
	c.t.Helper()
	opts := m.opts
	opts.RaftAddr = m.addr
	var node *cluster.Node
	var err error
	for range 50 { // a restarted member's port may linger briefly
		if node, err = cluster.Open(opts); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		c.t.Fatalf("open %s: %v", m.id, err)
	}
	m.mu.Lock()
	m.node = node
	m.mu.Unlock()
	m.addr = node.RaftAddr()
	c.t.Cleanup(func() { m.stop() })
}

// testCtx returns a context that ends with the test or after a minute,
// so a call that never returns fails the test with its error instead of
// hanging it.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// closeTimeout bounds how long stopping a member may take in a test
// before the test fails with every goroutine's stack (a hang in Close
// would otherwise hold the package until go test's -timeout).
const closeTimeout = 30 * time.Second

func (m *member) stop() {
	m.mu.Lock()
	node := m.node
	m.node = nil
	m.mu.Unlock()
	if node == nil {
		return
	}
	done := make(chan struct{})
	go func() { node.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(closeTimeout):
		m.t.Errorf("closing member %s took over %v; goroutines:\n%s", m.id, closeTimeout, stacks())
	}
}

// stacks returns every goroutine's stack.
func stacks() string {
	var b strings.Builder
	pprof.Lookup("goroutine").WriteTo(&b, 2)
	return b.String()
}

// TestMain fails the package, with every goroutine's stack, if its tests
// run longer than packageTimeout: a hang shows where it is stuck within
// minutes instead of holding make check until go test's -timeout.
func TestMain(m *testing.M) {
	flag.Parse()
	limit := packageTimeout
	if testing.Short() {
		limit = packageTimeout / 2
	}
	t := time.AfterFunc(limit, func() {
		fmt.Fprintf(os.Stderr, "persist/cluster tests still running after %v: stuck? goroutines:\n%s", limit, stacks())
		os.Exit(2)
	})
	code := m.Run()
	t.Stop()
	os.Exit(code)
}

// packageTimeout is far above the package's usual 30-60 s under -race on
// a loaded machine.
const packageTimeout = 8 * time.Minute

// runningNodes returns the running members' nodes; safe beside stop and
// start on other goroutines.
func (c *testCluster) runningNodes() []*cluster.Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*cluster.Node
	for _, m := range c.members {
		if m.node != nil {
			out = append(out, m.node)
		}
	}
	return out
}

// running returns the members that run.
func (c *testCluster) running() []*member {
	var out []*member
	for _, m := range c.members {
		if m.node != nil {
			out = append(out, m)
		}
	}
	return out
}

// leader waits for a running member to lead and every running member to
// agree on it.
func (c *testCluster) leader() *member {
	c.t.Helper()
	return c.leaderExcept(nil)
}

// leaderExcept is leader, ignoring member skip (one still joining).
func (c *testCluster) leaderExcept(skip *member) *member {
	c.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		var lead *member
		agree := true
		for _, m := range c.running() {
			if m.node.IsLeader() {
				lead = m
			}
		}
		if lead != nil {
			for _, m := range c.running() {
				if id, _ := m.node.Leader(); id != lead.id && m != skip {
					agree = false
				}
			}
			if agree {
				return lead
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	c.t.Fatal("no leader within 15s")
	return nil
}

func (c *testCluster) member(id string) *member {
	for _, m := range c.members {
		if m.id == id {
			return m
		}
	}
	c.t.Fatalf("no member %s", id)
	return nil
}

// put writes through the leader, retrying while leadership moves, and
// fails the test if no write succeeds within 10s.
func (c *testCluster) put(key, value string) engine.TxnResult {
	c.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		l := c.leader()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		res, err := l.node.Write(ctx, []engine.Op{{Type: engine.OpPut, Key: key, Value: value}}, false)
		cancel()
		if err == nil {
			return res
		}
		// Leadership moved: nothing written (not leader), or maybe written
		// (outcome unknown); putting the same value again is harmless.
		if !(errors.Is(err, cluster.ErrNotLeader) || errors.Is(err, cluster.ErrOutcomeUnknown)) || time.Now().After(deadline) {
			c.t.Fatalf("put %s: %v", key, err)
		}
	}
}

// stateOf returns every entry of a member's store.
func stateOf(t *testing.T, n *cluster.Node) (int64, map[string]engine.Entry) {
	t.Helper()
	rev, entries, err := n.Store().Checkpoint(func(int64) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]engine.Entry{}
	for _, e := range entries {
		m[e.Key] = *e
	}
	return rev, m
}

// converged waits until every running member has the leader's state.
func (c *testCluster) converged() {
	c.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		l := c.leader()
		lrev, lstate := stateOf(c.t, l.node)
		same := true
		var diff string
		for _, m := range c.running() {
			rev, state := stateOf(c.t, m.node)
			if rev != lrev || !reflect.DeepEqual(state, lstate) {
				same = false
				diff = fmt.Sprintf("%s at rev %d (%d keys), leader %s at rev %d (%d keys)", m.id, rev, len(state), l.id, lrev, len(lstate))
			}
		}
		if same {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("members did not converge: %s", diff)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// event is one change feed event, comparable across members.
type event struct {
	Rev   int64
	Type  engine.ChangeType
	Key   string
	Entry engine.Entry
}

// feedOf returns the events a member's feed holds, keyed by revision.
func feedOf(t *testing.T, n *cluster.Node) map[int64][]event {
	t.Helper()
	s := n.Store()
	w, err := s.Watch(0, "")
	if errors.Is(err, engine.ErrCompacted) {
		return nil // restored from a snapshot: nothing older to compare
	}
	if err != nil {
		t.Fatal(err)
	}
	evs, err := w.Read(s.Rev(), 0)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int64][]event{}
	for _, ev := range evs {
		e := event{Rev: ev.Rev, Type: ev.Type, Key: ev.Key}
		if ev.Entry != nil {
			e.Entry = *ev.Entry
		}
		out[ev.Rev] = append(out[ev.Rev], e)
	}
	return out
}

// noDivergence checks that every revision two members both hold in their
// feeds has the same changes on both: the applied command sequences agree.
func (c *testCluster) noDivergence() {
	c.t.Helper()
	feeds := map[string]map[int64][]event{}
	for _, m := range c.running() {
		feeds[m.id] = feedOf(c.t, m.node)
	}
	compared := 0
	for a, fa := range feeds {
		for b, fb := range feeds {
			if a >= b {
				continue
			}
			for rev, ea := range fa {
				if eb, ok := fb[rev]; ok {
					compared++
					if !reflect.DeepEqual(ea, eb) {
						c.t.Fatalf("members diverged at revision %d: %s applied %+v, %s applied %+v", rev, a, ea, b, eb)
					}
				}
			}
		}
	}
	if compared == 0 {
		c.t.Fatal("no revision held by two members to compare")
	}
}

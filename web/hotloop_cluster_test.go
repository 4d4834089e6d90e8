package web_test

import (
	"testing"

	"github.com/pykv/pykv/web"
)

// TestHotLoop_Cluster serves each member of a three-member cluster with
// the loop beside net/http alone, on the same node. Reads sent to both in
// turn, with no write between, get the same answers byte for byte (the
// revision a read reflects included): the leader's linearizable GET from
// the loop itself, a follower's (which asks the leader for a read index)
// and every 404 through the chain. Writes go through the chain on any
// member (a follower forwards them). A leader that cannot confirm it still
// leads must not answer a read from its own copy.
func TestHotLoop_Cluster(t *testing.T) {
	ms := mustOpenCluster(t, 3)
	hot := map[*clusterMember]string{}
	for _, m := range ms {
		_, addr := startHot(t, web.Options{Cluster: m.node, Metrics: web.NewMetrics(), MaxBodyBytes: 4096}, productionLimits())
		hot[m] = addr
	}
	l, fs := leaderAndFollowers(t, ms)
	ref := func(m *clusterMember) string { return m.Listener.Addr().String() }

	// Writes through the loop of a follower and of the leader.
	answers, _, err := exchange(hot[fs[0]], req("PUT", "/v1/kv/a", "1")+req("PUT", "/v1/kv/b", "2"), 2)
	if err != nil {
		t.Fatal(err)
	}
	for i, a := range answers {
		if got := canonical(t, a); got[:3] != "201" {
			t.Fatalf("PUT %d through a follower's loop: %s", i, got)
		}
	}
	answers, _, err = exchange(hot[l], req("PUT", "/v1/kv/a", "3"), 1)
	if err != nil {
		t.Fatal(err)
	}
	if got := canonical(t, answers[0]); got[:3] != "200" {
		t.Fatalf("PUT through the leader's loop: %s", got)
	}

	reads := req("GET", "/v1/kv/a", "") + req("GET", "/v1/kv/missing", "") + req("GET", "/v1/kv/a?consistency=local", "") +
		req("GET", "/v1/kv/missing?consistency=local", "") + req("GET", "/v1/kv/b?consistency=linearizable", "", "Connection: close")
	for _, m := range ms {
		// A follower's local copy may lag the leader's: wait for both writes.
		waitFor(t, m.node.ID()+" to apply the writes", func() bool { return m.node.Store().Rev() >= 3 })
		h, _, err := exchange(hot[m], reads, 5)
		if err != nil {
			t.Fatal(err)
		}
		r, _, err := exchange(ref(m), reads, 5)
		if err != nil {
			t.Fatal(err)
		}
		for i := range h {
			if hc, rc := canonical(t, h[i]), canonical(t, r[i]); hc != rc {
				t.Errorf("member %s, read %d: the loop answered\n%s\nnet/http answered\n%s", m.node.ID(), i, hc, rc)
			}
		}
		if m == l && !loopAnswered(h[0]) {
			t.Errorf("the leader's read of a key was not answered by the loop itself:\n%s", h[0])
		}
		if !loopAnswered(h[2]) {
			t.Errorf("member %s: a local read of a key was not answered by the loop itself:\n%s", m.node.ID(), h[2])
		}
	}

	// Cut the leader off: its followers stop. Its own copy still has a, but
	// a linearizable read must not be answered from it.
	for _, f := range fs {
		f.Close()
		_ = f.node.Close()
	}
	answers, _, err = exchange(hot[l], req("GET", "/v1/kv/a", ""), 1)
	if err != nil {
		t.Fatal(err)
	}
	if got := canonical(t, answers[0]); got[:3] == "200" {
		t.Fatalf("a leader cut off from its followers answered a linearizable read:\n%s", got)
	}
}

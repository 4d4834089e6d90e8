package web_test

import (
	"bufio"
	"bytes"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/pykv/pykv/web"
)

// TestHotLoop_Cluster serves each member of a three-member cluster with
// the loop beside net/http alone, on the same node. Reads sent to both in
// turn, with no write between, get the same answers byte for byte (the
// revision a read reflects included): the leader's linearizable GET from
// the loop itself, a follower's (which asks the leader for a read index)
// and every 404 through the chain. The leader's writes are answered by the
// loop itself, the same as the chain's once the numbers are masked (the
// two servers' writes get different revisions), with the raft index
// header and the same request metrics; its refused writes as the chain
// refuses them. A follower's go through the chain, which forwards them,
// and so does a write the loop submitted after leadership moved away. A
// leader that cannot confirm it still leads must not answer a read from
// its own copy.
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

	// Writes on the leader: the loop answers them itself, byte for byte as
	// the chain, once net/http's numbers (revisions, raft index, Date) and
	// the new key's name are masked, since the two servers' writes cannot
	// have the same ones. Sent as one batch: a new key (201), an existing
	// key (200), a key over the limit (refused by the log's check, which
	// the loop renders as the chain does), a value over the limit (the
	// chain's 413), and the existing key again.
	long := strings.Repeat("k", 65)
	puts := func(newKey string) string {
		return req("PUT", "/v1/kv/"+newKey, "x") + req("PUT", "/v1/kv/a", "4") + req("PUT", "/v1/kv/"+long, "y") +
			req("PUT", "/v1/kv/a", strings.Repeat("v", 1025)) + req("PUT", "/v1/kv/b", "5")
	}
	hotBefore, refBefore := requestCounts(t, hot[l]), requestCounts(t, ref(l))
	h, _, err := exchange(hot[l], puts("new1"), 5)
	if err != nil {
		t.Fatal(err)
	}
	r, _, err := exchange(ref(l), puts("new2"), 5)
	if err != nil {
		t.Fatal(err)
	}
	wantCodes := []string{"201", "200", "413", "413", "200"}
	for i := range h {
		hc, rc := canonical(t, h[i]), canonical(t, r[i])
		if hc[:3] != wantCodes[i] {
			t.Errorf("PUT %d on the leader's loop: %s, want %s", i, hc, wantCodes[i])
		}
		if hm, rm := maskWrite(hc, "new1"), maskWrite(rc, "new2"); hm != rm {
			t.Errorf("PUT %d on the leader: the loop answered\n%s\nnet/http answered\n%s", i, hc, rc)
		}
	}
	for _, i := range []int{0, 1, 4} {
		if !loopAnswered(h[i]) {
			t.Errorf("the leader's PUT %d was not answered by the loop itself:\n%s", i, h[i])
		}
	}
	// The raft index a forwarding follower waits for: what the member had
	// applied when the write returned, before net/http's later write.
	hi, err1 := strconv.ParseUint(header(t, h[4], "X-Pykv-Raft-Index"), 10, 64)
	ri, err2 := strconv.ParseUint(header(t, r[4], "X-Pykv-Raft-Index"), 10, 64)
	if err1 != nil || err2 != nil || hi == 0 || hi >= ri || ri > l.node.AppliedIndex() {
		t.Errorf("raft index of the last PUT: loop %d (%v), net/http %d (%v), applied %d", hi, err1, ri, err2, l.node.AppliedIndex())
	}
	if hd, rd := countsDelta(hotBefore, requestCounts(t, hot[l])), countsDelta(refBefore, requestCounts(t, ref(l))); hd != rd {
		t.Errorf("the PUTs' request metrics differ:\nloop:\n%s\nnet/http:\n%s", hd, rd)
	}

	// A write the loop submitted after leadership moved away (a follower
	// made to skip its check) never entered the log: the chain answers it
	// as if it had taken it from the start, forwarding it to the leader,
	// and counts it once.
	_, skipHot := startHot(t, web.Options{Cluster: fs[1].node, Metrics: web.NewMetrics(), MaxBodyBytes: 4096}, productionLimits(),
		web.SkipHotLoopLeaderCheck)
	fwd := func(newKey string) string { return req("PUT", "/v1/kv/"+newKey, "x") + req("PUT", "/v1/kv/a", "6") }
	if _, _, err := exchange(skipHot, req("GET", "/v1/kv/a", ""), 1); err != nil { // a series to count from
		t.Fatal(err)
	}
	hotBefore, refBefore = requestCounts(t, skipHot), requestCounts(t, ref(fs[1]))
	if h, _, err = exchange(skipHot, fwd("new3"), 2); err != nil {
		t.Fatal(err)
	}
	if r, _, err = exchange(ref(fs[1]), fwd("new4"), 2); err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{"201", "200"} {
		hc, rc := canonical(t, h[i]), canonical(t, r[i])
		if hc[:3] != want {
			t.Errorf("PUT %d submitted on a follower's loop: %s, want %s", i, hc, want)
		}
		if hm, rm := maskWrite(hc, "new3"), maskWrite(rc, "new4"); hm != rm {
			t.Errorf("PUT %d submitted on a follower: the loop answered\n%s\nnet/http answered\n%s", i, hc, rc)
		}
	}
	if hd, rd := countsDelta(hotBefore, requestCounts(t, skipHot)), countsDelta(refBefore, requestCounts(t, ref(fs[1]))); hd != rd {
		t.Errorf("the forwarded PUTs' request metrics differ:\nloop:\n%s\nnet/http:\n%s", hd, rd)
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

var digitsRE = regexp.MustCompile(`[0-9]+`)

// maskWrite is a canonical answer to a write with every number and the
// name of the key it created (if any) replaced, to compare answers to
// writes made at different revisions.
func maskWrite(canon, newKey string) string {
	canon = strings.ReplaceAll(canon, "/v1/kv/"+newKey, "/v1/kv/KEY")
	canon = strings.ReplaceAll(canon, `"key":"`+newKey+`"`, `"key":"KEY"`)
	return digitsRE.ReplaceAllString(canon, "N")
}

// header returns an answer's header name.
func header(t *testing.T, raw []byte, name string) string {
	t.Helper()
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(raw)), nil)
	if err != nil {
		t.Fatal(err)
	}
	return resp.Header.Get(name)
}

// requestCounts returns a server's request counters by series.
func requestCounts(t *testing.T, addr string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, l := range strings.Split(requestSeries(t, addr), "\n") {
		i := strings.LastIndexByte(l, ' ')
		n, err := strconv.Atoi(l[i+1:])
		if err != nil {
			t.Fatalf("request series %q: %v", l, err)
		}
		out[l[:i]] = n
	}
	return out
}

// countsDelta lists the series whose count grew from before to after,
// with how much.
func countsDelta(before, after map[string]int) string {
	var lines []string
	for k, n := range after {
		if d := n - before[k]; d != 0 {
			lines = append(lines, fmt.Sprintf("%s +%d", k, d))
		}
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

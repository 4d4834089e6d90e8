package web_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/pykv/pykv/engine"
	"github.com/pykv/pykv/persist/cluster"
	"github.com/pykv/pykv/web"
)

// clusterMember is one member of an in-process cluster behind a real HTTP
// server.
type clusterMember struct {
	*testServer
	node *cluster.Node
}

// mustOpenCluster starts n members on loopback, each with its HTTP API;
// the first bootstraps, the others join through the HTTP API of the first,
// as `pykv serve --join` does.
func mustOpenCluster(t *testing.T, n int) []*clusterMember {
	t.Helper()
	var out []*clusterMember
	for i := range n {
		srv := httptest.NewUnstartedServer(nil)
		id := fmt.Sprintf("n%d", i+1)
		node, err := cluster.Open(cluster.Options{ID: id, RaftAddr: "127.0.0.1:0", APIAddr: "http://" + srv.Listener.Addr().String(),
			Dir: t.TempDir(), Bootstrap: i == 0, ElectionTimeout: 300 * time.Millisecond, PeerCheck: web.NewPeerCheck(""),
			Engine: engine.Options{MaxKeyBytes: 64, MaxValueBytes: 1024}})
		if err != nil {
			t.Fatal(err)
		}
		h := web.NewServer(web.Options{Cluster: node, Metrics: web.NewMetrics(), MaxBodyBytes: 4096})
		srv.Config.Handler = h
		srv.Start()
		t.Cleanup(func() { srv.Close(); node.Close() })
		m := &clusterMember{testServer: &testServer{Server: srv, Handler: h, spec: loadSpec(t, h), tb: t}, node: node}
		out = append(out, m)
		if i == 0 {
			waitFor(t, "n1 to lead", func() bool { return node.IsLeader() })
			continue
		}
		body := fmt.Sprintf(`{"id":%q,"raft_addr":%q,"api_addr":%q}`, id, node.RaftAddr(), "http://"+srv.Listener.Addr().String())
		waitFor(t, id+" to join", func() bool {
			return out[0].do("POST", "/v1/cluster/members", body, "Content-Type: application/json").StatusCode == http.StatusOK
		})
	}
	waitFor(t, "every member to know the leader's address", func() bool {
		for _, m := range out {
			if _, api := m.node.Leader(); api == "" {
				return false
			}
		}
		return true
	})
	return out
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("waited 15s for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// leaderAndFollowers returns the leading member and the others.
func leaderAndFollowers(t *testing.T, ms []*clusterMember) (*clusterMember, []*clusterMember) {
	t.Helper()
	var l *clusterMember
	waitFor(t, "a leader", func() bool {
		for _, m := range ms {
			if m.node.IsLeader() {
				l = m
				return true
			}
		}
		return false
	})
	var fs []*clusterMember
	for _, m := range ms {
		if m != l {
			fs = append(fs, m)
		}
	}
	return l, fs
}

func TestCluster_HTTP(t *testing.T) {
	ms := mustOpenCluster(t, 3)
	l, fs := leaderAndFollowers(t, ms)
	f := fs[0]

	t.Run("WriteOnFollower", func(t *testing.T) {
		r := f.do("PUT", "/v1/kv/a", "1")
		wantStatus(t, r, http.StatusCreated)
		if got := r.Header.Values("Referrer-Policy"); len(got) != 1 {
			t.Errorf("relayed answer has Referrer-Policy %q, want it once", got)
		}
		var e engine.Entry
		if err := json.Unmarshal(r.Body, &e); err != nil || e.Key != "a" || e.Value != "1" || e.ModRev != 1 {
			t.Fatalf("relayed answer %s: %v", r.Body, err)
		}
		// The member that answered has applied it: a local read sees it.
		if e, err := f.node.Store().Get("a"); err != nil || e.ModRev != 1 {
			t.Fatalf("follower answered before applying: %+v, %v", e, err)
		}
		wantStatus(t, f.do("POST", "/v1/txn", `{"ops":[{"op":"put","key":"t1","value":"x"},{"op":"put","key":"t2","value":"y"}]}`, "Content-Type: application/json"), http.StatusOK)
		wantStatus(t, f.do("POST", "/put", `{"key":"legacy","value":"v"}`, "Content-Type: application/json"), http.StatusOK)
		wantStatus(t, f.do("DELETE", "/delete/legacy", ""), http.StatusOK)
		wantStatus(t, f.do("DELETE", "/delete/legacy", ""), http.StatusNotFound)
		wantProblem(t, f.do("PUT", "/v1/kv/a", "2", `If-Match: "7"`), http.StatusPreconditionFailed, "revision 1")
		wantStatus(t, f.do("DELETE", "/v1/kv?prefix=t", ""), http.StatusOK)
		wantStatus(t, f.do("POST", "/v1/import", `{"imp1":"a","imp2":"b"}`, "Content-Type: application/json"), http.StatusOK)
	})
	t.Run("LinearizableReads", func(t *testing.T) {
		for i := range 20 {
			w := l.do("PUT", "/v1/kv/lin", fmt.Sprint(i))
			wantStatus(t, w, http.StatusOK+map[bool]int{true: 1}[i == 0])
			for _, m := range ms {
				r := m.do("GET", "/v1/kv/lin", "")
				if string(r.Body) != fmt.Sprint(i) {
					t.Fatalf("%s read %q after write %d was acknowledged", m.node.ID(), r.Body, i)
				}
				if r.Header.Get("X-Pykv-Revision") == "" {
					t.Fatalf("%s read without X-Pykv-Revision", m.node.ID())
				}
			}
		}
		wantStatus(t, f.do("GET", "/v1/kv/lin?consistency=local", ""), http.StatusOK)
		wantProblem(t, f.do("GET", "/v1/kv/lin?consistency=sometimes", ""), http.StatusBadRequest, "consistency")
		wantStatus(t, f.do("GET", "/v1/kv?prefix=imp", ""), http.StatusOK)
		wantStatus(t, f.do("GET", "/get/lin", ""), http.StatusOK)
		wantStatus(t, f.do("GET", "/v1/export", ""), http.StatusOK)
	})
	t.Run("LeaderCheck", func(t *testing.T) {
		term := l.node.Status().Term
		check := func(term uint64, leader, member string) string {
			return fmt.Sprintf("/v1/cluster/leader-check?term=%d&leader=%s&member=%s", term, leader, member)
		}
		wantStatus(t, f.do("GET", check(term, l.node.ID(), f.node.ID()), ""), http.StatusOK)
		wantProblem(t, f.do("GET", check(term+1, l.node.ID(), f.node.ID()), ""), http.StatusConflict, "is not")
		wantProblem(t, f.do("GET", check(term, f.node.ID(), f.node.ID()), ""), http.StatusConflict, "is not")
		// Asked under another member's ID (a stale recorded address): no.
		wantProblem(t, f.do("GET", check(term, l.node.ID(), "someone-else"), ""), http.StatusConflict, "is not someone-else")
		wantProblem(t, f.do("GET", fmt.Sprintf("/v1/cluster/leader-check?term=%d&leader=%s", term, l.node.ID()), ""), http.StatusBadRequest, "member")
		wantProblem(t, f.do("GET", "/v1/cluster/leader-check", ""), http.StatusBadRequest, "term")
	})
	t.Run("Status", func(t *testing.T) {
		r := f.do("GET", "/v1/status", "")
		wantStatus(t, r, http.StatusOK)
		raft, _ := r.JSON(t)["raft"].(map[string]any)
		if raft == nil || raft["leader"] != l.node.ID() || raft["state"] != "Follower" {
			t.Errorf("status raft = %v, want a follower of %s", raft, l.node.ID())
		}
	})
	t.Run("Members", func(t *testing.T) {
		waitFor(t, "every member at the leader's revision", func() bool {
			for _, m := range ms {
				if m.node.Store().Rev() != l.node.Store().Rev() {
					return false
				}
			}
			return true
		})
		r := f.do("GET", "/v1/cluster", "")
		wantStatus(t, r, http.StatusOK)
		var v struct {
			Leader  string
			Members []struct {
				ID         string `json:"id"`
				Role       string `json:"role"`
				APIAddr    string `json:"api_addr"`
				AppliedRev *int64 `json:"applied_rev"`
				Healthy    bool   `json:"healthy"`
			}
		}
		if err := json.Unmarshal(r.Body, &v); err != nil {
			t.Fatal(err)
		}
		if v.Leader != l.node.ID() || len(v.Members) != 3 {
			t.Fatalf("cluster = %s", r.Body)
		}
		for _, m := range v.Members {
			if m.AppliedRev == nil || *m.AppliedRev != l.node.Store().Rev() || !m.Healthy || m.APIAddr == "" ||
				(m.Role == "leader") != (m.ID == l.node.ID()) {
				t.Errorf("member %+v: want applied_rev %d, healthy, its address, leader only for %s", m, l.node.Store().Rev(), l.node.ID())
			}
		}
	})
	t.Run("Remove", func(t *testing.T) {
		wantProblem(t, f.do("DELETE", "/v1/cluster/members/nobody", ""), http.StatusNotFound, "nobody")
		victim := fs[1]
		wantStatus(t, f.do("DELETE", "/v1/cluster/members/"+victim.node.ID(), ""), http.StatusOK)
		waitFor(t, "two members", func() bool {
			ms, _ := l.node.Members()
			return len(ms) == 2
		})
		wantStatus(t, f.do("PUT", "/v1/kv/after-remove", "1"), http.StatusCreated)
	})
}

// TestCluster_Problems: the cluster's failures have their own problem
// types, so clients can tell "nothing happened" from "unknown".
func TestCluster_Problems(t *testing.T) {
	ms := mustOpenCluster(t, 1)
	for _, tc := range []struct {
		err  error
		typ  string
		word string
	}{
		{fmt.Errorf("%w: leadership lost while committing log", cluster.ErrOutcomeUnknown), "urn:pykv:problem:outcome-unknown", "may or may not"},
		{&cluster.NotLeaderError{}, "urn:pykv:problem:no-leader", "nothing was done"},
	} {
		rec := httptest.NewRecorder()
		web.WriteErrorForTest(rec, httptest.NewRequest("GET", "/", nil), tc.err)
		var p web.Problem
		if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
			t.Fatal(err)
		}
		if rec.Code != http.StatusServiceUnavailable || p.Type != tc.typ || !strings.Contains(p.Detail, tc.word) {
			t.Errorf("%v answered %d %+v; want 503 %s", tc.err, rec.Code, p, tc.typ)
		}
	}
	// A member alone, cut off from the two others it was told about,
	// has no leader: writes and linearizable reads answer no-leader.
	n := ms[0].node
	wantStatus(t, ms[0].do("GET", "/readyz", ""), http.StatusOK)
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(ms[0].URL, "http")+"/v1/watch", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i, id := range []string{"ghost1", "ghost2"} {
		if err := n.Join(ctx, id, fmt.Sprintf("127.0.0.1:%d", i+1), ""); err != nil && !errors.Is(err, cluster.ErrNotLeader) && !errors.Is(err, cluster.ErrOutcomeUnknown) {
			t.Fatal(err)
		}
	}
	waitFor(t, "the leader to step down", func() bool { return !n.IsLeader() })
	wantProblem(t, ms[0].do("PUT", "/v1/kv/x", "1"), http.StatusServiceUnavailable)
	wantProblem(t, ms[0].do("GET", "/v1/kv/x", ""), http.StatusServiceUnavailable)
	wantStatus(t, ms[0].do("GET", "/v1/kv/x?consistency=local", ""), http.StatusNotFound)
	wantProblem(t, ms[0].do("GET", "/readyz", ""), http.StatusServiceUnavailable)
	metrics := string(ms[0].do("GET", "/metrics", "").Body)
	for _, want := range []string{"pykv_raft_term ", "pykv_raft_commit_index ", "pykv_raft_applied_index ", "pykv_raft_has_leader 0", "pykv_raft_leader_changes_total ", "pykv_raft_apply_lag "} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	// Its watch streams close (1013, try again later) within three
	// election timeouts and a check interval, so clients move on.
	ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, _, err := ws.ReadMessage()
		if err == nil {
			continue // progress messages
		}
		if !websocket.IsCloseError(err, websocket.CloseTryAgainLater) {
			t.Fatalf("watch on a leaderless member ended with %v, want close 1013", err)
		}
		break
	}
}

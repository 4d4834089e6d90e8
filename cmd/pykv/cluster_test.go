package main

import (
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// freeAddr returns a loopback address nothing listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestRun_Cluster runs three members as `pykv serve` does: the first
// bootstraps, the others join through the first's HTTP API (one through
// the environment), a follower restarts with the same flags, and the CLI
// lists and removes members.
func TestRun_Cluster(t *testing.T) {
	dirs := []string{t.TempDir(), t.TempDir(), t.TempDir()}
	raft := []string{freeAddr(t), freeAddr(t), freeAddr(t)}
	api := []string{freeAddr(t), freeAddr(t), freeAddr(t)}
	start := func(i int, env map[string]string, extra ...string) *runningServer {
		args := append([]string{"--addr", api[i], "--node-id", []string{"n1", "n2", "n3"}[i], "--raft-addr", raft[i]}, extra...)
		return startServe(t, dirs[i], env, args...)
	}
	n1 := start(0, nil)
	n2 := start(1, nil, "--join", n1.URL)
	n3 := start(2, map[string]string{"PYKV_JOIN": n1.URL})
	waitMembers := func(srv *runningServer, n int) string {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for {
			out, _, code := pykv(t, srv, "", "cluster", "members")
			if code == 0 && strings.Count(out, " ok ") == n && strings.Contains(out, "leader") {
				return out
			}
			if time.Now().After(deadline) {
				t.Fatalf("cluster members never showed %d healthy members:\n%s", n, out)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitMembers(n2, 3)
	if _, errOut, code := pykv(t, n2, "", "put", "greeting", "hello"); code != 0 {
		t.Fatalf("put through a member: %s", errOut)
	}
	if out, errOut, code := pykv(t, n3, "", "get", "greeting"); code != 0 || out != "hello" {
		t.Fatalf("get through another member = %q, %s", out, errOut)
	}

	// A member restarts with the same flags (and a --join it ignores).
	if err := n2.Stop(t); err != nil {
		t.Fatalf("stop n2: %v", err)
	}
	// ... on another HTTP address, which the cluster learns.
	api[1] = freeAddr(t)
	n2 = start(1, nil, "--join", n1.URL)
	if !strings.Contains(n2.stderr.String(), "--join ignored") {
		t.Errorf("a restarted member did not say it ignores --join:\n%s", n2.stderr)
	}
	waitMembers(n2, 3)
	deadline := time.Now().Add(15 * time.Second)
	for {
		out, _, _ := pykv(t, n1, "", "cluster", "members")
		if strings.Contains(out, "http://"+api[1]) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the cluster never learned n2's new address %s:\n%s", api[1], out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if out, _, _ := pykv(t, n2, "", "get", "greeting"); out != "hello" {
		t.Fatalf("restarted member reads %q", out)
	}

	// A member's folder is refused as a single node's, and back.
	if err := n3.Stop(t); err != nil {
		t.Fatal(err)
	}
	_, errOut, code := pykv(t, nil, "", "serve", "--addr", "127.0.0.1:0", "--data-dir", dirs[2])
	if code != exitUsage || !strings.Contains(errOut, "cluster member") {
		t.Errorf("a member's folder served as a single node: exit %d, %s", code, errOut)
	}
	single := t.TempDir()
	if err := os.WriteFile(filepath.Join(single, "snapshot.json"), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, errOut, code = pykv(t, nil, "", "serve", "--addr", "127.0.0.1:0", "--data-dir", single, "--node-id", "x", "--raft-addr", freeAddr(t))
	if code != exitUsage || !strings.Contains(errOut, "single node") {
		t.Errorf("a single node's folder served as a member: exit %d, %s", code, errOut)
	}

	if out, errOut, code := pykv(t, n1, "", "cluster", "remove", "n3"); code != 0 || !strings.Contains(out, "removed n3") {
		t.Fatalf("cluster remove: %q %s", out, errOut)
	}
	out := waitMembers(n1, 2)
	if strings.Contains(out, "n3") {
		t.Errorf("n3 still listed after removal:\n%s", out)
	}
	if _, errOut, code := pykv(t, n1, "", "cluster", "remove", "n3"); code != exitNotFound {
		t.Errorf("removing n3 again: exit %d, %s", code, errOut)
	}
	resp, err := http.Get(n1.URL + "/v1/cluster")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v1/cluster: %v %v", resp, err)
	}
	resp.Body.Close()
}

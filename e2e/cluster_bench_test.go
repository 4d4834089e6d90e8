package e2e

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Issue 11's comparison: a three-member PyKV cluster beside a three-member
// etcd (Debian's etcd-server, through its JSON gateway) on this machine,
// with the same load: 32 connections, 10,000 keys, 100-byte values.
const (
	clusterBenchConns  = 32
	clusterBenchKeys   = 10_000
	clusterBenchValue  = 100
	clusterBenchPhase  = 2 * time.Second
	clusterBenchRounds = 3
	clusterBenchKills  = 5
	clusterBenchTarget = "127.0.0.1"
)

// BenchmarkCluster measures durable PUT on the leader, linearizable GET,
// ?consistency=local GET on a follower (against a single node's GET), and
// failover (leader killed to first acknowledged write), beside etcd's put
// and linearizable range. Run with `make bench-cluster` (it installs
// etcd-server); figures are printed and reported as metrics.
func BenchmarkCluster(b *testing.B) {
	if _, err := exec.LookPath("etcd"); err != nil {
		b.Skip("etcd not installed: run make bench-cluster")
	}
	value := strings.Repeat("v", clusterBenchValue)
	tr := &http.Transport{MaxIdleConnsPerHost: clusterBenchConns, MaxConnsPerHost: clusterBenchConns}
	hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}

	// etcd: three members, fsync on (its default), all on loopback.
	etcdURLs := startEtcd(b)
	etcdLeader := etcdLeaderURL(b, hc, etcdURLs)
	b64 := base64.StdEncoding.EncodeToString
	etcdPut := func(i int) (*http.Request, error) {
		body := fmt.Sprintf(`{"key":%q,"value":%q}`, b64([]byte(benchKeyName(i))), b64([]byte(value)))
		return http.NewRequest(http.MethodPost, etcdLeader+"/v3/kv/put", strings.NewReader(body))
	}
	etcdGet := func(i int) (*http.Request, error) {
		body := fmt.Sprintf(`{"key":%q}`, b64([]byte(benchKeyName(i))))
		return http.NewRequest(http.MethodPost, etcdLeader+"/v3/kv/range", strings.NewReader(body))
	}
	load(b, hc, etcdPut, clusterBenchKeys) // fill

	// PyKV: three members.
	var members []*server
	for i := range 3 {
		args := []string{"--node-id", fmt.Sprintf("b%d", i+1), "--raft-addr", net.JoinHostPort(clusterBenchTarget, strconv.Itoa(freePort(b)))}
		if i > 0 {
			args = append(args, "--join", members[0].URL)
		}
		members = append(members, startServer(b, args...))
	}
	c := &testCluster{members: members, ids: []string{"b1", "b2", "b3"}}
	leaderIdx := waitClusterLeader(b, c)
	leader := members[leaderIdx].URL
	follower := members[others(leaderIdx)[0]].URL
	put := func(base string) func(int) (*http.Request, error) {
		return func(i int) (*http.Request, error) {
			return http.NewRequest(http.MethodPut, base+"/v1/kv/"+benchKeyName(i), strings.NewReader(value))
		}
	}
	get := func(base, query string) func(int) (*http.Request, error) {
		return func(i int) (*http.Request, error) {
			return http.NewRequest(http.MethodGet, base+"/v1/kv/"+benchKeyName(i)+query, nil)
		}
	}
	load(b, hc, put(leader), clusterBenchKeys)

	// A single node, for the local read's yardstick.
	single := startServer(b)
	load(b, hc, put(single.URL), clusterBenchKeys)

	// Rounds, each measuring every figure once in turn, so that a ratio
	// compares figures taken seconds apart on this shared machine; each
	// figure is the median of its rounds, each ratio the median of the
	// rounds' ratios.
	var fig [7][]float64
	var perEntry []float64 // writes per raft log entry in each round's PUT phase
	const (
		fEtcdPut = iota
		fPut
		fEtcdGet
		fLin
		fLinFollower
		fSingle
		fLocal
	)
	for range clusterBenchRounds {
		fig[fEtcdPut] = append(fig[fEtcdPut], measure(b, hc, etcdPut))
		const lastIndex = "pykv_raft_last_index"
		before := metrics(b, hc, leader, lastIndex)[lastIndex]
		rate, n := measureCount(b, hc, put(leader))
		fig[fPut] = append(fig[fPut], rate)
		if entries := metrics(b, hc, leader, lastIndex)[lastIndex] - before; entries > 0 {
			perEntry = append(perEntry, float64(n)/entries)
		}
		fig[fEtcdGet] = append(fig[fEtcdGet], measure(b, hc, etcdGet))
		fig[fLin] = append(fig[fLin], measure(b, hc, get(leader, "")))
		fig[fLinFollower] = append(fig[fLinFollower], measure(b, hc, get(follower, "")))
		fig[fSingle] = append(fig[fSingle], measure(b, hc, get(single.URL, "")))
		fig[fLocal] = append(fig[fLocal], measure(b, hc, get(follower, "?consistency=local")))
	}
	single.Stop()
	ratio := func(a, b int) float64 {
		var r []float64
		for i := range fig[a] {
			r = append(r, fig[a][i]/fig[b][i])
		}
		return median(r)
	}
	etcdPutRate, putRate, etcdGetRate := median(fig[fEtcdPut]), median(fig[fPut]), median(fig[fEtcdGet])
	linRate, linFollowerRate, singleGet, localRate := median(fig[fLin]), median(fig[fLinFollower]), median(fig[fSingle]), median(fig[fLocal])
	putRatio, linRatio, localRatio := ratio(fPut, fEtcdPut), ratio(fLin, fEtcdGet), ratio(fLocal, fSingle)

	// Failover: kill the leader, time the first acknowledged write.
	var failovers []time.Duration
	for k := range clusterBenchKills {
		l := waitClusterLeader(b, c)
		members[l].Kill()
		start := time.Now()
		for n := 0; ; n++ {
			m := members[others(l)[n%2]]
			req, _ := http.NewRequest(http.MethodPut, m.URL+"/v1/kv/failover", strings.NewReader(strconv.Itoa(k)))
			resp, err := (&http.Client{Timeout: time.Second}).Do(req)
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusCreated {
					break
				}
			}
			if time.Since(start) > 30*time.Second {
				b.Fatalf("no write acknowledged 30s after killing the leader")
			}
			time.Sleep(10 * time.Millisecond)
		}
		failovers = append(failovers, time.Since(start))
		members[l].Start()
		waitClusterHealthy(b, c)
	}
	slices.Sort(failovers)
	failover := failovers[len(failovers)/2]

	b.ReportMetric(putRate, "put/s")
	b.ReportMetric(median(perEntry), "writes/entry")
	b.ReportMetric(linRate, "lin-get/s")
	b.ReportMetric(localRate, "local-get/s")
	b.ReportMetric(etcdPutRate, "etcd-put/s")
	b.ReportMetric(etcdGetRate, "etcd-range/s")
	b.ReportMetric(failover.Seconds(), "failover-s")
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "NOT met"
	}
	fmt.Fprintf(os.Stdout, `
Cluster comparison (%d connections, %d keys, %d-byte values; %d interleaved rounds of %v per figure,
medians of the rounds, ratios the median of the rounds' ratios; one run):
  etcd 3 members:   put %.0f/s, linearizable range %.0f/s
  PyKV 3 members:   PUT on the leader %.0f/s (%.2fx etcd's put; target 2x: %s), %.1f writes per raft log entry
                    linearizable GET on the leader %.0f/s (%.2fx etcd's range; target 3x: %s)
                    linearizable GET on a follower %.0f/s
                    ?consistency=local GET on a follower %.0f/s (%.2fx a single node's %.0f/s; target 0.8x: %s)
  failover (leader SIGKILLed to first acknowledged write), median of %d: %v (target 3s: %s); all: %v
  rounds: etcd put %.0f, PUT %.0f, etcd range %.0f, lin GET %.0f, single GET %.0f, local GET %.0f
`, clusterBenchConns, clusterBenchKeys, clusterBenchValue, clusterBenchRounds, clusterBenchPhase,
		etcdPutRate, etcdGetRate,
		putRate, putRatio, verdict(putRatio >= 2), median(perEntry),
		linRate, linRatio, verdict(linRatio >= 3),
		linFollowerRate,
		localRate, localRatio, singleGet, verdict(localRatio >= 0.8),
		len(failovers), failover.Round(time.Millisecond), verdict(failover <= 3*time.Second), failovers,
		fig[fEtcdPut], fig[fPut], fig[fEtcdGet], fig[fLin], fig[fSingle], fig[fLocal])
}

func benchKeyName(i int) string { return fmt.Sprintf("key%05d", i%clusterBenchKeys) }

// load sends n requests (the fill) over clusterBenchConns connections.
func load(b *testing.B, hc *http.Client, mk func(int) (*http.Request, error), n int) {
	b.Helper()
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Int64
	for range clusterBenchConns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if !send(hc, mk, i) {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if f := failed.Load(); f > 0 {
		b.Fatalf("%d of %d fill requests failed", f, n)
	}
}

// measure runs the request for clusterBenchPhase over clusterBenchConns
// connections and returns successful requests per second.
func measure(b *testing.B, hc *http.Client, mk func(int) (*http.Request, error)) float64 {
	b.Helper()
	rate, _ := measureCount(b, hc, mk)
	return rate
}

// measureCount is measure, also returning how many requests succeeded.
func measureCount(b *testing.B, hc *http.Client, mk func(int) (*http.Request, error)) (float64, int64) {
	b.Helper()
	var ok, failed atomic.Int64
	var next atomic.Int64
	deadline := time.Now().Add(clusterBenchPhase)
	start := time.Now()
	var wg sync.WaitGroup
	for range clusterBenchConns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				if send(hc, mk, int(next.Add(7919)%clusterBenchKeys)) {
					ok.Add(1)
				} else {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if f := failed.Load(); f > ok.Load()/100 {
		b.Fatalf("%d requests failed beside %d", f, ok.Load())
	}
	return float64(ok.Load()) / time.Since(start).Seconds(), ok.Load()
}

func send(hc *http.Client, mk func(int) (*http.Request, error), i int) bool {
	req, err := mk(i)
	if err != nil {
		return false
	}
	if req.Method == http.MethodPost {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := hc.Do(req)
	if err != nil {
		return false
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode < 300
}

// startEtcd starts three etcd members on loopback and returns their client
// URLs; they are stopped when the benchmark ends.
func startEtcd(b *testing.B) []string {
	b.Helper()
	var peers, clients []string
	for range 3 {
		peers = append(peers, fmt.Sprintf("http://127.0.0.1:%d", freePort(b)))
		clients = append(clients, fmt.Sprintf("http://127.0.0.1:%d", freePort(b)))
	}
	var initial []string
	for i, p := range peers {
		initial = append(initial, fmt.Sprintf("e%d=%s", i+1, p))
	}
	for i := range 3 {
		dir := b.TempDir()
		cmd := exec.Command("etcd", "--name", fmt.Sprintf("e%d", i+1), "--data-dir", filepath.Join(dir, "data"),
			"--listen-client-urls", clients[i], "--advertise-client-urls", clients[i],
			"--listen-peer-urls", peers[i], "--initial-advertise-peer-urls", peers[i],
			"--initial-cluster", strings.Join(initial, ","), "--initial-cluster-state", "new",
			"--initial-cluster-token", "pykv-bench", "--log-level", "warn")
		logf, err := os.Create(filepath.Join(dir, "etcd.log"))
		if err != nil {
			b.Fatal(err)
		}
		cmd.Stdout, cmd.Stderr = logf, logf
		cmd.SysProcAttr = serverSysProcAttr()
		if err := cmd.Start(); err != nil {
			b.Fatalf("start etcd: %v", err)
		}
		logf.Close()
		b.Cleanup(func() {
			cmd.Process.Kill()
			cmd.Wait()
		})
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, u := range clients {
		for {
			resp, err := http.Get(u + "/health")
			if err == nil {
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if bytes.Contains(body, []byte(`"true"`)) {
					break
				}
			}
			if time.Now().After(deadline) {
				b.Fatalf("etcd at %s not healthy within 30s", u)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return clients
}

// etcdLeaderURL returns the client URL of etcd's leader.
func etcdLeaderURL(b *testing.B, hc *http.Client, urls []string) string {
	b.Helper()
	for _, u := range urls {
		resp, err := hc.Post(u+"/v3/maintenance/status", "application/json", strings.NewReader("{}"))
		if err != nil {
			b.Fatal(err)
		}
		var st struct {
			Header struct {
				MemberID string `json:"member_id"`
			} `json:"header"`
			Leader string `json:"leader"`
		}
		json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
		if st.Leader != "" && st.Leader == st.Header.MemberID {
			return u
		}
	}
	b.Fatal("no etcd member says it leads")
	return ""
}

// waitClusterLeader returns the index of the PyKV member that leads.
func waitClusterLeader(b *testing.B, c *testCluster) int {
	b.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		for i := range c.members {
			if v, err := c.view(i); err == nil && v.Leader != "" {
				for j, id := range c.ids {
					if id == v.Leader && c.members[j].proc != nil {
						return j
					}
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.Fatal("no PyKV leader within 20s")
	return -1
}

// waitClusterHealthy waits until a member reports three healthy members.
func waitClusterHealthy(b *testing.B, c *testCluster) {
	b.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		for i := range c.members {
			v, err := c.view(i)
			if err != nil || v.Leader == "" {
				continue
			}
			healthy := 0
			for _, m := range v.Members {
				if m.Healthy {
					healthy++
				}
			}
			if healthy == 3 {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.Fatal("PyKV cluster not healthy within 30s")
}

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The load of issue 12's comparison, as wrk runs it: one thread, 32
// connections, 10,000 keys, 100-byte values.
const (
	peerConns     = 32
	peerKeys      = 10_000
	peerValueSize = 100
	peerToken     = "peers-bench-token"
	// clockTicks is the unit of utime and stime in /proc/PID/stat
	// (sysconf(_SC_CLK_TCK), 100 on every Linux this runs on).
	clockTicks = 100
)

// BenchmarkPeers is issue 12's comparison with peers on the same machine
// and disk, all running at once: PyKV (bin/pykv as it runs by default:
// --fsync always, the key routes on its hot loop, with an auth token
// configured, so every request passes the production checks: Host, token,
// metrics, connection limits), as a diagnostic the same binary with
// --hot-loop=false (every request through net/http and the chi chain),
// Redis with appendfsync always behind webdis (Debian's
// redis-server and webdis), and a bare net/http handler answering a
// constant (and, as a diagnostic, the same handler answering with the 11
// headers a PyKV GET carries: what net/http costs for those). wrk (-t1 -c32) drives each side in turn for PYKV_PEERS_SECONDS
// (default 4) per round, PYKV_PEERS_ROUNDS rounds (default 5), the order of
// the sides reversed every other round, so that a slow minute of the shared
// machine falls on both sides of each ratio. It prints each side's rounds,
// the medians, the ratios, p99s, PyKV's writes per fsync and fsync latency
// (from its /metrics), and the CPU time per request of each server (from
// /proc). perf counts both stores' fsync and fdatasync calls during the
// PUT rounds (Redis does not count them itself).
//
// It runs once whatever b.N is (`make bench-peers` passes -benchtime=1x).
// `make bench-peers-deps` installs the peers with apt-get; without them the
// benchmark fails rather than skip.
func BenchmarkPeers(b *testing.B) {
	for _, tool := range []string{"wrk", "redis-server", "webdis", "perf"} {
		if _, err := exec.LookPath(tool); err != nil {
			b.Fatalf("%s not found: run `make bench-peers-deps` (apt-get install redis-server webdis wrk linux-perf)", tool)
		}
	}
	rounds := envInt(b, "PYKV_PEERS_ROUNDS", 5)
	seconds := envInt(b, "PYKV_PEERS_SECONDS", 4)
	fmt.Printf("peers: load average before: %s", readFileString("/proc/loadavg"))

	pykv := startServer(b, "--fsync", "always", "--auth-token", peerToken)
	// A diagnostic: the same binary with every request through net/http.
	nethttp := startServer(b, "--fsync", "always", "--auth-token", peerToken, "--hot-loop=false")
	redisPort, webdisPort := freePort(b), freePort(b)
	redis := startPeer(b, "redis-server", "--port", strconv.Itoa(redisPort), "--bind", "127.0.0.1",
		"--dir", b.TempDir(), "--appendonly", "yes", "--appendfsync", "always", "--save", "",
		"--daemonize", "no", "--protected-mode", "no", "--logfile", "")
	waitRedis(b, redisPort)
	webdisConf := filepath.Join(b.TempDir(), "webdis.json")
	writeFile(b, webdisConf, fmt.Sprintf(`{"redis_host":"127.0.0.1","redis_port":%d,"http_host":"127.0.0.1",
		"http_port":%d,"threads":2,"daemonize":false,"database":0,"verbosity":1,"logfile":%q}`,
		redisPort, webdisPort, filepath.Join(b.TempDir(), "webdis.log")))
	webdis := startPeer(b, "webdis", webdisConf)
	webdisURL := fmt.Sprintf("http://127.0.0.1:%d", webdisPort)
	waitHTTP(b, webdisURL+"/PING")
	bareURL, bareCPU := startBare(b, false)
	bareHeadersURL, _ := startBare(b, true)

	value := strings.Repeat("v", peerValueSize)
	fillPeer(b, pykv.URL+"/v1/kv/", "PUT", value, map[string]string{"Authorization": "Bearer " + peerToken})
	fillPeer(b, webdisURL+"/SET/", "PUT", value, nil)
	fillPeer(b, nethttp.URL+"/v1/kv/", "PUT", value, map[string]string{"Authorization": "Bearer " + peerToken})
	nethttpPID := nethttp.proc.cmd.Process.Pid

	pykvPID := pykv.proc.cmd.Process.Pid
	sides := []*side{
		{name: "pykv-put", url: pykv.URL + "/v1/kv/", method: "PUT", body: value, token: peerToken,
			cpu: pidCPU(pykvPID), metrics: pykv.URL + "/metrics", syncPIDs: []int{pykvPID}},
		{name: "webdis-redis-put", url: webdisURL + "/SET/", method: "PUT", body: value,
			cpu: pidCPU(redis.Process.Pid, webdis.Process.Pid), syncPIDs: []int{redis.Process.Pid}},
		{name: "pykv-get", url: pykv.URL + "/v1/kv/", method: "GET", token: peerToken, cpu: pidCPU(pykvPID)},
		{name: "bare-get", url: bareURL + "/", method: "GET", cpu: bareCPU},
		{name: "webdis-redis-get", url: webdisURL + "/GET/", method: "GET",
			cpu: pidCPU(redis.Process.Pid, webdis.Process.Pid)},
		// A diagnostic, not a peer: the bare handler answering with PyKV's
		// headers (see startBare).
		{name: "bare-headers-get", url: bareHeadersURL + "/", method: "GET", cpu: bareCPU},
		// A diagnostic: PyKV without its hot loop (see nethttp above).
		{name: "nethttp-pykv-put", url: nethttp.URL + "/v1/kv/", method: "PUT", body: value, token: peerToken,
			cpu: pidCPU(nethttpPID), metrics: nethttp.URL + "/metrics", syncPIDs: []int{nethttpPID}},
		{name: "nethttp-pykv-get", url: nethttp.URL + "/v1/kv/", method: "GET", token: peerToken, cpu: pidCPU(nethttpPID)},
	}
	for _, s := range sides {
		s.script = writeWrkScript(b, s)
		s.run(b, 1) // warm-up, not counted
		s.results = nil
	}
	for r := range rounds {
		order := slices.Clone(sides)
		if r%2 == 1 {
			slices.Reverse(order)
		}
		for _, s := range order {
			s.run(b, seconds)
		}
	}
	fmt.Printf("peers: load average after: %s", readFileString("/proc/loadavg"))

	b.StopTimer()
	report(b, sides, rounds, seconds)
}

// side is one server and request kind driven by wrk.
type side struct {
	name, url, method, body, token string
	metrics                        string // PyKV's /metrics, read around each round
	syncPIDs                       []int  // processes whose fsyncs are counted
	cpu                            func() time.Duration
	script                         string
	results                        []wrkResult
}

// wrkResult is one round of one side.
type wrkResult struct {
	rate       float64       // requests per second
	p99        time.Duration // wrk's 99th percentile latency
	requests   int64
	cpuPerReq  time.Duration // the server processes' CPU time per request
	wrkPerReq  time.Duration // wrk's own CPU time per request
	syncs      int64         // fsync and fdatasync calls in the round (perf)
	fsyncs     int64         // PyKV's fsyncs in the round (from /metrics)
	fsyncTotal time.Duration // their summed latency
}

// writeWrkScript writes the Lua script wrk runs for s: requests cycle
// through the keys in order, each PUT carrying the 100-byte value.
func writeWrkScript(b *testing.B, s *side) string {
	var lua strings.Builder
	fmt.Fprintf(&lua, "local i = 0\n")
	if s.token != "" {
		fmt.Fprintf(&lua, "wrk.headers[\"Authorization\"] = %q\n", "Bearer "+s.token)
	}
	body := "nil"
	if s.body != "" {
		fmt.Fprintf(&lua, "wrk.headers[\"Content-Type\"] = \"text/plain\"\n")
		body = strconv.Quote(s.body)
	}
	fmt.Fprintf(&lua, `request = function()
	local k = string.format("key-%%05d", i %% %d)
	i = i + 1
	return wrk.format(%q, %q .. k, nil, %s)
end
`, peerKeys, s.method, pathOf(s.url), body)
	name := filepath.Join(b.TempDir(), s.name+".lua")
	writeFile(b, name, lua.String())
	return name
}

func pathOf(u string) string {
	rest := strings.TrimPrefix(u, "http://")
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		return rest[i:]
	}
	return "/"
}

// run drives s with wrk for the given seconds and keeps the result.
func (s *side) run(b *testing.B, seconds int) wrkResult {
	b.Helper()
	var m0 pykvMetrics
	if s.metrics != "" {
		m0 = readMetrics(b, s.metrics)
	}
	var syncs func() int64
	if s.syncPIDs != nil {
		syncs = perfSyncs(b, s.syncPIDs)
	}
	cpu0 := s.cpu()
	cmd := exec.Command("wrk", "-t1", fmt.Sprintf("-c%d", peerConns), fmt.Sprintf("-d%ds", seconds),
		"--latency", "-s", s.script, s.url)
	out, err := cmd.Output()
	cpu := s.cpu() - cpu0
	var nsyncs int64
	if syncs != nil {
		nsyncs = syncs()
	}
	if err != nil {
		b.Fatalf("%s: wrk: %v\n%s", s.name, err, out)
	}
	res, err := parseWrk(string(out))
	if err != nil {
		b.Fatalf("%s: %v\n%s", s.name, err, out)
	}
	res.syncs = nsyncs
	res.cpuPerReq = cpu / time.Duration(res.requests)
	res.wrkPerReq = (cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()) / time.Duration(res.requests)
	if s.metrics != "" {
		m1 := readMetrics(b, s.metrics)
		res.fsyncs = m1.fsyncs - m0.fsyncs
		res.fsyncTotal = m1.fsyncSum - m0.fsyncSum
	}
	s.results = append(s.results, res)
	return res
}

var (
	wrkRequests = regexp.MustCompile(`(\d+) requests in`)
	wrkRate     = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	wrkP99      = regexp.MustCompile(`\n\s+99%\s+([0-9.]+)(us|ms|s)\b`)
	wrkNon2xx   = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
	wrkSocket   = regexp.MustCompile(`Socket errors: (.*)`)
)

// parseWrk reads wrk --latency's report. Any answer that is not 2xx or
// 3xx, and any socket error, fails the round: a fast error is no result.
func parseWrk(out string) (wrkResult, error) {
	var r wrkResult
	if m := wrkNon2xx.FindStringSubmatch(out); m != nil {
		return r, fmt.Errorf("%s answers were not 2xx or 3xx", m[1])
	}
	if m := wrkSocket.FindStringSubmatch(out); m != nil {
		return r, fmt.Errorf("socket errors: %s", m[1])
	}
	m := wrkRequests.FindStringSubmatch(out)
	rate := wrkRate.FindStringSubmatch(out)
	p99 := wrkP99.FindStringSubmatch(out)
	if m == nil || rate == nil || p99 == nil {
		return r, errors.New("cannot read wrk's report")
	}
	r.requests, _ = strconv.ParseInt(m[1], 10, 64)
	r.rate, _ = strconv.ParseFloat(rate[1], 64)
	v, _ := strconv.ParseFloat(p99[1], 64)
	unit := map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second}[p99[2]]
	r.p99 = time.Duration(v * float64(unit))
	if r.requests == 0 {
		return r, errors.New("no requests completed")
	}
	return r, nil
}

// pykvMetrics is what the comparison reads from PyKV's /metrics.
type pykvMetrics struct {
	fsyncs   int64
	fsyncSum time.Duration
}

func readMetrics(b *testing.B, url string) pykvMetrics {
	b.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+peerToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatalf("read metrics: %v", err)
	}
	defer resp.Body.Close()
	var m pykvMetrics
	found := 0
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		f, err := strconv.ParseFloat(val, 64)
		if err != nil {
			continue
		}
		switch name {
		case "pykv_fsync_duration_seconds_count":
			m.fsyncs = int64(f)
			found++
		case "pykv_fsync_duration_seconds_sum":
			m.fsyncSum = time.Duration(f * float64(time.Second))
			found++
		}
	}
	if found != 2 {
		b.Fatalf("read metrics: no pykv_fsync_duration_seconds histogram in %s (status %s)", url, resp.Status)
	}
	return m
}

// perfSyncs starts counting the fsync and fdatasync calls of the
// processes pids (all their threads) with perf's syscall tracepoints, which
// cost the counted processes next to nothing, unlike strace, which stops
// them at each call. The returned function stops perf and returns the count.
func perfSyncs(b *testing.B, pids []int) func() int64 {
	b.Helper()
	out := filepath.Join(b.TempDir(), "perf.csv")
	var list []string
	for _, p := range pids {
		list = append(list, strconv.Itoa(p))
	}
	cmd := exec.Command("perf", "stat", "-x,", "-o", out,
		"-e", "syscalls:sys_enter_fsync,syscalls:sys_enter_fdatasync", "-p", strings.Join(list, ","))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		b.Fatalf("perf: %v", err)
	}
	time.Sleep(200 * time.Millisecond) // let perf attach before the load starts
	return func() int64 {
		_ = cmd.Process.Signal(syscall.SIGINT)
		_ = cmd.Wait() // perf ends by the signal; its counts are checked below
		var n int64
		found := 0
		for _, line := range strings.Split(readFileString(out), "\n") {
			f := strings.Split(line, ",")
			if len(f) >= 3 && strings.HasPrefix(f[2], "syscalls:sys_enter_") {
				c, err := strconv.ParseInt(f[0], 10, 64)
				if err != nil {
					b.Fatalf("perf counted nothing for pids %v: %s\n%s", pids, line, stderr.String())
				}
				n += c
				found++
			}
		}
		if found != 2 {
			b.Fatalf("perf stat gave no syscall counts for pids %v:\n%s\n%s", pids, readFileString(out), stderr.String())
		}
		return n
	}
}

// report prints every round, the medians and the ratios against the
// targets of issue 12, and reports the main figures as metrics.
func report(b *testing.B, sides []*side, rounds, seconds int) {
	fmt.Printf("\npeers: wrk -t1 -c%d, %d keys, %d-byte values, %d rounds of %d s per side, order reversed every other round\n",
		peerConns, peerKeys, peerValueSize, rounds, seconds)
	fmt.Printf("%-18s %-60s %10s %8s %10s %10s\n", "side", "req/s by round", "median", "p99 ms", "cpu us/req", "wrk us/req")
	med := map[string]wrkResult{}
	for _, s := range sides {
		var rates []string
		for _, r := range s.results {
			rates = append(rates, fmt.Sprintf("%.0f", r.rate))
		}
		m := medianResult(s.results)
		med[s.name] = m
		fmt.Printf("%-18s %-60s %10.0f %8.2f %10.1f %10.1f\n", s.name, strings.Join(rates, " "), m.rate,
			ms(m.p99), us(m.cpuPerReq), us(m.wrkPerReq))
	}
	put, redisPut := med["pykv-put"], med["webdis-redis-put"]
	get, bare := med["pykv-get"], med["bare-get"]
	var fsyncs int64
	var fsyncTime time.Duration
	for _, r := range sides[0].results {
		fsyncs += r.fsyncs
		fsyncTime += r.fsyncTotal
	}
	perFsync, redisPerFsync := writesPerSync(sides[0].results), writesPerSync(sides[1].results)
	putRatio, getRatio := put.rate/redisPut.rate, get.rate/bare.rate
	fmt.Println()
	fmt.Printf("durable PUT: %.0f/s vs webdis+Redis %.0f/s = %.2fx (target >= 1.3x: %s), p99 %.2f ms (target <= 10: %s)\n",
		put.rate, redisPut.rate, putRatio, verdict(putRatio >= 1.3), ms(put.p99), verdict(put.p99 <= 10*time.Millisecond))
	fmt.Printf("writes per fsync/fdatasync call (perf, all timed rounds): PyKV %.1f (target >= %.0f: %s), Redis %.1f\n",
		perFsync, 0.75*peerConns, verdict(perFsync >= 0.75*peerConns), redisPerFsync)
	fmt.Printf("PyKV's log fsync (its /metrics): mean %.3f ms over %d fsyncs\n",
		ms(fsyncTime/time.Duration(max(fsyncs, 1))), fsyncs)
	fmt.Printf("GET: %.0f/s vs bare handler %.0f/s = %.2fx (target >= 0.85x: %s), p99 %.2f ms (target <= 5: %s)\n",
		get.rate, bare.rate, getRatio, verdict(getRatio >= 0.85), ms(get.p99), verdict(get.p99 <= 5*time.Millisecond))
	fmt.Printf("(webdis+Redis GET %.0f/s = %.2fx the bare handler)\n", med["webdis-redis-get"].rate, med["webdis-redis-get"].rate/bare.rate)
	bh := med["bare-headers-get"]
	fmt.Printf("(the bare handler setting the 11 headers of a PyKV GET answer: %.0f/s = %.2fx the bare handler, %.1f us of CPU a request;\n"+
		" PyKV's GET is %.2fx of that)\n", bh.rate, bh.rate/bare.rate, us(bh.cpuPerReq), get.rate/bh.rate)
	fmt.Printf("medians of the per-round ratios (each round's sides ran within seconds of each other): PUT %.2fx, GET %.2fx\n",
		roundRatio(sides[0].results, sides[1].results), roundRatio(sides[2].results, sides[3].results))
	np, ng := med["nethttp-pykv-put"], med["nethttp-pykv-get"]
	fmt.Printf("(diagnostic, --hot-loop=false: durable PUT %.0f/s = %.2fx webdis+Redis, p99 %.2f ms, %.1f writes per fsync, %.1f us CPU/PUT;\n"+
		" GET %.0f/s = %.2fx bare, p99 %.2f ms, %.1f us CPU/GET; the hot loop is %.2fx (PUT) and %.2fx (GET) of it, CPU per request %.2fx and %.2fx)\n",
		np.rate, np.rate/redisPut.rate, ms(np.p99), writesPerSync(sides[6].results), us(np.cpuPerReq),
		ng.rate, ng.rate/bare.rate, ms(ng.p99), us(ng.cpuPerReq), put.rate/np.rate, get.rate/ng.rate,
		put.cpuPerReq.Seconds()/np.cpuPerReq.Seconds(), get.cpuPerReq.Seconds()/ng.cpuPerReq.Seconds())
	b.ReportMetric(put.rate, "put/s")
	b.ReportMetric(putRatio, "put-x-redis")
	b.ReportMetric(perFsync, "writes/fsync")
	b.ReportMetric(get.rate, "get/s")
	b.ReportMetric(getRatio, "get-x-bare")
	b.ReportMetric(0, "ns/op")
}

// roundRatio returns the median over rounds of a's rate over b's.
func roundRatio(a, b []wrkResult) float64 {
	r := make([]float64, min(len(a), len(b)))
	for i := range r {
		r[i] = a[i].rate / b[i].rate
	}
	slices.Sort(r)
	return r[len(r)/2]
}

// writesPerSync returns the requests per fsync or fdatasync call over rs.
func writesPerSync(rs []wrkResult) float64 {
	var req, syncs int64
	for _, r := range rs {
		req += r.requests
		syncs += r.syncs
	}
	return float64(req) / float64(max(syncs, 1))
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}

// medianResult returns the round with the median rate.
func medianResult(rs []wrkResult) wrkResult {
	s := slices.Clone(rs)
	slices.SortFunc(s, func(a, b wrkResult) int {
		switch {
		case a.rate < b.rate:
			return -1
		case a.rate > b.rate:
			return 1
		}
		return 0
	})
	return s[len(s)/2]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
func us(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1000 }

// pidCPU returns a function reading the CPU time (user and system) the
// processes have used so far.
func pidCPU(pids ...int) func() time.Duration {
	return func() time.Duration {
		var total time.Duration
		for _, pid := range pids {
			total += procCPU(fmt.Sprintf("/proc/%d/stat", pid))
		}
		return total
	}
}

// procCPU reads utime + stime from a /proc stat file (0 if unreadable).
func procCPU(path string) time.Duration {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	// The command name, in parentheses, may hold spaces: fields count
	// from after its closing parenthesis (state is field 3, utime 14).
	rest := string(data[bytes.LastIndexByte(data, ')')+1:])
	f := strings.Fields(rest)
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / clockTicks
}

// startBare serves a bare net/http handler answering a constant 100 bytes
// in this process, and returns its URL and this process's CPU clock (the
// test binary does nothing else while wrk drives it). With headers, the
// handler also sets the 11 headers a PyKV GET answers with (constant
// values, set as map entries the way PyKV sets them): what net/http
// itself costs for such an answer, the ceiling of any handler on it.
func startBare(b *testing.B, headers bool) (string, func() time.Duration) {
	value := strings.Repeat("v", peerValueSize)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	pykvHeaders := map[string][]string{
		"Date": {time.Now().UTC().Format(http.TimeFormat)}, "X-Content-Type-Options": {"nosniff"},
		"X-Frame-Options": {"DENY"}, "Referrer-Policy": {"no-referrer"}, "Vary": {"Accept"},
		"Etag": {`"12345"`}, "Pykv-Create-Revision": {"123"}, "Pykv-Version": {"3"}, "Cache-Control": {"no-cache"},
		"Content-Length": {strconv.Itoa(len(value))}, "Content-Type": {"text/plain; charset=utf-8"},
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if headers {
			h := w.Header()
			for k, v := range pykvHeaders {
				h[k] = v
			}
		}
		_, _ = io.WriteString(w, value)
	}), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	b.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	return "http://" + ln.Addr().String(), func() time.Duration { return procCPU("/proc/self/stat") }
}

// startPeer starts a peer server process, stopped with SIGTERM (then
// SIGKILL) when the benchmark ends.
func startPeer(b *testing.B, name string, args ...string) *exec.Cmd {
	b.Helper()
	cmd := exec.Command(name, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = serverSysProcAttr()
	if err := cmd.Start(); err != nil {
		b.Fatalf("start %s: %v", name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	b.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(stopGrace):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	return cmd
}

// waitRedis waits until Redis answers PING on port.
func waitRedis(b *testing.B, port int) {
	b.Helper()
	deadline := time.Now().Add(healthTimeout)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err == nil {
			_, _ = c.Write([]byte("PING\r\n"))
			_ = c.SetReadDeadline(time.Now().Add(time.Second))
			line, _ := bufio.NewReader(c).ReadString('\n')
			c.Close()
			if strings.HasPrefix(line, "+PONG") {
				return
			}
		}
		if time.Now().After(deadline) {
			b.Fatalf("redis-server on port %d did not answer PING within %v", port, healthTimeout)
		}
		time.Sleep(healthPoll)
	}
}

// waitHTTP waits until url answers 200.
func waitHTTP(b *testing.B, url string) {
	b.Helper()
	deadline := time.Now().Add(healthTimeout)
	for {
		resp, err := http.Get(url)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s did not answer 200 within %v: %v", url, healthTimeout, err)
		}
		time.Sleep(healthPoll)
	}
}

// fillPeer writes every key once, from peerConns goroutines.
func fillPeer(b *testing.B, prefix, method, value string, header map[string]string) {
	b.Helper()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: peerConns}}
	defer client.CloseIdleConnections()
	var wg sync.WaitGroup
	errs := make(chan error, peerConns)
	for w := range peerConns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < peerKeys; i += peerConns {
				req, _ := http.NewRequest(method, fmt.Sprintf("%skey-%05d", prefix, i), strings.NewReader(value))
				for k, v := range header {
					req.Header.Set(k, v)
				}
				resp, err := client.Do(req)
				if err != nil {
					errs <- err
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode >= 300 {
					errs <- fmt.Errorf("%s %s: %s", method, req.URL, resp.Status)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatalf("fill %s: %v", prefix, err)
	}
}

func envInt(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		b.Fatalf("%s=%q: want a positive number", name, v)
	}
	return n
}

func writeFile(b *testing.B, name, content string) {
	b.Helper()
	if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
		b.Fatal(err)
	}
}

func readFileString(name string) string {
	data, _ := os.ReadFile(name)
	return string(data)
}

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// syncBuffer is a bytes.Buffer safe for one writer and a polling reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// runningServer is `pykv serve` run in a goroutine by startServe.
type runningServer struct {
	URL    string
	stop   context.CancelFunc
	done   chan error
	stderr *syncBuffer
}

var servingRE = regexp.MustCompile(`PyKV serving (http://\S+)`)

// startServe runs `pykv serve` on a free loopback port with dataDir and
// waits for /healthz. Cleanup stops it if the test did not.
func startServe(t *testing.T, dataDir string, env map[string]string, extra ...string) *runningServer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	s := &runningServer{stop: cancel, done: make(chan error, 1), stderr: stderr}
	args := append([]string{"serve", "--addr", "127.0.0.1:0", "--data-dir", dataDir}, extra...)
	go func() { s.done <- run(ctx, args, mapEnv(env), strings.NewReader(""), stdout, stderr) }()
	t.Cleanup(func() {
		cancel()
		<-s.done
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		if m := servingRE.FindStringSubmatch(stdout.String()); m != nil {
			s.URL = m[1]
			break
		}
		select {
		case err := <-s.done:
			t.Fatalf("pykv serve ended before serving: %v\nstderr:\n%s", err, stderr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("pykv serve did not print its URL within 10s; stdout %q stderr %q", stdout, stderr)
		}
		time.Sleep(10 * time.Millisecond)
	}
	resp, err := http.Get(s.URL + "/healthz")
	if err != nil {
		t.Fatalf("GET /healthz: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "ok") {
		t.Fatalf("GET /healthz = %d %s", resp.StatusCode, body)
	}
	return s
}

// Stop cancels the context, as SIGINT or SIGTERM do, and returns run's result.
func (s *runningServer) Stop(t *testing.T) error {
	t.Helper()
	s.stop()
	select {
	case err := <-s.done:
		s.done <- err // for Cleanup
		return err
	case <-time.After(15 * time.Second):
		t.Fatalf("pykv serve still running 15s after cancel")
		return nil
	}
}

func mapEnv(env map[string]string) func(string) string {
	return func(k string) string { return env[k] }
}

// pykv runs a client command against srv and returns its output and exit code.
func pykv(t *testing.T, srv *runningServer, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	env := map[string]string{}
	if srv != nil {
		env["PYKV_SERVER"] = srv.URL
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := run(ctx, args, mapEnv(env), strings.NewReader(stdin), &out, &errb)
	code = exitCode(err, &errb)
	return out.String(), errb.String(), code
}

// TestRun_ServeRestart writes through a running server, stops it the way a
// signal does, starts it again on the same folder and reads the data back.
func TestRun_ServeRestart(t *testing.T) {
	dir := t.TempDir()
	srv := startServe(t, dir, nil)
	for i := range 20 {
		if _, errOut, code := pykv(t, srv, "", "put", fmt.Sprintf("key/%02d", i), fmt.Sprintf("value %d", i)); code != 0 {
			t.Fatalf("put: exit %d: %s", code, errOut)
		}
	}
	if _, errOut, code := pykv(t, srv, "", "del", "key/05"); code != 0 {
		t.Fatalf("del: exit %d: %s", code, errOut)
	}
	if err := srv.Stop(t); err != nil {
		t.Fatalf("serve after cancel returned %v, want nil (exit 0)", err)
	}
	if !strings.Contains(srv.stderr.String(), "store closed") {
		t.Errorf("serve did not log closing the store; stderr:\n%s", srv.stderr)
	}
	if _, err := http.Get(srv.URL + "/healthz"); err == nil {
		t.Errorf("server still answers after stop")
	}

	srv2 := startServe(t, dir, nil)
	out, _, code := pykv(t, srv2, "", "get", "key/07")
	if code != 0 || out != "value 7" {
		t.Errorf("after restart: get key/07 = %q (exit %d), want %q", out, code, "value 7")
	}
	if _, _, code := pykv(t, srv2, "", "get", "key/05"); code != exitNotFound {
		t.Errorf("after restart: get of deleted key/05 exit %d, want %d", code, exitNotFound)
	}
	out, _, _ = pykv(t, srv2, "", "ls", "key/")
	if n := len(strings.Fields(out)); n != 19 {
		t.Errorf("after restart: ls key/ lists %d keys, want 19:\n%s", n, out)
	}
}

// TestRun_SecondServeRefused checks the data folder lock.
func TestRun_SecondServeRefused(t *testing.T) {
	dir := t.TempDir()
	startServe(t, dir, nil)
	var stderr bytes.Buffer
	err := run(context.Background(), []string{"serve", "--addr", "127.0.0.1:0", "--data-dir", dir}, mapEnv(nil), nil, io.Discard, &stderr)
	if err == nil || !strings.Contains(err.Error(), "in use by another PyKV process") {
		t.Fatalf("second serve on the same folder: %v, want a clear refusal", err)
	}
}

func TestRun_Usage(t *testing.T) {
	for _, c := range []struct {
		name string
		args []string
		env  map[string]string
		code int
		msg  string
	}{
		{"no command", nil, nil, exitUsage, "no command"},
		{"unknown command", []string{"frobnicate"}, nil, exitUsage, "unknown command"},
		{"help", []string{"help"}, nil, exitOK, ""},
		{"bad flag", []string{"serve", "--nope"}, nil, exitUsage, "nope"},
		{"bad fsync", []string{"serve", "--fsync", "sometimes"}, nil, exitUsage, "fsync"},
		{"bad fsync from env", []string{"serve"}, map[string]string{"PYKV_FSYNC": "sometimes"}, exitUsage, "PYKV_FSYNC"},
		{"bad log format", []string{"serve", "--log-format", "xml"}, nil, exitUsage, "log-format"},
		{"public without token", []string{"serve", "--addr", "0.0.0.0:0"}, nil, exitUsage, "without a token"},
		{"same tokens", []string{"serve", "--auth-token", "a", "--read-token", "a"}, nil, exitUsage, "differ"},
		{"raft without node id", []string{"serve", "--raft-addr", "127.0.0.1:0"}, nil, exitUsage, "--node-id"},
		{"node id without raft", []string{"serve", "--node-id", "n1"}, nil, exitUsage, "--raft-addr"},
		{"half peer tls", []string{"serve", "--node-id", "n1", "--raft-addr", "127.0.0.1:0", "--peer-cert", "c.pem"}, nil, exitUsage, "--peer-key"},
		{"bad join", []string{"serve", "--node-id", "n1", "--raft-addr", "127.0.0.1:0", "--join", "n2:8080"}, nil, exitUsage, "--join"},
		{"plain raft beyond loopback", []string{"serve", "--node-id", "n1", "--raft-addr", "192.0.2.1:7000"}, nil, exitUsage, "peer TLS"},
		{"cluster without members", []string{"cluster"}, nil, exitUsage, "usage"},
		// These name a data folder that cannot be made, so a check that
		// is missing fails the test at once instead of serving forever.
		{"short token", []string{"serve", "--data-dir", "/dev/null/x", "--addr", "0.0.0.0:0", "--auth-token", "x"}, nil, exitUsage, "at least 16 bytes"},
		{"short token from env", []string{"serve", "--data-dir", "/dev/null/x"}, map[string]string{"PYKV_READ_TOKEN": "fifteen-bytes.."}, exitUsage, "--read-token"},
		{"bad trusted proxy", []string{"serve", "--data-dir", "/dev/null/x", "--trusted-proxies", "10.0.0.0/8,proxy.example"}, nil, exitUsage, "proxy.example"},
		{"bad allowed origin", []string{"serve", "--data-dir", "/dev/null/x", "--allowed-origins", "https://ok.example,https://x.example/path"}, nil, exitUsage, "x.example/path"},
		{"bad allowed origin from env", []string{"serve", "--data-dir", "/dev/null/x"}, map[string]string{"PYKV_ALLOWED_ORIGINS": "app.example"}, exitUsage, "PYKV_ALLOWED_ORIGINS"},
		{"bad allowed host", []string{"serve", "--data-dir", "/dev/null/x", "--allowed-hosts", "http://x/"}, nil, exitUsage, "not a host name"},
		{"session ttl too short", []string{"serve", "--data-dir", "/dev/null/x", "--session-ttl", "30s"}, nil, exitUsage, "--session-ttl"},
		{"session ttl too long", []string{"serve", "--data-dir", "/dev/null/x", "--session-ttl", "876001h"}, nil, exitUsage, "--session-ttl"},
		{"session ttl not a duration", []string{"serve", "--data-dir", "/dev/null/x"}, map[string]string{"PYKV_SESSION_TTL": "12"}, exitUsage, "PYKV_SESSION_TTL"},
		{"get without key", []string{"get"}, nil, exitUsage, "usage"},
		{"bad server", []string{"get", "k", "--server", "ftp://x"}, nil, exitUsage, "--server"},
		{"unreachable", []string{"get", "k", "--server", "http://127.0.0.1:1"}, nil, exitUnavailable, "cannot reach"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), c.args, mapEnv(c.env), strings.NewReader(""), &stdout, &stderr)
			if code := exitCode(err, &stderr); code != c.code {
				t.Errorf("run(%q) exit %d, want %d; err %v", c.args, code, c.code, err)
			}
			if c.msg != "" && (err == nil || !strings.Contains(err.Error(), c.msg)) {
				t.Errorf("run(%q) error %v, want it to mention %q", c.args, err, c.msg)
			}
		})
	}
}

// TestServe_AllowedOrigins checks that PYKV_ALLOWED_ORIGINS (and so
// --allowed-origins) reaches the watch stream: a browser page of a listed
// origin may open it, one of another origin is refused with 403.
func TestServe_AllowedOrigins(t *testing.T) {
	srv := startServe(t, t.TempDir(), map[string]string{"PYKV_ALLOWED_ORIGINS": "https://app.example, http://localhost:3000"})
	url := "ws" + strings.TrimPrefix(srv.URL, "http") + "/v1/watch"
	for origin, want := range map[string]int{
		"https://app.example":   http.StatusSwitchingProtocols,
		"http://localhost:3000": http.StatusSwitchingProtocols,
		"https://evil.example":  http.StatusForbidden,
	} {
		conn, resp, err := websocket.DefaultDialer.Dial(url, http.Header{"Origin": {origin}})
		if conn != nil {
			conn.Close()
		}
		if resp == nil || resp.StatusCode != want {
			t.Errorf("watch from origin %s: response %v, err %v; want status %d", origin, resp, err, want)
		}
	}
}

// TestRun_EnvAndFlags checks that the environment sets flags and the
// command line wins over it.
func TestRun_EnvAndFlags(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"PYKV_FSYNC": "never", "PYKV_MAX_VALUE_BYTES": "10", "PYKV_LOG_FORMAT": "json", "PYKV_DATA_DIR": "/nonexistent/ignored"}
	srv := startServe(t, dir, env, "--max-value-bytes", "20")
	resp, err := http.Get(srv.URL + "/v1/status")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `"fsync":"never"`) || !strings.Contains(string(body), `"max_value_bytes":20`) {
		t.Errorf("status %s: want fsync never (env) and max_value_bytes 20 (flag over env)", body)
	}
	if !strings.HasPrefix(srv.stderr.String(), "{") {
		t.Errorf("PYKV_LOG_FORMAT=json: log starts %.80q", srv.stderr.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "LOCK")); err != nil {
		t.Errorf("--data-dir on the command line lost to PYKV_DATA_DIR: %v", err)
	}
}

func TestClient_Commands(t *testing.T) {
	srv := startServe(t, t.TempDir(), nil)

	if out, errOut, code := pykv(t, srv, "", "put", "a b/c", "first"); code != 0 || !strings.Contains(out, `"version":1`) {
		t.Fatalf("put = %q %q exit %d", out, errOut, code)
	}
	if out, _, code := pykv(t, srv, "from stdin", "put", "stdin-key"); code != 0 || !strings.Contains(out, `"value":"from stdin"`) {
		t.Errorf("put from stdin = %q exit %d", out, code)
	}
	if out, _, code := pykv(t, srv, "", "get", "a b/c"); out != "first" || code != 0 {
		t.Errorf("get = %q exit %d", out, code)
	}
	if out, _, _ := pykv(t, srv, "", "get", "--json", "a b/c"); !strings.Contains(out, `"mod_rev":1`) {
		t.Errorf("get --json = %q", out)
	}
	if _, errOut, code := pykv(t, srv, "", "put", "a b/c", "x", "--if-absent"); code != exitConflict || !strings.Contains(errOut, "already exists") {
		t.Errorf("put --if-absent on an existing key: exit %d, stderr %q; want %d", code, errOut, exitConflict)
	}
	if _, _, code := pykv(t, srv, "", "put", "a b/c", "second", "--if-rev", "1"); code != 0 {
		t.Errorf("put --if-rev 1: exit %d", code)
	}
	if _, _, code := pykv(t, srv, "", "del", "a b/c", "--if-rev", "1"); code != exitConflict {
		t.Errorf("del --if-rev 1 of a key at rev 3: exit %d, want %d", code, exitConflict)
	}
	if _, _, code := pykv(t, srv, "", "put", "ttl-key", "v", "--ttl", "1h"); code != 0 {
		t.Errorf("put --ttl: exit %d", code)
	}
	if out, _, _ := pykv(t, srv, "", "ls", "--values"); out != "a b/c\tsecond\nstdin-key\tfrom stdin\nttl-key\tv\n" {
		t.Errorf("ls --values = %q", out)
	}
	if _, _, code := pykv(t, srv, "", "put", "multi\tline", "one\ntwo\tthree"); code != 0 {
		t.Errorf("put of a value with a newline: exit %d", code)
	}
	if _, _, code := pykv(t, srv, "", "put", "quoted", `"starts with a quote`); code != 0 {
		t.Errorf("put: exit %d", code)
	}
	// Each line stays one key: a tab or newline in a key or value is quoted.
	want := "a b/c\tsecond\n\"multi\\tline\"\t\"one\\ntwo\\tthree\"\nquoted\t\"\\\"starts with a quote\"\nstdin-key\tfrom stdin\nttl-key\tv\n"
	if out, _, _ := pykv(t, srv, "", "ls", "--values"); out != want {
		t.Errorf("ls --values with tabs and newlines = %q, want %q", out, want)
	}
	if _, _, code := pykv(t, srv, "", "del", "multi\tline"); code != 0 {
		t.Errorf("del: exit %d", code)
	}
	if _, _, code := pykv(t, srv, "", "del", "quoted"); code != 0 {
		t.Errorf("del: exit %d", code)
	}
	if out, _, _ := pykv(t, srv, "", "ls", "--limit", "1"); out != "a b/c\n" {
		t.Errorf("ls --limit 1 = %q", out)
	}
	if out, _, _ := pykv(t, srv, "", "ls", "stdin", "--json"); !strings.HasPrefix(out, `{"key":"stdin-key"`) {
		t.Errorf("ls stdin --json = %q", out)
	}

	file := filepath.Join(t.TempDir(), "backup.json")
	if _, errOut, code := pykv(t, srv, "", "export", file); code != 0 {
		t.Fatalf("export: exit %d %s", code, errOut)
	}
	if _, _, code := pykv(t, srv, "", "del", "a b/c"); code != 0 {
		t.Errorf("del: exit %d", code)
	}
	if _, _, code := pykv(t, srv, "", "del", "a b/c"); code != exitNotFound {
		t.Errorf("del of a missing key: exit %d, want %d", code, exitNotFound)
	}
	if out, errOut, code := pykv(t, srv, "", "import", file); code != 0 || !strings.Contains(out, `"format":"snapshot"`) {
		t.Errorf("import = %q %q exit %d", out, errOut, code)
	}
	if out, _, _ := pykv(t, srv, "", "get", "a b/c"); out != "second" {
		t.Errorf("after import: get = %q", out)
	}
	for _, k := range []string{"dir/1", "dir/2", "dir/sub/3", "dirt"} {
		if _, _, code := pykv(t, srv, "", "put", k, "v"); code != 0 {
			t.Fatalf("put %s: exit %d", k, code)
		}
	}
	for _, bad := range [][]string{{"del", "--prefix", ""}, {"del", "--prefix", "dir/", "key"}, {"del", "--prefix", "d", "--all"}, {"del", "--prefix", "d", "--if-rev", "3"}} {
		if _, errOut, code := pykv(t, srv, "", bad...); code != exitUsage {
			t.Errorf("pykv %q: exit %d (%s), want %d", bad, code, errOut, exitUsage)
		}
	}
	if out, errOut, code := pykv(t, srv, "", "del", "--prefix", "dir/"); code != 0 || !strings.Contains(out, `"deleted":3`) {
		t.Errorf("del --prefix dir/ = %q %q exit %d; want 3 deleted", out, errOut, code)
	}
	if out, _, _ := pykv(t, srv, "", "ls", "dir"); out != "dirt\n" {
		t.Errorf("after del --prefix dir/: ls dir = %q, want only dirt", out)
	}
	if out, _, code := pykv(t, srv, `{"legacy":"file"}`, "import"); code != 0 || !strings.Contains(out, `"format":"flat"`) {
		t.Errorf("import from stdin = %q exit %d", out, code)
	}
	if _, errOut, code := pykv(t, srv, `not json`, "import"); code != exitFailure || !strings.Contains(errOut, "cannot be imported") {
		t.Errorf("import of garbage: exit %d %q", code, errOut)
	}
	// --replace makes the store equal to the file; a merge keeps the rest.
	if out, errOut, code := pykv(t, srv, `{"legacy":"file","only":"this"}`, "import"); code != 0 ||
		!strings.Contains(out, `"added":1`) || !strings.Contains(out, `"unchanged":1`) || !strings.Contains(out, `"mode":"merge"`) {
		t.Errorf("merge import = %q %q exit %d; want 1 added, 1 unchanged", out, errOut, code)
	}
	if out, errOut, code := pykv(t, srv, `{"only":"this"}`, "import", "--replace"); code != 0 || !strings.Contains(out, `"mode":"replace"`) {
		t.Errorf("import --replace = %q %q exit %d", out, errOut, code)
	}
	if out, _, _ := pykv(t, srv, "", "ls", "--values"); out != "only\tthis\n" {
		t.Errorf("after import --replace: ls = %q, want only the file's key", out)
	}
}

func TestClient_Watch(t *testing.T) {
	srv := startServe(t, t.TempDir(), nil)
	pykv(t, srv, "", "put", "w/old", "0")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"watch", "w/", "--since", "0", "--server", srv.URL}, mapEnv(nil), nil, out, io.Discard)
	}()
	pykv(t, srv, "", "put", "w/a", "1")
	pykv(t, srv, "", "put", "other", "x")
	pykv(t, srv, "", "del", "w/a")
	want := []string{`"key":"w/old"`, `"key":"w/a","value":"1"`, `{"type":"delete","key":"w/a"`}
	deadline := time.Now().Add(10 * time.Second)
	for !containsAll(out.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("watch printed %q, want lines with %q", out, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if strings.Contains(out.String(), "other") {
		t.Errorf("watch w/ printed a change to another prefix: %q", out)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("watch after cancel: %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("watch did not end after cancel")
	}

	// A server shutting down ends the stream with an error scripts can see.
	go func() {
		done <- run(context.Background(), []string{"watch", "--server", srv.URL}, mapEnv(nil), nil, io.Discard, io.Discard)
	}()
	time.Sleep(200 * time.Millisecond)
	if err := srv.Stop(t); err != nil {
		t.Fatalf("stop: %v", err)
	}
	select {
	case err := <-done:
		var ee *exitError
		if !errors.As(err, &ee) || ee.code != exitUnavailable {
			t.Errorf("watch when the server stops: %v, want exit %d", err, exitUnavailable)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("watch did not end when the server stopped")
	}
}

func containsAll(s string, subs []string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

// TestServe_SlowAndLargeHeaders checks the server's limits on a client that
// sends its headers too slowly (cut off after readHeaderTimeout) and on
// headers that are too large (431).
func TestServe_SlowAndLargeHeaders(t *testing.T) {
	srv := startServe(t, t.TempDir(), nil)
	addr := strings.TrimPrefix(srv.URL, "http://")

	slow, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	start := time.Now()
	if _, err := io.WriteString(slow, "GET /healthz HTTP/1.1\r\nHost: x\r\n"); err != nil { // headers never end
		t.Fatal(err)
	}
	_ = slow.SetReadDeadline(time.Now().Add(readHeaderTimeout + 5*time.Second))
	_, err = io.ReadAll(slow)
	if took := time.Since(start); err != nil || took < readHeaderTimeout-time.Second || took > readHeaderTimeout+3*time.Second {
		t.Errorf("slow client: connection ended after %v (err %v), want about %v", took, err, readHeaderTimeout)
	}

	req, _ := http.NewRequest("GET", srv.URL+"/healthz", nil)
	req.Header.Set("X-Big", strings.Repeat("x", maxHeaderBytes+8<<10))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("headers over %d bytes: status %d, want 431", maxHeaderBytes, resp.StatusCode)
	}
}

// TestServe_HostAndProtocolErrors: the running server refuses a Host it was
// not told about (DNS rebinding) with 421, answers one named by
// PYKV_ALLOWED_HOSTS, and sends its 431 for oversized headers as a problem
// document, not net/http's plain text.
func TestServe_HostAndProtocolErrors(t *testing.T) {
	srv := startServe(t, t.TempDir(), map[string]string{"PYKV_ALLOWED_HOSTS": "kv.example.com"})
	send := func(host string, header http.Header) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", srv.URL+"/v1/status", nil)
		req.Host = host
		for k, v := range header {
			req.Header[k] = v
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, string(b)
	}
	if resp, body := send("rebind.attacker.example", nil); resp.StatusCode != http.StatusMisdirectedRequest ||
		resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Errorf("Host rebind.attacker.example: %d %q %s; want a 421 problem", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	if resp, body := send("kv.example.com", nil); resp.StatusCode != http.StatusOK {
		t.Errorf("Host kv.example.com (PYKV_ALLOWED_HOSTS): %d %s", resp.StatusCode, body)
	}
	resp, body := send(strings.TrimPrefix(srv.URL, "http://"), http.Header{"X-Big": {strings.Repeat("a", 80<<10)}})
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge || resp.Header.Get("Content-Type") != "application/problem+json" ||
		!strings.Contains(body, `"status":431`) {
		t.Errorf("80 KiB of headers: %d %q %s; want a 431 problem", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
}

// TestServe_SessionTTL: --session-ttl (PYKV_SESSION_TTL) sets how long a
// dashboard sign-in lasts: the cookie's Max-Age says so; 12 hours without it.
func TestServe_SessionTTL(t *testing.T) {
	const token = "session-ttl-test-token"
	for _, tc := range []struct {
		name   string
		env    map[string]string
		extra  []string
		maxAge int
	}{
		{"default", map[string]string{"PYKV_AUTH_TOKEN": token}, nil, 12 * 3600},
		{"flag", map[string]string{"PYKV_AUTH_TOKEN": token}, []string{"--session-ttl", "90m"}, 90 * 60},
		{"env", map[string]string{"PYKV_AUTH_TOKEN": token, "PYKV_SESSION_TTL": "2h30m"}, nil, 150 * 60},
		// A cluster member builds its server from the same flags.
		{"cluster", map[string]string{"PYKV_AUTH_TOKEN": token}, []string{"--session-ttl", "45m", "--node-id", "n1"}, 45 * 60},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "cluster" {
				tc.extra = append(tc.extra, "--raft-addr", freeAddr(t))
			}
			srv := startServe(t, t.TempDir(), tc.env, tc.extra...)
			client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			resp, err := client.PostForm(srv.URL+"/signin", url.Values{"token": {token}})
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			var got *http.Cookie
			for _, c := range resp.Cookies() {
				if c.Value != "" {
					got = c
				}
			}
			if resp.StatusCode != http.StatusSeeOther || got == nil || got.MaxAge != tc.maxAge {
				t.Fatalf("sign-in: %d, cookie %v; want 303 and a session cookie with Max-Age %d", resp.StatusCode, got, tc.maxAge)
			}
		})
	}
}

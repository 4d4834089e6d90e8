package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// loopAnswered reports whether a raw answer was written by the hot loop
// itself: its answers start with Date, net/http sorts its headers.
func loopAnswered(raw string) bool {
	lines := strings.SplitN(raw, "\r\n", 3)
	return len(lines) > 1 && strings.HasPrefix(lines[1], "Date: ")
}

// rawPut sends a PUT on c and returns the status and the raw answer.
func rawPut(c net.Conn, br *bufio.Reader, key, value string) (int, string, error) {
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := fmt.Fprintf(c, "PUT /v1/kv/%s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: %d\r\n\r\n%s", key, len(value), value); err != nil {
		return 0, "", err
	}
	var raw strings.Builder
	resp, err := http.ReadResponse(bufio.NewReader(io.TeeReader(br, &raw)), nil)
	if err != nil {
		return 0, "", err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, raw.String(), nil
}

// TestServe_HotLoopFlags: the key routes are served by the hot loop by
// default, and by net/http with --hot-loop=false or PYKV_HOT_LOOP=false;
// the loop's poller is on by default, and off with --poller=false or
// PYKV_POLLER=false (a goroutine per connection, the loop still
// answering).
func TestServe_HotLoopFlags(t *testing.T) {
	for _, tc := range []struct {
		name               string
		env                map[string]string
		args               []string
		wantLoop, wantPoll bool
	}{
		{"Default", nil, nil, true, true},
		{"LoopFlagOff", nil, []string{"--hot-loop=false"}, false, false},
		{"LoopEnvOff", map[string]string{"PYKV_HOT_LOOP": "false"}, nil, false, false},
		{"PollerFlagOff", nil, []string{"--poller=false"}, true, false},
		{"PollerEnvOff", map[string]string{"PYKV_POLLER": "false"}, nil, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := startServe(t, t.TempDir(), tc.env, tc.args...)
			c, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			code, raw, err := rawPut(c, bufio.NewReader(c), "k", "v")
			if err != nil || code != http.StatusCreated {
				t.Fatalf("PUT: %d %v", code, err)
			}
			if got := loopAnswered(raw); got != tc.wantLoop {
				t.Errorf("answered by the hot loop %v, want %v:\n%s", got, tc.wantLoop, raw)
			}
			if got := strings.Contains(srv.stderr.String(), "served by the poller"); got != tc.wantPoll {
				t.Errorf("poller on %v, want %v; stderr:\n%s", got, tc.wantPoll, srv.stderr)
			}
		})
	}
}

// TestServe_ShutdownUnderLoad stops the server while clients write on
// keep-alive connections through the hot loop: every acknowledged write is
// there after a restart (the loop answers its batches and stops before the
// store closes), and the command exits cleanly.
func TestServe_ShutdownUnderLoad(t *testing.T) {
	dir := t.TempDir()
	srv := startServe(t, dir, nil)
	addr := strings.TrimPrefix(srv.URL, "http://")
	var mu sync.Mutex
	var acked []string
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", addr)
			if err != nil {
				return
			}
			defer c.Close()
			br := bufio.NewReader(c)
			for i := 0; ; i++ {
				key := fmt.Sprintf("w%d-%d", w, i)
				code, _, err := rawPut(c, br, key, "v")
				if err != nil {
					return // cut off by the shutdown: not acknowledged
				}
				if code != http.StatusCreated {
					t.Errorf("PUT %s: %d", key, code)
					return
				}
				mu.Lock()
				acked = append(acked, key)
				mu.Unlock()
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	if err := srv.Stop(t); err != nil {
		t.Fatalf("serve after cancel returned %v, want nil", err)
	}
	wg.Wait()
	if len(acked) == 0 {
		t.Fatal("no write was acknowledged before the shutdown")
	}
	srv2 := startServe(t, dir, nil)
	for _, key := range acked {
		resp, err := http.Get(srv2.URL + "/v1/kv/" + key)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("acknowledged %s: %d after restart (%d acknowledged in all)", key, resp.StatusCode, len(acked))
		}
	}
}

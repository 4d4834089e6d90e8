package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// ack is a write the server answered with success.
type ack struct {
	key, value string
	rev        int64
	at         time.Time
}

// kvClient talks to one server; it never reuses a connection across kills.
func kvClient() *http.Client {
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
}

// putKV does PUT /v1/kv/{key} and returns the new revision.
func putKV(c *http.Client, base, key, value string, header map[string]string) (int64, int, error) {
	req, err := http.NewRequest(http.MethodPut, base+"/v1/kv/"+url.PathEscape(key), strings.NewReader(value))
	if err != nil {
		return 0, 0, err
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, resp.StatusCode, err
	}
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusCreated {
		return 0, resp.StatusCode, fmt.Errorf("PUT %s: %s: %s", key, resp.Status, body)
	}
	var e struct {
		ModRev int64 `json:"mod_rev"`
	}
	if err := json.Unmarshal(body, &e); err != nil {
		return 0, resp.StatusCode, fmt.Errorf("PUT %s answer %q: %w", key, body, err)
	}
	return e.ModRev, resp.StatusCode, nil
}

// exportState returns every key's value and mod_rev, and the store's
// revision, from GET /v1/export.
func exportState(t *testing.T, c *http.Client, base string) (map[string]ack, int64) {
	t.Helper()
	resp, err := c.Get(base + "/v1/export")
	if err != nil {
		t.Fatalf("GET /v1/export: %v", err)
	}
	defer resp.Body.Close()
	var snap struct {
		Rev     int64 `json:"rev"`
		Entries []struct {
			Key    string `json:"key"`
			Value  string `json:"value"`
			ModRev int64  `json:"mod_rev"`
		} `json:"entries"`
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v1/export: %s", resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&snap); err != nil {
		t.Fatalf("decode export: %v", err)
	}
	out := map[string]ack{}
	for _, e := range snap.Entries {
		out[e.Key] = ack{key: e.Key, value: e.Value, rev: e.ModRev}
	}
	return out, snap.Rev
}

// TestCrashLoop kills the real server with SIGKILL at random moments while
// concurrent HTTP writers run, restarts it, and checks what survived:
//
//   - fsync always: every acknowledged write is there, every restart works;
//   - fsync everysec: the state is exactly the state at some revision (a
//     prefix of the history), and only writes acknowledged in the last
//     second or so before the kill may be missing.
//
// make test runs 100 cycles with always; make soak (PYKV_SOAK=1) 1,000.
func TestCrashLoop(t *testing.T) {
	for _, tc := range []struct {
		mode   string
		cycles int
	}{{"always", 100}, {"everysec", 20}} {
		t.Run(tc.mode, func(t *testing.T) {
			cycles := tc.cycles
			if os.Getenv("PYKV_SOAK") != "" {
				cycles *= 10
			}
			if testing.Short() {
				cycles = 5
			}
			crashLoop(t, tc.mode, cycles)
		})
	}
}

func crashLoop(t *testing.T, mode string, cycles int) {
	srv := startServer(t)
	srv.Args = []string{"--fsync", mode}
	srv.Restart()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	latest := map[string]ack{} // per key, the last acknowledged write
	var history []ack          // every acknowledged write, for everysec
	for c := range cycles {
		client := kvClient()
		acks := make(chan ack, 1024)
		var wg sync.WaitGroup
		stop := make(chan struct{})
		for w := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					key := fmt.Sprintf("w%d/%d", w, i%25)
					value := fmt.Sprintf("%d-%d", c, i)
					rev, _, err := putKV(client, srv.URL, key, value, nil)
					if err != nil {
						return // the server is gone (killed mid-request)
					}
					acks <- ack{key: key, value: value, rev: rev, at: time.Now()}
				}
			}()
		}
		// Kill after a random number of acknowledged writes.
		killAfter := 1 + rng.IntN(150)
		n := 0
		var killedAt time.Time
		for n < killAfter {
			a := <-acks
			latest[a.key], history, n = a, append(history, a), n+1
		}
		killedAt = time.Now()
		srv.Kill()
		close(stop)
		wg.Wait()
		close(acks)
		for a := range acks {
			latest[a.key], history = a, append(history, a)
		}
		client.CloseIdleConnections()
		srv.Start() // fails the test if the restart does not come up
		got, rev := exportState(t, kvClient(), srv.URL)
		if mode == "always" {
			for k, a := range latest {
				g, ok := got[k]
				if !ok || g.rev < a.rev {
					t.Fatalf("cycle %d: acknowledged write %s=%s (revision %d) lost; found %+v", c, k, a.value, a.rev, g)
				}
			}
		} else {
			for _, a := range history {
				g := got[a.key]
				if a.rev <= rev && g.rev < a.rev {
					t.Fatalf("cycle %d: state at revision %d is not a prefix: %s has revision %d, but %d was written before", c, rev, a.key, g.rev, a.rev)
				}
				if a.rev > rev && killedAt.Sub(a.at) > 1500*time.Millisecond {
					t.Fatalf("cycle %d: write %s=%s acknowledged %v before the kill was lost (everysec may lose about one second)", c, a.key, a.value, killedAt.Sub(a.at))
				}
			}
		}
		// What survived is the truth from here on.
		for k := range latest {
			if g, ok := got[k]; ok {
				latest[k] = g
			} else {
				delete(latest, k)
			}
		}
		history = history[:0]
		for _, g := range got {
			history = append(history, g)
		}
	}
}

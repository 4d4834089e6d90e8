package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// The history of one client operation on one key, for porcupine.
type kvInput struct {
	op    string // get, put or cas (a put with If-Match)
	key   string
	value string
	ifRev int64
}

type kvOutput struct {
	found   bool   // get: the key existed; cas: the condition held
	value   string // get
	rev     int64  // get, put, cas: the key's revision afterwards
	unknown bool   // a write whose answer never came (killed server)
}

// kvState is one key's state; rev -1 means not known yet (set by a write
// whose answer was lost).
type kvState struct {
	exists bool
	value  string
	rev    int64
}

// kvModel is the sequential specification of a key: gets see the last
// write; puts succeed; a cas succeeds exactly when the revision matches.
// Writes with unknown outcome may or may not have happened.
var kvModel = porcupine.NondeterministicModel{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		for _, op := range history {
			k := op.Input.(kvInput).key
			byKey[k] = append(byKey[k], op)
		}
		var out [][]porcupine.Operation
		for _, ops := range byKey {
			out = append(out, ops)
		}
		return out
	},
	Init: func() []interface{} { return []interface{}{kvState{}} },
	Step: func(s, in, out interface{}) []interface{} {
		st, i, o := s.(kvState), in.(kvInput), out.(kvOutput)
		revOK := func(r int64) bool { return st.rev == -1 || st.rev < r }
		switch i.op {
		case "get":
			if !st.exists {
				if o.found {
					return nil
				}
				return []interface{}{st}
			}
			if !o.found || o.value != st.value || (st.rev != -1 && st.rev != o.rev) {
				return nil
			}
			return []interface{}{kvState{true, st.value, o.rev}}
		case "put":
			if o.unknown {
				return []interface{}{st, kvState{true, i.value, -1}}
			}
			if !revOK(o.rev) {
				return nil
			}
			return []interface{}{kvState{true, i.value, o.rev}}
		case "cas":
			match := st.exists && st.rev == i.ifRev
			maybe := st.exists && st.rev == -1
			if o.unknown {
				if match || maybe {
					return []interface{}{st, kvState{true, i.value, -1}}
				}
				return []interface{}{st}
			}
			if o.found {
				if (match || maybe) && revOK(o.rev) {
					return []interface{}{kvState{true, i.value, o.rev}}
				}
				return nil
			}
			if match {
				return nil // the revision matched, yet the write was refused
			}
			return []interface{}{st}
		}
		return nil
	},
	DescribeOperation: func(in, out interface{}) string {
		i, o := in.(kvInput), out.(kvOutput)
		return fmt.Sprintf("%s(%s, %q, if %d) -> %+v", i.op, i.key, i.value, i.ifRev, o)
	},
}

// outcome says what became of one request.
type outcome int

const (
	answered outcome = iota // the server answered: the output is known
	refused                 // no connection: the request never reached a server
	lost                    // sent, but no usable answer: it may or may not have happened
)

// doOp runs one operation against a server (or a cluster member) and
// says what became of it. A 503 no-leader answer means nothing was done.
func doOp(c *http.Client, base string, in kvInput) (kvOutput, outcome) {
	u := base + "/v1/kv/" + url.PathEscape(in.key)
	var req *http.Request
	switch in.op {
	case "get":
		req, _ = http.NewRequest(http.MethodGet, u, nil)
	default:
		req, _ = http.NewRequest(http.MethodPut, u, strings.NewReader(in.value))
		if in.op == "cas" {
			req.Header.Set("If-Match", strconv.Quote(strconv.FormatInt(in.ifRev, 10)))
		}
	}
	resp, err := c.Do(req)
	if errors.Is(err, syscall.ECONNREFUSED) {
		return kvOutput{}, refused
	}
	if err != nil {
		return kvOutput{}, lost
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return kvOutput{}, lost
	}
	rev, _ := strconv.ParseInt(strings.Trim(resp.Header.Get("ETag"), `"`), 10, 64)
	switch {
	case in.op == "get" && resp.StatusCode == http.StatusOK:
		return kvOutput{found: true, value: string(body), rev: rev}, answered
	case in.op == "get" && resp.StatusCode == http.StatusNotFound:
		return kvOutput{}, answered
	case in.op != "get" && (resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusCreated):
		return kvOutput{found: true, rev: rev}, answered
	case in.op == "cas" && resp.StatusCode == http.StatusPreconditionFailed:
		return kvOutput{}, answered
	case resp.StatusCode == http.StatusServiceUnavailable && bytes.Contains(body, []byte("urn:pykv:problem:no-leader")):
		return kvOutput{}, refused
	}
	return kvOutput{}, lost // any other 5xx: outcome unknown
}

// TestLinearizable runs 8 HTTP clients on 3 keys against the real server
// while it is killed, restarted and paused, and checks the recorded history
// with porcupine: every operation must appear to take effect at one instant
// between its call and its answer, across crashes too (an acknowledged write
// that a later read does not see is a violation).
func TestLinearizable(t *testing.T) {
	srv := startServer(t)
	start := time.Now()
	now := func() int64 { return time.Since(start).Nanoseconds() }
	var mu sync.Mutex
	var history []porcupine.Operation
	stop := make(chan struct{})
	var wg sync.WaitGroup
	keys := []string{"x", "y", "z"}
	for client := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(client), uint64(start.UnixNano())))
			c := &http.Client{Timeout: 3 * time.Second}
			lastRev := map[string]int64{}
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				in := kvInput{key: keys[rng.IntN(len(keys))]}
				switch r := rng.IntN(10); {
				case r < 4:
					in.op = "get"
				case r < 7:
					in.op, in.value = "put", fmt.Sprintf("c%d-%d", client, i)
				default:
					in.op, in.value, in.ifRev = "cas", fmt.Sprintf("c%d-%d", client, i), lastRev[in.key]
				}
				call := now()
				out, how := doOp(c, srv.URL, in)
				ret := now()
				switch {
				case how == refused || how == lost && in.op == "get":
					// No effect (never sent, or a read): leave it out.
					time.Sleep(10 * time.Millisecond)
					continue
				case how == lost:
					// Its end is set below, once the restarts are known.
					out = kvOutput{unknown: true}
					time.Sleep(10 * time.Millisecond)
				case out.rev > 0:
					lastRev[in.key] = out.rev
				}
				mu.Lock()
				history = append(history, porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret})
				mu.Unlock()
			}
		}()
	}
	// Faults: kills with restarts, and a pause. ready holds when each
	// restarted server began to answer.
	var ready []int64
	for round := range 3 {
		time.Sleep(400 * time.Millisecond)
		if round == 1 {
			srv.proc.cmd.Process.Signal(syscall.SIGSTOP)
			time.Sleep(300 * time.Millisecond)
			srv.proc.cmd.Process.Signal(syscall.SIGCONT)
			continue
		}
		srv.Kill()
		srv.Start()
		ready = append(ready, now())
	}
	time.Sleep(400 * time.Millisecond)
	close(stop)
	wg.Wait()
	// A write whose answer was lost took effect, if at all, before the
	// server that had it stopped, and so before the next server answered:
	// that is its latest possible end. Without a later restart, it may
	// still take effect at any time.
	unknown := 0
	for i, op := range history {
		if !op.Output.(kvOutput).unknown {
			continue
		}
		unknown++
		history[i].Return = math.MaxInt64
		for _, r := range ready {
			if r >= op.Return {
				history[i].Return = r
				break
			}
		}
	}
	if len(history) < 100 {
		t.Fatalf("only %d operations recorded", len(history))
	}
	res, _ := porcupine.CheckOperationsVerbose(kvModel.ToModel(), history, 60*time.Second)
	switch res {
	case porcupine.Ok:
		t.Logf("%d operations (%d writes of unknown outcome), linearizable", len(history), unknown)
	case porcupine.Illegal:
		t.Fatalf("history of %d operations is not linearizable", len(history))
	default:
		t.Fatalf("linearizability check of %d operations timed out", len(history))
	}
}

// TestKVModel checks that the model rejects what it must: the checker is
// only as good as the model.
func TestKVModel(t *testing.T) {
	op := func(c int, in kvInput, out kvOutput, call, ret int64) porcupine.Operation {
		return porcupine.Operation{ClientId: c, Input: in, Call: call, Output: out, Return: ret}
	}
	put := kvInput{op: "put", key: "x", value: "a"}
	get := kvInput{op: "get", key: "x"}
	for _, tc := range []struct {
		name    string
		history []porcupine.Operation
		want    bool
	}{
		{"ReadAfterWrite", []porcupine.Operation{op(0, put, kvOutput{found: true, rev: 1}, 0, 1), op(1, get, kvOutput{found: true, value: "a", rev: 1}, 2, 3)}, true},
		{"StaleRead", []porcupine.Operation{op(0, put, kvOutput{found: true, rev: 1}, 0, 1), op(1, get, kvOutput{}, 2, 3)}, false},
		{"LostAckedWrite", []porcupine.Operation{op(0, put, kvOutput{found: true, rev: 1}, 0, 1), op(1, get, kvOutput{found: true, value: "b", rev: 1}, 2, 3)}, false},
		{"UnknownWriteMayVanish", []porcupine.Operation{op(0, put, kvOutput{unknown: true}, 0, math.MaxInt64), op(1, get, kvOutput{}, 2, 3)}, true},
		{"CASRefusedOnMatch", []porcupine.Operation{op(0, put, kvOutput{found: true, rev: 4}, 0, 1), op(1, kvInput{op: "cas", key: "x", value: "c", ifRev: 4}, kvOutput{}, 2, 3)}, false},
	} {
		if got := porcupine.CheckOperations(kvModel.ToModel(), tc.history); got != tc.want {
			t.Errorf("%s: linearizable = %v, want %v", tc.name, got, tc.want)
		}
	}
}

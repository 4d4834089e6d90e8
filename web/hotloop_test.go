package web_test

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pykv/pykv/persist"
	"github.com/pykv/pykv/web"
)

const hotToken = "hot-loop-test-token-0123456789"

// startHotPair starts two servers on stores of their own, both durable
// (fsync always): one serving the key routes on the prototype's loop, the
// other through net/http only. It returns their addresses.
func startHotPair(t *testing.T) (hot, ref string) {
	t.Helper()
	open := func() web.Options {
		m := web.NewMetrics()
		db, err := persist.Open(t.TempDir(), persist.Options{Sync: persist.SyncAlways, SyncObserver: m.ObserveFsync})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = db.Close() })
		return web.Options{Store: db.Store(), DB: db, AuthToken: hotToken, Metrics: m}
	}
	listen := func() net.Listener {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		return ln
	}
	hln := listen()
	loop := web.NewHotLoop(open(), &http.Server{ReadHeaderTimeout: 5 * time.Second, IdleTimeout: time.Minute,
		WriteTimeout: time.Minute, MaxHeaderBytes: 64 << 10})
	go func() { _ = loop.Serve(hln) }()
	t.Cleanup(func() { _ = loop.Close() })

	rln := listen()
	rsrv := &http.Server{Handler: web.NewServer(open())}
	go func() { _ = rsrv.Serve(rln) }()
	t.Cleanup(func() { _ = rsrv.Close() })
	return hln.Addr().String(), rln.Addr().String()
}

// exchange writes reqs on one connection at once (pipelined) and reads n
// answers, returning each answer's raw bytes.
func exchange(t *testing.T, addr string, reqs string, n int) [][]byte {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, reqs); err != nil {
		t.Fatal(err)
	}
	var raw bytes.Buffer
	br := bufio.NewReader(io.TeeReader(c, &raw))
	var answers [][]byte
	for range n {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("answer %d of %d: %v\nread so far:\n%s", len(answers)+1, n, err, raw.String())
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		// The bytes of this answer: what was read minus what is buffered.
		end := raw.Len() - br.Buffered()
		answers = append(answers, slices.Clone(raw.Bytes()[:end]))
		raw.Next(end)
	}
	return answers
}

// canonical returns an answer's status line, headers (sorted, Date
// dropped) and body, for comparing two servers' answers.
func canonical(t *testing.T, raw []byte) string {
	t.Helper()
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(raw)), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	var lines []string
	for k, vs := range resp.Header {
		if k != "Date" {
			lines = append(lines, k+": "+strings.Join(vs, ","))
		}
	}
	slices.Sort(lines)
	return resp.Status + "\n" + strings.Join(lines, "\n") + "\n\n" + string(body)
}

func req(method, target, body string, headers ...string) string {
	var b strings.Builder
	b.WriteString(method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n")
	for _, h := range headers {
		b.WriteString(h + "\r\n")
	}
	if method == "PUT" {
		b.WriteString("Content-Length: " + itoa(len(body)) + "\r\n")
	}
	b.WriteString("\r\n" + body)
	return b.String()
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestHotLoop_SameAnswers sends the same pipelined requests to the loop and
// to net/http alone, on fresh durable stores, and wants the same answers
// (Date aside), including requests the loop hands to net/http midway and
// those after them. It also checks the loop answered the hot ones itself
// (its answers start with Date; net/http sorts its headers).
func TestHotLoop_SameAnswers(t *testing.T) {
	hot, ref := startHotPair(t)
	auth := "Authorization: Bearer " + hotToken
	var reqs []string
	for i := range 6 {
		reqs = append(reqs, req("PUT", "/v1/kv/k"+itoa(i%3), "value"+itoa(i), auth))
	}
	reqs = append(reqs,
		req("GET", "/v1/kv/k1", "", auth),
		req("PUT", "/v1/kv/k1", "changed", auth),
		req("GET", "/v1/kv/k1", "", auth, "Accept: */*"),
		req("GET", "/v1/kv/missing", "", auth), // handed to net/http: 404
		req("GET", "/v1/kv/k1", "", auth),      // answered by net/http after the hand-off
	)
	hotAnswers := exchange(t, hot, strings.Join(reqs, ""), len(reqs))
	refAnswers := exchange(t, ref, strings.Join(reqs, ""), len(reqs))
	for i := range reqs {
		if h, r := canonical(t, hotAnswers[i]), canonical(t, refAnswers[i]); h != r {
			t.Errorf("request %d (%q): loop answered\n%s\nnet/http answered\n%s", i, strings.SplitN(reqs[i], "\r\n", 2)[0], h, r)
		}
	}
	for i := range 9 {
		if !bytes.Contains(hotAnswers[i], []byte("\r\nDate: ")) || !bytes.HasPrefix(bytes.SplitN(hotAnswers[i], []byte("\r\n"), 3)[1], []byte("Date: ")) {
			t.Errorf("answer %d was not the loop's (Date is not its first header):\n%s", i, hotAnswers[i])
		}
	}

	// Requests the loop must leave to net/http, each on a connection of
	// its own, answered as net/http answers them.
	for _, r := range []string{
		req("GET", "/v1/kv/k1", ""),                                   // no token: 401
		req("GET", "/v1/kv/k1", "", "Authorization: Bearer wrong"),    // wrong token: 401
		req("GET", "/v1/kv/k1", "", auth, "Accept: application/json"), // the entry as JSON
		req("GET", "/v1/kv/k%31", "", auth),                           // an escaped key
		req("PUT", "/v1/kv/k2", "x", auth, "If-Match: \"1\""),         // a condition: 412
		req("GET", "/healthz", ""),
		"PUT /v1/kv/k2 HTTP/1.1\r\nHost: 127.0.0.1\r\n" + auth + "\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n",
		"PUT /v1/kv/k2 HTTP/1.1\r\nHost: 127.0.0.1\r\n" + auth + "\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxy",
	} {
		h := canonical(t, exchange(t, hot, r, 1)[0])
		f := canonical(t, exchange(t, ref, r, 1)[0])
		if h != f {
			t.Errorf("%q: loop's server answered\n%s\nnet/http answered\n%s", strings.SplitN(r, "\r\n", 2)[0], h, f)
		}
	}
}

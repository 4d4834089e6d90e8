package web_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pykv/pykv/engine"
	"github.com/pykv/pykv/web"
)

// TestHostCheck is the DNS rebinding attack: a page on an attacker's name
// that resolves to 127.0.0.1 sends same-origin requests (its Origin
// matches its Host). Only loopback names and addresses, the address the
// client connected to, and configured names may be the Host.
func TestHostCheck(t *testing.T) {
	srv := mustOpenServer(t)
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))
	evil := "rebind.attacker.example:" + port
	withHost := func(method, path, body, host string, headers ...string) *response {
		req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Host = host
		for _, h := range headers {
			k, v, _ := strings.Cut(h, ":")
			req.Header.Set(strings.TrimSpace(k), strings.TrimSpace(v))
		}
		return srv.send(req)
	}
	origin := "Origin: http://" + evil
	wantProblem(t, withHost("PUT", "/v1/kv/k", "v", evil, origin), http.StatusMisdirectedRequest, "rebind.attacker.example", "--allowed-hosts")
	wantProblem(t, withHost("GET", "/v1/export", "", evil, origin), http.StatusMisdirectedRequest)
	dialer := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	conn, resp, err := dialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http")+"/v1/watch",
		http.Header{"Host": {evil}, "Origin": {"http://" + evil}})
	if err == nil {
		conn.Close()
	}
	if resp == nil || resp.StatusCode != http.StatusMisdirectedRequest {
		t.Errorf("watch with Host %s: response %v, err %v; want 421", evil, resp, err)
	}
	wantProblem(t, withHost("GET", "/", "", "LOCALHOST.evil.example"), http.StatusMisdirectedRequest)
	if _, err := srv.DB.Store().Get("k"); err == nil {
		t.Errorf("the refused PUT was stored")
	}
	for _, host := range []string{"127.0.0.1:" + port, "localhost:" + port, "LocalHost", "[::1]:" + port, "127.1.2.3", "app.localhost:" + port} {
		if r := withHost("PUT", "/v1/kv/k", "v", host, "Origin: http://"+host); r.StatusCode/100 != 2 {
			t.Errorf("PUT with Host %q: %d %s", host, r.StatusCode, r.Body)
		}
	}

	named := mustOpenServer(t, func(o *web.Options) { o.AllowedHosts = []string{"kv.example.com", "*.kv.example.org"} })
	for host, want := range map[string]int{
		"kv.example.com:443":     http.StatusCreated,
		"KV.example.com":         http.StatusCreated,
		"a.kv.example.org":       http.StatusCreated,
		"kv.example.org":         http.StatusMisdirectedRequest,
		"evilkv.example.com":     http.StatusMisdirectedRequest,
		"kv.example.com.evil.io": http.StatusMisdirectedRequest,
	} {
		req, _ := http.NewRequest("PUT", named.URL+"/v1/kv/k", strings.NewReader("v"))
		req.Host = host
		r := named.send(req)
		if want == http.StatusCreated && r.StatusCode/100 != 2 || want != http.StatusCreated && r.StatusCode != want {
			t.Errorf("AllowedHosts: Host %q → %d, want %d", host, r.StatusCode, want)
		}
	}

	any := mustOpenServer(t, func(o *web.Options) { o.AllowedHosts = []string{"*"} })
	req, _ := http.NewRequest("PUT", any.URL+"/v1/kv/k", strings.NewReader("v"))
	req.Host = "anything.example"
	wantStatus(t, any.send(req), http.StatusCreated)
}

// TestHostCheck_ConnectedAddress: a client that connected to an address
// and names that same address as the Host used no name, so no rebinding;
// a server listening on a LAN address answers it without configuration.
func TestHostCheck_ConnectedAddress(t *testing.T) {
	store := engine.New(engine.Options{})
	defer store.Close()
	h := web.NewServer(web.Options{Store: store})
	local := &net.TCPAddr{IP: net.ParseIP("192.0.2.10"), Port: 8080}
	for host, want := range map[string]int{"192.0.2.10:8080": http.StatusOK, "192.0.2.11:8080": http.StatusMisdirectedRequest, "db.example": http.StatusMisdirectedRequest} {
		req := httptest.NewRequest("GET", "/healthz", nil)
		req.Host = host
		req = req.WithContext(context.WithValue(req.Context(), http.LocalAddrContextKey, net.Addr(local)))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != want {
			t.Errorf("Host %q on a connection to %v → %d, want %d", host, local, rec.Code, want)
		}
	}
}

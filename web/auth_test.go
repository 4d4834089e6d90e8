package web_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/pykv/pykv/web"
)

func TestAuth(t *testing.T) {
	srv := mustOpenServer(t, func(o *web.Options) { o.AuthToken, o.ReadToken = "rw-secret", "ro-secret" })

	// Probes and docs stay open.
	wantStatus(t, srv.do("GET", "/healthz", ""), http.StatusOK)
	wantStatus(t, srv.do("GET", "/readyz", ""), http.StatusOK)
	wantStatus(t, srv.do("GET", "/openapi.json", ""), http.StatusOK)

	r := srv.do("GET", "/v1/kv", "")
	wantProblem(t, r, http.StatusUnauthorized, "Authorization: Bearer")
	if r.Header.Get("WWW-Authenticate") == "" {
		t.Errorf("401 without WWW-Authenticate")
	}
	wantProblem(t, srv.do("GET", "/v1/kv", "", "Authorization: Bearer wrong"), http.StatusUnauthorized, "not valid")
	wantProblem(t, srv.do("GET", "/v1/kv", "", "Authorization: Basic cnctc2VjcmV0"), http.StatusUnauthorized)
	wantProblem(t, srv.do("GET", "/metrics", ""), http.StatusUnauthorized)

	wantStatus(t, srv.do("PUT", "/v1/kv/k", "v", "Authorization: Bearer rw-secret"), http.StatusCreated)
	wantStatus(t, srv.do("GET", "/v1/kv/k", "", "Authorization: Bearer ro-secret"), http.StatusOK)
	wantStatus(t, srv.do("GET", "/v1/kv/k", "", "Authorization: bearer rw-secret"), http.StatusOK)
	wantProblem(t, srv.do("PUT", "/v1/kv/k", "v2", "Authorization: Bearer ro-secret"), http.StatusForbidden, "read-only")
	wantProblem(t, srv.do("POST", "/v1/txn", `{"ops":[]}`, "Authorization: Bearer ro-secret"), http.StatusForbidden)
	wantProblem(t, srv.do("DELETE", "/delete/k", "", "Authorization: Bearer ro-secret"), http.StatusForbidden)

	// The browser path: / redirects to the form, the form sets a cookie
	// that then works like the bearer token.
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequest("GET", srv.URL+"/", nil)
	req.Header.Set("Accept", "text/html")
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/signin" {
		t.Errorf("GET / from a browser without a token = %d → %q, want 303 → /signin", resp.StatusCode, resp.Header.Get("Location"))
	}
	r = srv.do("GET", "/signin", "")
	if r.StatusCode != http.StatusOK || !strings.Contains(string(r.Body), `data-testid="signin-form"`) {
		t.Errorf("GET /signin = %d %.100s", r.StatusCode, r.Body)
	}
	resp, err = noRedirect.PostForm(srv.URL+"/signin", url.Values{"token": {"wrong"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || len(resp.Cookies()) != 0 {
		t.Errorf("POST /signin with a wrong token = %d, cookies %v", resp.StatusCode, resp.Cookies())
	}
	resp, err = noRedirect.PostForm(srv.URL+"/signin", url.Values{"token": {"rw-secret"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cookies := resp.Cookies()
	if resp.StatusCode != http.StatusSeeOther || len(cookies) != 1 || !cookies[0].HttpOnly || cookies[0].SameSite != http.SameSiteStrictMode {
		t.Fatalf("POST /signin = %d, cookies %v", resp.StatusCode, cookies)
	}
	req, _ = http.NewRequest("PUT", srv.URL+"/v1/kv/viacookie", strings.NewReader("v"))
	req.AddCookie(cookies[0])
	wantStatus(t, srv.send(req), http.StatusCreated)
}

func TestAuth_OffWithoutTokens(t *testing.T) {
	srv := mustOpenServer(t)
	wantStatus(t, srv.do("PUT", "/v1/kv/k", "v"), http.StatusCreated)
	wantStatus(t, srv.do("GET", "/v1/kv/k", "", "Authorization: Bearer anything"), http.StatusOK)
}

func TestSignout(t *testing.T) {
	srv := mustOpenServer(t, func(o *web.Options) { o.AuthToken = "secret" })
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.Post(srv.URL+"/signout", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	c := resp.Cookies()
	if resp.StatusCode != http.StatusSeeOther || len(c) != 1 || c[0].Name != "pykv_session" || c[0].MaxAge >= 0 {
		t.Errorf("POST /signout = %d, cookies %v; want 303 and the sign-in cookie cleared", resp.StatusCode, c)
	}
	wantProblem(t, srv.do("POST", "/signout", "", "Sec-Fetch-Site: cross-site"), http.StatusForbidden)
	wantProblem(t, srv.do("POST", "/signin", "token=secret", "Content-Type: application/x-www-form-urlencoded", "Origin: https://evil.example"), http.StatusForbidden)
}

// TestAuth_RateLimit: wrong tokens, by bearer or through the sign-in
// form, are limited per client address: after a short burst the answer is
// 429 with Retry-After, without the token being checked, so 300 guesses
// cannot be made in a tenth of a second.
func TestAuth_RateLimit(t *testing.T) {
	const token = "rate-limit-test-token-0123"
	for _, via := range []string{"bearer", "signin"} {
		t.Run(via, func(t *testing.T) {
			srv := mustOpenServer(t, func(o *web.Options) { o.AuthToken = token })
			try := func(tok string) *response {
				if via == "bearer" {
					return srv.do("GET", "/v1/kv", "", "Authorization: Bearer "+tok)
				}
				return srv.do("POST", "/signin", "token="+url.QueryEscape(tok), "Content-Type: application/x-www-form-urlencoded")
			}
			limited := -1
			for i := range 300 {
				r := try(fmt.Sprintf("wrong-%d", i))
				if r.StatusCode == http.StatusTooManyRequests {
					limited = i
					if ra, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || ra < 1 {
						t.Errorf("429 with Retry-After %q, want a number of seconds", r.Header.Get("Retry-After"))
					}
					wantProblem(t, r, http.StatusTooManyRequests, "Retry-After")
					break
				}
				if r.StatusCode != http.StatusUnauthorized {
					t.Fatalf("wrong token %d: status %d, want 401 or 429", i, r.StatusCode)
				}
			}
			if limited < 0 || limited > 20 {
				t.Fatalf("first 429 after %d wrong tokens, want one within 20", limited)
			}
			// Limited, the right token is not even checked: a guess cannot
			// be told from a miss by its answer.
			if r := try(token); r.StatusCode != http.StatusTooManyRequests {
				t.Errorf("the right token while limited: %d, want 429", r.StatusCode)
			}
		})
	}
}

// TestAuth_Session: the sign-in cookie holds a random session id, not the
// token; it expires; signing out ends the session on the server too; it is
// Secure over TLS and behind a trusted proxy that says https, and only then.
func TestAuth_Session(t *testing.T) {
	const token = "session-test-token-0123456"
	srv := mustOpenServer(t, func(o *web.Options) {
		o.AuthToken = token
		o.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	})
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	signin := func(headers ...string) *http.Cookie {
		t.Helper()
		req, _ := http.NewRequest("POST", srv.URL+"/signin", strings.NewReader("token="+token))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for _, h := range headers {
			k, v, _ := strings.Cut(h, ":")
			req.Header.Set(k, strings.TrimSpace(v))
		}
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		c := resp.Cookies()
		if resp.StatusCode != http.StatusSeeOther || len(c) != 1 {
			t.Fatalf("sign-in: %d, cookies %v", resp.StatusCode, c)
		}
		return c[0]
	}
	c := signin()
	if strings.Contains(c.Value, token) || len(c.Value) < 32 {
		t.Errorf("sign-in cookie value %q: want a long session id, not the token", c.Value)
	}
	if c.MaxAge <= 0 && c.Expires.IsZero() {
		t.Errorf("sign-in cookie %v never expires", c)
	}
	if c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode {
		t.Errorf("sign-in cookie over plain HTTP: %v; want HttpOnly, SameSite=Strict, not Secure", c)
	}
	put := func(c *http.Cookie) int {
		req, _ := http.NewRequest("PUT", srv.URL+"/v1/kv/viacookie", strings.NewReader("v"))
		req.AddCookie(c)
		return srv.send(req).StatusCode
	}
	if got := put(c); got/100 != 2 {
		t.Errorf("PUT with the session cookie: %d", got)
	}
	if got := put(&http.Cookie{Name: c.Name, Value: token}); got != http.StatusUnauthorized {
		t.Errorf("PUT with the token itself as the cookie: %d, want 401", got)
	}
	req, _ := http.NewRequest("POST", srv.URL+"/signout", nil)
	req.AddCookie(c)
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := put(c); got != http.StatusUnauthorized {
		t.Errorf("PUT with the cookie after signing out: %d, want 401", got)
	}
	if c := signin("X-Forwarded-Proto: https"); !c.Secure {
		t.Errorf("sign-in through a trusted proxy over https: cookie %v is not Secure", c)
	}

	untrusted := mustOpenServer(t, func(o *web.Options) { o.AuthToken = token })
	req, _ = http.NewRequest("POST", untrusted.URL+"/signin", strings.NewReader("token="+token))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Forwarded-Proto", "https")
	resp, err = noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if cs := resp.Cookies(); len(cs) != 1 || cs[0].Secure {
		t.Errorf("X-Forwarded-Proto from a client that is not a trusted proxy: cookies %v; want one, not Secure", cs)
	}

	tls := httptest.NewTLSServer(web.NewServer(web.Options{Store: srv.DB.Store(), AuthToken: token}))
	defer tls.Close()
	cl := tls.Client()
	cl.CheckRedirect = noRedirect.CheckRedirect
	req, _ = http.NewRequest("POST", tls.URL+"/signin", strings.NewReader("token="+token))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err = cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if cs := resp.Cookies(); len(cs) != 1 || !cs[0].Secure {
		t.Errorf("sign-in over TLS: cookies %v; want one, Secure", cs)
	}
}

// TestAuth_LongTokens checks tokens longer than the stack buffer their
// digest is taken from: the whole token counts, not its first bytes.
func TestAuth_LongTokens(t *testing.T) {
	long := strings.Repeat("t", 300)
	srv := mustOpenServer(t, func(o *web.Options) { o.AuthToken, o.ReadToken = long, long[:200]+"read" })
	wantStatus(t, srv.do("PUT", "/v1/kv/k", "v", "Authorization: Bearer "+long), http.StatusCreated)
	wantStatus(t, srv.do("GET", "/v1/kv/k", "", "Authorization: Bearer "+long[:200]+"read"), http.StatusOK)
	wantProblem(t, srv.do("PUT", "/v1/kv/k", "v", "Authorization: Bearer "+long[:200]+"read"), http.StatusForbidden, "read-only")
	wantProblem(t, srv.do("GET", "/v1/kv/k", "", "Authorization: Bearer "+long[:299]+"x"), http.StatusUnauthorized, "not valid")
	wantProblem(t, srv.do("GET", "/v1/kv/k", "", "Authorization: Bearer "+long[:128]), http.StatusUnauthorized, "not valid")
}

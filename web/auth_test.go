package web_test

import (
	"net/http"
	"net/url"
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
	if resp.StatusCode != http.StatusSeeOther || len(c) != 1 || c[0].Name != "pykv_token" || c[0].MaxAge >= 0 {
		t.Errorf("POST /signout = %d, cookies %v; want 303 and the sign-in cookie cleared", resp.StatusCode, c)
	}
	wantProblem(t, srv.do("POST", "/signout", "", "Sec-Fetch-Site: cross-site"), http.StatusForbidden)
	wantProblem(t, srv.do("POST", "/signin", "token=secret", "Content-Type: application/x-www-form-urlencoded", "Origin: https://evil.example"), http.StatusForbidden)
}

package web

import (
	"crypto/sha256"
	"crypto/subtle"
	"html/template"
	"net/http"
	"strings"
)

// Authentication, when the server has tokens (Options.AuthToken and/or
// Options.ReadToken): every request in the authenticated group must carry
// one, as "Authorization: Bearer <token>" or, for browsers, in the
// sign-in cookie that POST /signin sets. A read-only token allows GET,
// HEAD and OPTIONS. Tokens are compared in constant time (as SHA-256
// digests, so their lengths do not leak either) and never logged.

// tokenCookie is the cookie the sign-in page sets: HttpOnly so scripts
// cannot read it, SameSite=Strict so other sites cannot send it.
const tokenCookie = "pykv_token"

// scope is what a request's token allows.
type scope int

const (
	scopeNone scope = iota
	scopeRead
	scopeWrite
)

// authEnabled reports whether the server has any token.
func (s *server) authEnabled() bool { return s.opts.AuthToken != "" || s.opts.ReadToken != "" }

// scopeOf returns what token allows.
func (s *server) scopeOf(token string) scope {
	if token == "" {
		return scopeNone
	}
	got := sha256.Sum256([]byte(token))
	if s.opts.AuthToken != "" {
		want := sha256.Sum256([]byte(s.opts.AuthToken))
		if subtle.ConstantTimeCompare(got[:], want[:]) == 1 {
			return scopeWrite
		}
	}
	if s.opts.ReadToken != "" {
		want := sha256.Sum256([]byte(s.opts.ReadToken))
		if subtle.ConstantTimeCompare(got[:], want[:]) == 1 {
			return scopeRead
		}
	}
	return scopeNone
}

// requestToken returns the token a request carries: the bearer token, else
// the sign-in cookie.
func requestToken(r *http.Request) string {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, ok := strings.Cut(h, " ")
		if ok && strings.EqualFold(scheme, "Bearer") {
			return strings.TrimSpace(tok)
		}
		return ""
	}
	if c, err := r.Cookie(tokenCookie); err == nil {
		return c.Value
	}
	return ""
}

// safeMethod reports whether a method only reads.
func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// authenticate lets through requests whose token allows them: 401 without
// a valid token (a browser asking for a page is sent to the sign-in page
// instead), 403 for a write with a read-only token.
func (s *server) authenticate(next http.Handler) http.Handler {
	if !s.authEnabled() {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch s.scopeOf(requestToken(r)) {
		case scopeWrite:
			next.ServeHTTP(w, r)
		case scopeRead:
			if safeMethod(r.Method) {
				next.ServeHTTP(w, r)
				return
			}
			writeProblem(w, newProblem(http.StatusForbidden, "This token is read-only; writing needs the read-write token."))
		default:
			if r.Method == http.MethodGet && r.URL.Path == "/" && strings.Contains(r.Header.Get("Accept"), "text/html") {
				http.Redirect(w, r, "/signin", http.StatusSeeOther)
				return
			}
			w.Header().Set("WWW-Authenticate", `Bearer realm="pykv"`)
			msg := "A token is required: send Authorization: Bearer <token>."
			if requestToken(r) != "" {
				msg = "The token is not valid."
			}
			writeProblem(w, newProblem(http.StatusUnauthorized, msg))
		}
	})
}

// signinCSP allows the sign-in page nothing but its own form.
const signinCSP = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

var signinPage = template.Must(template.New("signin").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in · PyKV</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font-family:system-ui,sans-serif;max-width:24rem;margin:4rem auto;padding:0 1rem}
input,button{font:inherit;padding:.4rem;width:100%;box-sizing:border-box;margin:.3rem 0}
.error{color:#b00020}</style></head>
<body><h1>PyKV</h1>
{{if .Error}}<p class="error" data-testid="signin-error" role="alert">{{.Error}}</p>{{end}}
<form method="post" action="/signin" data-testid="signin-form">
<label for="token">Access token</label>
<input id="token" name="token" type="password" autocomplete="current-password" required autofocus data-testid="signin-token">
<button type="submit" data-testid="signin-submit">Sign in</button>
</form></body></html>
`))

// renderSignin sends the sign-in page with an optional error.
func renderSignin(w http.ResponseWriter, status int, errMsg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", signinCSP)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = signinPage.Execute(w, struct{ Error string }{errMsg})
}

// handleSigninPage shows the sign-in form (or goes straight to the
// dashboard when the server has no tokens).
func (s *server) handleSigninPage(w http.ResponseWriter, r *http.Request) {
	if !s.authEnabled() {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	renderSignin(w, http.StatusOK, "")
}

// handleSignin checks the token from the form and, if valid, keeps it in
// the sign-in cookie and goes to the dashboard.
func (s *server) handleSignin(w http.ResponseWriter, r *http.Request) {
	if !s.authEnabled() {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	token := r.PostFormValue("token")
	if s.scopeOf(token) == scopeNone {
		renderSignin(w, http.StatusUnauthorized, "That token is not valid.")
		return
	}
	http.SetCookie(w, &http.Cookie{Name: tokenCookie, Value: token, Path: "/", HttpOnly: true,
		Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// handleSignout forgets the sign-in cookie.
func (s *server) handleSignout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: tokenCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true,
		Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/signin", http.StatusSeeOther)
}

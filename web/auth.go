package web

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Authentication, when the server has tokens (Options.AuthToken and/or
// Options.ReadToken): every request in the authenticated group must carry
// one as "Authorization: Bearer <token>" or, for browsers, the session
// cookie that POST /signin sets. A read-only token allows GET, HEAD and
// OPTIONS. Tokens are compared in constant time (as SHA-256 digests, so
// their lengths do not leak either) and never logged. Wrong tokens are
// rate limited per client address (see ratelimit.go).

// sessionCookie is the cookie the sign-in page sets. It holds a session id
// (see sessions.go), never the token: a stolen cookie expires and dies
// with a sign-out, and the token never sits in the browser. HttpOnly so
// scripts cannot read it, SameSite=Strict so other sites cannot send it,
// Secure whenever the browser came over TLS.
const sessionCookie = "pykv_session"

// MinTokenBytes is the shortest token cmd/pykv accepts: 16 bytes, 128 bits
// if random, beyond guessing even without the rate limit.
const MinTokenBytes = 16

// scope is what a request's token allows.
type scope int

const (
	scopeNone scope = iota
	scopeRead
	scopeWrite
)

// authEnabled reports whether the server has any token.
func (s *server) authEnabled() bool { return s.opts.AuthToken != "" || s.opts.ReadToken != "" }

// tokenDigests are the SHA-256 digests of the configured tokens, taken
// once (NewServer) rather than on every request.
type tokenDigests struct {
	write, read [sha256.Size]byte
}

func newTokenDigests(o Options) tokenDigests {
	var d tokenDigests
	if o.AuthToken != "" {
		d.write = sha256.Sum256([]byte(o.AuthToken))
	}
	if o.ReadToken != "" {
		d.read = sha256.Sum256([]byte(o.ReadToken))
	}
	return d
}

// scopeOf returns what token allows.
func (s *server) scopeOf(token string) scope {
	if token == "" {
		return scopeNone
	}
	// Copied into a stack buffer: []byte(token) allocates past 32 bytes,
	// and generated tokens are usually longer.
	var buf [128]byte
	got := sha256.Sum256(append(buf[:0], token...))
	if s.opts.AuthToken != "" && subtle.ConstantTimeCompare(got[:], s.tokens.write[:]) == 1 {
		return scopeWrite
	}
	if s.opts.ReadToken != "" && subtle.ConstantTimeCompare(got[:], s.tokens.read[:]) == 1 {
		return scopeRead
	}
	return scopeNone
}

// bearerToken returns the bearer token of a request and whether it sent an
// Authorization header at all (one of another scheme gives "", true).
func bearerToken(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return "", false
	}
	scheme, tok, ok := strings.Cut(h, " ")
	if ok && strings.EqualFold(scheme, "Bearer") {
		return strings.TrimSpace(tok), true
	}
	return "", true
}

// safeMethod reports whether a method only reads.
func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// rateLimited answers 429 and returns true when the request's client
// address has used up its wrong tokens (see failLimiter).
func (s *server) rateLimited(w http.ResponseWriter, r *http.Request) bool {
	if s.failures.none() {
		return false // the common case, without working out the client's address
	}
	wait := s.failures.wait(s.clientAddr(r))
	if wait <= 0 {
		return false
	}
	secs := int((wait + time.Second - 1) / time.Second)
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	msg := fmt.Sprintf("Too many wrong tokens from your address; try again after %d s (Retry-After).", secs)
	if r.URL.Path == "/signin" && strings.Contains(r.Header.Get("Accept"), "text/html") {
		renderSignin(w, http.StatusTooManyRequests, msg)
		return true
	}
	writeProblem(w, newProblem(http.StatusTooManyRequests, msg))
	return true
}

// authenticate lets through requests whose token or session allows them:
// 401 without a valid one (a browser asking for a page is sent to the
// sign-in page instead), 403 for a write with a read-only token, 429 when
// the client's address sent too many wrong tokens.
func (s *server) authenticate(next http.Handler) http.Handler {
	if !s.authEnabled() {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sc, msg := scopeNone, "A token is required: send Authorization: Bearer <token>."
		if tok, sent := bearerToken(r); sent {
			if s.rateLimited(w, r) {
				return
			}
			if sc = s.scopeOf(tok); sc == scopeNone {
				s.failures.fail(s.clientAddr(r))
				msg = "The token is not valid."
			}
		} else if c, err := r.Cookie(sessionCookie); err == nil {
			if sc = s.sessions.lookup(c.Value); sc == scopeNone {
				msg = "Your sign-in has expired or ended; sign in again at /signin."
			}
		}
		switch sc {
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

// handleSignin checks the token from the form and, if valid, starts a
// session, sets its cookie and goes to the dashboard. A wrong token counts
// against the client's address like a wrong bearer token.
func (s *server) handleSignin(w http.ResponseWriter, r *http.Request) {
	if !s.authEnabled() {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	if s.rateLimited(w, r) {
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	sc := s.scopeOf(r.PostFormValue("token"))
	if sc == scopeNone {
		s.failures.fail(s.clientAddr(r))
		renderSignin(w, http.StatusUnauthorized, "That token is not valid.")
		return
	}
	id, err := s.sessions.start(sc)
	if err != nil {
		s.writeError(w, r, fmt.Errorf("start session: %w", err))
		return
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: id, Path: "/", MaxAge: int(s.sessions.ttl / time.Second),
		HttpOnly: true, Secure: s.overTLS(r), SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// handleSignout ends the session on the server and clears its cookie.
func (s *server) handleSignout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(sessionCookie); err == nil {
		s.sessions.end(c.Value)
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true,
		Secure: s.overTLS(r), SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/signin", http.StatusSeeOther)
}

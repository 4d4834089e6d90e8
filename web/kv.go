package web

import (
	"errors"
	"io"
	"math"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/pykv/pykv/engine"
)

// keyParam returns the key a path names after prefix. Clients percent-encode
// the key as one path segment (encodeURIComponent), so "a/b" arrives as
// "a%2Fb"; r.URL.Path is already decoded, and since prefix holds nothing
// that escapes, the rest of it is exactly the key. An unencoded "/" is taken
// as part of the key too. An empty key is refused with engine.ErrEmptyKey.
func keyParam(r *http.Request, prefix string) (string, error) {
	key, ok := strings.CutPrefix(r.URL.Path, prefix)
	if !ok || key == "" {
		return "", engine.ErrEmptyKey
	}
	return key, nil
}

// keyPath returns the escaped path of key under prefix, for Location headers.
func keyPath(prefix, key string) string { return prefix + url.PathEscape(key) }

// etag returns the entity tag of a revision: the revision in quotes.
func etag(rev int64) string { return `"` + strconv.FormatInt(rev, 10) + `"` }

// parseETag reads one entity tag naming a revision: "7" (the quotes may be
// left out; a weak W/ prefix is accepted, revisions being exact either way).
// "*" gives ok false and no error.
func parseETag(header, v string) (rev int64, star bool, err error) {
	v = strings.TrimSpace(v)
	if v == "*" {
		return 0, true, nil
	}
	if strings.Contains(v, ",") {
		return 0, false, badRequest("%s must hold one revision, not a list: %q.", header, v)
	}
	t := strings.TrimPrefix(v, "W/")
	t = strings.TrimSuffix(strings.TrimPrefix(t, `"`), `"`)
	rev, perr := strconv.ParseInt(t, 10, 64)
	if perr != nil || rev <= 0 {
		return 0, false, badRequest(`%s must be a revision as the ETag gave it, like "7", or *; got %q.`, header, v)
	}
	return rev, false, nil
}

// parseTTL reads a time to live: a Go duration ("30s", "1h30m") or a number
// of seconds ("30", "1.5"). Empty or zero means no expiry. Both forms share
// one cap, engine.MaxTTL (100 years); longer ones, NaN and infinities are
// 400 (time.ParseDuration itself refuses durations past 292 years).
func parseTTL(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	tooLong := badRequest("The TTL %q is longer than the limit of 100 years.", s)
	if secs, err := strconv.ParseFloat(s, 64); err == nil || errors.Is(err, strconv.ErrRange) {
		switch {
		case math.IsNaN(secs):
			return 0, badRequest("The TTL %q is not a number of seconds.", s)
		case secs < 0:
			return 0, engine.ErrBadTTL
		case secs > engine.MaxTTL.Seconds():
			return 0, tooLong
		}
		return time.Duration(secs * float64(time.Second)), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		if durationSyntax.MatchString(s) {
			return 0, tooLong // well formed, so it failed by overflowing
		}
		return 0, badRequest(`The TTL %q is neither a duration like "30s" or "1h" nor a number of seconds.`, s)
	}
	if d < 0 {
		return 0, engine.ErrBadTTL
	}
	if d > engine.MaxTTL {
		return 0, tooLong
	}
	return d, nil
}

// durationSyntax matches what time.ParseDuration reads, without a sign:
// one that fails to parse anyway is beyond its 292-year range.
var durationSyntax = regexp.MustCompile(`^\+?((\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h))+$`)

// wantsJSON reports whether a GET of a key asks for the entry as JSON
// rather than the raw value: ?format=json, or an Accept header that names
// application/json and not text/plain.
func wantsJSON(r *http.Request) (bool, error) {
	if r.URL.RawQuery == "" && r.Header["Accept"] == nil {
		return false, nil // the common case, without parsing anything
	}
	switch f := r.URL.Query().Get("format"); f {
	case "json":
		return true, nil
	case "raw", "text":
		return false, nil
	case "":
	default:
		return false, badRequest(`The format must be "json" or "raw", not %q.`, f)
	}
	accept := r.Header.Get("Accept")
	if accept == "" {
		return false, nil
	}
	json, text := false, false
	for _, part := range strings.Split(accept, ",") {
		mt, _, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		switch mt {
		case "application/json":
			json = true
		case "text/plain", "text/*", "*/*":
			text = true
		}
	}
	return json && !text, nil
}

// handleKVGet answers a key's value as the raw body (or the entry as JSON),
// with its revision in the ETag; 304 when If-None-Match names that revision.
func (s *server) handleKVGet(w http.ResponseWriter, r *http.Request) {
	key, err := keyParam(r, "/v1/kv/")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	asJSON, err := wantsJSON(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	e, err := s.store.Get(key)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	h := w.Header()
	if h["Vary"] == nil {
		h["Vary"] = hdrVaryAccept
	} else {
		h.Add("Vary", "Accept")
	}
	if inm := r.Header.Get("If-None-Match"); inm != "" && etagListMatches(inm, e.ModRev) {
		setEntryHeaders(w, &e, -1)
		w.WriteHeader(http.StatusNotModified)
		return
	}
	if asJSON {
		setEntryHeaders(w, &e, -1)
		writeEntry(w, http.StatusOK, &e)
		return
	}
	setEntryHeaders(w, &e, len(e.Value))
	h["Content-Type"] = hdrTextPlain
	if r.Method != http.MethodHead {
		_, _ = io.WriteString(w, e.Value)
	}
}

// etagListMatches reports whether an If-None-Match list names rev (or is *).
func etagListMatches(list string, rev int64) bool {
	want := etag(rev)
	for _, t := range strings.Split(list, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == "*" || t == want {
			return true
		}
	}
	return false
}

// condition reads If-Match and If-None-Match into an engine condition
// (Op.IfRev): If-Match "<rev>" requires that revision, If-Match * requires
// the key to exist (at the revision it has now), If-None-Match * requires
// it not to exist.
func (s *server) condition(r *http.Request, key string) (int64, error) {
	im, inm := r.Header.Get("If-Match"), r.Header.Get("If-None-Match")
	switch {
	case im != "" && inm != "":
		return 0, badRequest("Send If-Match or If-None-Match, not both.")
	case inm != "":
		if strings.TrimSpace(inm) != "*" {
			return 0, badRequest(`If-None-Match on a write supports only *, meaning "only if the key does not exist"; got %q.`, inm)
		}
		return engine.Absent, nil
	case im != "":
		rev, star, err := parseETag("If-Match", im)
		if err != nil {
			return 0, err
		}
		if !star {
			return rev, nil
		}
		e, err := s.store.Get(key)
		if errors.Is(err, engine.ErrNotFound) {
			return 0, &engine.ConditionError{Key: key, Want: -1, Have: 0}
		}
		return e.ModRev, err
	}
	return 0, nil
}

// handleKVPut sets a key to the raw request body: 201 with the new entry
// when the key was created, 200 when it was replaced.
func (s *server) handleKVPut(w http.ResponseWriter, r *http.Request) {
	key, err := keyParam(r, "/v1/kv/")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var ttl time.Duration
	if r.URL.RawQuery != "" {
		if ttl, err = parseTTL(r.URL.Query().Get("ttl")); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	ifRev, err := s.condition(r, key)
	if err != nil {
		s.writeError(w, r, preconditionFailed(err, 0))
		return
	}
	_, maxValue, _ := s.store.Limits()
	value, err := readValue(w, r, int64(maxValue))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			err = engine.ErrValueTooLarge
		}
		s.writeError(w, r, err)
		return
	}
	e, err := s.do(w, r, engine.Op{Type: engine.OpPut, Key: key, Value: value, TTL: ttl, IfRev: ifRev})
	if err != nil {
		s.writeError(w, r, preconditionFailed(err, ifRev))
		return
	}
	setEntryHeaders(w, &e, -1)
	status := http.StatusOK
	if e.Version == 1 {
		status = http.StatusCreated
		w.Header().Set("Location", keyPath("/v1/kv/", key))
	}
	writeEntry(w, status, &e)
}

// deleted is the answer to a delete.
type deleted struct {
	Key string `json:"key"`
	Rev int64  `json:"rev"` // the revision of the deletion
}

// handleKVDelete removes a key: 200 with the revision of the deletion, 404
// if it did not exist, 412 if If-Match does not hold.
func (s *server) handleKVDelete(w http.ResponseWriter, r *http.Request) {
	key, err := keyParam(r, "/v1/kv/")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if r.Header.Get("If-None-Match") != "" {
		s.writeError(w, r, badRequest("If-None-Match makes no sense on a delete; use If-Match."))
		return
	}
	ifRev, err := s.condition(r, key)
	if err != nil {
		s.writeError(w, r, preconditionFailed(err, 0))
		return
	}
	e, err := s.do(w, r, engine.Op{Type: engine.OpDelete, Key: key, IfRev: ifRev})
	if err != nil {
		s.writeError(w, r, preconditionFailed(err, ifRev))
		return
	}
	encode(w, http.StatusOK, deleted{Key: key, Rev: e.ModRev})
}

// listPage is one page of a listing.
type listPage struct {
	Entries []engine.Entry `json:"entries"`
	More    bool           `json:"more"`           // entries remain after this page
	Next    string         `json:"next,omitempty"` // the after= of the next page, when More
	Rev     int64          `json:"rev"`            // the store's revision as the listing began
	Count   int            `json:"count"`          // keys starting with prefix, on all pages (expired ones not swept yet included)
}

// handleKVList lists live entries in key order: those starting with
// prefix, after the key `after`, at most limit (default 100, at most 1000).
func (s *server) handleKVList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := DefaultListLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			s.writeError(w, r, badRequest("The limit must be a positive whole number, not %q.", v))
			return
		}
		limit = min(n, MaxListLimit)
	}
	var page listPage
	page.Entries, page.More, page.Rev = s.store.ListAt(q.Get("prefix"), q.Get("after"), limit)
	page.Count = s.store.Count(q.Get("prefix"))
	if page.Entries == nil {
		page.Entries = []engine.Entry{}
	}
	if page.More {
		page.Next = page.Entries[len(page.Entries)-1].Key
	}
	encode(w, http.StatusOK, page)
}

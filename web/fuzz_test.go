package web_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/pykv/pykv/engine"
	"github.com/pykv/pykv/web"
)

// fuzzServer returns the API over an in-memory store.
func fuzzServer(f *testing.F) http.Handler {
	store := engine.New(engine.Options{MaxKeyBytes: 64, MaxValueBytes: 256, MaxTxnOps: 8})
	f.Cleanup(func() { store.Close() })
	return web.NewServer(web.Options{Store: store, MaxBodyBytes: 4096})
}

// FuzzTxnBody posts arbitrary bodies to /v1/txn: every answer is a success
// or a client error in JSON, never a 5xx.
func FuzzTxnBody(f *testing.F) {
	for _, seed := range []string{
		`{"ops":[{"op":"put","key":"a","value":"1"}]}`,
		`{"ops":[{"op":"put","key":"a","value":"1","ttl":"30s","if_absent":true},{"op":"delete","key":"b","if_rev":3}]}`,
		`{"ops":[{"op":"put","key":"a","value":"1","ttl":1e300}]}`,
		`{"ops":[{"op":"put","key":"\ud800","value":"x"}]}`,
		`{"ops":null}`, `[]`, `{`, `{"ops":[{"op":"delete","key":"k","ttl":"-1s"}]}`, "",
	} {
		f.Add(seed)
	}
	h := fuzzServer(f)
	f.Fuzz(func(t *testing.T, body string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, localRequest("POST", "/v1/txn", strings.NewReader(body)))
		wantType := "application/problem+json"
		if rec.Code == http.StatusOK {
			wantType = "application/json"
		}
		if rec.Code >= 500 || rec.Header().Get("Content-Type") != wantType {
			t.Fatalf("POST /v1/txn %q: %d %s %s", body, rec.Code, rec.Header().Get("Content-Type"), rec.Body)
		}
		if !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("POST /v1/txn %q: answer is not JSON: %s", body, rec.Body)
		}
	})
}

// FuzzKeyPath puts a value under an arbitrary key, escaped as clients do,
// and reads it back: the key the server stores is the key sent.
func FuzzKeyPath(f *testing.F) {
	for _, seed := range []string{"a/b", "a%2Fb", "with space", "ünï", "?#", ".", "..", "%", "+", "/", "a//b", "\x00"} {
		f.Add(seed)
	}
	h := fuzzServer(f)
	f.Fuzz(func(t *testing.T, key string) {
		path := "/v1/kv/" + url.PathEscape(key)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, localRequest("PUT", path, strings.NewReader("v:"+key)))
		valid := key != "" && len(key) <= 64 && utf8.ValidString(key)
		if !valid {
			if rec.Code != http.StatusBadRequest && rec.Code != http.StatusRequestEntityTooLarge {
				t.Fatalf("PUT %s (key %q): %d, want 400 or 413", path, key, rec.Code)
			}
			return
		}
		if rec.Code/100 != 2 {
			t.Fatalf("PUT %s (key %q): %d %s", path, key, rec.Code, rec.Body)
		}
		var e engine.Entry
		if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Key != key {
			t.Fatalf("PUT %s stored key %q, want %q (%v)", path, e.Key, key, err)
		}
		rec = httptest.NewRecorder()
		h.ServeHTTP(rec, localRequest("GET", path, nil))
		if rec.Code != http.StatusOK || rec.Body.String() != "v:"+key {
			t.Fatalf("GET %s (key %q): %d %q", path, key, rec.Code, rec.Body)
		}
	})
}

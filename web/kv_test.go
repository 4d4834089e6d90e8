package web_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pykv/pykv/persist"
	"github.com/pykv/pykv/web"
)

func TestKV_GetPutDelete(t *testing.T) {
	srv := mustOpenServer(t)

	r := srv.do("GET", "/v1/kv/greeting", "")
	wantProblem(t, r, http.StatusNotFound, "does not exist")

	r = srv.do("PUT", "/v1/kv/greeting", "hello")
	wantStatus(t, r, http.StatusCreated)
	e := r.JSON(t)
	if e["key"] != "greeting" || e["value"] != "hello" || e["version"] != 1.0 || e["create_rev"] != e["mod_rev"] {
		t.Errorf("PUT created entry %v", e)
	}
	if _, ok := e["expires_at"]; ok {
		t.Errorf("PUT without ttl: entry %v has expires_at", e)
	}
	rev1 := int64(e["mod_rev"].(float64))
	if got, want := r.Header.Get("ETag"), `"`+strconv.FormatInt(rev1, 10)+`"`; got != want {
		t.Errorf("PUT ETag = %q, want %q", got, want)
	}
	if got := r.Header.Get("Location"); got != "/v1/kv/greeting" {
		t.Errorf("PUT Location = %q", got)
	}

	r = srv.do("PUT", "/v1/kv/greeting", "hi there")
	wantStatus(t, r, http.StatusOK)
	if e := r.JSON(t); e["version"] != 2.0 || int64(e["create_rev"].(float64)) != rev1 {
		t.Errorf("second PUT entry %v, want version 2 and create_rev %d", e, rev1)
	}
	etag := r.Header.Get("ETag")

	r = srv.do("GET", "/v1/kv/greeting", "")
	wantStatus(t, r, http.StatusOK)
	if string(r.Body) != "hi there" || r.Header.Get("Content-Type") != "text/plain; charset=utf-8" {
		t.Errorf("GET = %q (%s), want raw value", r.Body, r.Header.Get("Content-Type"))
	}
	if r.Header.Get("ETag") != etag || r.Header.Get("PyKV-Version") != "2" || r.Header.Get("PyKV-Create-Revision") != strconv.FormatInt(rev1, 10) {
		t.Errorf("GET headers %v", r.Header)
	}
	if r.Header.Get("PyKV-Expires-At") != "" {
		t.Errorf("GET of a key without TTL has PyKV-Expires-At")
	}

	for _, variant := range []struct{ path, accept string }{{"/v1/kv/greeting?format=json", ""}, {"/v1/kv/greeting", "application/json"}} {
		r = srv.do("GET", variant.path, "", "Accept: "+variant.accept)
		wantStatus(t, r, http.StatusOK)
		if e := r.JSON(t); e["value"] != "hi there" || e["key"] != "greeting" {
			t.Errorf("GET %s (Accept %q) = %v", variant.path, variant.accept, e)
		}
	}

	r = srv.do("GET", "/v1/kv/greeting", "", "If-None-Match: "+etag)
	wantStatus(t, r, http.StatusNotModified)

	r = srv.do("DELETE", "/v1/kv/greeting", "")
	wantStatus(t, r, http.StatusOK)
	if d := r.JSON(t); d["key"] != "greeting" || d["rev"].(float64) <= float64(rev1) {
		t.Errorf("DELETE = %v", d)
	}
	wantProblem(t, srv.do("DELETE", "/v1/kv/greeting", ""), http.StatusNotFound)
	wantProblem(t, srv.do("GET", "/v1/kv/greeting", ""), http.StatusNotFound)
}

func TestKV_Conditions(t *testing.T) {
	srv := mustOpenServer(t)

	r := srv.do("PUT", "/v1/kv/c", "1", "If-None-Match: *")
	wantStatus(t, r, http.StatusCreated)
	etag := r.Header.Get("ETag")
	rev, _ := strconv.ParseInt(strings.Trim(etag, `"`), 10, 64)

	r = srv.do("PUT", "/v1/kv/c", "2", "If-None-Match: *")
	wantProblem(t, r, http.StatusPreconditionFailed, "already exists")
	if p := r.JSON(t); p["current_rev"] != float64(rev) || p["key"] != "c" {
		t.Errorf("412 problem %v, want current_rev %d and key c", p, rev)
	}

	wantProblem(t, srv.do("PUT", "/v1/kv/c", "2", `If-Match: "999"`), http.StatusPreconditionFailed, "not 999")
	wantProblem(t, srv.do("PUT", "/v1/kv/missing", "2", `If-Match: *`), http.StatusPreconditionFailed, "does not exist")
	wantProblem(t, srv.do("PUT", "/v1/kv/c", "2", `If-Match: bogus`), http.StatusBadRequest, "If-Match")
	wantProblem(t, srv.do("PUT", "/v1/kv/c", "2", `If-Match: "1", "2"`), http.StatusBadRequest, "one revision")
	wantProblem(t, srv.do("PUT", "/v1/kv/c", "2", `If-None-Match: "3"`), http.StatusBadRequest, "only *")
	wantProblem(t, srv.do("PUT", "/v1/kv/c", "2", `If-Match: *`, `If-None-Match: *`), http.StatusBadRequest, "not both")

	r = srv.do("PUT", "/v1/kv/c", "2", "If-Match: "+etag)
	wantStatus(t, r, http.StatusOK)
	etag2 := r.Header.Get("ETag")
	wantStatus(t, srv.do("PUT", "/v1/kv/c", "3", "If-Match: *"), http.StatusOK)

	wantProblem(t, srv.do("DELETE", "/v1/kv/c", "", "If-Match: "+etag2), http.StatusPreconditionFailed)
	r = srv.do("GET", "/v1/kv/c", "")
	wantStatus(t, srv.do("DELETE", "/v1/kv/c", "", "If-Match: "+r.Header.Get("ETag")), http.StatusOK)
	wantProblem(t, srv.do("DELETE", "/v1/kv/c", "", "If-None-Match: *"), http.StatusBadRequest)
}

func TestKV_TTL(t *testing.T) {
	srv := mustOpenServer(t)
	before := time.Now().UnixMilli()
	for _, ttl := range []string{"30s", "30", "29.5"} {
		r := srv.do("PUT", "/v1/kv/t?ttl="+ttl, "v")
		if r.StatusCode/100 != 2 {
			t.Fatalf("PUT ?ttl=%s: %d %s", ttl, r.StatusCode, r.Body)
		}
		exp := int64(r.JSON(t)["expires_at"].(float64))
		if exp < before+29_000 || exp > time.Now().UnixMilli()+30_000 {
			t.Errorf("PUT ?ttl=%s: expires_at %d, want about 30 s after %d", ttl, exp, before)
		}
		if got := r.Header.Get("PyKV-Expires-At"); got != strconv.FormatInt(exp, 10) {
			t.Errorf("PUT ?ttl=%s: PyKV-Expires-At %q, want %d", ttl, got, exp)
		}
	}
	wantProblem(t, srv.do("PUT", "/v1/kv/t?ttl=-5s", "v"), http.StatusBadRequest, "negative")
	wantProblem(t, srv.do("PUT", "/v1/kv/t?ttl=soon", "v"), http.StatusBadRequest, "soon")

	wantStatus(t, srv.do("PUT", "/v1/kv/short?ttl=50ms", "v"), http.StatusCreated)
	deadline := time.Now().Add(5 * time.Second)
	for srv.do("GET", "/v1/kv/short", "").StatusCode != http.StatusNotFound {
		if time.Now().After(deadline) {
			t.Fatal("key with ttl=50ms still readable after 5s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestKV_KeyEscaping puts keys holding slashes, spaces, percent signs and
// other characters, each percent-encoded as one segment as
// encodeURIComponent does, and reads them back by path and by listing.
func TestKV_KeyEscaping(t *testing.T) {
	srv := mustOpenServer(t)
	keys := []string{"a/b", "a%2Fb", "with space", "ünï", "?#", "a+b", "/leading", "trailing/", "x//y", "%", "semi;colon", "日本語/キー"}
	for i, key := range keys {
		path := "/v1/kv/" + url.PathEscape(key)
		value := "value " + strconv.Itoa(i)
		r := srv.do("PUT", path, value)
		wantStatus(t, r, http.StatusCreated)
		if got := r.JSON(t)["key"]; got != key {
			t.Errorf("PUT %s stored key %q, want %q", path, got, key)
		}
		r = srv.do("GET", path, "")
		if r.StatusCode != http.StatusOK || string(r.Body) != value {
			t.Errorf("GET %s = %d %q, want %q", path, r.StatusCode, r.Body, value)
		}
		r = srv.do("GET", "/get/"+url.PathEscape(key), "")
		if r.StatusCode != http.StatusOK || r.JSON(t)["key"] != key {
			t.Errorf("GET /get/%s = %d %s", url.PathEscape(key), r.StatusCode, r.Body)
		}
	}
	// encodeURIComponent also encodes characters PathEscape leaves alone.
	r := srv.do("GET", "/v1/kv/semi%3Bcolon", "")
	if string(r.Body) != "value 10" {
		t.Errorf("GET /v1/kv/semi%%3Bcolon = %q, want the key semi;colon", r.Body)
	}
	// An unencoded slash is taken as part of the key too.
	if r := srv.do("GET", "/v1/kv/a/b", ""); string(r.Body) != "value 0" {
		t.Errorf("GET /v1/kv/a/b = %d %q, want the key a/b", r.StatusCode, r.Body)
	}
	r = srv.do("GET", "/v1/kv?limit=1000", "")
	var listed []string
	for _, e := range r.JSON(t)["entries"].([]any) {
		listed = append(listed, e.(map[string]any)["key"].(string))
	}
	if len(listed) != len(keys) {
		t.Errorf("list holds %q, want the %d keys put", listed, len(keys))
	}
	for i := 1; i < len(listed); i++ {
		if listed[i-1] >= listed[i] {
			t.Errorf("list not in key order: %q before %q", listed[i-1], listed[i])
		}
	}
	wantProblem(t, srv.do("GET", "/v1/kv/", ""), http.StatusBadRequest, "empty")
	wantProblem(t, srv.do("PUT", "/v1/kv/", "x"), http.StatusBadRequest, "empty")
}

func TestKV_Limits(t *testing.T) {
	srv := mustOpenServer(t) // keys up to 64 bytes, values up to 1024
	wantProblem(t, srv.do("PUT", "/v1/kv/"+strings.Repeat("k", 65), "v"), http.StatusRequestEntityTooLarge, "64 bytes")
	wantProblem(t, srv.do("PUT", "/v1/kv/big", strings.Repeat("v", 1025)), http.StatusRequestEntityTooLarge, "1024 bytes")
	wantStatus(t, srv.do("PUT", "/v1/kv/big", strings.Repeat("v", 1024)), http.StatusCreated)

	// A chunked body has no length to refuse up front.
	req, _ := http.NewRequest("PUT", srv.URL+"/v1/kv/chunked", strings.NewReader(strings.Repeat("v", 5000)))
	req.ContentLength = -1
	req.TransferEncoding = []string{"chunked"}
	wantProblem(t, srv.send(req), http.StatusRequestEntityTooLarge, "1024 bytes")

	wantProblem(t, srv.do("PUT", "/v1/kv/bad", "\xff\xfe"), http.StatusBadRequest, "UTF-8")
}

func TestKV_List(t *testing.T) {
	srv := mustOpenServer(t)
	for i := range 25 {
		wantStatus(t, srv.do("PUT", "/v1/kv/"+url.PathEscape("user/"+strconv.Itoa(100+i)), strconv.Itoa(i)), http.StatusCreated)
	}
	wantStatus(t, srv.do("PUT", "/v1/kv/other", "x"), http.StatusCreated)

	var got []string
	after := ""
	pages := 0
	for {
		r := srv.do("GET", "/v1/kv?prefix=user/&limit=10&after="+url.QueryEscape(after), "")
		wantStatus(t, r, http.StatusOK)
		page := r.JSON(t)
		for _, e := range page["entries"].([]any) {
			got = append(got, e.(map[string]any)["key"].(string))
		}
		pages++
		if page["rev"].(float64) != 26 {
			t.Errorf("page rev %v, want 26", page["rev"])
		}
		if page["more"] != true {
			if _, ok := page["next"]; ok {
				t.Errorf("last page has next: %v", page)
			}
			break
		}
		after = page["next"].(string)
		if pages > 5 {
			t.Fatal("pagination does not end")
		}
	}
	if pages != 3 || len(got) != 25 || got[0] != "user/100" || got[24] != "user/124" {
		t.Errorf("paginated %d pages: %q", pages, got)
	}
	r := srv.do("GET", "/v1/kv?prefix=nothing", "")
	if string(r.Body) != `{"entries":[],"more":false,"rev":26,"count":0}`+"\n" {
		t.Errorf("empty listing = %s", r.Body)
	}
	wantProblem(t, srv.do("GET", "/v1/kv?limit=abc", ""), http.StatusBadRequest, "limit")
	wantProblem(t, srv.do("GET", "/v1/kv?limit=0", ""), http.StatusBadRequest, "limit")
	if n := len(srv.do("GET", "/v1/kv?limit=5000", "").JSON(t)["entries"].([]any)); n != 26 {
		t.Errorf("limit=5000 listed %d entries, want all 26", n)
	}
}

func TestKV_Head(t *testing.T) {
	srv := mustOpenServer(t)
	wantStatus(t, srv.do("PUT", "/v1/kv/h?ttl=1h", "hello"), http.StatusCreated)
	r := srv.do("HEAD", "/v1/kv/h", "")
	wantStatus(t, r, http.StatusOK)
	if len(r.Body) != 0 || r.Header.Get("ETag") != `"1"` || r.Header.Get("PyKV-Expires-At") == "" || r.Header.Get("Content-Length") != "5" {
		t.Errorf("HEAD = %q %v", r.Body, r.Header)
	}
	wantStatus(t, srv.do("HEAD", "/v1/kv/missing", ""), http.StatusNotFound)
}

// TestKV_TTLCap: durations and numbers of seconds share one cap of 100
// years; anything longer (or not a number at all) is 400, never a
// wrapped-around expiry that drops the value at once.
func TestKV_TTLCap(t *testing.T) {
	srv := mustOpenServer(t)
	for _, ttl := range []string{"2562047h47m16.854775807s", "876001h", "3153600001", "1e300", "NaN", "Inf", "+Inf"} {
		wantProblem(t, srv.do("PUT", "/v1/kv/t?ttl="+url.QueryEscape(ttl), "v"), http.StatusBadRequest)
		wantProblem(t, srv.do("POST", "/v1/txn", `{"ops":[{"op":"put","key":"t","value":"v","ttl":"`+ttl+`"}]}`,
			"Content-Type: application/json"), http.StatusBadRequest)
	}
	if _, err := srv.DB.Store().Get("t"); err == nil {
		t.Errorf("a refused TTL stored the key")
	}
	r := srv.do("PUT", "/v1/kv/t?ttl=876000h", "v")
	wantStatus(t, r, http.StatusCreated)
	if exp := int64(r.JSON(t)["expires_at"].(float64)); exp <= time.Now().UnixMilli() {
		t.Errorf("ttl=876000h (100 years): expires_at %d is not in the future", exp)
	}
}

// TestKV_GetHeadersOnTheWire reads GET and HEAD answers of values of
// several sizes (either side of net/http's 2 KiB response buffer) off the
// connection, as a client gets them, through the key routes' fast path:
// every header the API promises is there exactly once, the Date and a
// Content-Length equal to the value's size included, nothing else, and
// nothing is chunked.
func TestKV_GetHeadersOnTheWire(t *testing.T) {
	db, err := persist.Open(t.TempDir(), persist.Options{Sync: persist.SyncNever})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(web.NewServer(web.Options{Store: db.Store(), DB: db, Metrics: web.NewMetrics()}))
	t.Cleanup(func() { srv.Close(); db.Close() })
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	for _, size := range []int{0, 5, 1024, 1025, 2047, 2048, 2049, 5000} {
		key := fmt.Sprintf("v%d", size)
		if _, err := db.Store().Put(key, strings.Repeat("x", size)); err != nil {
			t.Fatal(err)
		}
		for _, method := range []string{"GET", "HEAD"} {
			fmt.Fprintf(conn, "%s /v1/kv/%s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", method, key)
			req, _ := http.NewRequest(method, "/", nil)
			resp, err := http.ReadResponse(br, req)
			if err != nil {
				t.Fatalf("%s %s: %v", method, key, err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			wantBody := size
			if method == "HEAD" {
				wantBody = 0
			}
			if resp.StatusCode != http.StatusOK || len(body) != wantBody || len(resp.TransferEncoding) != 0 {
				t.Errorf("%s %s: status %d, %d body bytes, transfer encoding %q; want 200, %d bytes, none",
					method, key, resp.StatusCode, len(body), resp.TransferEncoding, wantBody)
			}
			want := map[string]string{
				"Content-Length": strconv.Itoa(size), "Content-Type": "text/plain; charset=utf-8",
				"Etag": fmt.Sprintf(`"%d"`, db.Store().Rev()), "Pykv-Create-Revision": strconv.FormatInt(db.Store().Rev(), 10),
				"Pykv-Version": "1", "Cache-Control": "no-cache", "Vary": "Accept", "X-Content-Type-Options": "nosniff",
				"X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer",
			}
			for name, v := range want {
				if got := resp.Header.Values(name); len(got) != 1 || got[0] != v {
					t.Errorf("%s %s: %s %q, want one %q", method, key, name, got, v)
				}
			}
			if d := resp.Header.Values("Date"); len(d) != 1 {
				t.Errorf("%s %s: Date %q, want one", method, key, d)
			} else if at, err := http.ParseTime(d[0]); err != nil || time.Since(at) > time.Minute || time.Until(at) > time.Minute {
				t.Errorf("%s %s: Date %q is not now", method, key, d[0])
			}
			if len(resp.Header) != len(want)+1 {
				t.Errorf("%s %s: headers %v, want only %v and a Date", method, key, resp.Header, want)
			}
		}
	}
}

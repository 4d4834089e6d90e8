package web_test

import (
	"net/http"
	"strings"
	"testing"
)

func TestTxn(t *testing.T) {
	srv := mustOpenServer(t)
	wantStatus(t, srv.do("PUT", "/v1/kv/old", "x"), http.StatusCreated) // rev 1

	r := srv.do("POST", "/v1/txn", `{"ops":[
		{"op":"put","key":"a","value":"1","if_absent":true},
		{"op":"put","key":"b","value":"2","ttl":"30s"},
		{"op":"put","key":"c","value":"3","ttl":60},
		{"op":"delete","key":"old","if_rev":1},
		{"op":"delete","key":"never"}]}`, "Content-Type: application/json")
	wantStatus(t, r, http.StatusOK)
	res := r.JSON(t)
	if res["rev"] != 2.0 {
		t.Errorf("txn rev = %v, want 2 (one revision for the batch)", res["rev"])
	}
	results := res["results"].([]any)
	if len(results) != 5 {
		t.Fatalf("txn results = %v", results)
	}
	if e := results[0].(map[string]any)["entry"].(map[string]any); e["value"] != "1" || e["mod_rev"] != 2.0 {
		t.Errorf("put result %v", results[0])
	}
	if _, ok := results[1].(map[string]any)["entry"].(map[string]any)["expires_at"]; !ok {
		t.Errorf("put with ttl: result %v has no expires_at", results[1])
	}
	if d := results[3].(map[string]any); d["deleted"] != true || d["op"] != "delete" {
		t.Errorf("delete result %v, want deleted true", d)
	}
	if d := results[4].(map[string]any); d["deleted"] != false {
		t.Errorf("delete of missing key: result %v, want deleted false", d)
	}

	// A failed condition changes nothing and says which op and key.
	r = srv.do("POST", "/v1/txn", `{"ops":[{"op":"put","key":"z","value":"1"},{"op":"put","key":"a","value":"9","if_rev":1}]}`)
	wantProblem(t, r, http.StatusConflict, `"a"`)
	if p := r.JSON(t); p["op_index"] != 1.0 || p["current_rev"] != 2.0 || p["key"] != "a" {
		t.Errorf("409 problem %v, want op_index 1, key a, current_rev 2", p)
	}
	wantProblem(t, srv.do("GET", "/v1/kv/z", ""), http.StatusNotFound)

	for _, c := range []struct {
		name, body, ctype string
		status            int
		words             []string
	}{
		{"malformed JSON", `{"ops":[`, "", 400, []string{"ends in the middle"}},
		{"syntax", `{"ops":[}`, "", 400, []string{"not valid JSON"}},
		{"empty body", ``, "", 400, []string{"empty"}},
		{"not an object", `[1]`, "", 400, []string{"object"}},
		{"no ops", `{}`, "", 400, []string{`"ops"`}},
		{"empty ops", `{"ops":[]}`, "", 400, []string{"no operations"}},
		{"unknown field", `{"ops":[],"x":1}`, "", 400, []string{`"x"`}},
		{"wrong type", `{"ops":[{"op":"put","key":1,"value":"v"}]}`, "", 400, []string{"ops.key"}},
		{"bad op", `{"ops":[{"op":"get","key":"k"}]}`, "", 400, []string{`"get"`}},
		{"no op", `{"ops":[{"key":"k"}]}`, "", 400, []string{`no "op"`}},
		{"put without value", `{"ops":[{"op":"put","key":"k"}]}`, "", 400, []string{`"value"`}},
		{"delete with value", `{"ops":[{"op":"delete","key":"k","value":"v"}]}`, "", 400, []string{"must not"}},
		{"two conditions", `{"ops":[{"op":"put","key":"k","value":"v","if_rev":1,"if_absent":true}]}`, "", 400, []string{"both"}},
		{"zero if_rev", `{"ops":[{"op":"put","key":"k","value":"v","if_rev":0}]}`, "", 400, []string{"if_absent"}},
		{"bad ttl", `{"ops":[{"op":"put","key":"k","value":"v","ttl":"soon"}]}`, "", 400, []string{"soon"}},
		{"empty key", `{"ops":[{"op":"put","key":"","value":"v"}]}`, "", 400, []string{"empty"}},
		{"trailing data", `{"ops":[{"op":"put","key":"k","value":"v"}]} {}`, "", 400, []string{"more than one"}},
		{"key too large", `{"ops":[{"op":"put","key":"` + strings.Repeat("k", 65) + `","value":"v"}]}`, "", 413, []string{"64 bytes"}},
		{"body too large", `{"ops":[{"op":"put","key":"k","value":"` + strings.Repeat("v", 5000) + `"}]}`, "", 413, []string{"4096 bytes"}},
		{"wrong content type", `{"ops":[]}`, "text/plain", 415, []string{"application/json"}},
		{"form content type", `ops=1`, "application/x-www-form-urlencoded", 415, []string{"JSON"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var hdr []string
			if c.ctype != "" {
				hdr = append(hdr, "Content-Type: "+c.ctype)
			}
			wantProblem(t, srv.do("POST", "/v1/txn", c.body, hdr...), c.status, c.words...)
		})
	}
	t.Run("too many ops", func(t *testing.T) {
		ops := strings.Repeat(`{"op":"delete","key":"k"},`, 129)
		wantProblem(t, srv.do("POST", "/v1/txn", `{"ops":[`+strings.TrimSuffix(ops, ",")+`]}`), http.StatusBadRequest, "at most 128")
	})
}

func TestLegacy(t *testing.T) {
	srv := mustOpenServer(t)
	r := srv.do("POST", "/put", `{"key":"name","value":"PyKV"}`, "Content-Type: application/json")
	wantStatus(t, r, http.StatusOK)
	if m := r.JSON(t); m["status"] != "ok" || m["key"] != "name" || m["rev"] != 1.0 {
		t.Errorf("POST /put = %v", m)
	}
	r = srv.do("GET", "/get/name", "")
	wantStatus(t, r, http.StatusOK)
	if m := r.JSON(t); m["key"] != "name" || m["value"] != "PyKV" {
		t.Errorf("GET /get/name = %v", m)
	}
	wantProblem(t, srv.do("POST", "/put", `{"key":"k"}`), http.StatusBadRequest, `"value"`)
	wantProblem(t, srv.do("POST", "/put", `{"key":"k","value":5}`), http.StatusBadRequest, "value")
	wantStatus(t, srv.do("DELETE", "/delete/name", ""), http.StatusOK)
	r = srv.do("GET", "/get/name", "")
	wantProblem(t, r, http.StatusNotFound)
	if _, ok := r.JSON(t)["detail"]; !ok {
		t.Errorf("404 of /get has no detail member (FastAPI clients read it)")
	}
	wantProblem(t, srv.do("DELETE", "/delete/name", ""), http.StatusNotFound)
}

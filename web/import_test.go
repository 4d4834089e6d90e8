package web_test

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
)

// TestImport_Checks: a file that says it is a PyKV snapshot is checked as
// one whatever its whitespace, and a flat file's null values, duplicate
// keys, invalid UTF-8 and lone UTF-16 surrogate escapes are refused naming
// the key; nothing is stored.
func TestImport_Checks(t *testing.T) {
	src := mustOpenServer(t)
	wantStatus(t, src.do("PUT", "/v1/kv/a", "1"), http.StatusCreated)
	wantStatus(t, src.do("PUT", "/v1/kv/b", "2"), http.StatusCreated)
	export := string(src.do("GET", "/v1/export", "").Body)
	crcAt := strings.LastIndex(export, `"crc":"`) + len(`"crc":"`)
	spaced := strings.NewReplacer(`":`, `": `, ",\n", ",\n\n  ", `{"format"`, "{\n  \"format\"").Replace(export)

	dst := mustOpenServer(t)
	for _, tc := range []struct{ name, body, mention string }{
		{"export with a space before it and a changed checksum", " " + export[:crcAt] + "deadbeef" + export[crcAt+8:], "checksum"},
		{"export with a changed value", strings.Replace(export, `"value":"2"`, `"value":"3"`, 1), "checksum"},
		{"reformatted export with a changed value", strings.Replace(spaced, `"value": "2"`, `"value": "3"`, 1), "checksum"},
		{"count that does not match", strings.Replace(export, `"count":2`, `"count":99`, 1), "99"},
		{"reformatted count that does not match", " " + strings.Replace(export, `"count":2`, `"count":99`, 1), "99"},
		{"snapshot fields out of order", `{"version":1,"format":"pykv.snapshot","rev":1,"count":0,"entries":[],"crc":"00000000"}`, "format"},
		{"flat null value", `{"x":"1","k":null}`, `"k"`},
		{"flat duplicate key", `{"k":"1","x":"2","k":"3"}`, `"k"`},
		{"flat invalid UTF-8 value", "{\"x\":\"1\",\"k\":\"\xff\"}", `"k"`},
		{"flat invalid UTF-8 key", "{\"x\":\"1\",\"k\xc3\":\"v\"}", "UTF-8"},
		{"flat lone surrogate escape in a value", `{"x":"1","k":"\ud800"}`, `"k"`},
		{"flat lone surrogate escape in a key", `{"x":"1","k\udc00":"v"}`, "surrogate"},
		{"flat number value", `{"k":1}`, `"k"`},
		{"trailing data", `{"k":"1"} {"x":"2"}`, "after"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantProblem(t, dst.do("POST", "/v1/import", tc.body, "Content-Type: application/json"), http.StatusBadRequest, tc.mention)
			if n := dst.DB.Store().Len(); n != 0 {
				t.Errorf("a refused import stored %d keys", n)
			}
		})
	}
	// Whitespace alone is no change: the reformatted export imports.
	r := dst.do("POST", "/v1/import", "\n "+spaced+"\n\n", "Content-Type: application/json")
	wantStatus(t, r, http.StatusOK)
	if m := r.JSON(t); m["format"] != "snapshot" || m["added"] != 2.0 {
		t.Errorf("reformatted export: %v", m)
	}
}

// TestImport_Modes: an import skips unchanged keys and says how many keys
// it added, changed and left unchanged; ?mode=replace makes the store equal
// to the file in one revision.
func TestImport_Modes(t *testing.T) {
	srv := mustOpenServer(t)
	for _, kv := range [][2]string{{"same", "1"}, {"changes", "1"}, {"extra", "1"}} {
		wantStatus(t, srv.do("PUT", "/v1/kv/"+kv[0], kv[1]), http.StatusCreated)
	}
	rev := srv.DB.Store().Rev()
	r := srv.do("POST", "/v1/import", `{"same":"1","changes":"2","new":"3"}`, "Content-Type: application/json")
	wantStatus(t, r, http.StatusOK)
	m := r.JSON(t)
	for k, want := range map[string]any{"format": "flat", "mode": "merge", "keys": 3.0, "added": 1.0, "changed": 1.0, "unchanged": 1.0, "deleted": 0.0, "rev": float64(rev + 1)} {
		if m[k] != want {
			t.Errorf("merge import: %s = %v, want %v (answer %v)", k, m[k], want, m)
		}
	}
	if r := srv.do("GET", "/v1/kv/same?format=json", ""); !bytes.Contains(r.Body, []byte(`"version":1`)) {
		t.Errorf("an unchanged key got a new version: %s", r.Body)
	}
	wantStatus(t, srv.do("GET", "/v1/kv/extra", ""), http.StatusOK)

	r = srv.do("POST", "/v1/import?mode=replace", `{"same":"1","new":"4"}`, "Content-Type: application/json")
	wantStatus(t, r, http.StatusOK)
	m = r.JSON(t)
	for k, want := range map[string]any{"mode": "replace", "changed": 1.0, "unchanged": 1.0, "deleted": 2.0, "rev": float64(rev + 2)} {
		if m[k] != want {
			t.Errorf("replace import: %s = %v, want %v (answer %v)", k, m[k], want, m)
		}
	}
	list := srv.do("GET", "/v1/kv", "").JSON(t)["entries"].([]any)
	if len(list) != 2 || srv.DB.Store().Rev() != rev+2 {
		t.Errorf("after replace: %v at revision %d, want the file's two keys at revision %d", list, srv.DB.Store().Rev(), rev+2)
	}
	wantProblem(t, srv.do("POST", "/v1/import?mode=overwrite", `{}`), http.StatusBadRequest, "overwrite")
}

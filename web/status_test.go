package web_test

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pykv/pykv/persist"
	"github.com/pykv/pykv/web"
)

// TestStatus_KeptTail: after a recovery cut a damaged last record off the
// log, /v1/status names the file that keeps its bytes, says it may be
// corruption, and lists the file under kept_tails until an operator
// removes it (issue 14, point 6).
func TestStatus_KeptTail(t *testing.T) {
	dir := t.TempDir()
	db, err := persist.Open(dir, persist.Options{Sync: persist.SyncNever})
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range [][2]string{{"kept", "value-1"}, {"last", "value-last"}} {
		if _, err := db.Store().Put(kv[0], kv[1]); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	segs, _ := filepath.Glob(filepath.Join(dir, "wal-*.jsonl"))
	if len(segs) != 1 {
		t.Fatalf("log segments %v, want one", segs)
	}
	data, err := os.ReadFile(segs[0])
	if err != nil {
		t.Fatal(err)
	}
	i := strings.LastIndex(string(data), "value-last") + len("value-")
	data[i] = 'X' // the last line stays whole; its checksum fails
	if err := os.WriteFile(segs[0], data, 0o644); err != nil {
		t.Fatal(err)
	}

	db, err = persist.Open(dir, persist.Options{Sync: persist.SyncNever})
	if err != nil {
		t.Fatalf("Open with a damaged last record: %v", err)
	}
	srv := httptest.NewServer(web.NewServer(web.Options{Store: db.Store(), DB: db}))
	defer func() {
		srv.Close()
		db.Close()
	}()
	status := func() map[string]any {
		t.Helper()
		r := (&testServer{Server: srv, spec: loadSpec(t, srv.Config.Handler), tb: t}).do("GET", "/v1/status", "")
		wantStatus(t, r, http.StatusOK)
		return r.JSON(t)
	}

	st := status()
	rec, _ := st["recovery"].(map[string]any)
	keptPath, _ := rec["kept_tail"].(string)
	if keptPath == "" || filepath.Dir(keptPath) != dir {
		t.Fatalf("status recovery %v: want kept_tail, a file in %s", rec, dir)
	}
	if rec["possible_corruption"] != true || !strings.Contains(rec["warning"].(string), keptPath) {
		t.Errorf("status recovery %v: want possible_corruption and a warning naming %s", rec, keptPath)
	}
	tails, _ := st["kept_tails"].([]any)
	if !slices.Contains(tails, any(filepath.Base(keptPath))) {
		t.Fatalf("status kept_tails %v, want %s in it", st["kept_tails"], filepath.Base(keptPath))
	}
	// It stays listed, through writes, until the operator clears it.
	if _, err := db.Store().Put("after", "v"); err != nil {
		t.Fatal(err)
	}
	if tails, _ := status()["kept_tails"].([]any); len(tails) != 1 {
		t.Errorf("status kept_tails %v after a write, want the kept file still", tails)
	}
	if err := os.Remove(keptPath); err != nil {
		t.Fatal(err)
	}
	if tails, ok := status()["kept_tails"]; ok {
		t.Errorf("status kept_tails %v after the operator removed the file, want none", tails)
	}
}

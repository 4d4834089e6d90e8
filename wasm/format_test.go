package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pykv/pykv/engine"
	"github.com/pykv/pykv/persist"
	"github.com/pykv/pykv/persist/codec"
)

var update = flag.Bool("update", false, "rewrite golden files")

// serverGolden is persist's own golden snapshot: the format every export
// and the browser copy share.
const serverGolden = "../persist/codec/testdata/snapshot.golden.json"

func readFile(tb testing.TB, name string) string {
	tb.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

// golden compares got with the file name, rewriting it with -update.
func golden(tb testing.TB, name, got string) {
	tb.Helper()
	if *update {
		if err := os.WriteFile(name, []byte(got), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	if want := readFile(tb, name); got != want {
		tb.Fatalf("%s changed (run with -update if on purpose):\n got %s\nwant %s", name, got, want)
	}
}

// TestFormat_Snapshot: the server's golden snapshot, loaded into the copy,
// is stored and exported byte for byte as the server wrote it.
func TestFormat_Snapshot(t *testing.T) {
	want := readFile(t, serverGolden)
	st := newMemStorage(0)
	db := mustOpenDB(t, st, testOptions())
	if err := db.Rebase(want, nil); err != nil {
		t.Fatal(err)
	}
	if got, _ := st.GetItem("pykv/t/snapshot"); got != want {
		t.Fatalf("stored snapshot differs from the server's:\n got %s\nwant %s", got, want)
	}
	got, err := db.Export()
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("Export differs from the server's snapshot:\n got %s\nwant %s", got, want)
	}
}

// TestFormat_LogRecords pins the log items of a few writes: persist's
// record lines, one item per write.
func TestFormat_LogRecords(t *testing.T) {
	st := newMemStorage(0)
	db := mustOpenDB(t, st, testOptions())
	mustPut(t, db, "a", "1")
	if _, err := db.Put("b/ü nicode", "line\nbreak \"quoted\" <tag>", 90*time.Second, engine.Absent); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Delete("a", 1); err != nil {
		t.Fatal(err)
	}
	var all strings.Builder
	for rev := int64(1); rev <= 3; rev++ {
		item, ok := st.GetItem(fmt.Sprintf("pykv/t/log/%020d", rev))
		if !ok {
			t.Fatalf("no log item for revision %d", rev)
		}
		cmd, err := codec.DecodeRecord([]byte(item))
		if err != nil {
			t.Fatalf("revision %d: %v", rev, err)
		}
		again := codec.AppendRecord(nil, &cmd)
		if string(again) != item {
			t.Fatalf("revision %d: item %q is not persist's encoding %q", rev, item, again)
		}
		all.WriteString(item)
	}
	golden(t, "testdata/log.golden.jsonl", all.String())
}

// TestFormat_OpensInServer copies the browser copy's items into a data
// folder (snapshot item → snapshot.json, log items → one wal segment) and
// opens it with the server's persist.Open: same keys, values and revisions.
func TestFormat_OpensInServer(t *testing.T) {
	st := newMemStorage(0)
	opts := testOptions()
	opts.FoldMinUnits = 500
	db := mustOpenDB(t, st, opts)
	for i := range 60 {
		mustPut(t, db, fmt.Sprintf("k%02d", i%17), strings.Repeat("é", i))
		if i%5 == 0 {
			db.Delete(fmt.Sprintf("k%02d", (i+3)%17), 0)
		}
	}
	if _, ok := st.GetItem("pykv/t/snapshot"); !ok || db.Status().LogItems == 0 {
		t.Fatalf("want both a snapshot and log items, have %+v", db.Status())
	}
	dir := t.TempDir()
	snap, _ := st.GetItem("pykv/t/snapshot")
	os.WriteFile(filepath.Join(dir, "snapshot.json"), []byte(snap), 0o644)
	var keys []string
	for _, k := range st.Keys() {
		if strings.HasPrefix(k, "pykv/t/log/") {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	var wal bytes.Buffer
	for _, k := range keys {
		v, _ := st.GetItem(k)
		wal.WriteString(v)
	}
	seg := "wal-" + strings.TrimPrefix(keys[0], "pykv/t/log/") + ".jsonl"
	os.WriteFile(filepath.Join(dir, seg), wal.Bytes(), 0o644)

	srv, err := persist.Open(dir, persist.Options{})
	if err != nil {
		t.Fatalf("server cannot open the browser copy's items: %v", err)
	}
	defer srv.Close()
	if r := srv.Status().Recovery; r.TruncatedBytes != 0 || r.Warning != "" {
		t.Errorf("server recovery: %+v", r)
	}
	got, _ := srv.Store().List("", "", 0)
	want, _ := db.List("", "", 0)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("server state:\n%+v\nbrowser copy:\n%+v", got, want)
	}
}

// TestFormat_ExportImport proves both directions on the same files: the
// server's export (testdata/server-export.json, written by persist) loads
// into the copy, and the copy's export (testdata/browser-export.json)
// imports into the server.
func TestFormat_ExportImport(t *testing.T) {
	fixed := time.UnixMilli(1_800_000_000_000)
	clock := func() time.Time { return fixed }

	// The server writes its export.
	server, err := persist.Open(t.TempDir(), persist.Options{Engine: engine.Options{Now: clock}})
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	s := server.Store()
	s.Put("user/1", `{"name":"Ada"}`)
	s.Put("user/2", "Grace")
	s.Put("user/1", `{"name":"Ada L."}`)
	s.Do(engine.Op{Type: engine.OpPut, Key: "session", Value: "x", TTL: 100 * 365 * 24 * time.Hour})
	s.Put("ü/ключ", "ünïcode\n\"quoted\"")
	var buf bytes.Buffer
	if err := server.Export(&buf); err != nil {
		t.Fatal(err)
	}
	golden(t, "testdata/server-export.json", buf.String())
	serverFile := readFile(t, "testdata/server-export.json")

	// It loads into the copy as its base, byte for byte...
	opts := testOptions()
	opts.Engine.Now = clock
	db := mustOpenDB(t, newMemStorage(0), opts)
	if err := db.Rebase(serverFile, nil); err != nil {
		t.Fatal(err)
	}
	if got, _ := db.Export(); got != serverFile {
		t.Fatalf("copy loaded from the server's export exports\n%s\nwant\n%s", got, serverFile)
	}
	// ...and imports into it like into the server.
	db2 := mustOpenDB(t, newMemStorage(0), opts)
	if res, err := db2.Import(serverFile); err != nil || res.Keys != 4 || res.Format != persist.FormatSnapshot {
		t.Fatalf("Import(server export) = %+v, %v", res, err)
	}
	if !reflect.DeepEqual(contents(db2), contents(db)) {
		t.Fatalf("imported %v, want %v", contents(db2), contents(db))
	}

	// The copy writes its export; the server imports it. (The copy starts
	// from the server's export, so every revision is fixed.)
	db3 := mustOpenDB(t, newMemStorage(0), opts)
	if err := db3.Rebase(serverFile, nil); err != nil {
		t.Fatal(err)
	}
	mustPut(t, db3, "offline/note", "typed in the browser")
	db3.Delete("user/2", 0)
	db2 = db3
	browserExport, err := db2.Export()
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "testdata/browser-export.json", browserExport)
	browserFile := readFile(t, "testdata/browser-export.json")
	if _, _, err := codec.ReadSnapshot(strings.NewReader(browserFile), "browser export"); err != nil {
		t.Fatalf("the server's strict reader refuses the copy's export: %v", err)
	}
	// ImportStore turns expiry times into TTLs with the wall clock, so the
	// target runs on it too.
	target, err := persist.Open(t.TempDir(), persist.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	res, err := codec.ImportStore(target.Store(), strings.NewReader(browserFile), codec.ImportMerge)
	if err != nil || res.Keys != 4 {
		t.Fatalf("server ImportStore(browser export) = %+v, %v", res, err)
	}
	want := contents(db2)
	got := map[string]string{}
	entries, _ := target.Store().List("", "", 0)
	for _, e := range entries {
		got[e.Key] = e.Value
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("server after import: %v, want %v", got, want)
	}
	wantExp := fixed.UnixMilli() + (100 * 365 * 24 * time.Hour).Milliseconds()
	if e, _ := target.Store().Get("session"); e.ExpiresAt < wantExp || e.ExpiresAt > wantExp+5000 {
		t.Errorf("the TTL did not survive the round trip: %+v", e)
	}
}

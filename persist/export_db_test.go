package persist_test

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pykv/pykv/engine"
	"github.com/pykv/pykv/persist"
)

// TestDB_ExportImport: an export imports into another store with the same
// values and expiry times under one revision, the flat original PyKV file
// imports too, a hand-written snapshot without its checksum is refused (a
// file that says it is a snapshot is checked as one), and a refused import
// changes nothing.
func TestDB_ExportImport(t *testing.T) {
	src := mustOpen(t, t.TempDir(), persist.Options{})
	mustPut(t, src.Store(), "a", "1")
	mustPut(t, src.Store(), "b/c d", "ü")
	src.Store().Do(engine.Op{Type: engine.OpPut, Key: "ttl", Value: "soon", TTL: time.Hour})
	var buf bytes.Buffer
	if err := src.Export(&buf); err != nil {
		t.Fatal(err)
	}
	dst := mustOpen(t, t.TempDir(), persist.Options{})
	mustPut(t, dst.Store(), "a", "old")
	res, err := dst.Import(bytes.NewReader(buf.Bytes()), persist.ImportMerge)
	if err != nil || res.Format != persist.FormatSnapshot || res.Keys != 3 {
		t.Fatalf("Import(export) = %+v, %v", res, err)
	}
	for k, v := range map[string]string{"a": "1", "b/c d": "ü", "ttl": "soon"} {
		if e, err := dst.Store().Get(k); err != nil || e.Value != v {
			t.Fatalf("after import %s = %+v, %v; want %s", k, e, err, v)
		}
	}
	if e, _ := dst.Store().Get("ttl"); e.ExpiresAt == 0 {
		t.Fatal("import dropped the TTL")
	}
	// All keys of one import share one revision.
	if e, _ := dst.Store().Get("a"); e.ModRev != res.Rev {
		t.Fatalf("imported key revision %d, import revision %d", e.ModRev, res.Rev)
	}

	// The original PyKV data file: a flat object.
	res, err = dst.Import(strings.NewReader(`{"x": "1", "y": "two"}`), persist.ImportMerge)
	if err != nil || res.Format != persist.FormatFlat || res.Keys != 2 {
		t.Fatalf("flat import = %+v, %v", res, err)
	}
	before := state(t, dst.Store())
	for _, bad := range []string{
		// A hand-written snapshot without count and checksum.
		`{"format": "pykv.snapshot", "version": 1, "rev": 3,
		"entries": [{"key": "h", "value": "hand", "create_rev": 1, "mod_rev": 1, "version": 1}]}`,
		``, `[]`, `"str"`, `{"k": 1}`, `{"k": {"nested": true}}`, `{"k": "v"`, `{"": "empty key"}`,
		`{"format":"pykv.snapshot","version":9,"entries":[]}`,
		strings.Replace(buf.String(), `"1"`, `"2"`, 1), // checksum no longer matches
	} {
		if _, err := dst.Import(strings.NewReader(bad), persist.ImportMerge); !errors.Is(err, persist.ErrBadImport) {
			t.Errorf("Import(%.40q) = %v, want ErrBadImport", bad, err)
		}
	}
	if after := state(t, dst.Store()); !reflect.DeepEqual(after, before) {
		t.Fatal("a refused import changed the store")
	}
}

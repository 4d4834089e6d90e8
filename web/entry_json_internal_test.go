package web

import (
	"bytes"
	"testing"

	"github.com/pykv/pykv/engine"
)

// entryJSONCases are entries whose strings need every kind of escaping
// encoding/json does, or none.
var entryJSONCases = []engine.Entry{
	{Key: "k", Value: "v", CreateRev: 1, ModRev: 1, Version: 1},
	{Key: "", Value: "", CreateRev: 0, ModRev: 0, Version: 0},
	{Key: "a/b c", Value: `say "hi" \ there`, CreateRev: 7, ModRev: 42, Version: 3, ExpiresAt: 1764000000123},
	{Key: "<tag>&amp;", Value: "<script>alert(1)</script> & more", CreateRev: 1, ModRev: 2, Version: 2},
	{Key: "ctl\x00\x01\x1f", Value: "\b\f\n\r\t\x7f", CreateRev: 9, ModRev: 9, Version: 1, ExpiresAt: -5},
	{Key: "line\u2028sep\u2029", Value: "héllo wörld 日本語 🙂", CreateRev: 1 << 62, ModRev: 1<<63 - 1, Version: 1 << 40},
	{Key: "bad\xffutf8\xc3", Value: "\xed\xa0\x80 lone surrogate bytes", CreateRev: 3, ModRev: 4, Version: 2},
}

// TestAppendEntryJSON holds the hand-written PUT answer byte for byte
// equal to what encode (encoding/json) writes for the same entry.
func TestAppendEntryJSON(t *testing.T) {
	for _, e := range entryJSONCases {
		checkEntryJSON(t, e)
	}
}

func checkEntryJSON(t *testing.T, e engine.Entry) {
	t.Helper()
	var want bytes.Buffer
	if err := jsonEncode(&want, e); err != nil {
		t.Fatal(err)
	}
	if got := appendEntryJSON([]byte("prefix"), &e); string(got) != "prefix"+want.String() {
		t.Errorf("appendEntryJSON(%+v):\n got %q\nwant %q", e, got, "prefix"+want.String())
	}
}

func FuzzAppendEntryJSON(f *testing.F) {
	for _, e := range entryJSONCases {
		f.Add(e.Key, e.Value, e.CreateRev, e.ModRev, e.Version, e.ExpiresAt)
	}
	f.Fuzz(func(t *testing.T, key, value string, create, mod, version, expires int64) {
		checkEntryJSON(t, engine.Entry{Key: key, Value: value, CreateRev: create, ModRev: mod, Version: version, ExpiresAt: expires})
	})
}

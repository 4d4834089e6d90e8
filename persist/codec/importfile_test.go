package codec_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/pykv/pykv/engine"
	"github.com/pykv/pykv/persist/codec"
)

// TestReadImport_Snapshot: an export reads back exactly, also one byte
// at a time (sequences of UTF-8 cut between reads) and re-indented; a
// changed byte anywhere but in whitespace is refused.
func TestReadImport_Snapshot(t *testing.T) {
	s := engine.New(engine.Options{})
	defer s.Close()
	want := []engine.ImportEntry{{Key: "a", Value: "1"}, {Key: "z", Value: "", ExpiresAt: 4102444800000}, {Key: "ünï/日本", Value: "x\"y\\z\u2028<>&"}}
	for _, e := range want {
		if _, err := s.Do(engine.Op{Type: engine.OpPut, Key: e.Key, Value: e.Value, ExpiresAt: e.ExpiresAt}); err != nil {
			t.Fatal(err)
		}
	}
	var export bytes.Buffer
	if err := codec.ExportStore(s, &export); err != nil {
		t.Fatal(err)
	}
	var indented bytes.Buffer
	if err := json.Indent(&indented, export.Bytes(), "\t", "  "); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"export": export.Bytes(), "indented": indented.Bytes()} {
		format, got, err := codec.ReadImport(iotest.OneByteReader(bytes.NewReader(data)))
		if err != nil || format != codec.FormatSnapshot || len(got) != len(want) {
			t.Fatalf("%s: %q, %+v, %v", name, format, got, err)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("%s: entry %d = %+v, want %+v", name, i, got[i], want[i])
			}
		}
	}
	// Every single-byte change outside whitespace is caught.
	data := export.Bytes()
	for i := range data {
		if bytes.IndexByte([]byte(" \n\t\r"), data[i]) >= 0 {
			continue
		}
		changed := bytes.Clone(data)
		changed[i] ^= 0x01
		if _, _, err := codec.ReadImport(bytes.NewReader(changed)); err == nil {
			t.Errorf("byte %d (%q) changed to %q: accepted", i, data[i], changed[i])
		} else if !errors.Is(err, codec.ErrBadImport) {
			t.Errorf("byte %d changed: %v does not wrap ErrBadImport", i, err)
		}
	}
}

// TestReadImport_Flat: a flat file's entries come back sorted; bad ones
// are refused naming the key.
func TestReadImport_Flat(t *testing.T) {
	format, got, err := codec.ReadImport(strings.NewReader(` {"b":"2", "format":"json", "a":"1"} `))
	if err != nil || format != codec.FormatFlat || len(got) != 3 || got[0].Key != "a" || got[1].Key != "b" || got[2] != (engine.ImportEntry{Key: "format", Value: "json"}) {
		t.Fatalf("flat file: %q %+v %v", format, got, err)
	}
	for _, body := range []string{"", "[]", "null", `"x"`, `{"a":"1"`, `{"a":"1",}`, `{"a":{"b":"c"}}`, `{"a":["b"]}`, `{"a":true}`,
		`{"a":"1","format":"pykv.snapshot"}`, "{\"a\":\"\xe2\x82\"}", "{\"\xed\xa0\x80\":\"1\"}"} {
		if _, _, err := codec.ReadImport(iotest.OneByteReader(strings.NewReader(body))); !errors.Is(err, codec.ErrBadImport) {
			t.Errorf("ReadImport(%q) = %v, want ErrBadImport", body, err)
		}
	}
	if _, got, err := codec.ReadImport(strings.NewReader(`{}`)); err != nil || len(got) != 0 {
		t.Errorf("{}: %+v %v", got, err)
	}
}

// TestReadImport_Surrogates: a \u escape of a UTF-16 surrogate that is not
// a high half followed at once by a low half stands for no character;
// encoding/json would store U+FFFD in its place. It is refused naming the
// key, also when read one byte at a time; pairs, escaped backslashes and
// an escaped U+FFFD read as they are.
func TestReadImport_Surrogates(t *testing.T) {
	for _, tc := range []struct{ body, key string }{
		{`{"a":"1","k":"\ud800"}`, `"k"`},
		{`{"k":"x\uD800y"}`, `"k"`},
		{`{"k":"\udc00"}`, `"k"`},
		{`{"k":"\ud800\ud800"}`, `"k"`},
		{`{"k":"\ud800\n"}`, `"k"`},
		{`{"k":"\ud800\u0041"}`, `"k"`},
		{`{"k":"\ud83d\ude00\udfff"}`, `"k"`},
		{`{"k\ud800":"v"}`, "key \"k\ufffd\""},
		{`{"a":"1","k\udbff":"v"}`, "key \"k\ufffd\""},
	} {
		_, _, err := codec.ReadImport(iotest.OneByteReader(strings.NewReader(tc.body)))
		if !errors.Is(err, codec.ErrBadImport) || !strings.Contains(err.Error(), tc.key) || !strings.Contains(err.Error(), "surrogate") {
			t.Errorf("ReadImport(%s) = %v, want ErrBadImport naming %s and the surrogate", tc.body, err, tc.key)
		}
	}
	_, got, err := codec.ReadImport(iotest.OneByteReader(strings.NewReader(`{"a":"\ud83d\ude00","b":"\\ud800","c":"\ufffd","d":"\uDBFF\uDFFF"}`)))
	want := []engine.ImportEntry{{Key: "a", Value: "😀"}, {Key: "b", Value: `\ud800`}, {Key: "c", Value: "\ufffd"}, {Key: "d", Value: "\U0010ffff"}}
	if err != nil || len(got) != len(want) {
		t.Fatalf("pairs and escaped backslashes: %+v %v", got, err)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("entry %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

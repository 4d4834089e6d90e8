package codec_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/pykv/pykv/engine"
	"github.com/pykv/pykv/persist/codec"
)

// FuzzDecodeRecord: no input crashes the decoder, and what it accepts
// re-encodes to a record that decodes the same.
func FuzzDecodeRecord(f *testing.F) {
	line := codec.AppendRecord(nil, &engine.Command{Rev: 3, Changes: []engine.Change{{Op: engine.OpPut, Key: "k", Value: "v", ExpiresAt: 9}}})
	f.Add(line)
	f.Add([]byte(`{"rev":1,"ops":[{"op":"delete","key":"a"}],"crc":"00000000"}`))
	f.Add([]byte("\x00\xff{"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cmd, err := codec.DecodeRecord(data)
		if err != nil {
			return
		}
		again := codec.AppendRecord(nil, &cmd)
		cmd2, err := codec.DecodeRecord(again)
		if err != nil || !reflect.DeepEqual(cmd, cmd2) {
			t.Fatalf("round trip changed %+v into %+v (%v)", cmd, cmd2, err)
		}
	})
}

// FuzzReadSnapshot: no input crashes the snapshot reader, and what it
// accepts writes back byte for byte (sorted, one layout).
func FuzzReadSnapshot(f *testing.F) {
	var buf bytes.Buffer
	codec.WriteSnapshot(&buf, 4, []*engine.Entry{{Key: "a", Value: "1", CreateRev: 1, ModRev: 4, Version: 2}})
	f.Add(buf.Bytes())
	buf.Reset()
	codec.WriteSnapshot(&buf, 0, nil)
	f.Add(buf.Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		rev, entries, err := codec.ReadSnapshot(bytes.NewReader(data), "fuzz")
		if err != nil {
			return
		}
		ptrs := make([]*engine.Entry, len(entries))
		for i := range entries {
			ptrs[i] = &entries[i]
		}
		var out bytes.Buffer
		if err := codec.WriteSnapshot(&out, rev, ptrs); err != nil {
			t.Fatal(err)
		}
		if _, again, err := codec.ReadSnapshot(&out, "again"); err != nil || len(again) != len(entries) {
			t.Fatalf("accepted snapshot does not round-trip: %v", err)
		}
	})
}

// FuzzReadImport: no import file crashes the reader, and what it accepts
// is in strict key order, valid UTF-8 with no U+FFFD the file did not
// hold, and, read from a snapshot, what
// WriteSnapshot writes for those entries reads back the same.
func FuzzReadImport(f *testing.F) {
	f.Add([]byte(`{"a":"1"}`))
	f.Add([]byte(`{"format":"pykv.snapshot","version":1,"entries":[{"key":"k","value":"v"}]}`))
	f.Add([]byte(`{"a":1}`))
	f.Add([]byte(`{"format":"pykv.snapshot","version":1,"rev":1,"count":1,"entries":[` + "\n" +
		`{"key":"k","value":"v","create_rev":1,"mod_rev":1,"version":1}` + "\n" + `],"crc":"00000000"}`))
	f.Add([]byte("{\"k\":\"\xff\",\"k\":null}"))
	f.Add([]byte(`{"k":"\ud800","\udc00":"\ud83d\ude00"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		format, entries, err := codec.ReadImport(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, codec.ErrBadImport) {
				t.Fatalf("error %v does not wrap ErrBadImport", err)
			}
			return
		}
		// Every U+FFFD accepted was in the file as one, raw or escaped:
		// none stands in for invalid UTF-8 or a lone surrogate escape.
		inFile := bytes.Count(data, []byte("\ufffd")) + bytes.Count(bytes.ToLower(data), []byte(`\ufffd`))
		accepted := 0
		for _, e := range entries {
			accepted += strings.Count(e.Key, "\ufffd") + strings.Count(e.Value, "\ufffd")
		}
		if accepted > inFile {
			t.Fatalf("accepted %d U+FFFD, the file holds only %d", accepted, inFile)
		}
		for i, e := range entries {
			if !utf8.ValidString(e.Key) || !utf8.ValidString(e.Value) {
				t.Fatalf("accepted entry %d is not valid UTF-8: %q", i, e.Key)
			}
			if i > 0 && e.Key <= entries[i-1].Key {
				t.Fatalf("accepted entries out of order or twice: %q after %q", e.Key, entries[i-1].Key)
			}
		}
		if format != codec.FormatSnapshot {
			return
		}
		var out bytes.Buffer
		ptrs := make([]*engine.Entry, len(entries))
		for i, e := range entries {
			ptrs[i] = &engine.Entry{Key: e.Key, Value: e.Value, CreateRev: 1, ModRev: 1, Version: 1, ExpiresAt: e.ExpiresAt}
		}
		if err := codec.WriteSnapshot(&out, 1, ptrs); err != nil {
			t.Fatal(err)
		}
		if _, again, err := codec.ReadImport(&out); err != nil || len(again) != len(entries) {
			t.Fatalf("accepted snapshot does not round-trip: %d entries, %v", len(again), err)
		}
	})
}

// FuzzEntryLine: the fast entry decoder agrees with encoding/json on every
// line that the snapshot reader accepts.
func FuzzEntryLine(f *testing.F) {
	f.Add([]byte(`{"key":"a","value":"1","create_rev":1,"mod_rev":4,"version":2}`))
	f.Add([]byte(`{"key":"a","value":"ü","create_rev":1,"mod_rev":4,"version":2,"expires_at":99}`))
	f.Add([]byte(`{"key":"a\"","value":"","create_rev":01,"mod_rev":4,"version":2}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		var buf bytes.Buffer
		buf.WriteString(`{"format":"pykv.snapshot","version":1,"rev":9,"count":1,"entries":[` + "\n")
		buf.Write(line)
		buf.WriteString("\n")
		doc := buf.Bytes()
		// The fuzzed line becomes a snapshot's only entry, with a valid checksum.
		crcd := codec.SealSnapshotForTest(doc)
		_, fast, ferr := codec.ReadSnapshot(bytes.NewReader(crcd), "fuzz")
		var slow engine.Entry
		serr := json.Unmarshal(bytes.TrimSuffix(line, []byte(",")), &slow) // the reader drops the separator
		if ferr == nil && (serr != nil || len(fast) != 1 || fast[0] != slow) {
			t.Fatalf("line %q: reader gave %+v, encoding/json %+v (%v)", line, fast, slow, serr)
		}
	})
}

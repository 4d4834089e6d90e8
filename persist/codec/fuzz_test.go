package codec_test

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

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

// FuzzReadImport: no import file crashes the reader.
func FuzzReadImport(f *testing.F) {
	f.Add([]byte(`{"a":"1"}`))
	f.Add([]byte(`{"format":"pykv.snapshot","version":1,"entries":[{"key":"k","value":"v"}]}`))
	f.Add([]byte(`{"a":1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		codec.ReadImport(bytes.NewReader(data))
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

package persist_test

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/pykv/pykv/engine"
	"github.com/pykv/pykv/persist"
)

// TestWriteRecord: the record written in pieces is byte for byte the line
// AppendRecord makes, whatever the piece size.
func TestWriteRecord(t *testing.T) {
	cmd := engine.Command{Rev: 42}
	for i := range 50 {
		cmd.Changes = append(cmd.Changes, engine.Change{Op: engine.OpPut, Key: fmt.Sprintf("k\u00e9y-%d<>", i), Value: "v\n\"", ExpiresAt: int64(i)})
	}
	cmd.Changes = append(cmd.Changes, engine.Change{Op: engine.OpDelete, Key: "gone"})
	want := persist.AppendRecord(nil, &cmd)
	for _, chunk := range []int{1, 7, 100, 1 << 20} {
		var got bytes.Buffer
		n, _, err := persist.WriteRecord(&got, &cmd, nil, chunk)
		if err != nil || n != int64(len(want)) || !bytes.Equal(got.Bytes(), want) {
			t.Errorf("chunk %d: wrote %d bytes (%v), equal to AppendRecord's %d: %v", chunk, n, err, len(want), bytes.Equal(got.Bytes(), want))
		}
	}
}

// TestDB_ImportReopens: an import big enough to be logged in pieces is
// all there after a reopen.
func TestDB_ImportReopens(t *testing.T) {
	dir := t.TempDir()
	db := mustOpen(t, dir, persist.Options{})
	var body bytes.Buffer
	body.WriteString("{")
	const n = 10_000
	for i := range n {
		if i > 0 {
			body.WriteString(",")
		}
		fmt.Fprintf(&body, `"key-%05d":"value %d"`, i, i)
	}
	body.WriteString("}")
	res, err := db.ImportFile(&body, persist.ImportMerge)
	if err != nil || res.Added != n {
		t.Fatalf("import: %+v %v", res, err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = mustOpen(t, dir, persist.Options{})
	if db.Store().Len() != n || db.Store().Rev() != res.Rev {
		t.Fatalf("after reopen: %d keys at revision %d, want %d at %d", db.Store().Len(), db.Store().Rev(), n, res.Rev)
	}
	if e, err := db.Store().Get("key-09999"); err != nil || e.Value != "value 9999" {
		t.Errorf("key-09999 after reopen: %+v %v", e, err)
	}
}

package codec_test

import (
	"bytes"
	"flag"
	"os"
	"testing"

	"github.com/pykv/pykv/engine"
	"github.com/pykv/pykv/persist/codec"
)

var update = flag.Bool("update", false, "rewrite golden files")

// TestWriteSnapshot_Golden pins the snapshot format byte for byte: the
// browser copy and every export share it.
func TestWriteSnapshot_Golden(t *testing.T) {
	entries := []*engine.Entry{
		{Key: "b/ü nicode", Value: "line\nbreak \"quoted\" <tag>", CreateRev: 2, ModRev: 5, Version: 3},
		{Key: "a", Value: "", CreateRev: 1, ModRev: 1, Version: 1},
		{Key: "ttl", Value: "x", CreateRev: 6, ModRev: 6, Version: 1, ExpiresAt: 1893456000000},
	}
	var buf bytes.Buffer
	if err := codec.WriteSnapshot(&buf, 6, entries); err != nil {
		t.Fatal(err)
	}
	const golden = "testdata/snapshot.golden.json"
	if *update {
		os.WriteFile(golden, buf.Bytes(), 0o644)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Fatalf("snapshot format changed (run with -update if on purpose):\n got %s\nwant %s", buf.Bytes(), want)
	}
	rev, got, err := codec.ReadSnapshot(bytes.NewReader(want), golden)
	if err != nil || rev != 6 || len(got) != 3 || got[0].Key != "a" || got[1] != *entries[1] {
		t.Fatalf("ReadSnapshot(golden) = %d, %+v, %v", rev, got, err)
	}
}

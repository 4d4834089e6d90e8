package codec_test

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/pykv/pykv/engine"
	"github.com/pykv/pykv/persist/codec"
)

// TestWriteRecord: the record written in pieces is byte for byte the line
// AppendRecord makes, whatever the piece size.
func TestWriteRecord(t *testing.T) {
	cmd := engine.Command{Rev: 42}
	for i := range 50 {
		cmd.Changes = append(cmd.Changes, engine.Change{Op: engine.OpPut, Key: fmt.Sprintf("k\u00e9y-%d<>", i), Value: "v\n\"", ExpiresAt: int64(i)})
	}
	cmd.Changes = append(cmd.Changes, engine.Change{Op: engine.OpDelete, Key: "gone"})
	want := codec.AppendRecord(nil, &cmd)
	for _, chunk := range []int{1, 7, 100, 1 << 20} {
		var got bytes.Buffer
		n, _, err := codec.WriteRecord(&got, &cmd, nil, chunk)
		if err != nil || n != int64(len(want)) || !bytes.Equal(got.Bytes(), want) {
			t.Errorf("chunk %d: wrote %d bytes (%v), equal to AppendRecord's %d: %v", chunk, n, err, len(want), bytes.Equal(got.Bytes(), want))
		}
	}
}

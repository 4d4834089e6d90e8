package codec

import (
	"hash/crc32"
	"io"
	"strconv"

	"github.com/pykv/pykv/engine"
)

// WriteRecord writes cmd to w as the line AppendRecord makes, in writes of
// about chunk bytes, so that a command of millions of changes (an import)
// is never encoded whole in memory. buf is scratch space; the grown buffer
// is returned for reuse. It returns the bytes written: on an error, a
// partial line may have reached w, which the caller must cut.
func WriteRecord(w io.Writer, cmd *engine.Command, buf []byte, chunk int) (int64, []byte, error) {
	var (
		written int64
		crc     uint32
	)
	flush := func(final bool) error {
		if !final {
			crc = crc32.Update(crc, castagnoli, buf)
		}
		n, err := w.Write(buf)
		written += int64(n)
		if err == nil && n != len(buf) {
			err = io.ErrShortWrite
		}
		buf = buf[:0]
		return err
	}
	buf = append(buf[:0], `{"rev":`...)
	buf = strconv.AppendInt(buf, cmd.Rev, 10)
	buf = append(buf, `,"ops":`...)
	if cmd.Changes == nil {
		buf = append(buf, "null"...)
	} else {
		buf = append(buf, '[')
		for i := range cmd.Changes {
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = appendChange(buf, &cmd.Changes[i])
			if len(buf) >= chunk {
				if err := flush(false); err != nil {
					return written, buf, err
				}
			}
		}
		buf = append(buf, ']')
	}
	crc = crc32.Update(crc, castagnoli, buf)
	buf = appendCRC(buf, crc)
	err := flush(true)
	return written, buf, err
}

package codec

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"slices"

	"github.com/pykv/pykv/engine"
)

// Snapshot format identifiers, written in every snapshot's header.
const (
	SnapshotFormat  = "pykv.snapshot"
	SnapshotVersion = 1
)

// snapshotHeader is the first line of a snapshot, without its entries.
type snapshotHeader struct {
	Format  string `json:"format"`
	Version int    `json:"version"`
	Rev     int64  `json:"rev"`
	Count   int    `json:"count"`
}

// WriteSnapshot writes entries, the state at revision rev, to w in the
// snapshot format: one JSON document laid out one entry per line,
//
//	{"format":"pykv.snapshot","version":1,"rev":9,"count":2,"entries":[
//	{"key":"a","value":"1","create_rev":1,"mod_rev":4,"version":2},
//	{"key":"b","value":"2","create_rev":9,"mod_rev":9,"version":1}
//	],"crc":"…"}
//
// where crc is the CRC-32C of every byte before the last line. Entries are
// written in key order (the slice is sorted in place).
func WriteSnapshot(w io.Writer, rev int64, entries []*engine.Entry) error {
	slices.SortFunc(entries, func(a, b *engine.Entry) int { return cmp.Compare(a.Key, b.Key) })
	h := crc32.New(castagnoli)
	bw := bufio.NewWriterSize(io.MultiWriter(w, h), 256<<10)
	hdr, err := json.Marshal(snapshotHeader{SnapshotFormat, SnapshotVersion, rev, len(entries)})
	if err != nil {
		return err
	}
	bw.Write(hdr[:len(hdr)-1])
	bw.WriteString(`,"entries":[` + "\n")
	var line []byte
	for i, e := range entries {
		line = appendEntry(line[:0], e)
		bw.Write(line)
		if i < len(entries)-1 {
			bw.WriteByte(',')
		}
		if err := bw.WriteByte('\n'); err != nil {
			return err
		}
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	footer := appendCRC([]byte(`]`), h.Sum32())
	_, err = w.Write(footer)
	return err
}

// LineReader reads lines of any length from a log or snapshot, tracking the
// byte offset of each, so errors can name where the damage is.
type LineReader struct {
	r    *bufio.Reader
	off  int64 // offset of the next line
	long []byte
}

// NewLineReader returns a LineReader reading r through a 1 MiB buffer.
func NewLineReader(r io.Reader) *LineReader {
	return &LineReader{r: bufio.NewReaderSize(r, 1<<20)}
}

// Offset returns the byte offset of the line the next call to Next returns.
func (lr *LineReader) Offset() int64 { return lr.off }

// Next returns the next line including its newline (the last line of the
// input may lack one), or io.EOF after the last line, or the reader's
// error. The slice is valid until the next call.
func (lr *LineReader) Next() ([]byte, error) {
	line, err := lr.r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		lr.long = append(lr.long[:0], line...)
		for errors.Is(err, bufio.ErrBufferFull) {
			line, err = lr.r.ReadSlice('\n')
			lr.long = append(lr.long, line...)
		}
		line = lr.long
	}
	if err == io.EOF && len(line) > 0 {
		err = nil
	}
	lr.off += int64(len(line))
	return line, err
}

// SkipZeros consumes the NUL bytes at the reader's position and returns how
// many there were. It stops before the first other byte, or at the end of
// the input (then the next Next returns io.EOF). Log segments end in zeros
// written ahead of their records, and no record holds a NUL byte (JSON
// spells it \u0000), so a reader stops where a line would start with one.
func (lr *LineReader) SkipZeros() (int64, error) {
	var n int64
	for {
		if lr.r.Buffered() == 0 {
			if _, err := lr.r.Peek(1); err != nil {
				if err == io.EOF {
					return n, nil
				}
				return n, err
			}
		}
		buf, _ := lr.r.Peek(lr.r.Buffered())
		k := 0
		for k < len(buf) && buf[k] == 0 {
			k++
		}
		lr.r.Discard(k)
		n += int64(k)
		lr.off += int64(k)
		if k < len(buf) {
			return n, nil
		}
	}
}

// ReadSnapshot reads a snapshot written by WriteSnapshot, checking its
// layout and checksum. Errors are *CorruptError values whose File is name and
// whose Offset is where the damage was found.
func ReadSnapshot(r io.Reader, name string) (rev int64, entries []engine.Entry, err error) {
	lr := NewLineReader(r)
	crc := crc32.New(castagnoli) // of every line before the checksum line
	corrupt := func(off int64, err error) (int64, []engine.Entry, error) {
		return 0, nil, &CorruptError{File: name, Offset: off, Err: err}
	}
	line, err := lr.Next()
	if err != nil {
		return corrupt(0, fmt.Errorf("%w: no header: %v", ErrMalformed, err))
	}
	crc.Write(line)
	const entriesOpen = `,"entries":[` + "\n"
	if !bytes.HasSuffix(line, []byte(entriesOpen)) {
		return corrupt(0, fmt.Errorf("%w: header line does not open the entries", ErrMalformed))
	}
	var hdr snapshotHeader
	hdrJSON := append(bytes.Clone(line[:len(line)-len(entriesOpen)]), '}')
	if err := json.Unmarshal(hdrJSON, &hdr); err != nil {
		return corrupt(0, fmt.Errorf("%w: header: %v", ErrMalformed, err))
	}
	if hdr.Format != SnapshotFormat || hdr.Version != SnapshotVersion {
		return corrupt(0, fmt.Errorf("%w: format %q version %d, want %q version %d", ErrMalformed, hdr.Format, hdr.Version, SnapshotFormat, SnapshotVersion))
	}
	if hdr.Rev < 0 || hdr.Count < 0 {
		return corrupt(0, fmt.Errorf("%w: negative rev or count", ErrMalformed))
	}
	// The header's count is not checked yet (the checksum comes last), so
	// it only hints the first allocation: a forged count of billions must
	// not reserve gigabytes.
	entries = make([]engine.Entry, 0, min(hdr.Count, 1<<16))
	var scratch []byte
	for {
		off := lr.Offset()
		line, err := lr.Next()
		if err != nil {
			return corrupt(off, fmt.Errorf("%w: ends before the checksum line", ErrMalformed))
		}
		if line[0] == ']' { // the footer
			footer := bytes.TrimSuffix(line, []byte("\n"))
			if len(footer) != 1+crcSuffixLen || !bytes.HasPrefix(footer[1:], []byte(`,"crc":"`)) {
				return corrupt(off, fmt.Errorf("%w: bad checksum line", ErrMalformed))
			}
			want, ok := parseHex8(footer[9:17])
			if !ok || !bytes.HasSuffix(footer, []byte(`"}`)) {
				return corrupt(off, fmt.Errorf("%w: checksum is not 8 lowercase hex digits", ErrMalformed))
			}
			if crc.Sum32() != want {
				return corrupt(off, ErrChecksum)
			}
			if rest, _ := lr.Next(); len(rest) != 0 {
				return corrupt(lr.Offset()-int64(len(rest)), fmt.Errorf("%w: data after the checksum line", ErrMalformed))
			}
			break
		}
		crc.Write(line)
		body := bytes.TrimSuffix(line, []byte("\n"))
		body = bytes.TrimSuffix(body, []byte(","))
		var e engine.Entry
		if err := decodeEntry(body, &e, &scratch); err != nil {
			return corrupt(off, fmt.Errorf("%w: entry: %v", ErrMalformed, err))
		}
		if e.Key == "" {
			return corrupt(off, fmt.Errorf("%w: entry with an empty key", ErrMalformed))
		}
		if len(entries) > 0 && e.Key <= entries[len(entries)-1].Key {
			return corrupt(off, fmt.Errorf("%w: entries out of key order", ErrMalformed))
		}
		entries = append(entries, e)
	}
	if len(entries) != hdr.Count {
		return corrupt(0, fmt.Errorf("%w: header says %d entries, found %d", ErrMalformed, hdr.Count, len(entries)))
	}
	return hdr.Rev, entries, nil
}

// appendEntry appends e as encoding/json spells it (the golden snapshot and
// TestWriteSnapshot_EntriesAsEncodingJSON hold it to that), by hand: a
// snapshot writes one per key.
func appendEntry(dst []byte, e *engine.Entry) []byte {
	dst = AppendKey(dst, '{', e.Key, true)
	dst = AppendValue(dst, ',', e.Value, true)
	dst = AppendCreateRev(dst, ',', e.CreateRev)
	dst = AppendModRev(dst, ',', e.ModRev)
	dst = AppendVersion(dst, ',', e.Version)
	dst = AppendExpiresAt(dst, ',', e.ExpiresAt)
	return append(dst, '}')
}

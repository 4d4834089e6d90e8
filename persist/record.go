package persist

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/pykv/pykv/engine"
)

// castagnoli is the CRC-32C table: the checksum of every log record and
// snapshot (hardware-accelerated on amd64 and arm64).
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// crcSuffixLen is the length of `,"crc":"xxxxxxxx"}` ending a record.
const crcSuffixLen = len(`,"crc":"00000000"}`)

// Errors describing a record or snapshot that fails its checks. They come
// wrapped in a *CorruptError naming the file and offset.
var (
	ErrChecksum  = errors.New("checksum mismatch")
	ErrMalformed = errors.New("malformed record")
)

// CorruptError reports damaged data: which file, at which byte offset.
type CorruptError struct {
	File   string
	Offset int64
	Err    error
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("%s at offset %d: %v", e.File, e.Offset, e.Err)
}

func (e *CorruptError) Unwrap() error { return e.Err }

// AppendRecord appends cmd to dst as one log line:
//
//	{"rev":7,"ops":[{"op":"put","key":"a","value":"1"}],"crc":"…"}\n
//
// The checksum is the CRC-32C, in hex, of every byte of the line before
// `,"crc"`, so a reader checks it without re-encoding anything.
func AppendRecord(dst []byte, cmd *engine.Command) ([]byte, error) {
	b, err := json.Marshal(cmd)
	if err != nil {
		return dst, err
	}
	body := b[:len(b)-1] // without the closing brace
	dst = append(dst, body...)
	return appendCRC(dst, crc32.Checksum(body, castagnoli)), nil
}

func appendCRC(dst []byte, crc uint32) []byte {
	dst = append(dst, `,"crc":"`...)
	var hex [8]byte
	const digits = "0123456789abcdef"
	for i := 7; i >= 0; i-- {
		hex[i] = digits[crc&0xf]
		crc >>= 4
	}
	dst = append(dst, hex[:]...)
	return append(dst, "\"}\n"...)
}

// checkCRC verifies a line (without its newline) that ends in a crc suffix
// and returns the part the checksum covers.
func checkCRC(line []byte) ([]byte, error) {
	if len(line) < crcSuffixLen+1 {
		return nil, fmt.Errorf("%w: line too short", ErrMalformed)
	}
	body, suffix := line[:len(line)-crcSuffixLen], line[len(line)-crcSuffixLen:]
	if !bytes.HasPrefix(suffix, []byte(`,"crc":"`)) || !bytes.HasSuffix(suffix, []byte(`"}`)) {
		return nil, fmt.Errorf("%w: no checksum at the end of the line", ErrMalformed)
	}
	want, ok := parseHex8(suffix[8:16])
	if !ok {
		return nil, fmt.Errorf("%w: checksum is not 8 lowercase hex digits", ErrMalformed)
	}
	if crc32.Checksum(body, castagnoli) != want {
		return nil, ErrChecksum
	}
	return body, nil
}

// parseHex8 parses exactly 8 lowercase hex digits, the only spelling the
// writer uses, so that no flipped bit (a→A) goes unnoticed.
func parseHex8(b []byte) (uint32, bool) {
	if len(b) != 8 {
		return 0, false
	}
	var v uint32
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			v = v<<4 | uint32(c-'0')
		case c >= 'a' && c <= 'f':
			v = v<<4 | uint32(c-'a'+10)
		default:
			return 0, false
		}
	}
	return v, true
}

// DecodeRecord decodes one log line (with or without its newline) and checks
// its checksum and shape.
func DecodeRecord(line []byte) (engine.Command, error) {
	line = bytes.TrimSuffix(line, []byte("\n"))
	if _, err := checkCRC(line); err != nil {
		return engine.Command{}, err
	}
	var rec struct {
		engine.Command
		CRC string `json:"crc"`
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rec); err != nil {
		return engine.Command{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if rec.Rev <= 0 || len(rec.Changes) == 0 {
		return engine.Command{}, fmt.Errorf("%w: record needs a positive rev and at least one op", ErrMalformed)
	}
	for _, ch := range rec.Changes {
		if ch.Key == "" || (ch.Op != engine.OpPut && ch.Op != engine.OpDelete && ch.Op != engine.OpExpire) {
			return engine.Command{}, fmt.Errorf("%w: op %q on key %q", ErrMalformed, ch.Op, ch.Key)
		}
	}
	return rec.Command, nil
}

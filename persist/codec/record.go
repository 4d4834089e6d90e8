package codec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"unicode/utf8"

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
//
// The line is byte for byte what encoding/json makes of cmd (the record
// tests compare them), written by hand: this runs once per write, and in
// the browser copy reflection was most of the cost of a put.
func AppendRecord(dst []byte, cmd *engine.Command) []byte {
	start := len(dst)
	dst = AppendRev(dst, '{', cmd.Rev)
	dst = append(dst, `,"ops":`...)
	if cmd.Changes == nil {
		dst = append(dst, "null"...)
	} else {
		dst = append(dst, '[')
		for i := range cmd.Changes {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendChange(dst, &cmd.Changes[i])
		}
		dst = append(dst, ']')
	}
	return appendCRC(dst, crc32.Checksum(dst[start:], castagnoli))
}

// appendChange appends ch as encoding/json does, omitempty fields included.
func appendChange(dst []byte, ch *engine.Change) []byte {
	dst = AppendJSONString(named(dst, '{', `,"op":`), string(ch.Op), true)
	dst = AppendKey(dst, ',', ch.Key, true)
	if ch.Value != "" {
		dst = AppendValue(dst, ',', ch.Value, true)
	}
	dst = AppendExpiresAt(dst, ',', ch.ExpiresAt)
	return append(dst, '}')
}

// AppendJSONString appends s as a JSON string exactly as encoding/json
// spells it: `"` and `\` escaped, \b \f \n \r \t short, other control
// characters as \u00XX, U+2028 and U+2029 as \u2028 and \u2029, and each
// byte of invalid UTF-8 as \ufffd. With escapeHTML (Marshal's default, and
// the files' spelling) < > & are written as \u00XX too; without it (an
// Encoder with SetEscapeHTML(false), the API's spelling) they are left as
// they are.
func AppendJSONString(dst []byte, s string, escapeHTML bool) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && (!escapeHTML || c != '<' && c != '>' && c != '&') {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
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

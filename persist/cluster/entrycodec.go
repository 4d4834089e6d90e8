package cluster

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/pykv/pykv/engine"
	"github.com/pykv/pykv/persist/codec"
)

// The raft log's entries are the JSON encoding/json makes of an entry, and
// stay so: the bytes already in raft.db, and those a member of an older
// build sends, are that. But every member decodes every entry on the apply
// path, the leader before it answers the writers, and reflection there was
// about 7% of a cluster's CPU under PUT load. So entries are written and
// read by hand here:
//
//   - the writers produce exactly json.Marshal's bytes (the fuzz test
//     compares them), strings spelled by codec.AppendJSONString;
//   - the reader understands exactly what the writers produce, and hands
//     anything else (whitespace, a field name in other case, a repeated
//     field, null, a number with a fraction, a surrogate escape, invalid
//     UTF-8, a nested batch, ...) to json.Unmarshal, so odd or damaged
//     input decodes, or fails, exactly as it always did.

// encodeProposal returns the log entry of a write (p.Ops) or, when p has
// no ops, of an expiry (p.Expire).
func encodeProposal(p *engine.Proposal) []byte {
	// Room for the strings and what surrounds them, so that one allocation
	// does unless escapes lengthen the strings.
	size := 48
	for i := range p.Ops {
		size += 80 + len(p.Ops[i].Key) + len(p.Ops[i].Value)
	}
	for i := range p.Expire {
		size += 48 + len(p.Expire[i].Key)
	}
	dst := make([]byte, 0, size)
	if len(p.Ops) == 0 {
		dst = appendEntryHead(dst, kindExpire, p.At)
		if len(p.Expire) > 0 {
			dst = append(dst, `,"expire":[`...)
			for i := range p.Expire {
				dst = appendExp(dst, i, &entryExp{Key: p.Expire[i].Key, At: p.Expire[i].At})
			}
			dst = append(dst, ']')
		}
		return append(dst, '}')
	}
	dst = appendEntryHead(dst, kindWrite, p.At)
	dst = append(dst, `,"ops":[`...)
	for i := range p.Ops {
		op := &p.Ops[i]
		dst = appendOp(dst, i, &entryOp{Op: op.Type, Key: op.Key, Value: op.Value, ExpiresAt: op.ExpiresAt, IfRev: op.IfRev})
	}
	return append(dst, "]}"...)
}

// encodeEntry returns e as a log entry.
func encodeEntry(e *entry) []byte {
	return appendEntry(nil, e)
}

// encodeBatch returns the log entry carrying ws: the write's own entry for
// one, else a batch entry holding theirs in order (their JSON spliced in,
// not encoded again).
func encodeBatch(ws []*PendingWrite) []byte {
	if len(ws) == 1 {
		return ws[0].data
	}
	size := len(`{"kind":"batch","batch":[]}`)
	for _, w := range ws {
		size += len(w.data) + 1
	}
	b := make([]byte, 0, size)
	b = append(b, `{"kind":"batch","batch":[`...)
	for i, w := range ws {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, w.data...)
	}
	return append(b, "]}"...)
}

// appendEntry appends e as json.Marshal spells it: the fields in the
// struct's order, those marked omitempty left out when empty.
func appendEntry(dst []byte, e *entry) []byte {
	dst = appendEntryHead(dst, e.Kind, e.At)
	if len(e.Ops) > 0 {
		dst = append(dst, `,"ops":[`...)
		for i := range e.Ops {
			dst = appendOp(dst, i, &e.Ops[i])
		}
		dst = append(dst, ']')
	}
	if len(e.Expire) > 0 {
		dst = append(dst, `,"expire":[`...)
		for i := range e.Expire {
			dst = appendExp(dst, i, &e.Expire[i])
		}
		dst = append(dst, ']')
	}
	if e.ID != "" {
		dst = codec.AppendStringField(dst, ',', "id", e.ID, true)
	}
	if e.API != "" {
		dst = codec.AppendStringField(dst, ',', "api", e.API, true)
	}
	if len(e.Batch) > 0 {
		dst = append(dst, `,"batch":[`...)
		for i := range e.Batch {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendEntry(dst, &e.Batch[i])
		}
		dst = append(dst, ']')
	}
	return append(dst, '}')
}

// appendEntryHead appends an entry's opening brace and its first fields.
func appendEntryHead(dst []byte, kind string, at int64) []byte {
	dst = codec.AppendStringField(dst, '{', "kind", kind, true)
	if at != 0 {
		dst = codec.AppendIntField(dst, ',', "at", at)
	}
	return dst
}

// appendOp appends op, the i-th of its array.
func appendOp(dst []byte, i int, op *entryOp) []byte {
	if i > 0 {
		dst = append(dst, ',')
	}
	dst = codec.AppendStringField(dst, '{', "op", string(op.Op), true)
	dst = codec.AppendKey(dst, ',', op.Key, true)
	if op.Value != "" {
		dst = codec.AppendValue(dst, ',', op.Value, true)
	}
	dst = codec.AppendExpiresAt(dst, ',', op.ExpiresAt)
	if op.IfRev != 0 {
		dst = codec.AppendIntField(dst, ',', "if_rev", op.IfRev)
	}
	return append(dst, '}')
}

// appendExp appends x, the i-th of its array. Its at is not omitempty.
func appendExp(dst []byte, i int, x *entryExp) []byte {
	if i > 0 {
		dst = append(dst, ',')
	}
	dst = codec.AppendKey(dst, '{', x.Key, true)
	dst = codec.AppendIntField(dst, ',', "at", x.At)
	return append(dst, '}')
}

// decodeEntry decodes a log entry as json.Unmarshal does, errors wrapped
// in errBadEntry.
func decodeEntry(data []byte) (entry, error) {
	if e, ok := decodeEntryFast(data); ok {
		return e, nil
	}
	var e entry
	if err := json.Unmarshal(data, &e); err != nil {
		return e, fmt.Errorf("%w: %v", errBadEntry, err)
	}
	return e, nil
}

// decodeEntryFast decodes data if it is an entry as the writers above
// spell it, and reports false for anything else.
func decodeEntryFast(data []byte) (entry, bool) {
	var e entry
	d := entryDecoder{data: data}
	if !d.entry(&e, true) || d.pos != len(data) {
		return entry{}, false
	}
	return e, true
}

// entryDecoder reads the JSON of one entry. Each method reads one thing at
// pos and moves past it, or reports false when the input is not what the
// writers make; no method reports an error, since json.Unmarshal then
// reads the input again and says what is wrong with it.
type entryDecoder struct {
	data []byte
	pos  int
	buf  []byte // the last string read, when it had escapes
}

// Field bits, to refuse a field seen twice: encoding/json keeps the last
// one (and for an array, decodes into the first one's elements), which
// the writers never need.
const (
	fieldKind = 1 << iota
	fieldAt
	fieldOps
	fieldExpire
	fieldID
	fieldAPI
	fieldBatch
	fieldOp
	fieldKey
	fieldValue
	fieldExpiresAt
	fieldIfRev
)

// entry reads an entry into e, which must be zero. Only a top-level entry
// may hold a batch: the writers never nest them.
func (d *entryDecoder) entry(e *entry, top bool) bool {
	var seen uint16 // field bits, for first
	return d.object(func(name []byte) bool {
		switch string(name) {
		case "kind":
			b, ok := d.field(&seen, fieldKind)
			e.Kind = internKind(b)
			return ok
		case "at":
			return first(&seen, fieldAt) && d.int(&e.At)
		case "id":
			b, ok := d.field(&seen, fieldID)
			e.ID = string(b)
			return ok
		case "api":
			b, ok := d.field(&seen, fieldAPI)
			e.API = string(b)
			return ok
		case "ops":
			if !first(&seen, fieldOps) {
				return false
			}
			// Most writes are one op: start with room for it. An empty
			// array gives an empty slice, not nil, as in encoding/json.
			e.Ops = make([]entryOp, 0, 1)
			return d.array(func() bool {
				e.Ops = append(e.Ops, entryOp{})
				return d.op(&e.Ops[len(e.Ops)-1])
			})
		case "expire":
			if !first(&seen, fieldExpire) {
				return false
			}
			e.Expire = make([]entryExp, 0, 1)
			return d.array(func() bool {
				e.Expire = append(e.Expire, entryExp{})
				return d.exp(&e.Expire[len(e.Expire)-1])
			})
		case "batch":
			if !top || !first(&seen, fieldBatch) {
				return false
			}
			// Size the batch by its entries' openings: each write is an
			// entry of its own, and a batch holds dozens. Only a hint: a
			// wrong count costs a grow or some spare room.
			e.Batch = make([]entry, 0, bytes.Count(d.data[d.pos:], []byte(`{"kind":`)))
			return d.array(func() bool {
				e.Batch = append(e.Batch, entry{})
				return d.entry(&e.Batch[len(e.Batch)-1], false)
			})
		}
		return false
	})
}

func (d *entryDecoder) op(op *entryOp) bool {
	var seen uint16 // field bits, for first
	return d.object(func(name []byte) bool {
		switch string(name) {
		case "op":
			b, ok := d.field(&seen, fieldOp)
			op.Op = internOp(b)
			return ok
		case "key":
			b, ok := d.field(&seen, fieldKey)
			op.Key = string(b)
			return ok
		case "value":
			b, ok := d.field(&seen, fieldValue)
			op.Value = string(b)
			return ok
		case "expires_at":
			return first(&seen, fieldExpiresAt) && d.int(&op.ExpiresAt)
		case "if_rev":
			return first(&seen, fieldIfRev) && d.int(&op.IfRev)
		}
		return false
	})
}

func (d *entryDecoder) exp(x *entryExp) bool {
	var seen uint16 // field bits, for first
	return d.object(func(name []byte) bool {
		switch string(name) {
		case "key":
			b, ok := d.field(&seen, fieldKey)
			x.Key = string(b)
			return ok
		case "at":
			return first(&seen, fieldAt) && d.int(&x.At)
		}
		return false
	})
}

// object reads an object, calling field with each member's name once its
// colon is read; field reads the value.
func (d *entryDecoder) object(field func(name []byte) bool) bool {
	if !d.next('{') {
		return false
	}
	if d.next('}') {
		return true
	}
	for {
		name, ok := d.str()
		if !ok || !d.next(':') || !field(name) {
			return false
		}
		if d.next('}') {
			return true
		}
		if !d.next(',') {
			return false
		}
	}
}

// array reads an array, calling elem to read each element.
func (d *entryDecoder) array(elem func() bool) bool {
	if !d.next('[') {
		return false
	}
	if d.next(']') {
		return true
	}
	for {
		if !elem() {
			return false
		}
		if d.next(']') {
			return true
		}
		if !d.next(',') {
			return false
		}
	}
}

// first marks bit seen and reports whether it was not already.
func first(seen *uint16, bit uint16) bool {
	if *seen&bit != 0 {
		return false
	}
	*seen |= bit
	return true
}

// field reads a string field's value, the first time the field is seen.
func (d *entryDecoder) field(seen *uint16, bit uint16) ([]byte, bool) {
	if !first(seen, bit) {
		return nil, false
	}
	return d.str()
}

func (d *entryDecoder) next(c byte) bool {
	if d.pos < len(d.data) && d.data[d.pos] == c {
		d.pos++
		return true
	}
	return false
}

// int reads an integer as encoding/json reads it into an int64. One of
// more than 19 digits, outside int64, or with a fraction or an exponent
// (which stops the digits short, and whatever reads next fails on it) is
// left to encoding/json, which refuses it.
func (d *entryDecoder) int(n *int64) bool {
	i := d.pos
	neg := i < len(d.data) && d.data[i] == '-'
	if neg {
		i++
	}
	start := i
	var u uint64 // 19 digits cannot overflow it
	for i < len(d.data) && d.data[i] >= '0' && d.data[i] <= '9' {
		u = u*10 + uint64(d.data[i]-'0')
		i++
	}
	if digits := i - start; digits == 0 || digits > 19 || digits > 1 && d.data[start] == '0' {
		return false // not a number, too long, or a leading zero (a syntax error)
	}
	switch {
	case !neg && u <= math.MaxInt64:
		*n = int64(u)
	case neg && u <= -math.MinInt64:
		*n = -int64(u) // for MinInt64, wraps to itself
	default:
		return false
	}
	d.pos = i
	return true
}

// str reads a string and returns its bytes, valid until the next call.
// Plain ASCII, the common case, is returned in place. Escapes are decoded
// as encoding/json does, except \u escapes of UTF-16 surrogates (pairs, or
// lone ones that encoding/json turns into U+FFFD); other bytes of 0x80 and
// above are accepted only as valid UTF-8, which encoding/json keeps as it
// is (it replaces invalid bytes). Anything refused goes to encoding/json.
func (d *entryDecoder) str() ([]byte, bool) {
	if !d.next('"') {
		return nil, false
	}
	start := d.pos
	i := start
	for i < len(d.data) && plainByte[d.data[i]] {
		i++
	}
	if i < len(d.data) && d.data[i] == '"' {
		d.pos = i + 1
		return d.data[start:i], true
	}
	return d.strSlow(start)
}

// plainByte marks the bytes a string holds as they are, in ASCII: all but
// the quote, the backslash and control characters. A table, since this
// loop is most of the decoder's time: a 100-byte value is 100 turns.
var plainByte = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// strSlow reads the rest of a string starting at start that has escapes
// or bytes outside ASCII, decoding it into d.buf.
func (d *entryDecoder) strSlow(start int) ([]byte, bool) {
	d.buf = d.buf[:0]
	data := d.data
	for i := start; i < len(data); {
		c := data[i]
		switch {
		case c == '"':
			d.pos = i + 1
			return d.buf, true
		case c < 0x20:
			return nil, false // a syntax error
		case c >= utf8.RuneSelf:
			r, size := utf8.DecodeRune(data[i:])
			if r == utf8.RuneError && size == 1 {
				return nil, false
			}
			d.buf = append(d.buf, data[i:i+size]...)
			i += size
		case c != '\\':
			d.buf = append(d.buf, c)
			i++
		case i+1 >= len(data):
			return nil, false
		default:
			switch e := data[i+1]; e {
			case '"', '\\', '/':
				d.buf = append(d.buf, e)
			case 'b':
				d.buf = append(d.buf, '\b')
			case 'f':
				d.buf = append(d.buf, '\f')
			case 'n':
				d.buf = append(d.buf, '\n')
			case 'r':
				d.buf = append(d.buf, '\r')
			case 't':
				d.buf = append(d.buf, '\t')
			case 'u':
				r, ok := hex4(data[i+2:])
				if !ok || utf16.IsSurrogate(r) {
					return nil, false
				}
				d.buf = utf8.AppendRune(d.buf, r)
				i += 4
			default:
				return nil, false // a syntax error
			}
			i += 2
		}
	}
	return nil, false // unterminated
}

// hex4 parses the four hex digits (either case) of a \u escape.
func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// internKind returns a known kind without allocating.
func internKind(b []byte) string {
	switch string(b) {
	case kindWrite:
		return kindWrite
	case kindExpire:
		return kindExpire
	case kindMember:
		return kindMember
	case kindForget:
		return kindForget
	case kindBatch:
		return kindBatch
	}
	return string(b)
}

// internOp returns a known op without allocating.
func internOp(b []byte) engine.ChangeType {
	switch string(b) {
	case string(engine.OpPut):
		return engine.OpPut
	case string(engine.OpDelete):
		return engine.OpDelete
	case string(engine.OpExpire):
		return engine.OpExpire
	case string(engine.OpDeletePrefix):
		return engine.OpDeletePrefix
	}
	return engine.ChangeType(b)
}

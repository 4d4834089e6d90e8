package main

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/pykv/pykv/engine"
)

// The write wire: how offline.js hands puts and deletes to the module and
// gets the answers back, as bytes in a buffer of the module's memory rather
// than as JavaScript values (see writes_js.go for why). All numbers are
// little-endian; strings are UTF-8 with a uint32 length in front.
//
// Request:
//
//	uint32 count
//	count times:
//	  uint8   kind: wireOpPut or wireOpDelete
//	  float64 ttl in seconds (0: none)
//	  float64 if_rev (0: none, -1: must not exist)
//	  string  key
//	  string  value (empty for a delete)
//
// Answer: uint8 wireOK, then one answer per write, in order:
//
//	uint8 wireOK, then float64 create_rev, mod_rev, version, expires_at (a put:
//	      the entry, whose key and value are the ones the caller sent)
//	uint8 wireDeleted, then float64 the revision of the deletion
//	uint8 wireFailed, then string: the error as jsError's JSON
//
// or, when the request as a whole could not be carried out, uint8
// wireFailed and the error as a string.
const (
	wireOpPut    = 1
	wireOpDelete = 2
	// wireOpMinBytes is the size of a write with an empty key and value.
	wireOpMinBytes = 1 + 8 + 8 + 4 + 4

	wireOK      = 0
	wireDeleted = 1
	wireFailed  = 2
)

// errBadWire: offline.js and the module disagree about the wire format
// (a stale cached copy of one of them).
var errBadWire = errors.New("malformed write request")

// decodeWrites decodes a request into engine operations. The strings are
// copied: the buffer is reused for the answer.
func decodeWrites(b []byte) ([]engine.Op, error) {
	r := wireReader{b: b}
	n := r.uint32()
	if r.bad || uint64(n)*wireOpMinBytes > uint64(len(b)) { // n is sane before anything is made for it
		return nil, errBadWire
	}
	ops := make([]engine.Op, n)
	for i := range ops {
		kind := r.byte()
		ttl := finite(r.float64())
		ifRev := finite(r.float64())
		key, value := r.string(), r.string()
		if r.bad {
			return nil, errBadWire
		}
		if ifRev != math.Trunc(ifRev) {
			return nil, fmt.Errorf("%w: if_rev %v is not a whole number", errBadWire, ifRev)
		}
		o := &ops[i]
		switch kind {
		case wireOpPut:
			o.Type = engine.OpPut
		case wireOpDelete:
			o.Type = engine.OpDelete
		default:
			return nil, fmt.Errorf("%w: op kind %d", errBadWire, kind)
		}
		o.Key, o.Value = key, value
		o.TTL = time.Duration(ttl * float64(time.Second))
		o.IfRev = int64(ifRev)
	}
	if len(r.b) != 0 {
		return nil, fmt.Errorf("%w: %d bytes left over", errBadWire, len(r.b))
	}
	return ops, nil
}

// finite maps NaN and ±Inf to 0, as JSON.stringify (null) and encoding/json
// (null leaves a number at 0) did when the wire was JSON.
func finite(f float64) float64 {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0
	}
	return f
}

// appendAnswers appends the answer to ops, whose results DoBatch gave.
func appendAnswers(dst []byte, ops []engine.Op, res []BatchResult) []byte {
	dst = append(dst, wireOK)
	for i, r := range res {
		switch {
		case r.Err != nil:
			dst = append(dst, wireFailed)
			dst = appendWireError(dst, r.Err)
		case ops[i].Type == engine.OpDelete:
			dst = append(dst, wireDeleted)
			dst = appendFloat64(dst, r.Entry.ModRev)
		default:
			e := &r.Entry
			dst = append(dst, wireOK)
			for _, v := range [...]int64{e.CreateRev, e.ModRev, e.Version, e.ExpiresAt} {
				dst = appendFloat64(dst, v)
			}
		}
	}
	return dst
}

// appendFailure appends the answer to a request that failed as a whole.
func appendFailure(dst []byte, err error) []byte {
	return appendWireError(append(dst, wireFailed), err)
}

// appendWireError appends err, as jsError describes it, in JSON.
func appendWireError(dst []byte, err error) []byte {
	data, merr := json.Marshal(jsError(err))
	if merr != nil {
		data = []byte(`{"code":"internal","message":"unencodable error"}`)
	}
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(data)))
	return append(dst, data...)
}

// appendFloat64 appends n as a JavaScript number: revisions, versions and
// expiry times stay far below 2^53, so none loses precision.
func appendFloat64(dst []byte, n int64) []byte {
	return binary.LittleEndian.AppendUint64(dst, math.Float64bits(float64(n)))
}

// wireReader reads a request; bad is set (and zeros returned) once it runs
// past the end.
type wireReader struct {
	b   []byte
	bad bool
}

func (r *wireReader) take(n int) []byte {
	if r.bad || n > len(r.b) {
		r.bad = true
		return nil
	}
	p := r.b[:n]
	r.b = r.b[n:]
	return p
}

func (r *wireReader) byte() byte {
	if p := r.take(1); p != nil {
		return p[0]
	}
	return 0
}

func (r *wireReader) uint32() uint32 {
	if p := r.take(4); p != nil {
		return binary.LittleEndian.Uint32(p)
	}
	return 0
}

func (r *wireReader) float64() float64 {
	if p := r.take(8); p != nil {
		return math.Float64frombits(binary.LittleEndian.Uint64(p))
	}
	return 0
}

func (r *wireReader) string() string {
	n := r.uint32()
	if uint64(n) > uint64(len(r.b)) {
		r.bad = true
		return ""
	}
	return string(r.take(int(n)))
}

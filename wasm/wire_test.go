package main

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/pykv/pykv/engine"
)

// wireRequest encodes ops as offline.js does (ttl in seconds).
func wireRequest(ops []engine.Op) []byte {
	b := binary.LittleEndian.AppendUint32(nil, uint32(len(ops)))
	for _, o := range ops {
		kind := byte(wireOpPut)
		if o.Type == engine.OpDelete {
			kind = wireOpDelete
		}
		b = append(b, kind)
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(o.TTL.Seconds()))
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(float64(o.IfRev)))
		for _, s := range []string{o.Key, o.Value} {
			b = binary.LittleEndian.AppendUint32(b, uint32(len(s)))
			b = append(b, s...)
		}
	}
	return b
}

func TestWire_DecodeWrites(t *testing.T) {
	ops := []engine.Op{
		{Type: engine.OpPut, Key: "a", Value: "1", TTL: 1500 * time.Millisecond},
		{Type: engine.OpDelete, Key: "ünï", IfRev: 7},
		{Type: engine.OpPut, Key: "b", Value: "", IfRev: -1},
	}
	req := wireRequest(ops)
	got, err := decodeWrites(req)
	if err != nil || !reflect.DeepEqual(got, ops) {
		t.Fatalf("decodeWrites = %+v, %v; want %+v", got, err, ops)
	}
	// The strings are copies: the buffer is reused for the answer.
	clear(req)
	if got[1].Key != "ünï" {
		t.Fatalf("decoded key changed with the buffer: %q", got[1].Key)
	}
	// Every cut of a request is refused, never decoded half.
	req = wireRequest(ops)
	for n := range len(req) {
		if _, err := decodeWrites(req[:n]); !errors.Is(err, errBadWire) {
			t.Fatalf("decodeWrites of %d of %d bytes: %v", n, len(req), err)
		}
	}
	if _, err := decodeWrites(append(req, 0)); !errors.Is(err, errBadWire) {
		t.Fatalf("decodeWrites with a byte left over: %v", err)
	}
	bad := wireRequest([]engine.Op{{Type: engine.OpPut, Key: "a"}})
	bad[4] = 9 // unknown kind
	if _, err := decodeWrites(bad); !errors.Is(err, errBadWire) {
		t.Fatalf("decodeWrites of kind 9: %v", err)
	}
	frac := wireRequest([]engine.Op{{Type: engine.OpPut, Key: "a"}})
	binary.LittleEndian.PutUint64(frac[13:], math.Float64bits(1.5)) // if_rev
	if _, err := decodeWrites(frac); !errors.Is(err, errBadWire) {
		t.Fatalf("decodeWrites of if_rev 1.5: %v", err)
	}
	// NaN and infinities count as 0, as JSON's null did.
	nan := wireRequest([]engine.Op{{Type: engine.OpPut, Key: "a"}})
	binary.LittleEndian.PutUint64(nan[5:], math.Float64bits(math.NaN()))
	binary.LittleEndian.PutUint64(nan[13:], math.Float64bits(math.Inf(1)))
	if got, err := decodeWrites(nan); err != nil || got[0].TTL != 0 || got[0].IfRev != 0 {
		t.Fatalf("decodeWrites of NaN ttl, +Inf if_rev = %+v, %v", got, err)
	}
}

// TestWire_Answers: each result reads back as what offline.js makes of it.
func TestWire_Answers(t *testing.T) {
	db := mustOpenDB(t, newMemStorage(0), testOptions())
	mustPut(t, db, "gone", "x")
	ops := []engine.Op{
		{Type: engine.OpPut, Key: "a", Value: "1", TTL: time.Minute},
		{Type: engine.OpDelete, Key: "gone"},
		{Type: engine.OpDelete, Key: "never"},
		{Type: engine.OpPut, Key: "a", Value: "2", IfRev: 99},
	}
	res := db.DoBatch(ops)
	b := appendAnswers(nil, ops, res)
	if b[0] != wireOK {
		t.Fatalf("answer starts with %d", b[0])
	}
	b = b[1:]
	f64 := func() int64 {
		v := math.Float64frombits(binary.LittleEndian.Uint64(b))
		b = b[8:]
		return int64(v)
	}
	errorInfo := func() map[string]any {
		n := binary.LittleEndian.Uint32(b)
		var info map[string]any
		if err := json.Unmarshal(b[4:4+n], &info); err != nil {
			t.Fatal(err)
		}
		b = b[4+n:]
		return info
	}
	kind := func(want byte) {
		t.Helper()
		if b[0] != want {
			t.Fatalf("answer kind %d, want %d", b[0], want)
		}
		b = b[1:]
	}
	kind(wireOK)
	e := res[0].Entry
	if got := [4]int64{f64(), f64(), f64(), f64()}; got != [4]int64{e.CreateRev, e.ModRev, e.Version, e.ExpiresAt} || e.ExpiresAt == 0 {
		t.Fatalf("put answer %v, entry %+v", got, e)
	}
	kind(wireDeleted)
	if rev := f64(); rev != res[1].Entry.ModRev || rev == 0 {
		t.Fatalf("delete answer %d, want %d", rev, res[1].Entry.ModRev)
	}
	kind(wireFailed)
	if info := errorInfo(); info["code"] != "not_found" {
		t.Fatalf("delete of a missing key: %v", info)
	}
	kind(wireFailed)
	if info := errorInfo(); info["code"] != "conflict" || info["key"] != "a" {
		t.Fatalf("failed condition: %v", info)
	}
	if len(b) != 0 {
		t.Fatalf("%d bytes after the last answer", len(b))
	}
	// A request that fails as a whole.
	b = appendFailure(nil, errBadWire)
	if b[0] != wireFailed {
		t.Fatalf("failure starts with %d", b[0])
	}
	b = b[1:]
	if info := errorInfo(); info["code"] != "internal" || len(b) != 0 {
		t.Fatalf("failure: %v, %d bytes left", info, len(b))
	}
}

// TestEncodeSync_SameAsEncodingJSON: the hand-written sync item is what
// encoding/json wrote before, and reads back the same.
func TestEncodeSync_SameAsEncodingJSON(t *testing.T) {
	for _, sf := range []syncFile{
		{},
		{ServerRev: 5, Pending: map[string][2]int64{}},
		{ServerRev: 1 << 60, Pending: map[string][2]int64{
			"b": {0, 3}, "a": {2, 4}, "<&>": {1, 1}, "\"q\\": {0, 9}, "\u2028\n\x01": {3, 5},
			"ünï": {0, 0}, "\xff\xfe": {7, 8}, "😀": {1, 2}, "a\x00": {4, 4},
		}},
	} {
		want, err := json.Marshal(sf)
		if err != nil {
			t.Fatal(err)
		}
		got := encodeSync(sf)
		if got != string(want) {
			t.Fatalf("encodeSync(%+v)\n got %s\nwant %s", sf, got, want)
		}
		var back syncFile
		if err := decodeSync(got, &back); err != nil {
			t.Fatalf("decodeSync(%s): %v", got, err)
		}
	}
}

// BenchmarkEncodeSync encodes the sync item of a copy with 1,000 keys
// changed offline, as a fold does.
func BenchmarkEncodeSync(b *testing.B) {
	sf := syncFile{ServerRev: 123456, Pending: make(map[string][2]int64, 1000)}
	for i := range 1000 {
		sf.Pending[fmt.Sprintf("key-%07d", i)] = [2]int64{int64(i), int64(i + 1000)}
	}
	for b.Loop() {
		encodeSync(sf)
	}
}

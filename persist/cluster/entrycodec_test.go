package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/pykv/pykv/engine"
)

// proposalEntry is the entry encodeProposal writes for p, built as the
// encoder did before it was written by hand: json.Marshal of it is the
// spelling encodeProposal must keep.
func proposalEntry(p *engine.Proposal) entry {
	e := entry{Kind: kindWrite, At: p.At}
	if len(p.Ops) == 0 {
		e.Kind = kindExpire
		for _, k := range p.Expire {
			e.Expire = append(e.Expire, entryExp{Key: k.Key, At: k.At})
		}
	}
	for _, op := range p.Ops {
		e.Ops = append(e.Ops, entryOp{Op: op.Type, Key: op.Key, Value: op.Value, ExpiresAt: op.ExpiresAt, IfRev: op.IfRev})
	}
	return e
}

func mustMarshal(tb testing.TB, v any) []byte {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// checkDecode checks decodeEntryFast and decodeEntry against
// json.Unmarshal on data, and returns whether the fast path took it.
func checkDecode(tb testing.TB, data []byte) bool {
	tb.Helper()
	var want entry
	wantErr := json.Unmarshal(data, &want)
	got, ok := decodeEntryFast(data)
	if ok && wantErr != nil {
		tb.Fatalf("decodeEntryFast(%q) accepted what json.Unmarshal refuses (%v): %+v", data, wantErr, got)
	}
	if ok && !reflect.DeepEqual(got, want) {
		tb.Fatalf("decodeEntryFast(%q) =\n%#v\njson.Unmarshal gives\n%#v", data, got, want)
	}
	got, err := decodeEntry(data)
	if (err != nil) != (wantErr != nil) || err != nil && !errors.Is(err, errBadEntry) {
		tb.Fatalf("decodeEntry(%q) error %v; json.Unmarshal's %v", data, err, wantErr)
	}
	if err == nil && !reflect.DeepEqual(got, want) {
		tb.Fatalf("decodeEntry(%q) =\n%#v\njson.Unmarshal gives\n%#v", data, got, want)
	}
	return ok
}

// fullEntries returns entries with every field set, so that a field the
// codec drops or misspells changes the round trip.
func fullEntries() []entry {
	write := entry{Kind: kindWrite, At: 1764763200123, Ops: []entryOp{
		{Op: engine.OpPut, Key: "k1", Value: "v1", ExpiresAt: 1764763260123, IfRev: 7},
		{Op: engine.OpDelete, Key: "k2", IfRev: -1},
		{Op: engine.OpDeletePrefix, Key: "p/"},
	}}
	expire := entry{Kind: kindExpire, At: 99, Expire: []entryExp{{Key: "a", At: 1}, {Key: "b", At: 0}}}
	member := entry{Kind: kindMember, ID: "m1", API: "127.0.0.1:8080"}
	forget := entry{Kind: kindForget, ID: "m2"}
	return []entry{write, expire, member, forget, {Kind: kindBatch, Batch: []entry{write, expire, member, forget}}}
}

// TestEntryCodec_RoundTrip: every field survives, through the fast path,
// spelled as json.Marshal spells it.
func TestEntryCodec_RoundTrip(t *testing.T) {
	for _, e := range fullEntries() {
		t.Run(e.Kind, func(t *testing.T) {
			data := encodeEntry(&e)
			if want := mustMarshal(t, e); string(data) != string(want) {
				t.Fatalf("encodeEntry =\n%s\njson.Marshal gives\n%s", data, want)
			}
			got, ok := decodeEntryFast(data)
			if !ok {
				t.Fatalf("decodeEntryFast(%s) fell back to encoding/json", data)
			}
			if !reflect.DeepEqual(got, e) {
				t.Fatalf("decodeEntryFast(%s) =\n%#v\nwant\n%#v", data, got, e)
			}
		})
	}
}

// TestEncodeProposal: the writes' and expiries' entries are json.Marshal's
// bytes, escapes included, and the batch splices them.
func TestEncodeProposal(t *testing.T) {
	odd := "<a href=\"x\">&amp;</a>\\\n\t\x00\x1f\x7f é \u2028\u2029 😀 \xff\xc3 \ufffd"
	ps := []*engine.Proposal{
		{At: 1, Ops: []engine.Op{{Type: engine.OpPut, Key: "k", Value: "v"}}},
		{Ops: []engine.Op{{Type: engine.OpPut, Key: odd, Value: odd, ExpiresAt: -5, IfRev: engine.Absent}, {Type: engine.ChangeType(odd), Key: "d"}}},
		{At: 3, Expire: []engine.ExpiryKey{{Key: odd, At: 0}, {Key: "x", At: 42}}},
		{At: 4, Ops: []engine.Op{{Type: engine.OpPut, Key: "k"}}, Expire: []engine.ExpiryKey{{Key: "ignored with ops"}}},
		{At: 5}, // an expiry of nothing: kind and time only
	}
	ws := make([]*PendingWrite, len(ps))
	refs := make([]entry, len(ps))
	for i, p := range ps {
		refs[i] = proposalEntry(p)
		ws[i] = &PendingWrite{data: encodeProposal(p)}
		if want := mustMarshal(t, refs[i]); string(ws[i].data) != string(want) {
			t.Errorf("encodeProposal(%+v) =\n%s\njson.Marshal gives\n%s", p, ws[i].data, want)
		}
		if !checkDecode(t, ws[i].data) {
			t.Errorf("decodeEntryFast(%s) fell back to encoding/json", ws[i].data)
		}
	}
	other := entry{Kind: odd, ID: odd, API: odd}
	refs = append(refs, other)
	ws = append(ws, &PendingWrite{data: encodeEntry(&other)})
	batch := encodeBatch(ws)
	if want := mustMarshal(t, entry{Kind: kindBatch, Batch: refs}); string(batch) != string(want) {
		t.Errorf("encodeBatch =\n%s\njson.Marshal gives\n%s", batch, want)
	}
	if !checkDecode(t, batch) {
		t.Errorf("decodeEntryFast(%s) fell back to encoding/json", batch)
	}
}

// decodeCases are inputs at the edges of what the fast path takes: fast
// says whether it should (the rest go to encoding/json, and must come out
// as before).
var decodeCases = []struct {
	name string
	in   string
	fast bool
}{
	{"Write", `{"kind":"write","at":5,"ops":[{"op":"put","key":"k","value":"v","expires_at":9,"if_rev":-1}]}`, true},
	{"Empty", `{}`, true},
	{"EmptyOps", `{"kind":"write","ops":[]}`, true}, // an empty slice, not nil
	{"EmptyBatch", `{"kind":"batch","batch":[]}`, true},
	{"UnknownKind", `{"kind":"bogus","ops":[{"op":"zap","key":""}]}`, true}, // the FSM refuses it, not the decoder
	{"ShortEscapes", `{"kind":"write","ops":[{"op":"put","key":"\"\\\/\b\f\n\r\t","value":"x"}]}`, true},
	{"HTMLEscapes", `{"kind":"write","ops":[{"op":"put","key":"\u003ca\u0026b\u003e","value":"\u0000\u001F"}]}`, true},
	{"UnicodeEscapes", `{"kind":"write","ops":[{"op":"put","key":"\u00e9\u00C9\u2028\u2029\ufffd\uFFFF","value":"x"}]}`, true},
	{"RawUTF8", "{\"kind\":\"member\",\"id\":\"é😀\uFFFD\",\"api\":\"\u2028\"}", true},
	{"EscapedKind", `{"kind":"wr\u0069te"}`, true},
	{"MinusZero", `{"kind":"write","at":-0}`, true},
	{"MaxInt64", `{"kind":"write","at":9223372036854775807}`, true},
	{"MinInt64", `{"kind":"write","at":-9223372036854775808}`, true},
	{"Batch", `{"kind":"batch","batch":[{"kind":"write","ops":[{"op":"put","key":"a","value":"1"}]},{"kind":"member","id":"m","api":"a"}]}`, true},

	{"SurrogatePair", `{"kind":"write","ops":[{"op":"put","key":"\ud83d\ude00","value":"x"}]}`, false},
	{"LoneSurrogate", `{"kind":"write","ops":[{"op":"put","key":"\ud800","value":"\udc00x"}]}`, false},
	{"InvalidUTF8", "{\"kind\":\"write\",\"ops\":[{\"op\":\"put\",\"key\":\"\xff\",\"value\":\"\xed\xa0\x80\"}]}", false},
	{"Whitespace", `{ "kind": "write" }`, false},
	{"TrailingNewline", "{\"kind\":\"write\"}\n", false},
	{"OtherCase", `{"KIND":"write","Ops":[{"OP":"put","Key":"k"}]}`, false},
	{"UnknownField", `{"kind":"write","extra":[1,{"a":null}]}`, false},
	{"UnknownOpField", `{"kind":"write","ops":[{"op":"put","key":"k","ttl":5}]}`, false},
	{"DuplicateKind", `{"kind":"write","kind":"member"}`, false},
	{"DuplicateOps", `{"kind":"write","ops":[{"op":"put","key":"a","value":"1"},{"op":"put","key":"b"}],"ops":[{"op":"delete","key":"c"}]}`, false},
	{"DuplicateKey", `{"kind":"expire","expire":[{"key":"a","at":1,"key":"b"}]}`, false},
	{"Null", `{"kind":null,"ops":null,"at":null}`, false},
	{"NullEntry", `null`, false},
	{"NestedBatch", `{"kind":"batch","batch":[{"kind":"batch","batch":[{"kind":"forget","id":"x"}]}]}`, false},

	{"Fraction", `{"kind":"write","at":1.5}`, false},
	{"Exponent", `{"kind":"write","at":1e3}`, false},
	{"LeadingZero", `{"kind":"write","at":01}`, false},
	{"Overflow", `{"kind":"write","at":9223372036854775808}`, false},
	{"Underflow", `{"kind":"write","at":-9223372036854775809}`, false},
	{"TwentyDigits", `{"kind":"write","at":10000000000000000000}`, false},
	{"NoDigits", `{"kind":"write","at":-}`, false},
	{"StringForInt", `{"kind":"write","at":"5"}`, false},
	{"IntForString", `{"kind":5}`, false},
	{"Truncated", `{"kind":"write","ops":[{"op":"put","key":"k"`, false},
	{"Unterminated", `{"kind":"wri`, false},
	{"TrailingGarbage", `{"kind":"write"}x`, false},
	{"TwoValues", `{"kind":"write"}{"kind":"write"}`, false},
	{"RawControl", "{\"kind\":\"wr\nite\"}", false},
	{"BadEscape", `{"kind":"\x41"}`, false},
	{"ShortUnicode", `{"kind":"\u00e"}`, false},
	{"TrailingComma", `{"kind":"write",}`, false},
	{"Array", `[]`, false},
	{"Nothing", ``, false},
}

// TestDecodeEntry: on each case the fast path takes what it should, and
// decodeEntry's result and error-ness are json.Unmarshal's.
func TestDecodeEntry(t *testing.T) {
	for _, c := range decodeCases {
		t.Run(c.name, func(t *testing.T) {
			if got := checkDecode(t, []byte(c.in)); got != c.fast {
				t.Errorf("decodeEntryFast(%s) took it: %v, want %v", c.in, got, c.fast)
			}
		})
	}
}

// FuzzEntryCodec checks (a) that entries built from the inputs are
// encoded as json.Marshal spells them and decoded by the fast path, and
// (b) that on any bytes the fast path agrees with json.Unmarshal whenever
// it answers, and decodeEntry always does.
func FuzzEntryCodec(f *testing.F) {
	for _, e := range fullEntries() {
		f.Add(encodeEntry(&e), "k", "v", int64(1))
	}
	for _, c := range decodeCases {
		f.Add([]byte(c.in), "<&>\"\\", "é\u2028\xff", int64(-1))
	}
	f.Add([]byte(`{"kind":"write"}`), "\xed\xa0\xbd", strings.Repeat("v", 100), int64(1<<62))
	f.Fuzz(func(t *testing.T, data []byte, key, value string, n int64) {
		checkDecode(t, data) // (b)

		// (a)
		ps := []*engine.Proposal{
			{At: n, Ops: []engine.Op{
				{Type: engine.OpPut, Key: key, Value: value, ExpiresAt: n, IfRev: -n},
				{Type: engine.ChangeType(key), Key: value},
			}},
			{At: -n, Expire: []engine.ExpiryKey{{Key: key, At: n}, {Key: value}}},
		}
		ws := make([]*PendingWrite, len(ps))
		refs := make([]entry, len(ps), len(ps)+1)
		for i, p := range ps {
			refs[i] = proposalEntry(p)
			ws[i] = &PendingWrite{data: encodeProposal(p)}
			if want := mustMarshal(t, refs[i]); string(ws[i].data) != string(want) {
				t.Fatalf("encodeProposal(%+v) =\n%s\njson.Marshal gives\n%s", p, ws[i].data, want)
			}
		}
		member := entry{Kind: value, ID: key, API: value}
		refs = append(refs, member)
		ws = append(ws, &PendingWrite{data: encodeEntry(&member)})
		batch := encodeBatch(ws)
		if want := mustMarshal(t, entry{Kind: kindBatch, Batch: refs}); string(batch) != string(want) {
			t.Fatalf("encodeBatch =\n%s\njson.Marshal gives\n%s", batch, want)
		}
		for _, b := range append([][]byte{batch}, ws[0].data, ws[1].data, ws[2].data) {
			// What the writers write the fast path reads: a lone surrogate
			// cannot be written, invalid UTF-8 is written as \ufffd.
			if !checkDecode(t, b) {
				t.Fatalf("decodeEntryFast(%s) fell back to encoding/json", b)
			}
		}
	})
}

// benchBatch returns the proposals of a 20-write batch of 100-byte values,
// the shape the leader's batcher makes under a PUT load.
func benchBatch() []*engine.Proposal {
	ps := make([]*engine.Proposal, 20)
	for i := range ps {
		ps[i] = &engine.Proposal{At: 1764763200000 + int64(i), Ops: []engine.Op{{
			Type:  engine.OpPut,
			Key:   fmt.Sprintf("bench:key:%06d", i),
			Value: strings.Repeat(string(rune('a'+i)), 100),
		}}}
	}
	return ps
}

// BenchmarkEntryEncode encodes a 20-write batch as the proposers and the
// leader's batcher do: each write on its own, then the batch spliced.
func BenchmarkEntryEncode(b *testing.B) {
	ps := benchBatch()
	ws := make([]*PendingWrite, len(ps))
	for i := range ws {
		ws[i] = &PendingWrite{}
	}
	b.ReportAllocs()
	for b.Loop() {
		for i, p := range ps {
			ws[i].data = encodeProposal(p)
		}
		_ = encodeBatch(ws)
	}
}

// BenchmarkEntryDecode decodes a 20-write batch, as every member does for
// every entry it applies.
func BenchmarkEntryDecode(b *testing.B) {
	ps := benchBatch()
	ws := make([]*PendingWrite, len(ps))
	for i, p := range ps {
		ws[i] = &PendingWrite{data: encodeProposal(p)}
	}
	data := encodeBatch(ws)
	if _, ok := decodeEntryFast(data); !ok {
		b.Fatal("the benchmark's batch falls back to encoding/json")
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeEntry(data); err != nil {
			b.Fatal(err)
		}
	}
}

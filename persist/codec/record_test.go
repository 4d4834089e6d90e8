package codec_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/pykv/pykv/engine"
	"github.com/pykv/pykv/persist/codec"
)

// marshalRecord is how AppendRecord wrote a record before it was written by
// hand: encoding/json's encoding of the command, its closing brace replaced
// by the checksum. AppendRecord must match it byte for byte.
func marshalRecord(t testing.TB, cmd *engine.Command) []byte {
	t.Helper()
	b, err := json.Marshal(cmd)
	if err != nil {
		t.Fatal(err)
	}
	body := b[:len(b)-1]
	sum := crc32.Checksum(body, crc32.MakeTable(crc32.Castagnoli))
	var hex [8]byte
	for i := 7; i >= 0; i-- {
		hex[i] = "0123456789abcdef"[sum&0xf]
		sum >>= 4
	}
	return append(append(body, `,"crc":"`+string(hex[:])+`"}`...), '\n')
}

// trickyStrings are strings whose JSON spelling takes care: escapes,
// control characters, the HTML characters encoding/json escapes, U+2028,
// multi-byte and invalid UTF-8.
var trickyStrings = []string{
	"", "a", "plain text 123", `"quoted"`, `back\slash`, "/slash",
	"\x00\x01\x07\x1f\x7f", "\b\f\n\r\t", "tab\tnew\nline",
	"<script>&amp;</script>", "a>b<c&d",
	"\u2028line\u2029para", "\u2027\u202a",
	"ünïcödé", "日本語", "emoji 😀 \U0001F600", "\ufffd", "\ufeffbom",
	"\xff", "bad \xc3\x28 utf8", "\xed\xa0\x80 surrogate", "\xf4\x90\x80\x80 too big",
	"cut \xe6\x97", "\xc0\xaf overlong", strings.Repeat("x", 1000) + "\n",
}

func TestAppendRecord_SameAsEncodingJSON(t *testing.T) {
	check := func(cmd engine.Command) {
		t.Helper()
		got := codec.AppendRecord([]byte("prefix"), &cmd)
		want := append([]byte("prefix"), marshalRecord(t, &cmd)...)
		if string(got) != string(want) {
			t.Fatalf("AppendRecord(%+v)\n got %q\nwant %q", cmd, got, want)
		}
	}
	check(engine.Command{Rev: 1})                             // "ops":null
	check(engine.Command{Rev: 0, Changes: []engine.Change{}}) // "ops":[]
	check(engine.Command{Rev: math.MaxInt64, Changes: []engine.Change{{Op: engine.OpPut, Key: "k", ExpiresAt: math.MinInt64}}})
	check(engine.Command{Rev: -5, Changes: []engine.Change{{Op: "odd<op>", Key: "k", Value: "v", ExpiresAt: -1}}})
	for _, s := range trickyStrings {
		check(engine.Command{Rev: 7, Changes: []engine.Change{
			{Op: engine.OpPut, Key: s, Value: s, ExpiresAt: 1893456000000},
			{Op: engine.OpDelete, Key: s},
			{Op: engine.OpExpire, Key: "k" + s},
		}})
	}
	// Random strings of bytes likely to need care.
	alphabet := []string{"a", "\"", "\\", "<", ">", "&", "\x00", "\x1f", "\n", "\u2028", "é", "😀", "\xff", "\xe2\x80", "\x80"}
	rng := rand.New(rand.NewPCG(1, 2))
	randString := func() string {
		var b strings.Builder
		for range rng.IntN(12) {
			b.WriteString(alphabet[rng.IntN(len(alphabet))])
		}
		return b.String()
	}
	for range 2000 {
		cmd := engine.Command{Rev: rng.Int64N(1 << 40)}
		for range 1 + rng.IntN(3) {
			cmd.Changes = append(cmd.Changes, engine.Change{Op: engine.OpPut, Key: randString(), Value: randString(), ExpiresAt: rng.Int64N(3) * 1893456000000})
		}
		check(cmd)
	}
}

// TestAppendRecord_KnowsEveryField fails when a field is added to
// engine.Command, engine.Change or engine.Entry: AppendRecord and
// WriteSnapshot write the fields by hand and must learn about it (and
// TestAppendRecord_SameAsEncodingJSON and TestWriteSnapshot_EntriesAsEncodingJSON
// cover it).
func TestAppendRecord_KnowsEveryField(t *testing.T) {
	for _, c := range []struct {
		v    any
		want string
	}{
		{engine.Command{}, "Rev:rev Changes:ops"},
		{engine.Change{}, "Op:op Key:key Value:value,omitempty ExpiresAt:expires_at,omitempty"},
		{engine.Entry{}, "Key:key Value:value CreateRev:create_rev ModRev:mod_rev Version:version ExpiresAt:expires_at,omitempty"},
	} {
		var fields []string
		typ := reflect.TypeOf(c.v)
		for i := range typ.NumField() {
			if f := typ.Field(i); f.IsExported() {
				fields = append(fields, f.Name+":"+f.Tag.Get("json"))
			}
		}
		if got := strings.Join(fields, " "); got != c.want {
			t.Errorf("%s has fields %q; AppendRecord writes %q", typ, got, c.want)
		}
	}
}

func BenchmarkAppendRecord(b *testing.B) {
	cmd := engine.Command{Rev: 12345, Changes: []engine.Change{{Op: engine.OpPut, Key: "key/01234", Value: "value 1234"}}}
	var buf []byte
	for b.Loop() {
		buf = codec.AppendRecord(buf[:0], &cmd)
	}
}

// TestWriteSnapshot_EntriesAsEncodingJSON: each entry line of a snapshot is
// encoding/json's encoding of the entry, though written by hand.
func TestWriteSnapshot_EntriesAsEncodingJSON(t *testing.T) {
	var entries []*engine.Entry
	for i, s := range trickyStrings {
		entries = append(entries, &engine.Entry{Key: fmt.Sprintf("%03d %s", i, s), Value: s,
			CreateRev: int64(i + 1), ModRev: math.MaxInt64 - int64(i), Version: int64(i), ExpiresAt: int64(i%2) * 1893456000000})
	}
	var buf bytes.Buffer
	if err := codec.WriteSnapshot(&buf, math.MaxInt64, slices.Clone(entries)); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(buf.String(), "\n")
	// The header line, one line per entry (in key order, which the keys'
	// numbers already give), then the footer.
	if len(lines) < len(entries)+2 {
		t.Fatalf("snapshot has %d lines for %d entries:\n%s", len(lines), len(entries), buf.String())
	}
	for i, e := range entries {
		want, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimSuffix(lines[i+1], ","); got != string(want) {
			t.Errorf("entry %d:\n got %s\nwant %s", i, got, want)
		}
	}
}

// benchEntries returns n snapshot entries with 100-byte values, a third of
// them with an expiry time.
func benchEntries(n int) []*engine.Entry {
	value := strings.Repeat("v", 100)
	entries := make([]*engine.Entry, n)
	for i := range entries {
		entries[i] = &engine.Entry{Key: fmt.Sprintf("key-%07d", i), Value: value, CreateRev: int64(i + 1), ModRev: int64(i + 1), Version: 1}
		if i%3 == 0 {
			entries[i].ExpiresAt = 1893456000000
		}
	}
	return entries
}

// BenchmarkWriteSnapshot encodes a snapshot of 10,000 entries (the entry
// writer of a compaction or an export).
func BenchmarkWriteSnapshot(b *testing.B) {
	entries := benchEntries(10_000)
	for b.Loop() {
		if err := codec.WriteSnapshot(io.Discard, 10_000, entries); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReadSnapshot decodes a snapshot of 10,000 entries (recovery's
// first step).
func BenchmarkReadSnapshot(b *testing.B) {
	var buf bytes.Buffer
	if err := codec.WriteSnapshot(&buf, 10_000, benchEntries(10_000)); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(buf.Len()))
	for b.Loop() {
		if _, _, err := codec.ReadSnapshot(bytes.NewReader(buf.Bytes()), "bench"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeRecord decodes one log line (replay's step per write).
func BenchmarkDecodeRecord(b *testing.B) {
	line := codec.AppendRecord(nil, &engine.Command{Rev: 12345, Changes: []engine.Change{{Op: engine.OpPut, Key: "key/01234", Value: "value 1234", ExpiresAt: 1893456000000}}})
	for b.Loop() {
		if _, err := codec.DecodeRecord(line); err != nil {
			b.Fatal(err)
		}
	}
}

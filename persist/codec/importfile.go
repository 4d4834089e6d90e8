package codec

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/pykv/pykv/engine"
)

// ImportMode says what an import does to the keys its file does not hold.
type ImportMode string

const (
	// ImportMerge keeps them: the file's keys are put over the store (the
	// default).
	ImportMerge ImportMode = "merge"
	// ImportReplace deletes them, in the same write: the store ends up
	// holding exactly the file's keys.
	ImportReplace ImportMode = "replace"
)

// ParseImportMode parses "merge" or "replace" ("" means merge).
func ParseImportMode(s string) (ImportMode, error) {
	switch m := ImportMode(s); m {
	case "":
		return ImportMerge, nil
	case ImportMerge, ImportReplace:
		return m, nil
	}
	return "", fmt.Errorf("unknown import mode %q: want merge or replace", s)
}

// ImportResult tells what an import did: the format it read, the
// mode, how many keys the file held, the revision its writes got (the
// store's revision when it changed nothing) and what became of each key.
type ImportResult struct {
	Format string     `json:"format"`
	Mode   ImportMode `json:"mode"`
	Keys   int        `json:"keys"`
	engine.ImportResult
}

// ImportStore reads a snapshot or a flat PyKV file from r, streaming, and
// writes it into s as one write (see engine.Store.Import): all of it under
// one revision, or nothing. Keys whose value and expiry time are unchanged
// are left alone; in ImportReplace mode the keys the file does not hold
// are deleted. Values and expiry times come from the file (entries already
// expired are skipped); revisions are the store's own. A malformed file
// gives an error wrapping ErrBadImport that says what is wrong, naming the
// key when one is to blame.
//
// Memory: the body is never held whole. What the import keeps while it
// runs is the keys and values themselves (which become the store's), 40
// bytes a key for the list of entries, and the store's 64 bytes a changed
// key for the write (see persist's BenchmarkImportMemory).
func ImportStore(s *engine.Store, r io.Reader, mode ImportMode) (ImportResult, error) {
	if mode == "" {
		mode = ImportMerge
	}
	if mode != ImportMerge && mode != ImportReplace {
		return ImportResult{}, fmt.Errorf("unknown import mode %q", mode)
	}
	format, entries, err := ReadImport(r)
	if err != nil {
		return ImportResult{}, err
	}
	res, err := s.Import(entries, mode == ImportReplace)
	if err != nil {
		var oe *engine.OpError
		if errors.As(err, &oe) {
			return ImportResult{}, fmt.Errorf("%w: key %q: %w", ErrBadImport, oe.Key, oe.Err)
		}
		return ImportResult{}, err
	}
	return ImportResult{Format: format, Mode: mode, Keys: len(entries), ImportResult: res}, nil
}

// ReadImport decodes an import file, streaming: a snapshot, or a flat
// object mapping keys to string values. A file whose first field says it
// is a PyKV snapshot is checked as one, whatever its whitespace: its
// fields in the order export writes them, its count, its key order and
// its checksum, which is computed over the entries as export would write
// them, so spaces and line breaks do not matter but any other change does.
// In a flat file, a value that is not a string (null included), a key
// given twice and invalid UTF-8 are errors naming the key. Entries come
// back sorted by key; errors wrap ErrBadImport.
func ReadImport(r io.Reader) (format string, entries []engine.ImportEntry, err error) {
	vr := &utf8Reader{r: r, bad: -1, lone: -1, high: -1}
	d := &importDecoder{dec: json.NewDecoder(vr), vr: vr}
	d.dec.DisallowUnknownFields()
	tok, err := d.dec.Token()
	if err != nil {
		return "", nil, d.syntax(err, "")
	}
	if tok != json.Delim('{') {
		return "", nil, fmt.Errorf("%w: want a JSON object, the file starts with %s", ErrBadImport, describeToken(tok))
	}
	if !d.dec.More() {
		return FormatFlat, nil, d.end()
	}
	key, err := d.key("")
	if err != nil {
		return "", nil, err
	}
	if key == "format" {
		tok, err := d.dec.Token()
		if err != nil {
			return "", nil, d.syntax(err, key)
		}
		if tok == SnapshotFormat {
			entries, err := d.snapshot()
			return FormatSnapshot, entries, err
		}
		if err := d.flatValue(tok, key); err != nil {
			return "", nil, err
		}
		entries = append(entries, engine.ImportEntry{Key: key, Value: tok.(string)})
	} else {
		v, err := d.dec.Token()
		if err != nil {
			return "", nil, d.syntax(err, key)
		}
		if err := d.flatValue(v, key); err != nil {
			return "", nil, err
		}
		entries = append(entries, engine.ImportEntry{Key: key, Value: v.(string)})
	}
	entries, err = d.flat(entries)
	return FormatFlat, entries, err
}

// importDecoder reads one import file.
type importDecoder struct {
	dec *json.Decoder
	vr  *utf8Reader
}

// key reads the next object key; after names the key before it, for
// messages.
func (d *importDecoder) key(after string) (string, error) {
	tok, err := d.dec.Token()
	if err != nil {
		return "", d.syntax(err, after)
	}
	k, ok := tok.(string)
	if !ok {
		return "", fmt.Errorf("%w: want a key after %q, found %s", ErrBadImport, after, describeToken(tok))
	}
	if why := d.badText(); why != "" {
		return "", fmt.Errorf("%w: key %q (shown with U+FFFD for what is wrong) %s", ErrBadImport, k, why)
	}
	return k, nil
}

// badText says what is wrong with the text read up to where the decoder
// is: "" if nothing, else the earliest of invalid UTF-8 and a lone UTF-16
// surrogate escape, which encoding/json would both quietly turn into
// U+FFFD.
func (d *importDecoder) badText() string {
	off := d.dec.InputOffset()
	utf := d.vr.bad >= 0 && d.vr.bad < off
	lone := d.vr.lone >= 0 && d.vr.lone < off
	switch {
	case utf && (!lone || d.vr.bad < d.vr.lone):
		return "is not valid UTF-8"
	case lone:
		return `holds a lone UTF-16 surrogate escape (\ud800 to \udfff not in a high-low pair), which stands for no character`
	}
	return ""
}

// flatValue checks the value tok read for key in a flat file.
func (d *importDecoder) flatValue(tok json.Token, key string) error {
	s, ok := tok.(string)
	switch {
	case tok == nil:
		return fmt.Errorf("%w: the value of key %q is null; the flat format maps keys to string values", ErrBadImport, key)
	case !ok:
		return fmt.Errorf("%w: the value of key %q is %s, not a string (the flat format maps keys to string values)", ErrBadImport, key, describeToken(tok))
	case s == SnapshotFormat && key == "format":
		return fmt.Errorf(`%w: "format": %q must be the first field of a snapshot`, ErrBadImport, SnapshotFormat)
	case d.badText() != "":
		return fmt.Errorf("%w: the value of key %q %s", ErrBadImport, key, d.badText())
	}
	return nil
}

// flat reads the rest of a flat file's members after entries.
func (d *importDecoder) flat(entries []engine.ImportEntry) ([]engine.ImportEntry, error) {
	for d.dec.More() {
		key, err := d.key(entries[len(entries)-1].Key)
		if err != nil {
			return nil, err
		}
		v, err := d.dec.Token()
		if err != nil {
			return nil, d.syntax(err, key)
		}
		if err := d.flatValue(v, key); err != nil {
			return nil, err
		}
		entries = append(entries, engine.ImportEntry{Key: key, Value: v.(string)})
	}
	if err := d.end(); err != nil {
		return nil, err
	}
	// In place: a copy of millions of entries is what streaming avoids.
	slices.SortFunc(entries, func(a, b engine.ImportEntry) int { return strings.Compare(a.Key, b.Key) })
	for i := 1; i < len(entries); i++ {
		if entries[i].Key == entries[i-1].Key {
			return nil, fmt.Errorf("%w: key %q appears twice", ErrBadImport, entries[i].Key)
		}
	}
	return entries, nil
}

// snapshotEntry is one entry of a snapshot as it is decoded.
type snapshotEntry struct {
	Key       string `json:"key"`
	Value     string `json:"value"`
	CreateRev int64  `json:"create_rev"`
	ModRev    int64  `json:"mod_rev"`
	Version   int64  `json:"version"`
	ExpiresAt int64  `json:"expires_at"`
}

// snapshot reads the rest of a snapshot after its "format" field. The
// checksum is computed as it goes over the bytes WriteSnapshot would write
// for what is read, so nothing is kept but the entries.
func (d *importDecoder) snapshot() ([]engine.ImportEntry, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: snapshot: "+format, append([]any{ErrBadImport}, args...)...)
	}
	var hdr snapshotHeader
	hdr.Format = SnapshotFormat
	for _, f := range []struct {
		name string
		v    *int64
	}{{"version", nil}, {"rev", &hdr.Rev}, {"count", nil}} {
		name, err := d.key("format")
		if err != nil {
			return nil, err
		}
		if name != f.name {
			return nil, bad("want the field %q next, found %q (a snapshot's fields come in the order export writes them: format, version, rev, count, entries, crc)", f.name, name)
		}
		var n int64
		if err := d.dec.Decode(&n); err != nil {
			return nil, bad("%q must be a whole number: %v", name, err)
		}
		switch name {
		case "version":
			if n != SnapshotVersion {
				return nil, bad("version %d, this PyKV reads version %d", n, SnapshotVersion)
			}
			hdr.Version = int(n)
		case "rev":
			hdr.Rev = n
		case "count":
			hdr.Count = int(n)
		}
		if n < 0 {
			return nil, bad("%q must not be negative", name)
		}
	}
	if name, err := d.key("count"); err != nil {
		return nil, err
	} else if name != "entries" {
		return nil, bad(`want the field "entries" next, found %q`, name)
	}
	if tok, err := d.dec.Token(); err != nil {
		return nil, d.syntax(err, "")
	} else if tok != json.Delim('[') {
		return nil, bad(`"entries" must be an array, not %s`, describeToken(tok))
	}

	crc := crc32.New(castagnoli)
	head, err := json.Marshal(hdr)
	if err != nil {
		return nil, err
	}
	line := append(head[:len(head)-1], `,"entries":[`+"\n"...)
	crc.Write(line)
	// The count is not checked yet (the checksum comes last), so it only
	// hints the first allocation: a forged count must not reserve gigabytes.
	entries := make([]engine.ImportEntry, 0, min(hdr.Count, 1<<16))
	for d.dec.More() {
		var se snapshotEntry
		if err := d.dec.Decode(&se); err != nil {
			after := ""
			if len(entries) > 0 {
				after = entries[len(entries)-1].Key
			}
			return nil, bad("the entry after key %q: %v", after, err)
		}
		if why := d.badText(); why != "" {
			return nil, bad("the entry of key %q %s", se.Key, why)
		}
		if n := len(entries); n > 0 {
			switch prev := entries[n-1].Key; {
			case se.Key == prev:
				return nil, bad("key %q appears twice", se.Key)
			case se.Key < prev:
				return nil, bad("key %q comes after %q: entries are in key order", se.Key, prev)
			}
			crc.Write([]byte(",\n"))
		}
		e := engine.Entry{Key: se.Key, Value: se.Value, CreateRev: se.CreateRev, ModRev: se.ModRev, Version: se.Version, ExpiresAt: se.ExpiresAt}
		line = appendEntry(line[:0], &e)
		crc.Write(line)
		entries = append(entries, engine.ImportEntry{Key: se.Key, Value: se.Value, ExpiresAt: se.ExpiresAt})
	}
	if len(entries) > 0 {
		crc.Write([]byte("\n"))
	}
	if _, err := d.dec.Token(); err != nil { // the closing ']'
		return nil, d.syntax(err, "")
	}
	if name, err := d.key("entries"); err != nil {
		return nil, err
	} else if name != "crc" {
		return nil, bad(`want the field "crc" after the entries, found %q`, name)
	}
	var sum string
	if err := d.dec.Decode(&sum); err != nil {
		return nil, bad(`"crc" must be a string: %v`, err)
	}
	want, ok := parseHex8([]byte(sum))
	if !ok || len(sum) != 8 {
		return nil, bad("the checksum %q is not 8 lowercase hex digits", sum)
	}
	if err := d.end(); err != nil {
		return nil, err
	}
	if len(entries) != hdr.Count {
		return nil, bad("the header says %d entries, the file holds %d", hdr.Count, len(entries))
	}
	if crc.Sum32() != want {
		return nil, bad("the checksum does not match: the file was changed after it was exported (only whitespace may differ)")
	}
	return entries, nil
}

// end reads the closing brace of the document and checks nothing but
// whitespace follows.
func (d *importDecoder) end() error {
	if d.dec.More() {
		return fmt.Errorf("%w: unexpected data at byte %d", ErrBadImport, d.dec.InputOffset())
	}
	if _, err := d.dec.Token(); err != nil {
		return d.syntax(err, "")
	}
	if tok, err := d.dec.Token(); err != io.EOF {
		if err != nil {
			return d.syntax(err, "")
		}
		return fmt.Errorf("%w: %s after the end of the JSON object", ErrBadImport, describeToken(tok))
	}
	return nil
}

// syntax describes a decoding error; after is the last key read, if any.
// Errors of the reader itself (a body over its limit) are returned as
// they are.
func (d *importDecoder) syntax(err error, after string) error {
	var se *json.SyntaxError
	where := ""
	if after != "" {
		where = fmt.Sprintf(" (after key %q)", after)
	}
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%w: the file ends in the middle of the JSON document%s", ErrBadImport, where)
	case errors.As(err, &se):
		return fmt.Errorf("%w: not valid JSON at byte %d%s: %v", ErrBadImport, se.Offset, where, err)
	case d.vr.err != nil && errors.Is(err, d.vr.err):
		return err
	}
	return fmt.Errorf("%w: %v%s", ErrBadImport, err, where)
}

// describeToken names a JSON token for messages.
func describeToken(tok json.Token) string {
	switch v := tok.(type) {
	case nil:
		return "null"
	case json.Delim:
		switch v {
		case '{', '}':
			return "an object"
		default:
			return "an array"
		}
	case string:
		return fmt.Sprintf("the string %q", v)
	case bool:
		return fmt.Sprintf("%t", v)
	case float64, json.Number:
		return "a number"
	}
	return fmt.Sprint(tok)
}

// utf8Reader passes bytes through and notes the offset of the first byte
// that is not valid UTF-8, and of the first lone UTF-16 surrogate escape
// ("\ud800" with no low half after it, or a low half alone): encoding/json
// would quietly turn either into U+FFFD. A sequence or an escape cut by a
// read boundary is checked with the next read.
type utf8Reader struct {
	r       io.Reader
	off     int64   // bytes passed on
	bad     int64   // offset of the first invalid byte, or -1
	pending [3]byte // start of a sequence cut by the end of the last read
	npend   int
	err     error // the reader's own error other than EOF

	lone   int64    // offset of the first lone surrogate escape, or -1
	esc    escState // where the escape scanner is
	code   rune     // the \u escape's digits so far
	digits int      // how many of them
	escAt  int64    // offset of the backslash of the escape being read
	high   int64    // offset of a high surrogate escape awaiting its low half, or -1
}

// escState is where the surrogate escape scanner is. Backslashes appear
// only in strings in valid JSON (elsewhere the decoder refuses them), so
// the scanner needs no notion of strings: it follows escapes alone.
type escState uint8

const (
	escNone  escState = iota // not in an escape
	escSlash                 // after a backslash
	escHex                   // reading the four digits of \u
)

func (u *utf8Reader) Read(p []byte) (int, error) {
	n, err := u.r.Read(p)
	if u.bad < 0 && n > 0 {
		u.check(p[:n], err != nil)
	}
	if u.lone < 0 && n > 0 {
		u.scanEscapes(p[:n])
	}
	if u.lone < 0 && n == 0 && err != nil && u.high >= 0 {
		u.lone = u.high // the input ends after a high half
	}
	if u.bad < 0 && n == 0 && err != nil && u.npend > 0 {
		u.bad = u.off - int64(u.npend) // the input ends inside a sequence
	}
	u.off += int64(n)
	if err != nil && err != io.EOF {
		u.err = err
	}
	return n, err
}

// check validates b, which starts at u.off, after any pending bytes.
func (u *utf8Reader) check(b []byte, last bool) {
	start := u.off - int64(u.npend)
	buf := b
	if u.npend > 0 {
		// Join the cut sequence with the first bytes of this read.
		joined := append(u.pending[:u.npend:u.npend], b[:min(len(b), utf8.UTFMax)]...)
		r, size := utf8.DecodeRune(joined)
		if r == utf8.RuneError && size <= 1 {
			if !utf8.FullRune(joined) && !last {
				u.npend = copy(u.pending[:], joined)
				return
			}
			u.bad = start
			return
		}
		buf = b[size-u.npend:]
		start += int64(size)
		u.npend = 0
	}
	for i := 0; i < len(buf); {
		c := buf[i]
		if c < utf8.RuneSelf {
			i++
			continue
		}
		r, size := utf8.DecodeRune(buf[i:])
		if r == utf8.RuneError && size == 1 {
			if !utf8.FullRune(buf[i:]) && !last {
				u.npend = copy(u.pending[:], buf[i:])
				return
			}
			u.bad = start + int64(i)
			return
		}
		i += size
	}
}

// scanEscapes follows the \u escapes in b, which starts at u.off, and
// notes the first surrogate escape that is not a high half followed at
// once by a low half.
func (u *utf8Reader) scanEscapes(b []byte) {
	for i, c := range b {
		at := u.off + int64(i)
		switch u.esc {
		case escNone:
			if c == '\\' {
				u.esc, u.escAt = escSlash, at
			} else if u.high >= 0 {
				u.lone = u.high // a high half followed by no escape
				return
			}
		case escSlash:
			if c == 'u' {
				u.esc, u.code, u.digits = escHex, 0, 0
				continue
			}
			u.esc = escNone
			if u.high >= 0 {
				u.lone = u.high // a high half followed by another escape
				return
			}
		case escHex:
			d, ok := hexDigit(c)
			if !ok { // not an escape: the decoder refuses it
				u.esc = escNone
				continue
			}
			u.code = u.code<<4 | d
			if u.digits++; u.digits < 4 {
				continue
			}
			u.esc = escNone
			switch isHigh, isLow := u.code >= 0xd800 && u.code < 0xdc00, u.code >= 0xdc00 && u.code < 0xe000; {
			case u.high >= 0 && isLow:
				u.high = -1 // a pair
			case u.high >= 0:
				u.lone = u.high
				return
			case isHigh:
				u.high = u.escAt
			case isLow:
				u.lone = u.escAt
				return
			}
		}
	}
}

func hexDigit(c byte) (rune, bool) {
	switch {
	case '0' <= c && c <= '9':
		return rune(c - '0'), true
	case 'a' <= c && c <= 'f':
		return rune(c-'a') + 10, true
	case 'A' <= c && c <= 'F':
		return rune(c-'A') + 10, true
	}
	return 0, false
}

// ImportThrough is ImportStore for a store whose writes go elsewhere (a
// cluster member's go through the replicated log): it reads the file,
// plans the writes against s (see engine.Store.PlanImport) and hands them
// to write as one transaction. The operations are conditional on the
// revisions s saw, so a key another client changes meanwhile makes the
// whole import fail with an *engine.ConditionError (retry it) instead of
// undoing that write. Unlike ImportFile it holds the planned operations in
// memory as well as the entries.
func ImportThrough(s *engine.Store, r io.Reader, mode ImportMode, write func([]engine.Op) (engine.TxnResult, error)) (ImportResult, error) {
	if mode == "" {
		mode = ImportMerge
	}
	if mode != ImportMerge && mode != ImportReplace {
		return ImportResult{}, fmt.Errorf("unknown import mode %q", mode)
	}
	format, entries, err := ReadImport(r)
	if err != nil {
		return ImportResult{}, err
	}
	ops, res, err := s.PlanImport(entries, mode == ImportReplace)
	if err != nil {
		var oe *engine.OpError
		if errors.As(err, &oe) {
			return ImportResult{}, fmt.Errorf("%w: key %q: %w", ErrBadImport, oe.Key, oe.Err)
		}
		return ImportResult{}, err
	}
	if len(ops) > 0 {
		tr, err := write(ops)
		if err != nil {
			return ImportResult{}, err
		}
		res.Rev = tr.Rev
	}
	return ImportResult{Format: format, Mode: mode, Keys: len(entries), ImportResult: res}, nil
}

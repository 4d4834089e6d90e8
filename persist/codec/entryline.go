package codec

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"

	"github.com/pykv/pykv/engine"
)

// decodeEntry decodes one snapshot entry line (without the trailing comma
// and newline). Lines in exactly the layout WriteSnapshot produces, with no
// escapes in the key and value, take a fast path that allocates the key and
// value as one string; anything else goes through encoding/json. Opening a
// million-key snapshot spends most of its time here.
func decodeEntry(line []byte, e *engine.Entry, scratch *[]byte) error {
	if fastEntry(line, e, scratch) {
		return nil
	}
	*e = engine.Entry{}
	return json.Unmarshal(line, e)
}

func fastEntry(line []byte, e *engine.Entry, scratch *[]byte) bool {
	p := line
	if !bytes.HasPrefix(p, []byte(`{"key":"`)) {
		return false
	}
	ks := len(`{"key":"`)
	klen := plainString(p[ks:])
	if klen < 0 {
		return false
	}
	rest := p[ks+klen:]
	if !bytes.HasPrefix(rest, []byte(`","value":"`)) {
		return false
	}
	vs := ks + klen + len(`","value":"`)
	vlen := plainString(p[vs:])
	if vlen < 0 {
		return false
	}
	rest = p[vs+vlen:]
	var ok bool
	if rest, e.CreateRev, ok = field(rest, `","create_rev":`); !ok {
		return false
	}
	if rest, e.ModRev, ok = field(rest, `,"mod_rev":`); !ok {
		return false
	}
	if rest, e.Version, ok = field(rest, `,"version":`); !ok {
		return false
	}
	e.ExpiresAt = 0
	if bytes.HasPrefix(rest, []byte(`,"expires_at":`)) {
		if rest, e.ExpiresAt, ok = field(rest, `,"expires_at":`); !ok {
			return false
		}
	}
	if len(rest) != 1 || rest[0] != '}' {
		return false
	}
	// One allocation holds the key and the value side by side.
	b := append(append((*scratch)[:0], p[ks:ks+klen]...), p[vs:vs+vlen]...)
	*scratch = b
	both := string(b)
	e.Key, e.Value = both[:klen], both[klen:]
	return true
}

// plainString returns the length of a JSON string body up to its closing
// quote when it needs no unescaping (no backslash, no control character,
// valid UTF-8), or -1.
func plainString(p []byte) int {
	for i, c := range p {
		switch {
		case c == '"':
			if !utf8.Valid(p[:i]) {
				return -1
			}
			return i
		case c == '\\' || c < 0x20:
			return -1
		}
	}
	return -1
}

// field reads `name` followed by a non-negative decimal integer.
func field(p []byte, name string) ([]byte, int64, bool) {
	if !bytes.HasPrefix(p, []byte(name)) {
		return p, 0, false
	}
	p = p[len(name):]
	var n int64
	i := 0
	for ; i < len(p) && p[i] >= '0' && p[i] <= '9'; i++ {
		if i == 18 {
			return p, 0, false // would overflow; let encoding/json decide
		}
		n = n*10 + int64(p[i]-'0')
	}
	if i == 0 || (i > 1 && p[0] == '0') {
		return p, 0, false
	}
	return p[i:], n, true
}

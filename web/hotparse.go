package web

// The hot loop's request parser (see hotloop.go). It accepts only a narrow,
// strictly formed subset of HTTP/1.1 and leaves everything else to
// net/http, so the two can never read the same bytes differently: not
// where a request ends (request smuggling), not what it asks for.
//
// What it accepts, exactly (anything else is handed off):
//
//	request-line = ("GET" / "PUT") " /v1/kv/" 1*keychar " HTTP/1.1" CRLF
//	             / "GET /v1/kv/" 1*keychar "?consistency=" ("local" / "linearizable") " HTTP/1.1" CRLF
//	keychar      = ALPHA / DIGIT / "-" / "." / "_" / "~" / "!" / "$" / "&" / "'" /
//	               "(" / ")" / "*" / "+" / "," / ";" / "=" / ":" / "@" / "/"
//	header       = name ":" *(SP / HTAB) value *(SP / HTAB) CRLF
//	head         = request-line *header CRLF
//
// keychar is RFC 3986's pchar and "/" without "%": no escapes to decode, no
// fragment, nothing net/url treats specially, so the key is the bytes of
// the target after "/v1/kv/", as keyParam takes it from r.URL.Path. The one
// query taken is a GET's read consistency, spelled exactly as the cluster's
// consistent reads it (r.URL.Query().Get("consistency")): cluster mode's
// followers serve ?consistency=local reads from their own copy, the most
// common read there is. A name is one of hotHeaders (ASCII case folded); the other
// headers change what the production chain answers (Cookie, If-Match,
// Origin, X-Forwarded-For, ...) or how net/http reads the request
// (Transfer-Encoding, Expect, Upgrade, ...), or were not checked to change
// nothing: all go to net/http. Values are visible ASCII, spaces and tabs
// only, each header's value strictly formed (see hotValue). Lines end in
// CRLF; a bare CR or LF, an obs-fold, a space before the colon, a
// duplicated header the loop reads, HTTP/1.0, a lower-case method, an
// absolute or asterisk target: all handed off.

import (
	"bytes"
	"net/http"
	"unsafe"
)

// parseStatus is what parseHot made of the bytes it was given.
type parseStatus int

const (
	// parseOK: a complete request the loop serves, of the length returned.
	parseOK parseStatus = iota
	// parseShort: the bytes are a strict prefix of a request the loop
	// would serve; read more.
	parseShort
	// parseHandOff: not one for the loop (or not a request at all):
	// net/http must read these bytes, none of which parseHot consumed.
	parseHandOff
)

// Limits of the requests the loop takes; past them net/http reads the
// request (and answers 431 or 413 itself when a limit of its own is hit).
const (
	// hotMaxHeaders bounds the header lines of a request. Clients of the
	// key API send five or six; net/http counts none but bounds the size.
	hotMaxHeaders = 32
	// hotMaxLengthDigits bounds Content-Length to 999,999,999 bytes, far
	// past any value limit (the loop hands off values over the store's),
	// and far from overflowing an int.
	hotMaxLengthDigits = 9
)

// hotHeader says how the loop reads one header it accepts.
type hotHeader uint8

const (
	hdrIgnored       hotHeader = iota // nothing in the chain reads it (see hotHeaders)
	hdrHost                           // checkHost: the loop checks it as checkHost does
	hdrAuthorization                  // authenticate: "Bearer <token>" only
	hdrContentLength                  // the body's length
	hdrConnection                     // "close" or "keep-alive" only
	hdrAccept                         // "*/*" only: wantsJSON is false for it
)

// hotHeaders are the headers the loop accepts, lower case. The ignored
// ones are those clients of the API send (curl, Go, Python, wrk) and that
// neither net/http nor any middleware or handler of GET and PUT
// /v1/kv/{key} reads: Content-Type is read only by the JSON decoder of
// other routes, Accept-Encoding only by the static files and the OpenAPI
// document. Add a name here only after checking the same; when in doubt,
// leave it out: a header missing here costs a hand-off, never an answer.
var hotHeaders = [...]struct {
	name string
	kind hotHeader
}{
	{"host", hdrHost},
	{"authorization", hdrAuthorization},
	{"content-length", hdrContentLength},
	{"content-type", hdrIgnored},
	{"user-agent", hdrIgnored},
	{"accept", hdrAccept},
	{"connection", hdrConnection},
	{"accept-encoding", hdrIgnored},
	{"accept-language", hdrIgnored},
}

// Byte classes, in one table so a byte is judged by one load.
const (
	clsKey   = 1 << iota // keychar (see the file comment)
	clsHost              // a byte of a Host the loop takes: a name, IPv4, [IPv6] and a port
	clsVchar             // visible ASCII, '!' to '~'
	clsDigit
)

var hotClass = func() (t [256]uint8) {
	for c := '!'; c <= '~'; c++ {
		t[c] |= clsVchar
	}
	for _, c := range "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789" {
		t[c] |= clsKey | clsHost
	}
	for _, c := range "-._~!$&'()*+,;=:@/" {
		t[c] |= clsKey
	}
	for _, c := range "-.:[]" {
		t[c] |= clsHost
	}
	for c := '0'; c <= '9'; c++ {
		t[c] |= clsDigit
	}
	return t
}()

// parseHot reads the request at the start of b, one the hot loop serves
// or not. On parseOK, n is the request's length (head and body) and r
// holds what it asks: r.key is a new string; r.host and r.token point into
// b and are valid only as long as b is not changed (the loop checks them
// at once and clears them). On parseShort, n is the length the request
// will have when its head is complete and only its body is missing, and 0
// while the head is incomplete. On parseHandOff n is 0: net/http must read
// b from its start, as it is (parseHot never changes b).
//
// A head (request line to the empty line, included) longer than
// maxHeaderBytes (http.Server's MaxHeaderBytes, zero meaning its default)
// is handed off, as soon as that many bytes came without it ending:
// net/http reads it, and answers 431 past its own limit.
//
// parseShort is returned only when b is a strict prefix of a request the
// loop serves: every line so far is checked, the unfinished one as far as
// it goes, so a malformed request is handed off at the first byte that
// shows it, not left waiting for bytes that would not make it valid.
// Whatever way a request is split across reads, parseHot says parseShort
// on each prefix until the whole request is there, then the same answer.
func parseHot(b []byte, maxHeaderBytes int, r *hotReq) (n int, st parseStatus) {
	if maxHeaderBytes <= 0 {
		maxHeaderBytes = http.DefaultMaxHeaderBytes // as http.Server reads a zero
	}
	head := b
	if len(head) > maxHeaderBytes {
		head = head[:maxHeaderBytes] // the head must end within these
	}
	line, rest, state := hotLine(head)
	if state == lineBad || !hotRequestLine(line, state == lineComplete, r) {
		return 0, parseHandOff
	}
	r.bodyLen = -1
	var seen [hdrAccept + 1]bool
	headers := 0
	for state == lineComplete {
		line, rest, state = hotLine(rest)
		if state == lineBad {
			return 0, parseHandOff
		}
		if state == linePartial && len(line) == 0 {
			break // the next line is still to come
		}
		if (state == lineComplete && len(line) == 0) || (state == linePartial && len(line) == 1 && line[0] == '\r') {
			// The empty line, or its CR: the head ends (or can only end) here.
			if !seen[hdrHost] {
				return 0, parseHandOff // HTTP/1.1 requires it; net/http answers 400
			}
			if r.bodyLen < 0 {
				if r.put {
					return 0, parseHandOff // no length: chunked, or none; net/http's to judge
				}
				r.bodyLen = 0
			}
			if state != lineComplete {
				break
			}
			total := len(head) - len(rest) + r.bodyLen
			if total > len(b) {
				return total, parseShort
			}
			return total, parseOK
		}
		if headers++; headers > hotMaxHeaders {
			return 0, parseHandOff
		}
		if !hotHeaderLine(line, state == lineComplete, r, &seen) {
			return 0, parseHandOff
		}
	}
	if len(b) >= maxHeaderBytes {
		return 0, parseHandOff // the head is longer than maxHeaderBytes
	}
	return 0, parseShort
}

// lineState is how a line of the head ends.
type lineState uint8

const (
	lineComplete lineState = iota // in CRLF
	linePartial                   // not yet: the bytes end first
	lineBad                       // a bare CR or LF: handed off
)

// hotLine cuts the first line off b: without its CRLF when complete; when
// partial, all of b (a last CR included, as it may yet be followed by LF).
func hotLine(b []byte) (line, rest []byte, st lineState) {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		if j := bytes.IndexByte(b, '\r'); j >= 0 && j != len(b)-1 {
			return nil, nil, lineBad
		}
		return b, nil, linePartial
	}
	if i == 0 || b[i-1] != '\r' || bytes.IndexByte(b[:i-1], '\r') >= 0 {
		return nil, nil, lineBad
	}
	return b[:i-1], b[i+1:], lineComplete
}

// hotRequestLine reads the request line (or, when not complete, checks it
// can still become one the loop takes) into r.
func hotRequestLine(line []byte, complete bool, r *hotReq) bool {
	const get, put, version = "GET /v1/kv/", "PUT /v1/kv/", " HTTP/1.1"
	const local, linearizable = "?consistency=local" + version, "?consistency=linearizable" + version
	switch {
	case len(line) >= len(get) && string(line[:len(get)]) == get:
	case len(line) >= len(put) && string(line[:len(put)]) == put:
		r.put = true
	default:
		return !complete && (isPrefix(line, get) || isPrefix(line, put))
	}
	rest := line[len(get):]
	k := 0
	for k < len(rest) && hotClass[rest[k]]&clsKey != 0 {
		k++
	}
	key, tail := rest[:k], rest[k:]
	if !complete {
		return len(tail) == 0 || (k > 0 && (isPrefix(tail, version+"\r") ||
			(!r.put && (isPrefix(tail, local+"\r") || isPrefix(tail, linearizable+"\r")))))
	}
	switch {
	case k == 0:
		return false
	case string(tail) == version:
	case !r.put && string(tail) == local:
		r.local = true
	case !r.put && string(tail) == linearizable:
	default:
		return false
	}
	r.key = string(key)
	return true
}

// hotHeaderLine reads one header line into r (or, when not complete,
// checks it can still become one the loop takes). seen marks the headers
// read so far: a second one of those the loop reads is handed off
// (net/http refuses two Hosts; of two Authorizations it reads the first;
// two Content-Lengths it takes if equal: never worth the doubt).
func hotHeaderLine(line []byte, complete bool, r *hotReq, seen *[hdrAccept + 1]bool) bool {
	colon := bytes.IndexByte(line, ':')
	if colon < 0 {
		if complete {
			return false
		}
		for _, h := range hotHeaders {
			if hasPrefixFold(h.name, line) && (h.kind == hdrIgnored || !seen[h.kind]) {
				return true // the start of a header it may still take
			}
		}
		return false
	}
	kind, known := lookupHotHeader(line[:colon])
	if !known {
		return false
	}
	raw := line[colon+1:]
	if kind != hdrIgnored {
		if seen[kind] {
			return false
		}
		seen[kind] = true
	}
	return hotValue(kind, raw, complete, r)
}

// lookupHotHeader finds name in hotHeaders: by its length first, so that
// one name at most is compared byte by byte (a linear search was a fifth
// of a PUT's parse).
func lookupHotHeader(name []byte) (hotHeader, bool) {
	var i0, i1 int
	switch len(name) {
	case 4:
		i0, i1 = 0, 0 // host
	case 6:
		i0, i1 = 5, 5 // accept
	case 10:
		i0, i1 = 4, 6 // user-agent, connection
	case 12:
		i0, i1 = 3, 3 // content-type
	case 13:
		i0, i1 = 1, 1 // authorization
	case 14:
		i0, i1 = 2, 2 // content-length
	case 15:
		i0, i1 = 7, 8 // accept-encoding, accept-language
	default:
		return 0, false
	}
	for _, i := range [2]int{i0, i1} {
		if equalFold(name, hotHeaders[i].name) {
			return hotHeaders[i].kind, true
		}
	}
	return 0, false
}

// hotValue checks and reads a header's value (the bytes after the
// colon). Each is taken only in its plainest form: a Host of name bytes
// (never empty: allowed by net/http, but no client sends one);
// "Bearer <token>" with one space and a token of visible ASCII; a
// Content-Length of at most hotMaxLengthDigits digits without sign or
// leading zero (only "0" on a GET); a Connection of "close" or
// "keep-alive"; an Accept of "*/*". When not complete, the value only has
// to be able to become one of those.
func hotValue(kind hotHeader, raw []byte, complete bool, r *hotReq) bool {
	if !complete && len(raw) > 0 && raw[len(raw)-1] == '\r' {
		// A partial line's last CR (hotLine allows none elsewhere) can
		// only end the line: the value is complete.
		raw, complete = raw[:len(raw)-1], true
	}
	for _, c := range raw {
		if hotClass[c]&clsVchar == 0 && c != ' ' && c != '\t' {
			return false // CTLs, NUL, DEL, non-ASCII bytes
		}
	}
	if kind == hdrIgnored {
		return true
	}
	u := raw[leadingOWS(raw):]
	if kind == hdrAuthorization {
		// "Bearer", one space, the token, then whitespace only; as
		// bearerToken reads it (cut at the first space, then trimmed).
		const scheme = "bearer "
		if len(u) < len(scheme) {
			return !complete && hasPrefixFold(scheme, u)
		}
		if !equalFold(u[:len(scheme)], scheme) {
			return false
		}
		tok := u[len(scheme):]
		k := 0
		for k < len(tok) && hotClass[tok[k]]&clsVchar != 0 {
			k++
		}
		if leadingOWS(tok[k:]) != len(tok)-k || (k == 0 && (complete || len(tok) > 0)) {
			return false // more after the token's whitespace, or no token
		}
		r.hasAuth = true
		r.token = unsafe.String(unsafe.SliceData(tok), k)
		return true
	}
	// The value as net/http reads it, whitespace trimmed off both ends.
	// It ends at its first space or tab, after which only whitespace may
	// follow; final says whether it can still grow.
	v := u
	for i, c := range u {
		if c == ' ' || c == '\t' {
			if leadingOWS(u[i:]) != len(u)-i {
				return false
			}
			v = u[:i]
			break
		}
	}
	final := complete || len(v) < len(u)
	switch kind {
	case hdrHost:
		for _, c := range v {
			if hotClass[c]&clsHost == 0 {
				return false
			}
		}
		if len(v) == 0 {
			return !final
		}
		r.host = unsafe.String(unsafe.SliceData(v), len(v))
	case hdrContentLength:
		if len(v) == 0 {
			return !final
		}
		if len(v) > hotMaxLengthDigits || (v[0] == '0' && len(v) > 1) || (!r.put && v[0] != '0') {
			return false // too long, a leading zero, a GET's body
		}
		n := 0
		for _, c := range v {
			if hotClass[c]&clsDigit == 0 {
				return false
			}
			n = n*10 + int(c-'0')
		}
		r.bodyLen = n
	case hdrConnection:
		switch {
		case equalFold(v, "close"):
			r.closeConn = true
		case equalFold(v, "keep-alive"):
		default:
			return !final && (hasPrefixFold("close", v) || hasPrefixFold("keep-alive", v))
		}
	case hdrAccept:
		if string(v) != "*/*" {
			return !final && isPrefix(v, "*/*")
		}
	}
	return true
}

// isPrefix reports whether b is a prefix of s.
func isPrefix(b []byte, s string) bool { return len(b) <= len(s) && string(b) == s[:len(b)] }

// hasPrefixFold reports whether b is a prefix of s, ASCII case folded (s
// lower case).
func hasPrefixFold(s string, b []byte) bool { return len(b) <= len(s) && equalFold(b, s[:len(b)]) }

// equalFold reports whether b is s, ASCII case folded (s lower case).
// Only ASCII folds: net/http compares header names and Connection tokens
// so, and a Unicode fold ("K" for "k") would let bytes through that
// net/http reads as another name.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

// leadingOWS is the number of spaces and tabs b starts with.
func leadingOWS(b []byte) int {
	i := 0
	for i < len(b) && (b[i] == ' ' || b[i] == '\t') {
		i++
	}
	return i
}

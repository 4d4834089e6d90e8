package web

// The hot loop's request parser (see hotloop.go). It accepts only a narrow,
// strictly formed subset of HTTP/1.1 and leaves everything else to
// net/http, so the two can never read the same bytes differently.

import (
	"bytes"
	"strings"
	"unsafe"
)

const (
	parseOK = iota
	parseShort
	parseHandOff
)

// parse reads one request from b: its total length (head and body) and
// whether it is complete, incomplete, or one for net/http. The rules are
// strict on purpose: whatever net/http might read differently (folded or
// duplicated headers, Transfer-Encoding, bare LF) goes to net/http.
func (l *HotLoop) parse(b []byte, r *hotReq) (int, int) {
	end := bytes.Index(b, []byte("\r\n\r\n"))
	if end < 0 {
		if len(b) > l.t.MaxHeaderBytes {
			return 0, parseHandOff
		}
		return 0, parseShort
	}
	head := b[:end+2]
	line, rest, _ := bytes.Cut(head, []byte("\r\n"))
	switch {
	case bytes.HasPrefix(line, []byte("GET /v1/kv/")):
		line = line[len("GET /v1/kv/"):]
	case bytes.HasPrefix(line, []byte("PUT /v1/kv/")):
		r.put = true
		line = line[len("PUT /v1/kv/"):]
	default:
		return 0, parseHandOff
	}
	key, ok := bytes.CutSuffix(line, []byte(" HTTP/1.1"))
	if !ok || len(key) == 0 {
		return 0, parseHandOff
	}
	for _, c := range key {
		// Escapes, queries and anything net/http would refuse or decode.
		if c <= ' ' || c >= 0x7f || c == '%' || c == '?' || c == '#' {
			return 0, parseHandOff
		}
	}
	r.key = string(key)
	r.bodyLen = -1
	var seenHost bool
	for len(rest) > 0 {
		var h []byte
		h, rest, _ = bytes.Cut(rest, []byte("\r\n"))
		colon := bytes.IndexByte(h, ':')
		if colon <= 0 || h[0] == ' ' || h[0] == '\t' || bytes.IndexByte(h, '\n') >= 0 || bytes.IndexByte(h, '\r') >= 0 {
			return 0, parseHandOff
		}
		name, val := h[:colon], bytes.Trim(h[colon+1:], " \t")
		if name[len(name)-1] == ' ' || name[len(name)-1] == '\t' {
			return 0, parseHandOff
		}
		switch {
		case hdrIs(name, "host"):
			if seenHost {
				return 0, parseHandOff
			}
			seenHost, r.host = true, string(val)
		case hdrIs(name, "authorization"):
			if r.hasAuth {
				return 0, parseHandOff
			}
			r.hasAuth = true
			scheme, tok, ok := bytes.Cut(val, []byte(" "))
			if !ok || !strings.EqualFold(string(scheme), "Bearer") {
				return 0, parseHandOff
			}
			r.token = unsafe.String(unsafe.SliceData(tok), len(tok)) // used before buf moves
		case hdrIs(name, "content-length"):
			if r.bodyLen >= 0 || len(val) == 0 || len(val) > 9 {
				return 0, parseHandOff
			}
			n := 0
			for _, c := range val {
				if c < '0' || c > '9' {
					return 0, parseHandOff
				}
				n = n*10 + int(c-'0')
			}
			r.bodyLen = n
		case hdrIs(name, "connection"):
			switch {
			case hdrIs(val, "keep-alive"):
			case hdrIs(val, "close"):
				r.closeConn = true
			default:
				return 0, parseHandOff
			}
		case hdrIs(name, "accept"):
			if string(val) != "*/*" {
				return 0, parseHandOff // JSON asked for, or to be judged: the handler's
			}
		case hdrIs(name, "transfer-encoding"), hdrIs(name, "expect"), hdrIs(name, "cookie"),
			hdrIs(name, "if-match"), hdrIs(name, "if-none-match"),
			hdrIs(name, "origin"), hdrIs(name, "sec-fetch-site"), hdrIs(name, "upgrade"),
			hdrIs(name, "x-forwarded-for"), hdrIs(name, "x-forwarded-proto"):
			return 0, parseHandOff
		}
	}
	if !seenHost {
		return 0, parseHandOff // HTTP/1.1 requires it; net/http answers 400
	}
	if !r.put {
		if r.bodyLen > 0 {
			return 0, parseHandOff
		}
		r.bodyLen = 0
	} else if r.bodyLen < 0 {
		return 0, parseHandOff // no length: chunked or none, net/http's to judge
	}
	total := end + 4 + r.bodyLen
	if total > len(b) {
		return 0, parseShort
	}
	return total, parseOK
}

// hdrIs reports whether b is s, ASCII case folded (s lower case).
func hdrIs(b []byte, s string) bool {
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

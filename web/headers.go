package web

import (
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/pykv/pykv/engine"
)

// Header values every answer of a kind carries, shared by all responses: a
// header set to one of these costs one map assignment and no allocation.
// Keys are written in canonical form (textproto.CanonicalMIMEHeaderKey's),
// so they need no canonicalizing either. This is safe because net/http
// copies the header map before writing it and no handler changes a value
// in place (Header.Add on a shared one-element slice allocates a new one).
var (
	hdrNosniff     = []string{"nosniff"}
	hdrDeny        = []string{"DENY"}
	hdrNoReferrer  = []string{"no-referrer"}
	hdrNoCache     = []string{"no-cache"}
	hdrVaryAccept  = []string{"Accept"}
	hdrTextPlain   = []string{"text/plain; charset=utf-8"}
	hdrJSON        = []string{"application/json"}
	hdrProblemJSON = []string{"application/problem+json"}
)

// setEntryHeaders describes e in headers: its revision as the ETag, its
// creation revision, version and expiry, and the body's Content-Length
// when bodyLen >= 0. A GET or PUT of a key is the hot path of the store,
// so all these values are formatted into one string, cut into one slice.
func setEntryHeaders(w http.ResponseWriter, e *engine.Entry, bodyLen int) {
	var buf [128]byte
	b := append(buf[:0], '"')
	b = strconv.AppendInt(b, e.ModRev, 10)
	b = append(b, '"')
	ends := [5]int{len(b)}
	b = strconv.AppendInt(b, e.CreateRev, 10)
	ends[1] = len(b)
	b = strconv.AppendInt(b, e.Version, 10)
	ends[2] = len(b)
	if e.ExpiresAt != 0 {
		b = strconv.AppendInt(b, e.ExpiresAt, 10)
	}
	ends[3] = len(b)
	if bodyLen >= 0 {
		b = strconv.AppendInt(b, int64(bodyLen), 10)
	}
	ends[4] = len(b)
	s := string(b)
	vals := make([]string, len(ends))
	start := 0
	for i, end := range ends {
		vals[i] = s[start:end]
		start = end
	}
	h := w.Header()
	h["Etag"] = vals[0:1:1]
	h["Pykv-Create-Revision"] = vals[1:2:2]
	h["Pykv-Version"] = vals[2:3:3]
	if e.ExpiresAt != 0 {
		h["Pykv-Expires-At"] = vals[3:4:4]
	}
	if bodyLen >= 0 {
		h["Content-Length"] = vals[4:5:5]
	}
	h["Cache-Control"] = hdrNoCache
}

// httpDate returns the Date header's value for now, formatted once a
// second rather than by net/http for every answer (2% of a GET). It is set
// as a request comes in, so a long answer (an export) carries the second
// it began in, not the one it ended in.
func httpDate() []string {
	now := time.Now()
	if d := lastDate.Load(); d != nil && d.sec == now.Unix() {
		return d.val
	}
	d := &dateValue{sec: now.Unix(), val: []string{now.UTC().Format(http.TimeFormat)}}
	lastDate.Store(d)
	return d.val
}

type dateValue struct {
	sec int64
	val []string
}

var lastDate atomic.Pointer[dateValue]

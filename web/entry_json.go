package web

import (
	"net/http"
	"sync"

	"github.com/pykv/pykv/engine"
	"github.com/pykv/pykv/persist/codec"
)

// appendEntryJSON appends e as one line of JSON, byte for byte what
// jsonEncode (encoding/json with HTML left unescaped) writes for it,
// trailing newline included. Every durable PUT answers with its entry:
// through encoding/json that was about 5% of the server's CPU time per PUT
// under load (reflection, an Encoder and its buffer each time), written by
// hand it is a few appends into a pooled buffer. TestAppendEntryJSON holds
// the two spellings equal.
func appendEntryJSON(b []byte, e *engine.Entry) []byte {
	b = codec.AppendKey(b, '{', e.Key, false)
	b = codec.AppendValue(b, ',', e.Value, false)
	b = codec.AppendCreateRev(b, ',', e.CreateRev)
	b = codec.AppendModRev(b, ',', e.ModRev)
	b = codec.AppendVersion(b, ',', e.Version)
	b = codec.AppendExpiresAt(b, ',', e.ExpiresAt)
	return append(b, '}', '\n')
}

// entryBufs holds the buffers entries are encoded into. Buffers that grew
// past maxPooledEntryBuf (a large value) are dropped rather than kept.
var entryBufs = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

const maxPooledEntryBuf = 64 << 10

// writeEntry answers status with e as JSON, as encode(w, status, e) would.
// A write error can only come from the connection, so it is dropped.
func writeEntry(w http.ResponseWriter, status int, e *engine.Entry) {
	bp := entryBufs.Get().(*[]byte)
	b := appendEntryJSON((*bp)[:0], e)
	w.Header()["Content-Type"] = hdrJSON
	w.WriteHeader(status)
	_, _ = w.Write(b)
	if cap(b) <= maxPooledEntryBuf {
		*bp = b[:0]
		entryBufs.Put(bp)
	}
}

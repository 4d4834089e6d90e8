package web

import (
	"github.com/pykv/pykv/engine"
	"github.com/pykv/pykv/persist/codec"
)

// encodeEvents encodes events as one events message, or as several split
// at revision boundaries once a message passes limit bytes.
func encodeEvents(events []engine.Event, withPrev bool, limit int) [][]byte {
	var msgs [][]byte
	var b []byte
	for i := range events {
		if b != nil && events[i].Rev != events[i-1].Rev && len(b) >= limit {
			msgs = append(msgs, endEvents(b, events[i-1].Rev))
			b = nil
		}
		if b == nil {
			b = make([]byte, 0, min(limit, encodedSize(events[i:], withPrev)))
			b = append(b, `{"type":"events","events":[`...)
		} else {
			b = append(b, ',')
		}
		b = appendEvent(b, &events[i], withPrev)
	}
	return append(msgs, endEvents(b, events[len(events)-1].Rev))
}

// encodedSize estimates the size of events encoded, to size the buffer.
func encodedSize(events []engine.Event, withPrev bool) int {
	n := 64
	for i := range events {
		ev := &events[i]
		n += len(ev.Key) + 96
		if ev.Entry != nil {
			n += len(ev.Entry.Value)
		}
		if withPrev && ev.Prev != nil {
			n += len(ev.Prev.Value) + 16
		}
	}
	return n
}

// endEvents closes an events message with its rev.
func endEvents(b []byte, rev int64) []byte {
	b = append(b, ']')
	b = codec.AppendRev(b, ',', rev)
	return append(b, '}')
}

// appendEvent appends ev as a JSON object. It is written by hand rather than
// with encoding/json because every subscriber encodes every event: at
// thousands of writes a second and a hundred subscribers that is most of the
// stream's CPU time.
func appendEvent(b []byte, ev *engine.Event, withPrev bool) []byte {
	b = codec.AppendStringField(b, '{', "type", string(ev.Type), false)
	b = codec.AppendKey(b, ',', ev.Key, false)
	if e := ev.Entry; e != nil {
		b = codec.AppendValue(b, ',', e.Value, false)
	}
	b = codec.AppendRev(b, ',', ev.Rev)
	if e := ev.Entry; e != nil {
		b = codec.AppendCreateRev(b, ',', e.CreateRev)
		b = codec.AppendVersion(b, ',', e.Version)
		b = codec.AppendExpiresAt(b, ',', e.ExpiresAt)
	}
	if withPrev && ev.Prev != nil {
		b = codec.AppendStringField(b, ',', "prev_value", ev.Prev.Value, false)
	}
	return append(b, '}')
}

// appendJSONString appends s as a JSON string, HTML characters left as
// they are like the rest of the API's JSON (see codec.AppendJSONString).
func appendJSONString(b []byte, s string) []byte { return codec.AppendJSONString(b, s, false) }

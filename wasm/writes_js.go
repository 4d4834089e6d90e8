//go:build js && wasm

package main

import (
	"fmt"
	"runtime"
	"sync"
	"unsafe"

	"github.com/pykv/pykv/engine"
)

// Puts and deletes, the calls a page makes by the thousand, do not go
// through syscall/js. A js.FuncOf call costs some 50 µs in Chromium (an
// event through Go's scheduler, and every argument and the result made into
// JavaScript values that the GC later finalizes), more than the write
// itself. offline.js instead calls the two functions below, which the
// module exports with go:wasmexport (a plain WebAssembly call, about 1 µs),
// and the two sides exchange bytes in one buffer of the module's memory in
// the format of wire.go.
//
// Two rules keep this safe. An exported function may switch goroutines (a
// GC assist, a reload waiting for the old store's goroutines, the Gosched
// below), but it must never wait for JavaScript (a timer, a callback): Go
// would then give the thread back to JavaScript in the middle of the call.
// A write waits for nothing outside Go: storage calls are synchronous, and
// its locks are never held across such a wait. And while a write runs, no
// page code may call into Go: the other goroutines' calls into JavaScript
// must come straight back. Those are storage calls, the GC's finalizers and
// subscriptions, whose callback in offline.js only queues the delivery to
// the page's listeners. (A nested call would let Go's scheduler resume the
// write from inside it, on the wrong JavaScript stack.)

// wireKeepBytes is the buffer size kept between writes; a larger one, made
// for a large request, is let go at the next small one.
const wireKeepBytes = 64 << 10

// wire is the buffer the requests and answers pass through, and the copies
// open by handle.
var wire struct {
	mu   sync.Mutex
	buf  []byte
	dbs  map[int32]*localDB
	next int32
	busy bool // a write is running: a nested one would clobber buf
}

// register gives db a handle for pykv_write; unregister forgets it.
func register(db *localDB) int32 {
	wire.mu.Lock()
	defer wire.mu.Unlock()
	if wire.dbs == nil {
		wire.dbs = make(map[int32]*localDB)
	}
	wire.next++
	wire.dbs[wire.next] = db
	return wire.next
}

func unregister(h int32) {
	wire.mu.Lock()
	defer wire.mu.Unlock()
	delete(wire.dbs, h)
}

// wireBuffer returns the address of the buffer, first growing it to size
// bytes if it is smaller. JavaScript writes a request there and reads the
// answer from there (asking again for the address: the answer may have
// outgrown the buffer). Go's GC does not move memory, so the address stays
// valid until the buffer is replaced.
//
//go:wasmexport pykv_buffer
func wireBuffer(size int32) uint32 {
	switch {
	case int(size) > cap(wire.buf):
		wire.buf = make([]byte, size)
	case size > 0 && int(size) <= wireKeepBytes && cap(wire.buf) > wireKeepBytes:
		// A new request, small, after a large one: let the large buffer
		// go. (Size 0 asks where an answer is: the buffer must stay.)
		wire.buf = make([]byte, wireKeepBytes)
	}
	wire.buf = wire.buf[:cap(wire.buf)]
	return uint32(uintptr(unsafe.Pointer(unsafe.SliceData(wire.buf))))
}

// wireWrite carries out the request of n bytes in the buffer on the copy
// with handle h, writes the answers to the buffer and returns their length.
//
//go:wasmexport pykv_write
func wireWrite(h, n int32) int32 {
	var answer []byte
	if n < 0 || int(n) > len(wire.buf) {
		answer = appendFailure(wire.buf[:0], fmt.Errorf("%w: %d bytes", errBadWire, n))
	} else {
		answer = wireAnswer(h, wire.buf[:n])
	}
	wire.buf = answer[:cap(answer)]
	return int32(len(answer))
}

// wireAnswer decodes and carries out a request. It reuses the request's
// buffer for the answer once the request is decoded.
func wireAnswer(h int32, req []byte) (answer []byte) {
	defer func() {
		if r := recover(); r != nil {
			answer = appendFailure(req[:0], fmt.Errorf("internal error: %v", r))
		}
	}()
	wire.mu.Lock()
	db := wire.dbs[h]
	wire.mu.Unlock()
	var err error
	var ops []engine.Op
	switch {
	case wire.busy:
		err = fmt.Errorf("internal error: a write started inside another")
	case db == nil:
		err = fmt.Errorf("write: %w", engine.ErrClosed)
	default:
		ops, err = decodeWrites(req)
	}
	if err != nil {
		return appendFailure(req[:0], err)
	}
	wire.busy = true
	defer func() { wire.busy = false }()
	answer = appendAnswers(req[:0], ops, db.DoBatch(ops))
	if db.subscribers.Load() > 0 {
		// Let the subscriptions the write woke run before JavaScript goes
		// on, as they do within a syscall/js call. (Without subscribers
		// this would only cost time: nothing else waits for a write.)
		runtime.Gosched()
	}
	return answer
}

package web

import (
	"cmp"
	"context"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pykv/pykv/engine"
	"github.com/pykv/pykv/persist/codec"
)

// watchConn is one watch connection (one stream). Everything but readLoop runs on the
// handler's goroutine, which is the connection's only writer.
type watchConn struct {
	h        *watchHandler
	conn     *websocket.Conn
	w        *engine.Watcher
	prefix   string
	withPrev bool
	seen     int64         // every matching change up to seen has been sent
	state    connState     // what the stream waits for before reading again
	tick     *tick         // the tick the stream reads up to
	buf      []byte        // the progress or compacted message being built
	readDone chan struct{} // closed when readLoop returns: the client is gone

	// pongMu orders arming the pong deadline (the writer, after a ping)
	// with lifting it (readLoop, on the pong), so a pong that arrives
	// before the writer arms the deadline is not followed by one.
	pongMu   sync.Mutex
	pings    uint64 // pings sent; each carries its number
	awaiting uint64 // the ping whose pong is awaited; 0 when none
}

// connState says what a stream waits for before it reads the feed again.
type connState int

const (
	// idle: the last read found nothing; wait for the feed to change.
	idle connState = iota
	// paused: the last read sent a message; wait for the pacer's next
	// tick, to gather the changes made meanwhile into one message.
	paused
	// behind: the last read stopped at Batch events before the tick's
	// revision; read on at once.
	behind
)

// sendError is a failed write to the client: the connection is dropped
// without a close message, as the client is gone or not reading.
type sendError struct{ error }

// run streams the changes st.w reads (or reports werr, the error taking the
// watcher gave) until the client goes or the stream is cut off.
func (st *watchConn) run(ctx context.Context, werr error) {
	defer st.conn.Close()
	st.h.streams.Add(1)
	defer st.h.streams.Add(-1)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go st.readLoop(cancel)

	if werr != nil {
		st.fail(werr)
		return
	}
	if err := st.writeProgress(st.seen); err != nil {
		return
	}
	opts := st.h.opts
	now := time.Now()
	nextPing, nextProgress := now.Add(opts.PingInterval), now.Add(opts.ProgressInterval)
	for {
		// Send changes until a ping or progress message is due.
		due := nextPing
		if nextProgress.Before(due) {
			due = nextProgress
		}
		if opts.Leaderless != nil {
			if opts.Leaderless() {
				st.closeWith(websocket.CloseTryAgainLater, "", "no leader; connect to another member", "")
				return
			}
			if check := time.Now().Add(opts.LeaderlessCheck); check.Before(due) {
				due = check
			}
		}
		dueCtx, stop := context.WithDeadline(ctx, due)
		err := st.pump(dueCtx)
		stop()
		if errors.As(err, new(sendError)) {
			return
		}
		if ctx.Err() != nil || !errors.Is(err, context.DeadlineExceeded) {
			st.fail(cmp.Or(ctx.Err(), err))
			return
		}
		now := time.Now()
		if !now.Before(nextPing) {
			if err := st.ping(); err != nil {
				return
			}
			nextPing = now.Add(opts.PingInterval)
		}
		if !now.Before(nextProgress) {
			if err := st.writeProgress(st.seen); err != nil {
				return
			}
			nextProgress = now.Add(opts.ProgressInterval)
		}
	}
}

// pump reads the feed and sends what it finds until ctx ends (its error is
// then returned) or the stream must stop.
func (st *watchConn) pump(ctx context.Context) error {
	for {
		r, err := st.next(ctx)
		if err == nil {
			err = r.err
		}
		if err != nil {
			return err
		}
		if err := st.writeRead(r); err != nil {
			return sendError{err}
		}
		st.advance(r)
		// A read does not look at ctx while there are changes: under
		// steady traffic, pings and progress would never be due.
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// next waits as st.state says, then reads the feed up to its tick.
func (st *watchConn) next(ctx context.Context) (*feedRead, error) {
	switch st.state {
	case idle:
		if err := st.w.Wait(ctx); err != nil {
			return nil, err
		}
		st.tick = st.h.pacer.now(st.seen)
	case paused:
		t := st.h.pacer.wait(ctx, st.h.coalesce())
		if t == nil {
			return nil, ctx.Err()
		}
		st.tick = t
	}
	return st.tick.read(st), nil
}

// advance records what a read sent and chooses what to wait for next.
func (st *watchConn) advance(r *feedRead) {
	if r.n >= st.h.opts.Batch {
		st.seen, st.state = max(st.seen, r.lastRev), behind
		return
	}
	st.seen = max(st.seen, r.rev)
	st.tick = nil // the next wait gives the next tick; keep none meanwhile
	if r.n > 0 && st.h.opts.Coalesce > 0 {
		st.state = paused
	} else {
		// Nothing found, or no pause: read again once there is more,
		// which with no pause may be at once.
		st.state = idle
	}
}

// feedRead is one read of the feed, encoded as the messages to send.
type feedRead struct {
	rev     int64 // the read took every change up to rev, unless n reached Batch
	n       int   // events read
	lastRev int64 // the last event's revision
	end     int64 // the watcher's position after the read
	// msgs are framed once for all the streams that share the read, each
	// of which then writes the frames as they are.
	msgs []*websocket.PreparedMessage
	size int   // the bytes of msgs' payloads
	err  error // the read's error, for the streams that share it
}

// writeRead sends the messages of r.
func (st *watchConn) writeRead(r *feedRead) error {
	for _, msg := range r.msgs {
		if err := st.conn.SetWriteDeadline(time.Now().Add(st.h.opts.WriteTimeout)); err != nil {
			return err
		}
		if err := st.conn.WritePreparedMessage(msg); err != nil {
			return err
		}
	}
	return nil
}

// read reads the events up to rev (at most Batch of them) and encodes them.
func (st *watchConn) read(rev int64) *feedRead {
	events, err := st.w.Read(rev, st.h.opts.Batch)
	r := &feedRead{rev: rev, n: len(events), end: st.w.Pos(), err: err}
	if len(events) == 0 {
		return r
	}
	r.lastRev = events[len(events)-1].Rev
	for _, b := range encodeEvents(events, st.withPrev, st.h.opts.MessageBytes) {
		r.size += len(b)
		msg, err := websocket.NewPreparedMessage(websocket.TextMessage, b)
		if err != nil {
			r.err = err
			break
		}
		r.msgs = append(r.msgs, msg)
	}
	return r
}

// ping sends a ping, numbered, and gives the client PongTimeout from then
// to answer it: readLoop's deadline is armed once the ping is written. The
// ping may go out well after PingInterval, when the stream was writing to a
// client that reads slowly but steadily; a deadline counted from the last
// pong, as before, then left such a client a fraction of PongTimeout, or
// none, and dropped it. While a ping is unanswered no other is sent, so its
// deadline is never pushed back.
func (st *watchConn) ping() error {
	st.pongMu.Lock()
	if st.awaiting != 0 {
		st.pongMu.Unlock()
		return nil
	}
	st.pings++
	seq := st.pings
	st.awaiting = seq
	st.pongMu.Unlock()
	payload := strconv.AppendUint(nil, seq, 10)
	if err := st.conn.WriteControl(websocket.PingMessage, payload, time.Now().Add(st.h.opts.WriteTimeout)); err != nil {
		return err
	}
	st.pongMu.Lock()
	defer st.pongMu.Unlock()
	if st.awaiting != seq {
		return nil // answered already
	}
	// The connection's deadline, set from the writer's goroutine: net.Conn
	// allows that while readLoop reads.
	return st.conn.NetConn().SetReadDeadline(time.Now().Add(st.h.opts.PongTimeout))
}

// readLoop reads what the client sends: the pong to the ping awaited lifts
// the read deadline ping armed, a close frame is answered (by the default
// close handler) and ends the loop, data messages are discarded. It
// cancels the stream when it returns.
func (st *watchConn) readLoop(cancel context.CancelFunc) {
	defer cancel()
	defer close(st.readDone) // before cancel: the writer then knows why it stops
	c := st.conn
	c.SetReadLimit(st.h.opts.ReadLimit)
	c.SetPongHandler(func(data string) error {
		st.pongMu.Lock()
		defer st.pongMu.Unlock()
		// Other pongs (unsolicited ones, which RFC 6455 allows as a
		// heartbeat, or a stale answer) prove nothing about the ping.
		if st.awaiting == 0 || data != strconv.FormatUint(st.awaiting, 10) {
			return nil
		}
		st.awaiting = 0
		return c.SetReadDeadline(time.Time{})
	})
	for {
		if _, _, err := c.NextReader(); err != nil {
			return
		}
	}
}

// fail ends the stream for err: a compacted message and close for history
// that is gone, a going-away close when the store or request ends, nothing
// when the client is gone already.
func (st *watchConn) fail(err error) {
	select {
	case <-st.readDone:
		return // the client left; nobody to tell
	default:
	}
	switch {
	case errors.Is(err, engine.ErrCompacted):
		st.closeWith(CloseCompacted, "compacted", "history compacted; resync",
			"The revision asked for is older than the history this server keeps. Reload the keys and watch from the revision they report.")
	case errors.Is(err, engine.ErrLagged):
		st.closeWith(CloseLagged, "lagged", "client too slow; resync",
			"The stream fell too far behind and was cut off. Reload the keys and watch from the revision they report.")
	default: // engine.ErrClosed or the request's context: the server is going away
		st.closeWith(websocket.CloseGoingAway, "", "server shutting down", "")
	}
}

// closeWith sends a compacted message (when reason is set), then a close
// frame, and waits a moment for the client's answer.
func (st *watchConn) closeWith(code int, reason, text, message string) {
	if reason != "" {
		st.buf = codec.AppendStringField(st.buf[:0], '{', "type", "compacted", false)
		st.buf = codec.AppendRev(st.buf, ',', st.h.store.Rev())
		st.buf = codec.AppendStringField(st.buf, ',', "reason", reason, false)
		st.buf = codec.AppendStringField(st.buf, ',', "message", message, false)
		st.buf = append(st.buf, '}')
		if err := st.writeMessage(st.buf); err != nil {
			return
		}
	}
	deadline := time.Now().Add(st.h.opts.WriteTimeout)
	if err := st.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, text), deadline); err != nil {
		return
	}
	select {
	case <-st.readDone:
	case <-time.After(watchCloseGrace):
	}
}

func (st *watchConn) writeProgress(rev int64) error {
	st.buf = codec.AppendStringField(st.buf[:0], '{', "type", "progress", false)
	st.buf = codec.AppendRev(st.buf, ',', rev)
	st.buf = append(st.buf, '}')
	return st.writeMessage(st.buf)
}

func (st *watchConn) writeMessage(msg []byte) error {
	if err := st.conn.SetWriteDeadline(time.Now().Add(st.h.opts.WriteTimeout)); err != nil {
		return err
	}
	return st.conn.WriteMessage(websocket.TextMessage, msg)
}

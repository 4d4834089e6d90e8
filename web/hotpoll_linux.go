package web

// The poller: the hot loop's connections, served on one thread the way
// Redis serves its clients. One goroutine, locked to its thread, waits in
// epoll for every idle connection of the loop; it reads each one that has
// a request, answers its GETs, adds its PUTs to one engine.Batch, and once
// it has read every connection ready (holding the group open for the
// writers it expects, as the committer does), commits the batch in line:
// one log write and one fdatasync, on this thread, for all of them. Then
// it writes the PUTs' answers and waits again.
//
// Why: with a goroutine per connection, every request costs wake-ups
// (the netpoller's, the committer's, each writer's answer), and on this
// project's two cores those were about a third of the server's CPU per
// durable PUT. A prototype of this loop (2026-12-03, wrk -t1 -c32, 100-byte
// PUTs, interleaved 4 s rounds) took 72-76k durable PUT/s against
// webdis+Redis's 41-42k; the same loop handing each group to a sync
// goroutine and being woken for its answers, 38-45k; with the sockets also
// left in Go's netpoller (which wakes a thread for every request, to no
// one), 47-56k. So the poller owns its sockets outright: it takes each one
// off Go's netpoller (a dup of the descriptor, the net.Conn closed under
// its wrappers) and gives it back through net.FileConn, wrapped again,
// when the connection needs what only a goroutine can do (after
// maxHandovers in a row, the goroutine keeps it).
//
// What it serves: complete requests that fit the read buffer, answered
// with the same code as the goroutine loop (hotConn.answer), including
// the answers the handler chain renders. What it hands to the
// connection's goroutine (hotConn.run), which serves it as the loop always
// has: a request not all read yet (its timeouts, ReadHeaderTimeout and
// ReadTimeout, are the goroutine's), a request the parser gives to
// net/http, answers the socket does not take at once (WriteTimeout), and
// a close that must linger. The goroutine gives the connection back to
// the poller when it next waits for a request with nothing read.
// IdleTimeout is the poller's: a sweep closes connections idle that long.
//
// Only on Linux, and only on a single node: a cluster's writes wait for
// the raft log, which the poller must not block on.

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/pykv/pykv/engine"
)

// pollMaxEvents is how many ready connections one epoll_wait returns.
const pollMaxEvents = 256

// hotPoller is the hot loop's event loop (see the file comment).
type hotPoller struct {
	l  *HotLoop
	ep int // the epoll instance
	ev int // an eventfd: new connections, shutdown

	mu       sync.Mutex
	incoming []*hotConn // adopted, not yet registered
	stopped  bool       // the poller has stopped: adopt refuses

	// Owned by the poller's goroutine.
	conns   map[int32]*hotConn
	batch   *engine.Batch
	waiting []*hotConn // their PUTs are in batch: answered after its commit
	spare   []*hotConn // waiting's other array, swapped in by commit
	again   []*hotConn // may have more to read: served again next turn
	// committing is set while a group is committed: a panic then is the
	// store's, not a connection's, and is not recovered (see recover).
	committing bool
	noPwait2   bool // epoll_pwait2 refused: millisecond timeouts
	// The group hold: a group opens with its first PUT (holdStart) and is
	// committed once as many connections as expected have joined, or
	// once the store's CommitDelay has passed. The connections expected
	// (union) are those that wrote in either of the last two groups:
	// writers that came back late for one group are still expected in
	// the next.
	holdStart   time.Time
	holdFor     time.Duration
	round       int64
	last, union int // connections in the last group; in the last two
	nextSweep   time.Time
	// groups counts the groups committed: a write submitted now joins
	// groups+1. Atomic for the tests, which read it from outside.
	groups atomic.Int64
}

// newHotPoller returns l's poller, or nil (with the reason logged) if the
// system refuses an epoll instance or an eventfd.
func newHotPoller(l *HotLoop) *hotPoller {
	ep, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		l.s.log.Warn("no epoll for the hot loop's poller; serving with a goroutine per connection", "err", err)
		return nil
	}
	ev, _, errno := syscall.Syscall(syscall.SYS_EVENTFD2, 0, syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if errno != 0 {
		_ = syscall.Close(ep)
		l.s.log.Warn("no eventfd for the hot loop's poller; serving with a goroutine per connection", "err", errno)
		return nil
	}
	p := &hotPoller{l: l, ep: ep, ev: int(ev),
		conns: map[int32]*hotConn{}, batch: l.s.store.NewBatch(), nextSweep: time.Now()}
	if err := syscall.EpollCtl(ep, syscall.EPOLL_CTL_ADD, p.ev,
		&syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(p.ev)}); err != nil {
		p.closeFDs()
		l.s.log.Warn("epoll refused the poller's eventfd; serving with a goroutine per connection", "err", err)
		return nil
	}
	return p
}

func (p *hotPoller) closeFDs() {
	_ = syscall.Close(p.ep)
	_ = syscall.Close(p.ev)
}

// closeDown marks the poller stopped, so that wake and adopt leave it
// alone, and closes its descriptors: with p.mu held, no wake writes to a
// number the system may have given to another file meanwhile.
func (p *hotPoller) closeDown() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopped = true
	p.closeFDs()
}

// wake makes the poller look at its incoming connections and the loop's
// shutdown, unless it has stopped.
func (p *hotPoller) wake() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.wakeLocked()
}

// wakeLocked is wake with p.mu held.
func (p *hotPoller) wakeLocked() {
	if !p.stopped {
		one := uint64(1)
		_, _ = syscall.Write(p.ev, (*[8]byte)(unsafe.Pointer(&one))[:])
	}
}

// adopt takes cn (tracked, its buffer empty, no request in progress) off
// Go's netpoller and hands it to the poller. It returns false, having
// changed nothing, if the connection is not a TCP socket behind
// ConnWrappers, is closed, or the loop is shutting down.
func (p *hotPoller) adopt(cn *hotConn) bool {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped || cn.closed || cn.l.shutting.Load() {
		return false
	}
	fd, wrappers, err := detach(cn.c)
	if err != nil {
		if !errors.Is(err, errNotPollable) {
			cn.l.s.log.Warn("could not take a connection off Go's poller; its goroutine serves it", "err", err)
		}
		return false
	}
	cn.fd, cn.wrappers, cn.poll, cn.idle = fd, wrappers, p, true
	cn.readDL, cn.writeDL, cn.readWant, cn.writeWant = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	p.incoming = append(p.incoming, cn)
	p.wakeLocked()
	return true
}

var errNotPollable = errors.New("not a TCP connection behind ConnWrappers")

// detach takes c's socket off Go's netpoller: it returns a duplicate of
// its descriptor (non-blocking, as Go made it) and the wrappers around the
// *net.TCPConn, outermost first, whose own connection it closes. The
// socket stays open through the duplicate; the wrappers are not closed.
func detach(c net.Conn) (int, []ConnWrapper, error) {
	var wrappers []ConnWrapper
	for {
		if tc, ok := c.(*net.TCPConn); ok {
			rc, err := tc.SyscallConn()
			if err != nil {
				return -1, nil, err
			}
			fd := -1
			var dupErr error
			if err := rc.Control(func(s uintptr) {
				r, _, errno := syscall.Syscall(syscall.SYS_FCNTL, s, syscall.F_DUPFD_CLOEXEC, 0)
				if errno != 0 {
					dupErr = errno
					return
				}
				fd = int(r)
			}); err != nil {
				return -1, nil, err
			}
			if dupErr != nil {
				return -1, nil, fmt.Errorf("dup: %w", dupErr)
			}
			_ = tc.Close() // off Go's poller; the socket lives on in fd
			return fd, wrappers, nil
		}
		w, ok := c.(ConnWrapper)
		if !ok {
			return -1, nil, errNotPollable
		}
		wrappers = append(wrappers, w)
		c = w.NetConn()
	}
}

// attach gives fd back to Go's netpoller as a net.Conn inside wrappers
// (see detach); fd itself is closed.
func attach(fd int, wrappers []ConnWrapper) (net.Conn, error) {
	f := os.NewFile(uintptr(fd), "")
	c, err := net.FileConn(f)
	_ = f.Close()
	if err != nil {
		return nil, err
	}
	for i := len(wrappers) - 1; i >= 0; i-- {
		c = wrappers[i].Rewrap(c)
	}
	return c, nil
}

// run is the poller's loop.
func (p *hotPoller) run() {
	runtime.LockOSThread() // the thread sleeps in epoll and fdatasync; nothing else waits on it
	defer p.closeDown()
	events := make([]syscall.EpollEvent, pollMaxEvents)
	for {
		n, err := p.wait(events)
		if err != nil {
			p.l.s.log.Error("the hot loop's poller failed; its connections are closed", "err", err)
			p.stop()
			return
		}
		now := time.Now()
		for i := range n {
			fd := events[i].Fd
			if int(fd) == p.ev {
				var b [8]byte
				_, _ = syscall.Read(p.ev, b[:])
				p.register()
			} else if cn := p.conns[fd]; cn != nil {
				if events[i].Events&(syscall.EPOLLRDHUP|syscall.EPOLLHUP|syscall.EPOLLERR) != 0 {
					cn.hup = true // read until the end is seen: no later edge will come
				}
				p.ready(cn, now)
			}
		}
		again := p.again
		p.again = nil
		for _, cn := range again {
			if p.conns[int32(cn.fd)] == cn {
				p.ready(cn, now)
			}
		}
		if len(p.waiting) > 0 || p.batch.Len() > 0 {
			if p.holdStart.IsZero() {
				p.holdStart, p.holdFor = now, p.l.s.store.CommitDelay()
			}
			if p.batch.Len() == 0 || len(p.waiting) >= min(p.union, len(p.conns)) ||
				time.Since(p.holdStart) >= p.holdFor || p.l.shutting.Load() {
				p.commit()
			}
		}
		if p.l.shutting.Load() {
			p.register() // connections adopted meanwhile close with the rest
			p.closeIdle()
			if len(p.conns) == 0 && len(p.waiting) == 0 {
				p.stop()
				return
			}
		}
		if idle := p.l.t.Idle; idle > 0 && !now.Before(p.nextSweep) {
			p.sweep(now, idle)
			p.nextSweep = now.Add(min(max(idle/10, time.Millisecond), time.Second))
		}
	}
}

// ready serves cn, which epoll says has something to read, unless its
// batch waits for the group's commit: then once that is answered.
func (p *hotPoller) ready(cn *hotConn, now time.Time) {
	if cn.putsFrom >= 0 {
		cn.more = true
		return
	}
	p.serve(cn, now)
}

// stop closes every connection the poller has, and those adopted and not
// yet taken, and refuses more (the loop shut down, or epoll failed).
func (p *hotPoller) stop() {
	p.mu.Lock()
	p.stopped = true
	p.mu.Unlock()
	p.register()
	for len(p.waiting) > 0 || p.batch.Len() > 0 {
		p.commit()
	}
	for _, cn := range p.conns {
		p.closeConn(cn)
	}
}

// wait waits for ready connections: until the group held open must be
// committed, or the next idle sweep.
func (p *hotPoller) wait(events []syscall.EpollEvent) (int, error) {
	var until time.Time
	switch {
	case len(p.again) > 0:
		until = time.Now()
	case len(p.waiting) > 0 || p.batch.Len() > 0:
		until = p.holdStart.Add(p.holdFor)
	}
	if p.l.t.Idle > 0 && len(p.conns) > 0 && (until.IsZero() || p.nextSweep.Before(until)) {
		until = p.nextSweep
	}
	for {
		var n int
		var err error
		left := max(time.Until(until), 0)
		switch {
		case until.IsZero():
			n, err = syscall.EpollWait(p.ep, events, -1)
		case p.noPwait2:
			n, err = syscall.EpollWait(p.ep, events, epollMillis(left))
		default:
			ts := syscall.NsecToTimespec(int64(left))
			r, _, errno := syscall.Syscall6(sysEpollPwait2, uintptr(p.ep), uintptr(unsafe.Pointer(&events[0])),
				uintptr(len(events)), uintptr(unsafe.Pointer(&ts)), 0, 0)
			n = int(r)
			if errno == syscall.ENOSYS || errno == syscall.EPERM {
				// Before Linux 5.11, or refused by a seccomp profile.
				p.noPwait2 = true
				continue
			} else if errno != 0 {
				n, err = 0, errno
			}
		}
		if err == syscall.EINTR {
			continue
		}
		return n, err
	}
}

// register takes the connections adopted since the last look into the
// epoll set.
func (p *hotPoller) register() {
	p.mu.Lock()
	in := p.incoming
	p.incoming = nil
	p.mu.Unlock()
	now := time.Now()
	for _, cn := range in {
		if err := syscall.EpollCtl(p.ep, syscall.EPOLL_CTL_ADD, cn.fd,
			&syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | epollET, Fd: int32(cn.fd)}); err != nil {
			p.l.s.log.Warn("epoll refused a connection; it is closed", "err", err)
			p.closeConn(cn)
			continue
		}
		cn.lastActive = now
		p.conns[int32(cn.fd)] = cn
	}
}

// serve reads what cn sent and answers the complete requests it holds,
// or hands it to its goroutine. A panic closes cn only.
func (p *hotPoller) serve(cn *hotConn, now time.Time) {
	defer p.recover(cn)
	if !cn.setIdle(false) {
		p.closeConn(cn) // closed by Shutdown or Close
		return
	}
	space := cap(cn.buf) - len(cn.buf)
	n, err := syscall.Read(cn.fd, cn.buf[len(cn.buf):cap(cn.buf)])
	if err == syscall.EINTR {
		cn.more = true
	}
	if err == syscall.EAGAIN || err == syscall.EINTR {
		p.idleAgain(cn)
		return
	}
	if n <= 0 {
		p.closeConn(cn) // the client closed, or reset
		return
	}
	// Edge-triggered: epoll reports new bytes once. A read that filled
	// the buffer may have left some, and after the client's end (hup)
	// the next read must see it: read again once this batch is done.
	cn.more = n == space || cn.hup
	cn.buf = cn.buf[:len(cn.buf)+n]
	cn.reqStart, cn.lastRead = now, now
	used, need, headDone := cn.take()
	cn.handOffAt = -1
	if used < len(cn.buf) || len(cn.batch) == 0 || cn.batch[len(cn.batch)-1].short || cn.batch[len(cn.batch)-1].n < 0 {
		// A request not all read yet (its timeouts are the goroutine's),
		// or one for net/http: the goroutine takes it from the start.
		p.toGoroutine(cn, hotStep{})
		return
	}
	cn.answer(0)
	step := hotStep{answered: true, used: used, need: need, headDone: headDone}
	if cn.putsFrom >= 0 {
		cn.step = step
		p.waiting = append(p.waiting, cn)
		return
	}
	p.finish(cn, step)
}

// finish ends cn's batch once every answer is in its output: written, if
// the socket takes it all at once, and the connection is idle again;
// otherwise its goroutine goes on from here. A batch whose PUTs were
// waiting for the group's commit has them answered first and goes on
// answering; a GET after PUTs parks it again, for the next group (one
// commit a turn per connection, however it pipelines).
func (p *hotPoller) finish(cn *hotConn, step hotStep) {
	for cn.putsFrom >= 0 {
		to := len(cn.batch)
		if cn.resumeAt >= 0 {
			to = cn.resumeAt
		}
		cn.answerPuts(cn.putsFrom, to)
		cn.putsFrom = -1
		if cn.resumeAt < 0 || cn.dead {
			break
		}
		cn.answer(cn.resumeAt)
		if cn.putsFrom >= 0 {
			cn.step = step
			p.waiting = append(p.waiting, cn)
			return
		}
	}
	if cn.dead || !cn.flush() {
		p.closeConn(cn) // a write failed: the client is gone, or Close shut the socket
		return
	}
	if cn.resumeAt >= 0 || cn.handOffAt >= 0 || len(cn.out) > 0 || cn.tail != "" || (cn.closeAfter && cn.lastShort()) {
		p.toGoroutine(cn, step)
		return
	}
	if cn.closeAfter || p.l.shutting.Load() {
		p.closeConn(cn)
		return
	}
	cn.shrinkOut()
	cn.buf = cn.buf[:0] // all of it was used: see serve
	if cap(cn.buf) > hotBufSize {
		cn.buf = make([]byte, 0, hotBufSize)
	}
	cn.lastActive = time.Now()
	cn.handovers = 0
	p.idleAgain(cn)
}

// idleAgain marks cn idle between requests, and to be served again next
// turn if it may have more to read.
func (p *hotPoller) idleAgain(cn *hotConn) {
	if !cn.setIdle(true) {
		p.closeConn(cn)
		return
	}
	if cn.more {
		cn.more = false
		p.again = append(p.again, cn)
	}
}

// commit commits the group held open and finishes the batches waiting
// for it.
func (p *hotPoller) commit() {
	p.commitBatch()
	p.round++
	// How many connections wrote in this group or the last: those that
	// wrote in both were marked with the last round.
	both := 0
	for _, cn := range p.waiting {
		if cn.pollRound == p.round-1 {
			both++
		}
		cn.pollRound = p.round
	}
	p.union = len(p.waiting) + p.last - both
	p.last = len(p.waiting)
	p.holdStart = time.Time{}
	// Batches parked again (a GET after PUTs) join the next group.
	waiting := p.waiting
	p.waiting, p.spare = p.spare[:0], nil
	for _, cn := range waiting {
		func() {
			defer p.recover(cn)
			p.finish(cn, cn.step)
		}()
	}
	clear(waiting) // no answered connection kept
	p.spare = waiting[:0]
}

// commitNow commits the group at once: answerPuts waits for a write not
// committed yet, whose Wait would otherwise wait for good. The poller
// answers a batch's PUTs only after their group's commit, so this is a
// safeguard, not a path taken.
func (p *hotPoller) commitNow() { p.commitBatch() }

// commitBatch commits the group, if it holds writes. A panic in it is the
// store's (its bookkeeping broken), which recover lets through, as the
// committer goroutine's would.
func (p *hotPoller) commitBatch() {
	if p.batch.Len() == 0 {
		return
	}
	p.committing = true
	p.batch.Commit()
	p.committing = false
	p.groups.Add(1)
}

// recover closes cn after a panic while serving it, as the goroutine loop
// does: logged with its stack, the poller going on.
func (p *hotPoller) recover(cn *hotConn) {
	if v := recover(); v != nil {
		if p.committing {
			panic(v)
		}
		if v != http.ErrAbortHandler {
			p.l.s.log.Error("panic serving a connection; it is closed", "remote", cn.c.RemoteAddr().String(),
				"panic", fmt.Sprint(v), "stack", string(debug.Stack()))
		}
		p.closeConn(cn)
	}
}

// toGoroutine hands cn back to Go's netpoller and its own goroutine, which
// goes on from step.
func (p *hotPoller) toGoroutine(cn *hotConn, step hotStep) {
	p.forget(cn)
	cn.handovers++
	cn.mu.Lock()
	if cn.closed { // by Close, which shut the socket down: nothing to hand over
		cn.mu.Unlock()
		p.closeConn(cn)
		return
	}
	// Under cn.mu: Close must find either the socket (poll set) or the
	// new net.Conn, never a descriptor number attach has closed.
	c, err := attach(cn.fd, cn.wrappers)
	cn.poll, cn.fd = nil, -1
	if err == nil {
		cn.c = c
	} else {
		cn.closed = true // closed below, once: Close must not close the wrappers again
	}
	cn.mu.Unlock()
	if err != nil {
		p.l.s.log.Error("could not give a connection back to Go's poller; it is closed", "err", err)
		_ = cn.c.Close() // its wrappers: the socket itself is closed by attach
		p.l.untrack(cn)
		return
	}
	go cn.serveFrom(step)
}

// forget takes cn out of the epoll set and the poller's connections.
func (p *hotPoller) forget(cn *hotConn) {
	if p.conns[int32(cn.fd)] == cn {
		delete(p.conns, int32(cn.fd))
		_ = syscall.EpollCtl(p.ep, syscall.EPOLL_CTL_DEL, cn.fd, nil)
	}
}

// closeConn closes cn for good: its socket, and its wrappers (a
// connection limit's slot).
func (p *hotPoller) closeConn(cn *hotConn) {
	p.forget(cn)
	cn.mu.Lock()
	if cn.fd >= 0 {
		_ = syscall.Close(cn.fd)
		cn.fd = -1
	}
	cn.closed = true
	cn.mu.Unlock()
	_ = cn.c.Close() // the wrappers; their own connection is closed already
	p.l.untrack(cn)
}

// closeIdle closes the connections with no request in progress: the
// loop is shutting down.
func (p *hotPoller) closeIdle() {
	for _, cn := range p.conns {
		if cn.putsFrom < 0 {
			p.closeConn(cn)
		}
	}
}

// sweep closes connections idle for idle or longer.
func (p *hotPoller) sweep(now time.Time, idle time.Duration) {
	for _, cn := range p.conns {
		if cn.putsFrom < 0 && now.Sub(cn.lastActive) >= idle {
			p.closeConn(cn)
		}
	}
}

// shutSocket shuts cn's socket down from outside the poller (Shutdown,
// Close): the client sees it closed at once, and the poller, seeing it
// readable, closes it for good. The caller holds cn.mu.
func shutSocket(cn *hotConn) {
	if cn.fd >= 0 {
		_ = syscall.Shutdown(cn.fd, syscall.SHUT_RDWR)
	}
}

// pollWrite writes b to cn's socket without blocking; it returns how much
// it wrote, and an error other than a full socket buffer.
func pollWrite(cn *hotConn, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		w, err := syscall.Write(cn.fd, b[n:])
		if w > 0 {
			n += w
		}
		switch err {
		case nil:
		case syscall.EINTR:
		case syscall.EAGAIN:
			return n, nil
		default:
			return n, err
		}
	}
	return n, nil
}

// pollWritev writes a then b to cn's socket in one writev, without
// blocking; it returns how much of the two it wrote, and an error other
// than a full socket buffer.
func pollWritev(cn *hotConn, a, b []byte) (int, error) {
	n := 0
	for n < len(a)+len(b) {
		var iov [2]syscall.Iovec
		cnt := 0
		if n < len(a) {
			iov[cnt].Base = &a[n]
			iov[cnt].SetLen(len(a) - n)
			cnt++
		}
		if off := max(n-len(a), 0); off < len(b) {
			iov[cnt].Base = &b[off]
			iov[cnt].SetLen(len(b) - off)
			cnt++
		}
		w, _, errno := syscall.Syscall(syscall.SYS_WRITEV, uintptr(cn.fd), uintptr(unsafe.Pointer(&iov[0])), uintptr(cnt))
		switch errno {
		case 0:
			n += int(w)
		case syscall.EINTR:
		case syscall.EAGAIN:
			return n, nil
		default:
			return n, errno
		}
	}
	return n, nil
}

// epollMillis is epoll_wait's timeout for waiting left (0 or more):
// milliseconds rounded up, never negative (which would wait for good).
func epollMillis(left time.Duration) int {
	return int((max(left, 0) + time.Millisecond - 1) / time.Millisecond)
}

// epollET is EPOLLET as the uint32 epoll takes (syscall's constant is
// negative).
const epollET = 1 << 31

// sysEpollPwait2 is epoll_pwait2's number: epoll_wait with a timeout in
// nanoseconds, Linux 5.11 or later.
const sysEpollPwait2 = 441

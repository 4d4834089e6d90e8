package web

import (
	"log/slog"
	"net/http"
)

// WriteErrorForTest answers err as the server's handlers do.
func WriteErrorForTest(w http.ResponseWriter, r *http.Request, err error) {
	s := &server{log: slog.New(slog.DiscardHandler)}
	s.writeError(w, r, err)
}

// NewServerChiOnly is NewServer without the key routes' fast path: every
// request goes through chi (see router).
func NewServerChiOnly(opts Options) http.Handler { return newServer(opts, true) }

// SetHotLoopHook makes l call f before each request it answers, with the
// request's key and its connection's read and output buffer sizes, on the
// connection's goroutine (a panic in f is one in the loop). Set it before
// Serve.
func SetHotLoopHook(l *HotLoop, f func(key string, readCap, outCap int)) {
	l.hook = func(cn *hotConn, r *hotReq) { f(r.key, cap(cn.buf), cap(cn.out)) }
}

// HotLoopHandoffs returns how many connections l has handed to net/http.
func HotLoopHandoffs(l *HotLoop) int64 { return l.handoffs.Load() }

// HotLoopConns returns how many connections l is serving itself.
func HotLoopConns(l *HotLoop) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.conns)
}

// SkipHotLoopLeaderCheck makes l, serving a cluster member, submit PUTs
// to the log without checking that the member leads, as a leader that
// loses leadership just after the check does. Set it before Serve.
func SkipHotLoopLeaderCheck(l *HotLoop) { l.skipLeaderCheck = true }

// HotLoopPolled returns how many of l's connections its poller holds.
func HotLoopPolled(l *HotLoop) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for cn := range l.conns {
		cn.mu.Lock()
		if cn.poll != nil {
			n++
		}
		cn.mu.Unlock()
	}
	return n
}

// HotLoopGroups returns how many groups of writes l's poller has
// committed, or -1 without a poller.
func HotLoopGroups(l *HotLoop) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.poller == nil {
		return -1
	}
	return l.poller.groups.Load()
}

//go:build linux

package web

// HotLoopPollerFD returns the descriptor of l's poller's eventfd, and
// whether the poller has stopped (-1, false without a poller).
func HotLoopPollerFD(l *HotLoop) (fd int, stopped bool) {
	l.mu.Lock()
	p := l.poller
	l.mu.Unlock()
	if p == nil {
		return -1, false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ev, p.stopped
}

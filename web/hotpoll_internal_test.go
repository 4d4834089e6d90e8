//go:build linux

package web

import (
	"testing"
	"time"
)

// TestEpollMillis: the fallback's timeout is rounded up to whole
// milliseconds and never negative: a deadline already past must not make
// epoll_wait wait for good (-1).
func TestEpollMillis(t *testing.T) {
	for _, tc := range []struct {
		left time.Duration
		want int
	}{
		{-5 * time.Millisecond, 0}, {-time.Nanosecond, 0}, {0, 0}, {time.Nanosecond, 1},
		{time.Millisecond, 1}, {1500 * time.Microsecond, 2},
	} {
		if got := epollMillis(tc.left); got != tc.want {
			t.Errorf("epollMillis(%v) = %d, want %d", tc.left, got, tc.want)
		}
	}
}

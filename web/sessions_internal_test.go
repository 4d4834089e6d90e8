package web

import (
	"net/netip"
	"testing"
	"time"
)

// TestSessions_Expire: a session ends at its lifetime, at sign-out, and
// the table stays within maxSessions.
func TestSessions_Expire(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	ss := newSessions(time.Hour)
	ss.now = func() time.Time { return now }
	id, err := ss.start(scopeWrite)
	if err != nil {
		t.Fatal(err)
	}
	if got := ss.lookup(id); got != scopeWrite {
		t.Fatalf("fresh session: scope %v", got)
	}
	now = now.Add(time.Hour - time.Second)
	if got := ss.lookup(id); got != scopeWrite {
		t.Fatalf("session a second before its end: scope %v", got)
	}
	now = now.Add(time.Second)
	if got := ss.lookup(id); got != scopeNone {
		t.Fatalf("session at its end: scope %v, want none", got)
	}
	id, _ = ss.start(scopeRead)
	ss.end(id)
	if got := ss.lookup(id); got != scopeNone {
		t.Fatalf("session after sign-out: scope %v, want none", got)
	}
	for range maxSessions + 10 {
		if _, err := ss.start(scopeRead); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(ss.byID); n > maxSessions {
		t.Errorf("%d sessions kept, want at most %d", n, maxSessions)
	}
}

// TestFailLimiter_Refills: after the burst an address waits, and regains
// one attempt per authRefill; other addresses are not affected; an IPv6
// address is limited with its /64.
func TestFailLimiter_Refills(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	l := newFailLimiter()
	l.now = func() time.Time { return now }
	a := mustAddr(t, "192.0.2.1")
	for range authBurst {
		if w := l.wait(a); w != 0 {
			t.Fatalf("wait %v within the burst", w)
		}
		l.fail(a)
	}
	if w := l.wait(a); w <= 0 || w > authRefill {
		t.Fatalf("after the burst: wait %v, want up to %v", w, authRefill)
	}
	if w := l.wait(mustAddr(t, "192.0.2.2")); w != 0 {
		t.Errorf("another address waits %v", w)
	}
	now = now.Add(authRefill)
	if w := l.wait(a); w != 0 {
		t.Errorf("after %v: still waits %v", authRefill, w)
	}
	v6 := mustAddr(t, "2001:db8::1")
	for range authBurst {
		l.fail(v6)
	}
	if w := l.wait(mustAddr(t, "2001:db8::ffff")); w == 0 {
		t.Errorf("another address of the same /64 is not limited")
	}
}

func mustAddr(t *testing.T, s string) netip.Addr {
	t.Helper()
	a, err := netip.ParseAddr(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

package web

import (
	"math"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Failed credentials are limited per client address with a token bucket:
// authBurst wrong tokens at once, then one more every authRefill. While an
// address has none left, its token checks (bearer tokens and sign-ins) are
// answered 429 with Retry-After and the token is not even compared, so a
// guess cannot be told apart from a miss by its answer. Valid tokens cost
// nothing, and session cookies are not limited: a session id is 256
// random bits, beyond guessing.
const (
	authBurst   = 10
	authRefill  = time.Second
	maxBuckets  = 1 << 16 // addresses tracked at most; see failLimiter.fail
	ipv6Network = 64      // IPv6 clients are limited per /64: one host usually holds a whole one
)

// failLimiter is the per-address bucket of failed credentials.
type failLimiter struct {
	mu      sync.Mutex
	now     func() time.Time
	buckets map[netip.Prefix]*failBucket
	// tracked is len(buckets), readable without the lock: while no
	// address has failed, checking one costs nothing (see none).
	tracked atomic.Int64
}

type failBucket struct {
	left float64   // attempts left at `at`
	at   time.Time // when left was computed
}

func newFailLimiter() *failLimiter {
	return &failLimiter{now: time.Now, buckets: make(map[netip.Prefix]*failBucket)}
}

// bucketKey is the network an address is limited as.
func bucketKey(a netip.Addr) netip.Prefix {
	a = a.Unmap()
	if a.Is4() {
		return netip.PrefixFrom(a, 32)
	}
	p, _ := a.Prefix(ipv6Network)
	return p
}

// refill returns b's attempts left at now.
func (b *failBucket) refill(now time.Time) float64 {
	return math.Min(authBurst, b.left+float64(now.Sub(b.at))/float64(authRefill))
}

// none reports whether no address has a failed credential on record, so
// that none has to wait. Buckets are dropped only when the map is full.
func (l *failLimiter) none() bool { return l.tracked.Load() == 0 }

// wait returns how long a must wait before it may try a credential again:
// zero when it may try now.
func (l *failLimiter) wait(a netip.Addr) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[bucketKey(a)]
	if b == nil {
		return 0
	}
	left := b.refill(l.now())
	if left >= 1 {
		return 0
	}
	return time.Duration((1 - left) * float64(authRefill))
}

// fail takes one attempt from a's bucket. The map is bounded: when full,
// buckets that have refilled (forgotten, they would start full anyway) are
// dropped; if that is not enough, arbitrary ones are, which at worst
// gives those addresses a fresh burst.
func (l *failLimiter) fail(a netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	key := bucketKey(a)
	b := l.buckets[key]
	if b == nil {
		if len(l.buckets) >= maxBuckets {
			l.pruneLocked(now)
		}
		b = &failBucket{left: authBurst, at: now}
		l.buckets[key] = b
		l.tracked.Store(int64(len(l.buckets)))
	}
	b.left, b.at = math.Max(0, b.refill(now)-1), now
}

func (l *failLimiter) pruneLocked(now time.Time) {
	for k, b := range l.buckets {
		if b.refill(now) >= authBurst {
			delete(l.buckets, k)
		}
	}
	for k := range l.buckets {
		if len(l.buckets) < maxBuckets/2 {
			break
		}
		delete(l.buckets, k)
	}
	l.tracked.Store(int64(len(l.buckets)))
}

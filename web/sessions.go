package web

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"sync"
	"time"
)

// DefaultSessionTTL is how long a browser sign-in lasts.
const DefaultSessionTTL = 12 * time.Hour

// maxSessions bounds the sessions kept; signing in needs a valid token, so
// only someone who holds one can fill the table, and the oldest session
// then makes room.
const maxSessions = 10000

// sessions are the browser sign-ins, kept in memory: a restart signs every
// browser out (its cookie then gets 401 and the dashboard goes to
// /signin). Ids are 32 random bytes; the table is keyed by their SHA-256,
// so a lookup's timing tells nothing about stored ids.
type sessions struct {
	ttl time.Duration
	now func() time.Time

	mu   sync.Mutex
	byID map[[sha256.Size]byte]session
}

type session struct {
	scope   scope
	expires time.Time
}

func newSessions(ttl time.Duration) *sessions {
	return &sessions{ttl: ttl, now: time.Now, byID: make(map[[sha256.Size]byte]session)}
}

// start makes a session of the given scope and returns its id. It fails
// only if the system's random source does.
func (ss *sessions) start(sc scope) (string, error) {
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", err
	}
	id := base64.RawURLEncoding.EncodeToString(raw[:])
	now := ss.now()
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if len(ss.byID) >= maxSessions {
		ss.evictLocked(now)
	}
	ss.byID[sha256.Sum256([]byte(id))] = session{scope: sc, expires: now.Add(ss.ttl)}
	return id, nil
}

// lookup returns the scope of the live session id, or scopeNone.
func (ss *sessions) lookup(id string) scope {
	if id == "" {
		return scopeNone
	}
	key := sha256.Sum256([]byte(id))
	ss.mu.Lock()
	defer ss.mu.Unlock()
	sess, ok := ss.byID[key]
	if !ok {
		return scopeNone
	}
	if !ss.now().Before(sess.expires) {
		delete(ss.byID, key)
		return scopeNone
	}
	return sess.scope
}

// end forgets session id (a sign-out).
func (ss *sessions) end(id string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	delete(ss.byID, sha256.Sum256([]byte(id)))
}

// evictLocked drops expired sessions and, if none had expired, the one
// closest to expiring.
func (ss *sessions) evictLocked(now time.Time) {
	var oldest [sha256.Size]byte
	var oldestExp time.Time
	for k, s := range ss.byID {
		if !now.Before(s.expires) {
			delete(ss.byID, k)
			continue
		}
		if oldestExp.IsZero() || s.expires.Before(oldestExp) {
			oldest, oldestExp = k, s.expires
		}
	}
	if len(ss.byID) >= maxSessions {
		delete(ss.byID, oldest)
	}
}

package engine

import (
	"errors"
	"fmt"
)

// Errors returned for a request the store refuses to carry out. They are
// checked with errors.Is; most arrive wrapped in an *OpError naming the
// operation at fault.
var (
	// ErrNotFound: the key does not exist (or has expired).
	ErrNotFound = errors.New("key not found")
	// ErrEmptyKey: keys must be at least one byte long.
	ErrEmptyKey = errors.New("key is empty")
	// ErrKeyTooLarge: the key is longer than Options.MaxKeyBytes.
	ErrKeyTooLarge = errors.New("key too large")
	// ErrValueTooLarge: the value is longer than Options.MaxValueBytes.
	ErrValueTooLarge = errors.New("value too large")
	// ErrInvalidUTF8: keys and values must be valid UTF-8 text.
	ErrInvalidUTF8 = errors.New("not valid UTF-8")
	// ErrBadTTL: a TTL or expiry time must not be negative (zero means no
	// expiry), and an operation takes one or the other, not both.
	ErrBadTTL = errors.New("ttl must not be negative")
	// ErrTTLTooLong: a TTL is longer than MaxTTL. Refused rather than
	// clamped: now plus a TTL near the largest Duration overflows, and the
	// key would expire at once.
	ErrTTLTooLong = errors.New("ttl longer than 100 years")
	// ErrDuplicateKey: an import holds the same key twice.
	ErrDuplicateKey = errors.New("key appears twice")
	// ErrBadOp: an operation type other than put or delete was asked for.
	ErrBadOp = errors.New("unknown operation")
	// ErrEmptyTxn: a transaction must hold at least one operation.
	ErrEmptyTxn = errors.New("transaction has no operations")
	// ErrTxnTooLarge: a transaction holds more than Options.MaxTxnOps operations.
	ErrTxnTooLarge = errors.New("transaction has too many operations")
	// ErrConflict: a condition on a key's revision did not hold. It arrives
	// inside a *ConditionError telling which key and what revision it had.
	ErrConflict = errors.New("condition failed")
	// ErrCompacted: a watcher asked for history the store no longer keeps.
	// The caller should reload a snapshot and watch from its revision.
	ErrCompacted = errors.New("required revision has been compacted; resync from a snapshot")
	// ErrLagged: a watcher fell so far behind that the events it had not yet
	// read were dropped. It is cut off instead of slowing writers down; like
	// ErrCompacted, the remedy is to resync from a snapshot.
	ErrLagged = errors.New("watcher fell behind and was cut off; resync from a snapshot")
	// ErrReplicated: a write was asked of a replicated store directly; its
	// writes go through the replicated log (see Options.Replicated).
	ErrReplicated = errors.New("store is replicated: writes go through the cluster")
	// ErrClosed: the store has been closed.
	ErrClosed = errors.New("store is closed")
	// ErrCorrupt: a command or snapshot handed to Restore does not fit the
	// state it is applied to (a gap in revisions, a delete of a missing key).
	ErrCorrupt = errors.New("inconsistent command")
)

// OpError tells which operation of a request failed and why.
type OpError struct {
	Index int    // position of the operation in the transaction
	Key   string // the key it named
	Err   error  // one of the sentinel errors above
}

func (e *OpError) Error() string {
	return fmt.Sprintf("op %d (key %s): %v", e.Index, shorten(e.Key), e.Err)
}

func (e *OpError) Unwrap() error { return e.Err }

// ConditionError reports a failed condition: the key's revision was Have,
// not Want (0 in either means the key did not exist).
type ConditionError struct {
	Index int
	Key   string
	Want  int64
	Have  int64
}

func (e *ConditionError) Error() string {
	want := fmt.Sprintf("revision %d", e.Want)
	if e.Want == 0 {
		want = "no key"
	}
	have := fmt.Sprintf("revision %d", e.Have)
	if e.Have == 0 {
		have = "no key"
	}
	return fmt.Sprintf("condition failed on op %d (key %s): wanted %s, found %s", e.Index, shorten(e.Key), want, have)
}

func (e *ConditionError) Unwrap() error { return ErrConflict }

// shorten quotes a key for an error message, cutting long ones.
func shorten(key string) string {
	const max = 64
	if len(key) > max {
		return fmt.Sprintf("%q…", key[:max])
	}
	return fmt.Sprintf("%q", key)
}

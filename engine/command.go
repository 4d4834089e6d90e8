package engine

// Entry is a key with its value and metadata. Entries handed out by the store
// are copies, or (in events and checkpoints) pointers that must not be changed.
type Entry struct {
	Key       string `json:"key"`
	Value     string `json:"value"`
	CreateRev int64  `json:"create_rev"`           // revision that created the key
	ModRev    int64  `json:"mod_rev"`              // revision of its last change
	Version   int64  `json:"version"`              // number of puts since it was created
	ExpiresAt int64  `json:"expires_at,omitempty"` // Unix milliseconds; 0 means never
}

// expired reports whether e is past its expiry at nowMs.
func (e *Entry) expired(nowMs int64) bool {
	return e.ExpiresAt != 0 && nowMs >= e.ExpiresAt
}

// ChangeType names what a change does to a key.
type ChangeType string

// The changes a command can hold. OpPut and OpDelete are also what callers ask
// for in an [Op]; OpExpire is only made by the store when a TTL runs out.
const (
	OpPut    ChangeType = "put"
	OpDelete ChangeType = "delete"
	OpExpire ChangeType = "expire"
	// OpDeletePrefix is asked for in an [Op] only, never held in a command:
	// the store resolves it, under the writers' turn, into one OpDelete (or
	// OpExpire, for a key whose TTL ran out already) per key under the
	// prefix in Op.Key, all at one revision. So the log format is unchanged
	// and every watcher sees one event per key.
	OpDeletePrefix ChangeType = "delete_prefix"
)

// Change is one resolved change inside a command: no conditions, no relative
// times, nothing that depends on when or where it is applied.
type Change struct {
	Op        ChangeType `json:"op"`
	Key       string     `json:"key"`
	Value     string     `json:"value,omitempty"`
	ExpiresAt int64      `json:"expires_at,omitempty"` // Unix milliseconds; puts only

	// entry is the entry a put resolved by this store produces, so that
	// applying it does not build it twice; nil in decoded commands.
	entry *Entry
}

// Command is one write as the store applies it: all its changes share the
// revision Rev and are applied together or not at all.
type Command struct {
	Rev     int64    `json:"rev"`
	Changes []Change `json:"ops"`

	// resolved marks a command this store built itself, which needs no
	// checking against the state it is applied to.
	resolved bool
}

// next returns the entry that results from applying ch at revision rev to a
// key whose current entry is prev (nil when absent). It returns nil for a
// delete or expire. This is the one place the meaning of a change is defined:
// resolving, applying and replaying all go through it. Whether ch fits prev
// (no delete of a missing key, no unknown op) is Store.check's business, done
// before anything is applied.
func next(prev *Entry, ch *Change, rev int64) *Entry {
	if ch.Op != OpPut {
		return nil
	}
	e := &Entry{Key: ch.Key, Value: ch.Value, CreateRev: rev, ModRev: rev, Version: 1, ExpiresAt: ch.ExpiresAt}
	if prev != nil {
		e.Key = prev.Key // share the key's bytes with the index
		e.CreateRev = prev.CreateRev
		e.Version = prev.Version + 1
	}
	return e
}

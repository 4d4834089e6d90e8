package engine

import (
	"fmt"
	"unicode/utf8"
)

// ImportEntry is one key an import puts.
type ImportEntry struct {
	Key   string
	Value string
	// ExpiresAt is the absolute expiry time in Unix milliseconds (0:
	// never): an import keeps the times it was given, not TTLs.
	ExpiresAt int64
}

// ImportResult counts what Import did with each key.
type ImportResult struct {
	// Rev is the revision the import's changes got, or the store's
	// revision if it changed nothing (then it took no revision).
	Rev int64 `json:"rev"`
	// Added counts keys that did not exist (or whose TTL had run out),
	// Changed keys whose value or expiry time differed, Unchanged keys
	// left alone because both were the same: they get no new version.
	Added     int `json:"added"`
	Changed   int `json:"changed"`
	Unchanged int `json:"unchanged"`
	// Deleted counts the keys a replacing import removed because the
	// import does not hold them (keys whose TTL had run out are removed
	// too, as expirations, but not counted).
	Deleted int `json:"deleted"`
	// Expired counts entries skipped because their expiry time had passed.
	Expired int `json:"expired"`
}

// Import writes entries, sorted by key with no key twice, as one write at
// one revision: all of it or, on any error, nothing. A key whose value and
// expiry time are already those of its entry is left as it is (no new
// version, no event). With replace, every key not in entries is deleted in
// the same write, so the store then holds exactly the entries; otherwise
// other keys are kept (a merge).
//
// Entries are checked like puts: an empty, too long or invalid UTF-8 key,
// a value too long or not UTF-8, or a negative expiry time is an *OpError
// naming the entry's index and key; a key equal to the one before it is an
// *OpError wrapping ErrDuplicateKey. Entries out of order are refused. A
// replicated store returns ErrReplicated.
//
// Import holds the writers' turn while it compares the entries with the
// store, so other writes wait for it; its memory beyond the entries and
// the new store entries is one Change per key written.
func (s *Store) Import(entries []ImportEntry, replace bool) (ImportResult, error) {
	if s.opts.Replicated {
		return ImportResult{}, ErrReplicated
	}
	if err := s.validateImport(entries); err != nil {
		return ImportResult{}, err
	}
	if s.inbox == nil {
		s.lockWriter()
		defer s.unlockWriter()
		if s.closed.Load() {
			return ImportResult{}, ErrClosed
		}
		cmd, res := s.resolveImport(entries, replace, s.nowMs(), s.rev+1)
		if len(cmd.Changes) == 0 {
			return res, nil
		}
		// Not s.record, which copies the changes for the journal: these
		// are the import's own, and a copy of millions is what must not be.
		if s.opts.Journal == nil {
			s.mustApply(&cmd) // lockWriter took s.mu itself
			return res, nil
		}
		if err := s.opts.Journal.Append([]Command{cmd}); err != nil {
			return ImportResult{}, err
		}
		s.mu.Lock()
		s.mustApply(&cmd)
		s.mu.Unlock()
		return res, nil
	}
	var res ImportResult
	r := newRequest()
	r.imp = func(now, rev int64) Command {
		var cmd Command
		cmd, res = s.resolveImport(entries, replace, now, rev)
		return cmd
	}
	if err := s.submit(r); err != nil {
		return ImportResult{}, err
	}
	if r.err != nil {
		return ImportResult{}, r.err
	}
	return res, nil
}

// validateImport checks every entry as validate checks a put, and their order.
func (s *Store) validateImport(entries []ImportEntry) error {
	for i := range entries {
		e := &entries[i]
		var err error
		switch {
		case e.Key == "":
			err = ErrEmptyKey
		case len(e.Key) > s.opts.MaxKeyBytes:
			err = ErrKeyTooLarge
		case !utf8.ValidString(e.Key):
			err = ErrInvalidUTF8
		case len(e.Value) > s.opts.MaxValueBytes:
			err = ErrValueTooLarge
		case !utf8.ValidString(e.Value):
			err = ErrInvalidUTF8
		case e.ExpiresAt < 0:
			err = ErrBadTTL
		case i > 0 && e.Key == entries[i-1].Key:
			err = ErrDuplicateKey
		case i > 0 && e.Key < entries[i-1].Key:
			return fmt.Errorf("engine: Import entries are not sorted by key (%q after %q)", shorten(e.Key), shorten(entries[i-1].Key))
		default:
			continue
		}
		return &OpError{Index: i, Key: e.Key, Err: err}
	}
	return nil
}

// resolveImport builds the import's command at revision rev against the
// store's map as it is (the caller holds the writers' turn, with nothing
// pending). A first walk counts the changes, so the command's slice is
// made once at its final size: an import of millions of keys must not
// hold two of them while one grows.
func (s *Store) resolveImport(entries []ImportEntry, replace bool, now, rev int64) (Command, ImportResult) {
	res := ImportResult{Rev: rev}
	n := 0
	s.importWalk(entries, replace, now, func(kind int, ch *Change, prev *Entry) {
		res.count(kind)
		if ch != nil {
			n++
		}
	})
	if n == 0 {
		res.Rev = rev - 1
		return Command{}, res
	}
	cmd := Command{Rev: rev, Changes: make([]Change, 0, n), resolved: true}
	s.importWalk(entries, replace, now, func(kind int, ch *Change, prev *Entry) {
		if ch != nil {
			ch.entry = next(prev, ch, rev)
			cmd.Changes = append(cmd.Changes, *ch)
		}
	})
	return cmd, res
}

// What importWalk found for a key.
const (
	importAdded     = iota // put: the key did not exist, or its TTL had run out
	importChanged          // put: another value or expiry time
	importUnchanged        // nothing: same value and expiry time
	importDeleted          // delete: a replacing import does not hold the key
	importExpired          // the entry's own expiry time has passed: not put
	importCleanup          // expire: the key's TTL had run out (not counted)
)

// importWalk calls fn for every key the import concerns, in order, with
// the change it makes (nil for none) and the key's entry before it: for
// each entry a put unless the key is unchanged or the entry expired (after
// an expire of a key whose TTL ran out), and with replace, a delete of
// every live key the entries do not hold (or hold expired).
func (s *Store) importWalk(entries []ImportEntry, replace bool, now int64, fn func(kind int, ch *Change, prev *Entry)) {
	for i := range entries {
		e := &entries[i]
		cur := s.m[e.Key]
		if cur != nil && cur.expired(now) {
			fn(importCleanup, &Change{Op: OpExpire, Key: e.Key}, cur)
			cur = nil
		}
		put := &Change{Op: OpPut, Key: e.Key, Value: e.Value, ExpiresAt: e.ExpiresAt}
		switch {
		case e.ExpiresAt != 0 && e.ExpiresAt <= now:
			fn(importExpired, nil, cur)
			if cur != nil && replace {
				fn(importDeleted, &Change{Op: OpDelete, Key: e.Key}, cur)
			}
		case cur == nil:
			fn(importAdded, put, nil)
		case cur.Value != e.Value || cur.ExpiresAt != e.ExpiresAt:
			fn(importChanged, put, cur)
		default:
			fn(importUnchanged, nil, cur)
		}
	}
	if !replace {
		return
	}
	// The index and the entries are both in key order: one walk of each
	// finds the keys the entries do not hold.
	j := 0
	s.index.Ascend("", func(k string) bool {
		for j < len(entries) && entries[j].Key < k {
			j++
		}
		if j < len(entries) && entries[j].Key == k {
			return true // dealt with above
		}
		cur := s.m[k]
		if cur.expired(now) {
			fn(importCleanup, &Change{Op: OpExpire, Key: k}, cur)
		} else {
			fn(importDeleted, &Change{Op: OpDelete, Key: k}, cur)
		}
		return true
	})
}

// PlanImport returns the operations an import of entries (sorted by key,
// no key twice) would make, for a store whose writes go elsewhere (a
// replicated store's go through its log): a put for each entry whose value
// or expiry time differ, and with replace, a delete of every live key the
// entries do not hold. Each is conditional on the key's revision as the
// store holds it now, so if another write changes one of those keys
// before the operations are applied, they fail as a whole with a
// *ConditionError instead of undoing that write. The result counts the
// keys as Import would; its Rev is the store's current revision. Entries
// are checked as Import checks them.
func (s *Store) PlanImport(entries []ImportEntry, replace bool) ([]Op, ImportResult, error) {
	if err := s.validateImport(entries); err != nil {
		return nil, ImportResult{}, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	res := ImportResult{Rev: s.rev}
	var ops []Op
	s.importWalk(entries, replace, s.nowMs(), func(kind int, ch *Change, prev *Entry) {
		cond := Absent
		if prev != nil && kind != importAdded {
			cond = prev.ModRev
		}
		if kind == importCleanup {
			return // a key whose TTL ran out counts as absent for the condition
		}
		res.count(kind)
		if ch == nil {
			return
		}
		ops = append(ops, Op{Type: ch.Op, Key: ch.Key, Value: ch.Value, ExpiresAt: ch.ExpiresAt, IfRev: cond})
	})
	return ops, res, nil
}

// count adds one key of the given kind to the result's tallies; cleanup of
// keys whose TTL ran out is not counted.
func (r *ImportResult) count(kind int) {
	switch kind {
	case importAdded:
		r.Added++
	case importChanged:
		r.Changed++
	case importUnchanged:
		r.Unchanged++
	case importDeleted:
		r.Deleted++
	case importExpired:
		r.Expired++
	}
}

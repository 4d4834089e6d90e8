package main

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pykv/pykv/engine"
	"github.com/pykv/pykv/persist/codec"
)

// Item names under a copy's prefix (see doc.go).
const (
	keySnapshot   = "snapshot"
	keyHead       = "head"
	keySync       = "sync"
	keyLogDir     = "log/"
	keyCorruptDir = "corrupt/"
)

// defaultFoldMinUnits is the log size (UTF-16 units) below which the copy is
// never folded: small logs replay faster than a snapshot is rewritten.
const defaultFoldMinUnits = 64 << 10

// defaultFoldPressMaxUnits bounds the log during writes whatever the
// snapshot's size (see foldPressFactor): a fold needs room beside the log
// for the snapshot's growth, and localStorage holds about 5 Mi units.
const defaultFoldPressMaxUnits = 512 << 10

// ErrStale: another tab wrote to this copy since this tab loaded it. The
// write was refused before anything was stored; reload and try again.
var ErrStale = errors.New("another tab changed this copy since it was loaded; reload it and try again")

// options configure a localDB. The zero value gives the defaults.
type options struct {
	Name   string         // the copy's name; items live under pykv/<Name>/ (default "default")
	Engine engine.Options // limits and clock; Journal is set by openDB
	// FoldMinUnits: the log is folded into the snapshot once it is larger
	// than both this (default 64 Ki UTF-16 units) and the snapshot: when
	// the page is idle, or during writes at foldPressFactor times that or
	// past FoldPressMaxUnits (default 512 Ki units).
	FoldMinUnits      int
	FoldPressMaxUnits int
}

// Recovery tells what opening the copy found and did.
type Recovery struct {
	SnapshotRev     int64      `json:"snapshot_rev"`
	SnapshotEntries int        `json:"snapshot_entries"`
	LogItems        int        `json:"log_items"`
	LogRecords      int        `json:"log_records"`
	SetAside        []SetAside `json:"set_aside,omitempty"`
	Removed         []string   `json:"removed,omitempty"` // leftovers of an interrupted fold
	DurationMs      float64    `json:"duration_ms"`
}

// SetAside is one item that failed its checks and was moved out of the way.
type SetAside struct {
	Key     string `json:"key"`
	MovedTo string `json:"moved_to,omitempty"` // empty: it could not be moved (storage full) and is ignored in place
	Reason  string `json:"reason"`
	Units   int    `json:"units"`
}

// touch records a key changed locally since the copy was loaded from the
// server: the server revision the first change was based on (0: the key did
// not exist) and the revision of the latest local change.
type touch struct {
	base, local int64
}

// syncFile is the sync item's JSON.
type syncFile struct {
	ServerRev int64 `json:"server_rev"`
	// Pending maps each key changed locally to [base revision, local revision].
	Pending map[string][2]int64 `json:"pending"`
}

// logItem is one log item in storage.
type logItem struct {
	key         string // full storage key
	first, last int64
	units       int
}

// localDB is the offline copy: an engine.Store whose journal is storage.
type localDB struct {
	st     storage
	prefix string
	opts   options

	// foldMu serializes whole-state operations: fold, rebase, reload.
	foldMu sync.Mutex

	// smu guards the store pointer and changed; the store is replaced by
	// reload and rebase.
	smu     sync.RWMutex
	store   *engine.Store
	changed chan struct{} // closed when store is replaced

	// wmu guards the bookkeeping below, changed by the journal (from the
	// engine's committer) and by fold, rebase and reload.
	wmu       sync.Mutex
	logs      []logItem
	logUnits  int
	snapUnits int
	serverRev int64
	touched   map[string]touch
	// shadow holds every key's ModRev (expired keys included until their
	// expire change), to know what a local change was based on.
	shadow  map[string]int64
	ignored map[string]bool // damaged items that could not be moved
	// locked: the JavaScript side holds the cross-tab lock and has caught
	// up, so no other tab can write until Unlock: writes skip their check.
	locked   bool
	recovery Recovery
	foldErr  error

	subscribers atomic.Int32 // running Subscribe calls
}

// openDB opens (or creates) the copy named opts.Name in st, recovering it
// from the snapshot and log items. Damaged items are set aside and reported
// in Recovery, never returned as an error; an error means the copy could not
// be opened at all (a bad name).
func openDB(st storage, opts options) (*localDB, error) {
	if opts.Name == "" {
		opts.Name = "default"
	}
	if !validName(opts.Name) {
		return nil, fmt.Errorf("bad copy name %q: use letters, digits, '-', '_' and '.', at most 64", opts.Name)
	}
	if opts.FoldMinUnits <= 0 {
		opts.FoldMinUnits = defaultFoldMinUnits
	}
	if opts.FoldPressMaxUnits <= 0 {
		opts.FoldPressMaxUnits = defaultFoldPressMaxUnits
	}
	db := &localDB{st: st, prefix: "pykv/" + opts.Name + "/", opts: opts, changed: make(chan struct{})}
	store, err := db.restore()
	if err != nil {
		return nil, err
	}
	db.store = store
	return db, nil
}

func validName(name string) bool {
	if len(name) > 64 {
		return false
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// logKey names the log item whose first revision is rev (positive).
func (db *localDB) logKey(rev int64) string {
	const zeros = "00000000000000000000"
	digits := strconv.FormatInt(rev, 10)
	return db.prefix + keyLogDir + zeros[len(digits):] + digits
}

// parseLogKey returns the first revision a log item's name (after the
// prefix) gives, or false if rest is not a log item name.
func parseLogKey(rest string) (int64, bool) {
	digits, ok := strings.CutPrefix(rest, keyLogDir)
	if !ok || len(digits) != 20 {
		return 0, false
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	rev, err := strconv.ParseInt(digits, 10, 64)
	return rev, err == nil && rev > 0
}

// current returns the store in use.
func (db *localDB) current() *engine.Store {
	db.smu.RLock()
	defer db.smu.RUnlock()
	return db.store
}

// replace swaps in a new store and wakes subscribers of the old one.
func (db *localDB) replace(s *engine.Store) {
	db.smu.Lock()
	db.store = s
	close(db.changed)
	db.changed = make(chan struct{})
	db.smu.Unlock()
}

// Close stops the copy's store. Everything written is already in storage.
func (db *localDB) Close() error {
	return db.current().Close()
}

// badItem is an item recovery could not use.
type badItem struct {
	key    string
	reason string
}

// errRetry makes restore start over without the items found bad so far.
var errRetry = errors.New("retry recovery")

// restore recovers the store from storage: the snapshot, then the log items
// in revision order. A damaged item, and every log item after a damaged one,
// is set aside, and recovery starts over without them, so the store always
// holds exactly what storage holds.
func (db *localDB) restore() (*engine.Store, error) {
	start := time.Now()
	bad := make(map[string]string) // storage key → reason
	var order []string
	for {
		var rec Recovery
		var stale []string
		var logs []logItem
		var next []badItem // found in this attempt
		var snapUnits int
		var sf syncFile

		// Classify this copy's items.
		var snapKey, syncKey bool
		for _, k := range db.st.Keys() {
			rest, ok := strings.CutPrefix(k, db.prefix)
			if !ok || bad[k] != "" || db.ignored[k] {
				continue
			}
			switch {
			case rest == keySnapshot:
				snapKey = true
			case rest == keySync:
				syncKey = true
			case rest == keyHead, strings.HasPrefix(rest, keyCorruptDir):
			default:
				if first, ok := parseLogKey(rest); ok {
					logs = append(logs, logItem{key: k, first: first})
				} else {
					next = append(next, badItem{k, "not an item this copy writes"})
				}
			}
		}
		slices.SortFunc(logs, func(a, b logItem) int { return cmp.Compare(a.first, b.first) })

		if syncKey {
			text, _ := db.st.GetItem(db.prefix + keySync)
			if err := decodeSync(text, &sf); err != nil {
				next = append(next, badItem{db.prefix + keySync, err.Error()})
			}
		}
		touched := make(map[string]touch, len(sf.Pending))
		for k, p := range sf.Pending {
			touched[k] = touch{base: p[0], local: p[1]}
		}
		shadow := make(map[string]int64)

		eopts := db.opts.Engine
		eopts.Journal = journal{db}
		eopts.InlineCommit = true // writes come from the page's one thread: no committer hop
		store, err := engine.Restore(eopts, func(l *engine.Loader) error {
			if len(next) > 0 {
				return errRetry
			}
			if snapKey {
				key := db.prefix + keySnapshot
				text, _ := db.st.GetItem(key)
				snapUnits = jsLen(key) + jsLen(text)
				rev, entries, err := codec.ReadSnapshot(strings.NewReader(text), key)
				if err == nil {
					err = l.Load(rev, entries)
				}
				if err != nil {
					next = append(next, badItem{key, err.Error()})
					return errRetry
				}
				for i := range entries {
					shadow[entries[i].Key] = entries[i].ModRev
				}
				rec.SnapshotRev, rec.SnapshotEntries = rev, len(entries)
			} else if h, ok := db.st.GetItem(db.prefix + keyHead); ok {
				// No usable snapshot, but head says which revision it held:
				// start empty there, so the log items after it still chain
				// (a change to a key it held fails and is set aside) and the
				// copy's revisions never go back, which other tabs rely on.
				if head, err := strconv.ParseInt(h, 10, 64); err == nil && head > 0 {
					if err := l.Load(head, nil); err != nil {
						return err
					}
					rec.SnapshotRev = head
				}
			}
			for i := range logs {
				it := &logs[i]
				text, _ := db.st.GetItem(it.key)
				it.units = jsLen(it.key) + jsLen(text)
				cmds, err := decodeLogItem(it.key, it.first, text)
				if err == nil && len(cmds) > 0 && cmds[0].Rev <= l.Rev() && cmds[len(cmds)-1].Rev > l.Rev() {
					err = fmt.Errorf("%w: records %d..%d straddle the snapshot's revision %d",
						codec.ErrMalformed, cmds[0].Rev, cmds[len(cmds)-1].Rev, l.Rev())
				}
				if err == nil && cmds[0].Rev <= l.Rev() {
					stale = append(stale, it.key) // covered by the snapshot: a fold stopped before removing it
					continue
				}
				if err == nil && cmds[0].Rev != l.Rev()+1 {
					err = fmt.Errorf("%w: starts at revision %d, the copy is at %d (a gap)", engine.ErrCorrupt, cmds[0].Rev, l.Rev())
				}
				for j := 0; err == nil && j < len(cmds); j++ {
					if err = l.Apply(cmds[j]); err == nil {
						track(touched, shadow, &cmds[j])
					}
				}
				if err != nil {
					// Later items were written against this one's state.
					next = append(next, badItem{it.key, err.Error()})
					for _, later := range logs[i+1:] {
						next = append(next, badItem{later.key, "follows the damaged item " + it.key})
					}
					return errRetry
				}
				it.last = cmds[len(cmds)-1].Rev
				rec.LogItems++
				rec.LogRecords += len(cmds)
			}
			return nil
		})
		if errors.Is(err, errRetry) {
			for _, b := range next {
				if bad[b.key] == "" {
					bad[b.key] = b.reason
					order = append(order, b.key)
				}
			}
			continue
		}
		if err != nil {
			return nil, err // not expected: every failure above is retried without the item
		}

		// The store now holds exactly the usable items: set the others aside.
		stamp := strconv.FormatInt(time.Now().UnixMilli(), 10)
		for _, k := range order {
			rec.SetAside = append(rec.SetAside, db.setAside(k, bad[k], stamp))
		}
		for _, k := range stale {
			db.st.RemoveItem(k)
			rec.Removed = append(rec.Removed, k)
		}
		live := logs[:0]
		logUnits := 0
		for _, it := range logs {
			if it.last != 0 {
				live = append(live, it)
				logUnits += it.units
			}
		}
		rec.DurationMs = float64(time.Since(start).Microseconds()) / 1000
		db.wmu.Lock()
		db.logs, db.logUnits, db.snapUnits = live, logUnits, snapUnits
		db.serverRev, db.touched, db.shadow = sf.ServerRev, touched, shadow
		db.recovery = rec
		db.wmu.Unlock()
		return store, nil
	}
}

// setAside moves a damaged item to corrupt/<stamp>/<its name>. If storage
// is too full to hold the copy, the item stays where it is and is ignored.
func (db *localDB) setAside(key, reason, stamp string) SetAside {
	text, _ := db.st.GetItem(key)
	sa := SetAside{Key: key, Reason: reason, Units: jsLen(key) + jsLen(text)}
	to := db.prefix + keyCorruptDir + stamp + "/" + strings.TrimPrefix(key, db.prefix)
	if err := db.st.SetItem(to, text); err != nil {
		if db.ignored == nil {
			db.ignored = make(map[string]bool)
		}
		db.ignored[key] = true
		sa.Reason += " (could not be moved: " + err.Error() + ")"
		return sa
	}
	db.st.RemoveItem(key)
	sa.MovedTo = to
	return sa
}

// decodeSync parses the sync item.
func decodeSync(text string, sf *syncFile) error {
	dec := jsonDecoder(text)
	if err := dec.Decode(sf); err != nil {
		return fmt.Errorf("%w: sync item: %v", codec.ErrMalformed, err)
	}
	if sf.ServerRev < 0 {
		return fmt.Errorf("%w: sync item: negative server revision", codec.ErrMalformed)
	}
	for k, p := range sf.Pending {
		if k == "" || p[0] < 0 || p[1] < 0 {
			return fmt.Errorf("%w: sync item: bad entry for key %q", codec.ErrMalformed, k)
		}
	}
	return nil
}

// decodeLogItem decodes the records of one log item: one or more lines each
// ending in a newline, with consecutive revisions starting at first (the
// revision the item's name gives).
func decodeLogItem(key string, first int64, text string) ([]engine.Command, error) {
	if text == "" {
		return nil, &codec.CorruptError{File: key, Err: fmt.Errorf("%w: empty log item", codec.ErrMalformed)}
	}
	var cmds []engine.Command
	for off := 0; off < len(text); {
		i := strings.IndexByte(text[off:], '\n')
		if i < 0 {
			return nil, &codec.CorruptError{File: key, Offset: int64(off), Err: fmt.Errorf("%w: torn record (no newline)", codec.ErrMalformed)}
		}
		cmd, err := codec.DecodeRecord([]byte(text[off : off+i+1]))
		if err != nil {
			return nil, &codec.CorruptError{File: key, Offset: int64(off), Err: err}
		}
		want := first + int64(len(cmds))
		if cmd.Rev != want {
			return nil, &codec.CorruptError{File: key, Offset: int64(off),
				Err: fmt.Errorf("%w: record has revision %d, want %d", codec.ErrMalformed, cmd.Rev, want)}
		}
		cmds = append(cmds, cmd)
		off += i + 1
	}
	return cmds, nil
}

// track notes cmd's changes in the pending bookkeeping: the first local
// change to a key since the copy was loaded records the revision the key
// had (shadow), then shadow follows the change. Expiry is not a local change:
// the server expires the key at the same time.
func track(touched map[string]touch, shadow map[string]int64, cmd *engine.Command) {
	for i := range cmd.Changes {
		ch := &cmd.Changes[i]
		if ch.Op != engine.OpExpire {
			t, ok := touched[ch.Key]
			if !ok {
				t.base = shadow[ch.Key] // 0 when absent
			}
			t.local = cmd.Rev
			touched[ch.Key] = t
		}
		if ch.Op == engine.OpPut {
			shadow[ch.Key] = cmd.Rev
		} else {
			delete(shadow, ch.Key)
		}
	}
}

// journal stores the engine's commands as log items, before the engine
// applies them.
type journal struct{ db *localDB }

// Append stores cmds as one log item. It refuses with ErrStale if another
// tab stored this revision or folded past it, and with a *QuotaError if
// storage is full; either way nothing is stored.
func (j journal) Append(cmds []engine.Command) error {
	db := j.db
	db.wmu.Lock()
	defer db.wmu.Unlock()
	first, last := cmds[0].Rev, cmds[len(cmds)-1].Rev
	key := db.logKey(first)
	if !db.locked && db.staleLocked(first) {
		return ErrStale
	}
	buf := make([]byte, 0, recordsSize(cmds))
	for i := range cmds {
		buf = codec.AppendRecord(buf, &cmds[i])
	}
	value := string(buf)
	units := jsLen(key) + jsLen(value)
	if err := db.st.SetItem(key, value); err != nil {
		if errors.Is(err, errQuota) {
			return &QuotaError{What: describe(cmds), Units: units, Usage: measure(db.st, db.prefix), Err: err}
		}
		return fmt.Errorf("save %s: %w", key, err)
	}
	db.logs = append(db.logs, logItem{key: key, first: first, last: last, units: units})
	db.logUnits += units
	for i := range cmds {
		track(db.touched, db.shadow, &cmds[i])
	}
	return nil
}

// recordsSize is about the size of cmds' log records, so that they are
// encoded without growing the buffer (most writes are one small record).
func recordsSize(cmds []engine.Command) int {
	n := 0
	for i := range cmds {
		n += 64 // rev, crc, newline
		for _, ch := range cmds[i].Changes {
			n += 64 + len(ch.Key) + len(ch.Value)
		}
	}
	return n
}

// staleLocked reports whether storage holds revision rev already: a log
// item starting there, or a snapshot (head) at or past it. The caller holds
// wmu.
func (db *localDB) staleLocked(rev int64) bool {
	if key := db.logKey(rev); !db.ignored[key] {
		if _, ok := db.st.GetItem(key); ok {
			return true
		}
	}
	if h, ok := db.st.GetItem(db.prefix + keyHead); ok {
		if head, err := strconv.ParseInt(h, 10, 64); err == nil && head >= rev {
			return true
		}
	}
	return false
}

// describe names a refused write for a QuotaError.
func describe(cmds []engine.Command) string {
	n, size := 0, 0
	var first *engine.Change
	for i := range cmds {
		for j := range cmds[i].Changes {
			ch := &cmds[i].Changes[j]
			if ch.Op == engine.OpExpire {
				continue
			}
			if first == nil {
				first = ch
			}
			n++
			size += len(ch.Key) + len(ch.Value)
		}
	}
	switch {
	case first == nil:
		return "the removal of expired keys"
	case n == 1 && first.Op == engine.OpPut:
		return fmt.Sprintf("put %q (%d bytes)", first.Key, size)
	case n == 1:
		return fmt.Sprintf("delete %q", first.Key)
	}
	return fmt.Sprintf("a write of %d changes starting with %s %q (%d bytes)", n, first.Op, first.Key, size)
}

// Stale reports whether another tab has written to the copy since this tab
// loaded it (CatchUp reloads it then).
func (db *localDB) Stale() bool {
	rev := db.current().Rev()
	db.wmu.Lock()
	defer db.wmu.Unlock()
	return db.staleLocked(rev + 1)
}

// CatchUp reloads the copy from storage if another tab wrote to it, and
// reports whether it did. locked says the caller holds the cross-tab lock
// (Web Locks) until it calls Unlock: no other tab writes meanwhile, so
// writes skip the two getItems of their own check.
func (db *localDB) CatchUp(locked bool) (reloaded bool, err error) {
	if db.Stale() {
		reloaded, err = true, db.Reload()
	}
	db.wmu.Lock()
	db.locked = locked && err == nil
	db.wmu.Unlock()
	return reloaded, err
}

// Unlock ends what CatchUp(true) began: writes check again for other tabs.
func (db *localDB) Unlock() {
	db.wmu.Lock()
	db.locked = false
	db.wmu.Unlock()
}

// Reload recovers the copy from storage again, replacing the store.
func (db *localDB) Reload() error {
	db.foldMu.Lock()
	defer db.foldMu.Unlock()
	return db.reloadLocked()
}

func (db *localDB) reloadLocked() error {
	old := db.current()
	old.Close()
	store, err := db.restore()
	if err != nil {
		return err
	}
	db.replace(store)
	return nil
}

// foldPressFactor: while writes go on, the copy folds only once its log is
// this many times past the point where a fold is due (larger than both
// FoldMinUnits and the snapshot), or past FoldPressMaxUnits. A fold
// rewrites the whole snapshot, and a run of writes folding each time the
// log caught up with it paid for most of the snapshot again every few
// hundred writes (8 folds, a quarter of the time of 10k awaited puts). The
// page folds what is due once the writes stop (FoldIfDue), so the log is
// usually no larger than the snapshot; storage running full folds at once
// in any case.
const foldPressFactor = 2

// needFold reports whether the log is due for folding: larger than both
// FoldMinUnits and the snapshot and, when pressing (during writes), also
// larger than foldPressFactor times both, or than FoldPressMaxUnits.
func (db *localDB) needFold(pressing bool) bool {
	db.wmu.Lock()
	defer db.wmu.Unlock()
	due := db.logUnits > db.opts.FoldMinUnits && db.logUnits > db.snapUnits
	if !due || !pressing {
		return due
	}
	return db.logUnits > foldPressFactor*max(db.opts.FoldMinUnits, db.snapUnits) ||
		db.logUnits > db.opts.FoldPressMaxUnits
}

// maybeFold folds the copy, after a write, when the log has grown well past
// due (see foldPressFactor). A failed fold loses nothing (the log stays);
// its error is kept for Status.
func (db *localDB) maybeFold() {
	if db.needFold(true) {
		db.Fold()
	}
}

// FoldIfDue folds the copy if its log is larger than both FoldMinUnits and
// the snapshot; the page calls it once writes stop, after catching up with
// other tabs. A copy another tab wrote to since is left alone, and that is
// not an error here (nor in Status): the next call folds it.
func (db *localDB) FoldIfDue() error {
	if !db.needFold(false) || db.Stale() {
		return nil
	}
	if err := db.Fold(); errors.Is(err, ErrStale) {
		db.wmu.Lock()
		if errors.Is(db.foldErr, ErrStale) {
			db.foldErr = nil
		}
		db.wmu.Unlock()
	} else if err != nil {
		return err
	}
	return nil
}

// Fold writes the current state as the snapshot and removes the log items
// it covers, in an order that survives the tab closing at any step: the
// sync item, the snapshot, head, then the log items. It refuses with
// ErrStale if another tab wrote meanwhile, and returns a *QuotaError if the
// snapshot does not fit; either way nothing is lost.
func (db *localDB) Fold() error {
	db.foldMu.Lock()
	defer db.foldMu.Unlock()
	var sf syncFile
	store := db.current()
	rev, entries, err := store.Checkpoint(func(int64) error {
		// Between two writes: the bookkeeping is as of rev.
		db.wmu.Lock()
		defer db.wmu.Unlock()
		sf = db.syncFileLocked()
		return nil
	})
	if err == nil {
		err = db.writeState(rev, entries, sf)
	}
	db.wmu.Lock()
	db.foldErr = err
	db.wmu.Unlock()
	return err
}

func (db *localDB) syncFileLocked() syncFile {
	sf := syncFile{ServerRev: db.serverRev, Pending: make(map[string][2]int64, len(db.touched))}
	for k, t := range db.touched {
		sf.Pending[k] = [2]int64{t.base, t.local}
	}
	return sf
}

// writeState stores the state at rev (entries, and the sync bookkeeping sf)
// in place of the snapshot and removes every log item it covers.
func (db *localDB) writeState(rev int64, entries []*engine.Entry, sf syncFile) error {
	db.wmu.Lock()
	stale := db.staleLocked(rev + 1)
	lastSize := db.snapUnits
	db.wmu.Unlock()
	if stale {
		return ErrStale
	}
	var b strings.Builder
	b.Grow(2 * lastSize) // room for the snapshot to have grown since the last one
	if err := codec.WriteSnapshot(&b, rev, entries); err != nil {
		return err
	}
	snap := b.String()
	syncText := encodeSync(sf)
	oldSync, hadSync := db.st.GetItem(db.prefix + keySync)
	if err := db.set(keySync, syncText, "the list of changes waiting to be sent"); err != nil {
		return err
	}
	if err := db.set(keySnapshot, snap, fmt.Sprintf("the snapshot of %d keys at revision %d", len(entries), rev)); err != nil {
		// Put the old sync item back so it matches the old snapshot again.
		if hadSync {
			db.st.SetItem(db.prefix+keySync, oldSync)
		} else {
			db.st.RemoveItem(db.prefix + keySync)
		}
		return err
	}
	// Head tells other tabs they are behind once the log items are gone;
	// if it cannot be written the log items stay, which tells them as well.
	if err := db.set(keyHead, strconv.FormatInt(rev, 10), "the snapshot's revision"); err != nil {
		return err
	}
	db.wmu.Lock()
	defer db.wmu.Unlock()
	db.snapUnits = jsLen(db.prefix+keySnapshot) + jsLen(snap)
	live := db.logs[:0]
	db.logUnits = 0
	for _, it := range db.logs {
		if it.last <= rev {
			db.st.RemoveItem(it.key)
			continue
		}
		live = append(live, it)
		db.logUnits += it.units
	}
	db.logs = live
	return nil
}

// set stores one of the copy's items, turning a full storage into a
// *QuotaError that names what was not saved.
func (db *localDB) set(name, value, what string) error {
	key := db.prefix + name
	if err := db.st.SetItem(key, value); err != nil {
		if errors.Is(err, errQuota) {
			return &QuotaError{What: what, Units: jsLen(key) + jsLen(value), Usage: measure(db.st, db.prefix), Err: err}
		}
		return fmt.Errorf("save %s: %w", key, err)
	}
	return nil
}

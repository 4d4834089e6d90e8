package engine

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/tidwall/btree"
)

// Defaults for the zero values of Options.
const (
	DefaultMaxKeyBytes    = 1 << 10
	DefaultMaxValueBytes  = 1 << 20
	DefaultMaxTxnOps      = 128
	DefaultHistory        = 10_000
	DefaultHistoryBytes   = 64 << 20
	DefaultExpireInterval = 100 * time.Millisecond
	// expireBatch bounds how many keys one expiry command removes, so a
	// million keys expiring at once do not make one giant log record.
	expireBatch = 1000
)

// MaxTTL is the longest time to live a put may ask for: 100 years (365-day
// years). Unix milliseconds of now plus MaxTTL stay far below the int64
// limit, so an expiry time can never wrap around to the past.
const MaxTTL = 100 * 365 * 24 * time.Hour

// Journal records commands before the store applies them; persist.Log is
// the implementation that writes them to disk.
type Journal interface {
	// Append records cmds, in order, and returns once they are as durable
	// as the journal promises. It is called by one goroutine at a time.
	// When it returns an error none of cmds may be recorded: the store
	// applies none of them and answers their writers with that error.
	Append(cmds []Command) error
}

// GroupDelayer is a Journal whose Append waits for a sync (an fsync)
// that writers can share. CommitDelay returns how long the committer may
// hold a group open for more writers to join it: the journal's recent sync
// latency, or 0 when Append does not wait for a sync (waiting would then
// only add latency). See commitLoop for how it is used.
type GroupDelayer interface {
	CommitDelay() time.Duration
}

// Options configure a Store. The zero value gives the defaults.
type Options struct {
	MaxKeyBytes   int // longest key in bytes (default 1 KiB)
	MaxValueBytes int // longest value in bytes (default 1 MiB)
	MaxTxnOps     int // most operations in one transaction (default 128)
	// History and HistoryBytes bound the events kept for watchers that
	// resume from an older revision: the oldest are dropped once either
	// the count or the bytes of keys and values held is exceeded.
	History      int
	HistoryBytes int
	// ExpireInterval is how often expired keys are looked for and removed
	// (default 100ms). Expired keys are invisible at once either way.
	ExpireInterval time.Duration
	// Now is the clock (default time.Now); tests set a fake one.
	Now func() time.Time
	// Journal, when set, makes every write durable before it is applied.
	Journal Journal
	// InlineCommit makes writes with a journal commit on the writer's own
	// goroutine, one at a time, instead of handing them to the committer
	// goroutine. Concurrent writers then no longer share journal appends
	// (no group commit), but a write costs no goroutine switch: the right
	// trade where writes come from one thread anyway, as in a browser.
	InlineCommit bool
	// Replicated makes a store whose writes come only from a replicated
	// log through ApplyProposal, in the same order on every replica: Txn,
	// Do, Bulk and ExpireDue return ErrReplicated, and no background
	// expiry runs (the log's leader proposes expiries, see DueExpiry).
	// Journal and InlineCommit must be unset.
	Replicated bool
}

func (o Options) withDefaults() Options {
	if o.MaxKeyBytes <= 0 {
		o.MaxKeyBytes = DefaultMaxKeyBytes
	}
	if o.MaxValueBytes <= 0 {
		o.MaxValueBytes = DefaultMaxValueBytes
	}
	if o.MaxTxnOps <= 0 {
		o.MaxTxnOps = DefaultMaxTxnOps
	}
	if o.History <= 0 {
		o.History = DefaultHistory
	}
	if o.HistoryBytes <= 0 {
		o.HistoryBytes = DefaultHistoryBytes
	}
	if o.ExpireInterval <= 0 {
		o.ExpireInterval = DefaultExpireInterval
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Store is the key-value store. It is safe for concurrent use.
type Store struct {
	opts Options

	// mu guards everything below. Readers take it shared; applying a
	// command takes it exclusively. With a journal, only the committer
	// goroutine changes the state, so it may read without the lock.
	mu     sync.RWMutex
	m      map[string]*Entry // every key, including expired ones not yet removed
	index  *btree.BTreeG[string]
	expiry *btree.BTreeG[expiryItem]
	rev    int64
	feed   feed
	closed atomic.Bool // set once by Close

	inbox    *inbox     // the committer's queue; nil without a journal or with InlineCommit
	requests sync.Pool  // of *request, see getRequest
	inline   sync.Mutex // serializes writers with InlineCommit
	// commitMu is held while a group is committed: by the committer, or
	// by a Batch's Commit on its caller's goroutine. Whoever holds it is
	// the only one changing the state.
	commitMu sync.Mutex
	stop     chan struct{}
	wg       sync.WaitGroup
	stopOnce sync.Once
}

type expiryItem struct {
	at  int64
	key string
}

func lessExpiry(a, b expiryItem) bool {
	if a.at != b.at {
		return a.at < b.at
	}
	return a.key < b.key
}

// New returns an empty store that keeps its data in memory only (unless
// opts.Journal is set) and starts its background expiry.
func New(opts Options) *Store {
	s := newStore(opts)
	s.start()
	return s
}

// Restore builds a store from saved state: recover is handed a Loader to
// load a snapshot and replay commands, before any write or expiry can run.
// Errors from recover are returned as they are. The journal, if any, is only
// used for writes after recovery.
func Restore(opts Options, recover func(*Loader) error) (*Store, error) {
	s := newStore(opts)
	if err := recover(&Loader{s: s}); err != nil {
		return nil, err
	}
	s.start()
	return s, nil
}

func newStore(opts Options) *Store {
	opts = opts.withDefaults()
	s := &Store{
		opts:   opts,
		m:      make(map[string]*Entry),
		index:  btree.NewBTreeGOptions(func(a, b string) bool { return a < b }, btree.Options{NoLocks: true}),
		expiry: btree.NewBTreeGOptions(lessExpiry, btree.Options{NoLocks: true}),
		stop:   make(chan struct{}),
	}
	s.feed.init(opts.History, opts.HistoryBytes)
	return s
}

func (s *Store) start() {
	if s.opts.Journal != nil && !s.opts.InlineCommit {
		s.inbox = newInbox()
		s.wg.Add(1)
		go s.commitLoop()
	}
	if !s.opts.Replicated {
		s.wg.Add(1)
		go s.expireLoop()
	}
}

// Close stops the store's goroutines. Writes still queued are answered with
// ErrClosed; later calls return ErrClosed. Reads keep working on the last
// state. Close does not close the journal: whoever opened it does.
func (s *Store) Close() error {
	s.stopOnce.Do(func() {
		// Under commitMu: a group being committed (a Batch's, in line)
		// finishes first, and later Batch commits see closed.
		s.commitMu.Lock()
		s.mu.Lock()
		s.closed.Store(true)
		s.feed.wake()
		s.mu.Unlock()
		s.commitMu.Unlock()
		close(s.stop)
		s.wg.Wait()
	})
	return nil
}

// Limits returns the effective key, value and transaction size limits.
func (s *Store) Limits() (maxKey, maxValue, maxTxnOps int) {
	return s.opts.MaxKeyBytes, s.opts.MaxValueBytes, s.opts.MaxTxnOps
}

func (s *Store) nowMs() int64 { return s.opts.Now().UnixMilli() }

// Get returns the entry for key, or ErrNotFound.
func (s *Store) Get(key string) (Entry, error) {
	s.mu.RLock()
	e := s.m[key]
	s.mu.RUnlock()
	if e == nil || (e.ExpiresAt != 0 && e.expired(s.nowMs())) {
		return Entry{}, ErrNotFound
	}
	return *e, nil
}

// Rev returns the revision of the last applied write.
func (s *Store) Rev() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.rev
}

// Len returns the number of keys held, counting expired keys that the
// background expiry has not removed yet.
func (s *Store) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.m)
}

// List returns up to limit live entries whose keys start with prefix, in key
// order, beginning after the key `after` (a cursor: the last key of the
// previous page, or "" for the first). more reports whether entries remain.
// A limit of 0 or less means no limit.
func (s *Store) List(prefix, after string, limit int) (entries []Entry, more bool) {
	entries, more, _ = s.ListAt(prefix, after, limit)
	return entries, more
}

// ListAt is List that also returns the revision the listing shows: every
// change up to rev is in it and none after, so a watch from rev continues
// it exactly.
func (s *Store) ListAt(prefix, after string, limit int) (entries []Entry, more bool, rev int64) {
	now := s.nowMs()
	start := prefix
	if after >= prefix {
		start = after + "\x00" // the smallest key greater than after
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	rev = s.rev
	s.index.Ascend(start, func(k string) bool {
		if !strings.HasPrefix(k, prefix) {
			return false
		}
		e := s.m[k]
		if e.expired(now) {
			return true
		}
		if limit > 0 && len(entries) == limit {
			more = true
			return false
		}
		entries = append(entries, *e)
		return true
	})
	return entries, more, rev
}

// Op is one operation a caller asks for: a put or a delete, optionally
// conditional on the key's current revision.
type Op struct {
	Type  ChangeType // OpPut or OpDelete
	Key   string
	Value string        // puts only
	TTL   time.Duration // puts only; 0 means no expiry; at most MaxTTL
	// ExpiresAt, for puts instead of TTL, is an absolute expiry time in
	// Unix milliseconds (an import keeps the times it was given).
	ExpiresAt int64
	// IfRev, when not 0, makes the operation conditional: the key's
	// current ModRev must equal IfRev, or with IfRev == Absent the key must
	// not exist.
	IfRev int64
}

// Absent is the IfRev that requires a key not to exist.
const Absent int64 = -1

// Result is what one operation did.
type Result struct {
	Entry   Entry  // the entry after a put; for a delete, just the Key
	Prev    *Entry // the entry before the operation, nil if there was none
	Deleted bool   // a delete removed an existing key (a prefix delete: at least one)
	// Removed counts the live keys a prefix delete removed; keys whose TTL
	// had run out already are removed too, as expirations, but not counted.
	Removed int
}

// TxnResult is what a transaction did. Rev is the revision its changes got,
// or the store's revision if it changed nothing.
type TxnResult struct {
	Rev     int64
	Results []Result
}

// Put sets key to value and returns the new entry.
func (s *Store) Put(key, value string) (Entry, error) {
	return s.Do(Op{Type: OpPut, Key: key, Value: value})
}

// Delete removes key and returns the revision of the deletion, or
// ErrNotFound if the key did not exist.
func (s *Store) Delete(key string) (int64, error) {
	e, err := s.Do(Op{Type: OpDelete, Key: key})
	return e.ModRev, err
}

// DeletePrefix removes every key that starts with prefix, atomically: all
// of them at one revision, or none (an error from the journal). An empty
// prefix removes every key; callers facing people should ask for that
// explicitly. It returns the revision and the number of live keys removed;
// with none to remove it changes nothing and returns the current revision
// and 0. Keys written concurrently are either removed (written before) or
// kept (after): the keys are gathered by the writer that removes them.
func (s *Store) DeletePrefix(prefix string) (rev int64, removed int, err error) {
	res, err := s.txn([]Op{{Type: OpDeletePrefix, Key: prefix}}, 1)
	if err != nil {
		if oe, ok := errors.AsType[*OpError](err); ok {
			return 0, 0, oe.Err
		}
		return 0, 0, err
	}
	return res.Rev, res.Results[0].Removed, nil
}

// Do carries out one operation. For a put it returns the new entry; for a
// delete an Entry holding the key and, in ModRev, the revision of the
// deletion. A delete of a missing key returns ErrNotFound; a failed
// condition a *ConditionError. It is Submit followed by Wait: one path
// into the committer for both.
func (s *Store) Do(op Op) (Entry, error) {
	p := s.Submit(op)
	return p.Wait()
}

// Txn carries out ops atomically: every condition is checked against the
// state before the transaction, then all the operations are applied under
// one revision, or none is. A delete of a missing key is not an error in a
// transaction; its Result says Deleted false.
func (s *Store) Txn(ops []Op) (TxnResult, error) {
	return s.txn(ops, s.opts.MaxTxnOps)
}

// Bulk is Txn without the limit on the number of operations, for trusted
// bulk loads such as an import: all the operations are applied under one
// revision, or none is.
func (s *Store) Bulk(ops []Op) (TxnResult, error) {
	return s.txn(ops, int(^uint(0)>>1))
}

func (s *Store) txn(ops []Op, maxOps int) (TxnResult, error) {
	if s.opts.Replicated {
		return TxnResult{}, ErrReplicated
	}
	if s.inbox == nil {
		return s.txnDirect(ops, maxOps, nil, nil)
	}
	return s.txnCommitter(ops, maxOps)
}

func (s *Store) txnCommitter(ops []Op, maxOps int) (TxnResult, error) {
	if err := s.validateAll(ops, maxOps); err != nil {
		return TxnResult{}, err
	}
	r := s.getRequest()
	r.ops = ops
	return s.submitPooled(r)
}

// submitPooled submits r, a request from the pool, returns its answer and
// puts it back.
func (s *Store) submitPooled(r *request) (TxnResult, error) {
	if err := s.submit(r); err != nil {
		s.putRequest(r)
		return TxnResult{}, err
	}
	res, err := r.res, r.err
	s.putRequest(r)
	return res, err
}

// txnDirect is the write path without a committer: resolve and apply under
// the lock, or with InlineCommit, resolve, record in the journal and apply,
// with writers taking turns. changes and results, when not nil, are buffers
// to use.
func (s *Store) txnDirect(ops []Op, maxOps int, changes []Change, results []Result) (TxnResult, error) {
	if err := s.validateAll(ops, maxOps); err != nil {
		return TxnResult{}, err
	}
	s.lockWriter()
	defer s.unlockWriter()
	if s.closed.Load() {
		return TxnResult{}, ErrClosed
	}
	// The time matters only to an expiry, stored or set by ops; without
	// one, no clock is read (in WebAssembly a read is two calls out to
	// JavaScript, a tenth of a small write's cost there). The expiry index
	// is stable here: only writers change it, and they take turns.
	var now int64
	if s.expiry.Len() > 0 || setsExpiry(ops) {
		now = s.nowMs()
	}
	v := view{s: s}
	cmd, res, err := s.resolve(ops, now, &v, s.rev+1, changes, results)
	if err != nil {
		return TxnResult{}, err
	}
	if len(cmd.Changes) > 0 {
		if err := s.record(&cmd); err != nil {
			return TxnResult{}, err
		}
	}
	return res, nil
}

// setsExpiry reports whether an operation sets an expiry: a later
// operation on the same key must see whether it has run out already.
func setsExpiry(ops []Op) bool {
	for i := range ops {
		if ops[i].TTL > 0 || ops[i].ExpiresAt != 0 {
			return true
		}
	}
	return false
}

// lockWriter takes what a writer without a committer holds while it
// resolves: the store's lock, or with InlineCommit the writers' turn (the
// store's lock is then taken only to apply, so reads go on while the
// journal is written; only writers change the map, and they take turns).
func (s *Store) lockWriter() {
	if s.opts.Journal == nil {
		s.mu.Lock()
	} else {
		s.inline.Lock()
	}
}

func (s *Store) unlockWriter() {
	if s.opts.Journal == nil {
		s.mu.Unlock()
	} else {
		s.inline.Unlock()
	}
}

// record makes a resolved command durable (with InlineCommit) and applies
// it. The caller holds lockWriter's lock.
func (s *Store) record(cmd *Command) error {
	if s.opts.Journal == nil {
		s.mustApply(cmd)
		return nil
	}
	// A copy for the journal: cmd's changes may live on the caller's stack
	// (Do's fast path), and must not escape through the interface call.
	rec := []Command{{Rev: cmd.Rev, Changes: slices.Clone(cmd.Changes), resolved: true}}
	if err := s.opts.Journal.Append(rec); err != nil {
		return err
	}
	s.mu.Lock()
	s.mustApply(cmd)
	s.mu.Unlock()
	return nil
}

// validateAll checks the shape of a transaction, which needs no lock: the
// committer or the locked path then only checks conditions.
func (s *Store) validateAll(ops []Op, maxOps int) error {
	if len(ops) == 0 {
		return ErrEmptyTxn
	}
	if len(ops) > maxOps {
		return ErrTxnTooLarge
	}
	for i := range ops {
		if err := s.validate(i, &ops[i]); err != nil {
			return err
		}
	}
	return nil
}

// validate checks one operation against the store's limits.
func (s *Store) validate(i int, op *Op) error {
	var err error
	switch {
	case op.Type == OpDeletePrefix:
		// Any prefix, the empty one too; no condition, no TTL.
		switch {
		case len(op.Key) > s.opts.MaxKeyBytes:
			err = ErrKeyTooLarge
		case !utf8.ValidString(op.Key):
			err = ErrInvalidUTF8
		case op.IfRev != 0 || op.TTL != 0 || op.ExpiresAt != 0 || op.Value != "":
			err = ErrBadOp
		default:
			return nil
		}
	case op.Type != OpPut && op.Type != OpDelete:
		err = ErrBadOp
	case op.Key == "":
		err = ErrEmptyKey
	case len(op.Key) > s.opts.MaxKeyBytes:
		err = ErrKeyTooLarge
	case !utf8.ValidString(op.Key):
		err = ErrInvalidUTF8
	case op.Type == OpPut && len(op.Value) > s.opts.MaxValueBytes:
		err = ErrValueTooLarge
	case op.Type == OpPut && !utf8.ValidString(op.Value):
		err = ErrInvalidUTF8
	case op.TTL < 0 || op.ExpiresAt < 0 || (op.TTL != 0 && op.ExpiresAt != 0):
		err = ErrBadTTL
	case op.TTL > MaxTTL:
		err = ErrTTLTooLong
	default:
		return nil
	}
	return &OpError{Index: i, Key: op.Key, Err: err}
}

// view is the state a write is resolved against: the store's map plus the
// effects of writes resolved earlier in the same group but not yet applied.
type view struct {
	s       *Store
	overlay map[string]*Entry // a nil value means deleted
}

func (v *view) get(key string) *Entry {
	if e, ok := v.overlay[key]; ok {
		return e
	}
	return v.s.m[key]
}

func (v *view) set(key string, e *Entry) {
	if v.overlay == nil {
		v.overlay = make(map[string]*Entry)
	}
	v.overlay[key] = e
}

// resolve turns ops, already validated, into a command at revision rev,
// checking conditions against v and the time now. It records the command's effects in
// v. A command with no changes (deletes of missing keys) takes no revision.
func (s *Store) resolve(ops []Op, now int64, v *view, rev int64, changes []Change, results []Result) (Command, TxnResult, error) {
	for i := range ops {
		op := &ops[i]
		if op.IfRev == 0 {
			continue
		}
		var have int64
		if e := v.get(op.Key); e != nil && !e.expired(now) {
			have = e.ModRev
		}
		want := op.IfRev
		if want == Absent {
			want = 0
		}
		if have != want {
			return Command{}, TxnResult{}, &ConditionError{Index: i, Key: op.Key, Want: want, Have: have}
		}
	}

	// Apply the operations to a private overlay first, so that a later
	// operation on the same key sees an earlier one, and nothing leaks into
	// v if the transaction turns out to change nothing.
	local := view{s: s}
	direct := false
	switch {
	case len(ops) == 1 && ops[0].Type != OpDeletePrefix:
		// One operation records its key only once it is sure to change
		// something (its condition held), and no later operation reads
		// it: its effect can go straight into v, with no private overlay
		// to allocate for each write of a commit group.
		local.overlay, direct = v.overlay, true
	default: // several operations, or a prefix delete
		local.overlay = make(map[string]*Entry, len(ops))
	}
	get := func(key string) *Entry {
		if e, ok := local.overlay[key]; ok {
			return e
		}
		return v.get(key)
	}
	if changes == nil {
		changes = make([]Change, 0, len(ops))
	}
	if results == nil {
		results = make([]Result, len(ops))
	}
	cmd := Command{Rev: rev, Changes: changes, resolved: true}
	res := TxnResult{Rev: rev, Results: results}
	for i := range ops {
		op := &ops[i]
		if op.Type == OpDeletePrefix {
			res.Results[i].Entry.Key = op.Key
			for _, k := range v.keysWithPrefix(op.Key, &local) {
				cur := get(k)
				if cur == nil {
					continue
				}
				ch := Change{Op: OpDelete, Key: k}
				if cur.expired(now) {
					ch.Op = OpExpire
				} else {
					res.Results[i].Removed++
				}
				cmd.Changes = append(cmd.Changes, ch)
				local.record(k, nil)
			}
			res.Results[i].Deleted = res.Results[i].Removed > 0
			continue
		}
		cur := get(op.Key)
		if cur != nil && cur.expired(now) {
			// The key is gone for readers already; remove it for real
			// first, so the command does not depend on the clock.
			cmd.Changes = append(cmd.Changes, Change{Op: OpExpire, Key: op.Key})
			cur = nil
			local.record(op.Key, nil)
		}
		res.Results[i].Prev = cur
		var ch Change
		switch op.Type {
		case OpPut:
			ch = Change{Op: OpPut, Key: op.Key, Value: op.Value}
			switch {
			case op.ExpiresAt != 0:
				ch.ExpiresAt = op.ExpiresAt
			case op.TTL > 0:
				ch.ExpiresAt = now + (op.TTL + time.Millisecond - 1).Milliseconds()
			}
		case OpDelete:
			res.Results[i].Entry.Key = op.Key
			if cur == nil {
				continue
			}
			ch = Change{Op: OpDelete, Key: op.Key}
			res.Results[i].Deleted = true
		}
		e := next(cur, &ch, rev)
		ch.entry = e
		cmd.Changes = append(cmd.Changes, ch)
		if e != nil {
			res.Results[i].Entry = *e
		}
		local.record(op.Key, e)
	}
	if len(cmd.Changes) == 0 {
		res.Rev = rev - 1
		return Command{}, res, nil
	}
	if !direct { // local.overlay is private: its effects go into v now
		for k, e := range local.overlay {
			v.set(k, e)
		}
	}
	return cmd, res, nil
}

// keysWithPrefix returns, in key order and once each, the keys under
// prefix that the store's index or the overlays of v and local name (an
// overlay may hold keys put earlier in the same group, not indexed yet, or
// deleted ones: the caller checks each with get). The caller is the writer
// whose turn it is, so the index cannot change meanwhile.
func (v *view) keysWithPrefix(prefix string, local *view) []string {
	var keys []string
	v.s.index.Ascend(prefix, func(k string) bool {
		if !strings.HasPrefix(k, prefix) {
			return false
		}
		keys = append(keys, k)
		return true
	})
	extra := false
	for _, o := range []map[string]*Entry{v.overlay, local.overlay} {
		for k := range o {
			if strings.HasPrefix(k, prefix) {
				keys = append(keys, k)
				extra = true
			}
		}
	}
	if extra {
		slices.Sort(keys)
		keys = slices.Compact(keys)
	}
	return keys
}

// record notes e in the overlay when there is one; a single-operation
// write resolved without one has no later operation to see its effect.
func (v *view) record(key string, e *Entry) {
	if v.overlay != nil {
		v.overlay[key] = e
	}
}

// apply applies a resolved command. The caller holds mu exclusively.
func (s *Store) apply(cmd *Command) error {
	if cmd.Rev != s.rev+1 {
		return fmt.Errorf("%w: command has revision %d, store is at %d", ErrCorrupt, cmd.Rev, s.rev)
	}
	if len(cmd.Changes) == 0 {
		return fmt.Errorf("%w: command at revision %d has no changes", ErrCorrupt, cmd.Rev)
	}
	// Check a command from outside (a replayed log) first, so a bad one
	// changes nothing. Commands this store resolved fit by construction.
	if !cmd.resolved {
		if err := s.check(cmd); err != nil {
			return err
		}
	}
	var at int64 // when the change was made, if this store made it
	if cmd.resolved {
		at = s.nowMs()
	}
	for i := range cmd.Changes {
		ch := &cmd.Changes[i]
		prev := s.m[ch.Key]
		e := ch.entry
		if e == nil {
			e = next(prev, ch, cmd.Rev)
		}
		if prev != nil && prev.ExpiresAt != 0 {
			s.expiry.Delete(expiryItem{prev.ExpiresAt, prev.Key})
		}
		switch {
		case e == nil:
			delete(s.m, ch.Key)
			s.index.Delete(ch.Key)
		case prev == nil:
			s.m[e.Key] = e
			s.index.Set(e.Key)
		default:
			s.m[e.Key] = e
		}
		if e != nil && e.ExpiresAt != 0 {
			s.expiry.Set(expiryItem{e.ExpiresAt, e.Key})
		}
		s.feed.push(Event{Type: ch.Op, Key: ch.Key, Rev: cmd.Rev, Entry: e, Prev: prev, Time: at})
	}
	s.rev = cmd.Rev
	s.feed.wake()
	return nil
}

// check reports whether cmd fits the current state: keys not empty, known
// operations, and deletes and expirations only of keys that exist.
func (s *Store) check(cmd *Command) error {
	var touched map[string]bool // presence of keys changed earlier in cmd
	if len(cmd.Changes) > 1 {
		touched = make(map[string]bool, len(cmd.Changes))
	}
	for i := range cmd.Changes {
		ch := &cmd.Changes[i]
		if ch.Key == "" {
			return fmt.Errorf("%w: empty key at revision %d", ErrCorrupt, cmd.Rev)
		}
		present, ok := touched[ch.Key]
		if !ok {
			present = s.m[ch.Key] != nil
		}
		switch ch.Op {
		case OpPut:
		case OpDelete, OpExpire:
			if !present {
				return fmt.Errorf("%w: %s of missing key %s at revision %d", ErrCorrupt, ch.Op, shorten(ch.Key), cmd.Rev)
			}
		default:
			return fmt.Errorf("%w: unknown change %q at revision %d", ErrCorrupt, ch.Op, cmd.Rev)
		}
		if touched != nil {
			touched[ch.Key] = ch.Op == OpPut
		}
	}
	return nil
}

// mustApply applies a command the store resolved itself. It cannot fail
// unless the store's own bookkeeping is broken, so a failure panics rather
// than leave memory and journal disagreeing.
func (s *Store) mustApply(cmd *Command) {
	if err := s.apply(cmd); err != nil {
		panic("engine: applying a resolved command failed: " + err.Error())
	}
}

// Pending is a write handed to the committer by Submit whose answer has
// not been taken yet. A connection serving pipelined requests submits all
// the writes it has read before waiting for the first, so they share one
// group and one fsync, and then takes their answers in order. Its zero
// value is not a write. A Pending whose answer is never taken (its
// connection died) costs nothing but its request, left to the garbage
// collector instead of going back to the store's pool; the write itself
// is carried out either way.
type Pending struct {
	s   *Store
	r   *request // nil when the answer is already in e and err
	op  Op
	e   Entry
	err error
}

// Submit validates op (a put or delete) and queues it for the committer
// without waiting; Wait gives its answer, the same as Do's. Writes
// submitted by one goroutine are applied in the order submitted (the
// committer takes its queue in order), and writes queued while the
// committer is busy share its next group. Without a committer (no journal,
// or InlineCommit) the write is carried out before Submit returns. A
// replicated store refuses it with ErrReplicated, a closed one with
// ErrClosed, an invalid operation with its validation error: all through
// Wait.
func (s *Store) Submit(op Op) Pending {
	if s.opts.Replicated {
		return Pending{err: ErrReplicated}
	}
	ops := [1]Op{op}
	if s.inbox == nil {
		// The in-memory hot path: everything on the stack but the entry.
		var changes [2]Change
		var results [1]Result
		res, err := s.txnDirect(ops[:], 1, changes[:0], results[:])
		if err != nil {
			return Pending{err: opErr(err)}
		}
		e, err := entryOf(op, res.Results[0], res.Rev)
		return Pending{e: e, err: err}
	}
	if err := s.validateAll(ops[:], 1); err != nil {
		return Pending{err: opErr(err)}
	}
	r := s.getRequest()
	r.one[0] = op
	r.ops = r.one[:]
	if err := s.enqueue(r); err != nil {
		s.putRequest(r)
		return Pending{err: err}
	}
	return Pending{s: s, r: r, op: op}
}

// Wait returns the answer of a write from Submit, as Do would have, once
// the committer has made it durable and applied it. A second call returns
// the same answer.
func (p *Pending) Wait() (Entry, error) {
	r := p.r
	if r == nil {
		return p.e, p.err
	}
	p.r = nil
	<-r.done
	var res Result
	if len(r.res.Results) == 1 {
		res = r.res.Results[0] // a copy: r is about to be reused
	}
	rev, err := r.res.Rev, r.err
	p.s.putRequest(r)
	if err != nil {
		p.err = opErr(err)
	} else {
		p.e, p.err = entryOf(p.op, res, rev)
	}
	return p.e, p.err
}

// opErr unwraps a single operation's *OpError: Do's callers get the
// operation's own error, a transaction's the wrapper naming its index.
func opErr(err error) error {
	if oe, ok := errors.AsType[*OpError](err); ok {
		return oe.Err
	}
	return err
}

// entryOf is Do's answer for op from its result at revision rev: the new
// entry of a put; for a delete the key and the revision of the deletion,
// or ErrNotFound when there was nothing to delete.
func entryOf(op Op, r Result, rev int64) (Entry, error) {
	if op.Type == OpDelete {
		if !r.Deleted {
			return Entry{}, ErrNotFound
		}
		return Entry{Key: op.Key, ModRev: rev}, nil
	}
	return r.Entry, nil
}

package main

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/pykv/pykv/engine"
	"github.com/pykv/pykv/persist/codec"
)

// Do carries out one put or delete. If another tab wrote meanwhile
// (ErrStale) the copy is reloaded and the write tried once more; if storage
// is full the copy is folded (which may free the room its log takes) and the
// write tried once more. Errors are the engine's (ErrNotFound,
// *ConditionError, …), a *QuotaError, or ErrStale.
func (db *localDB) Do(op engine.Op) (engine.Entry, error) {
	for attempt := 0; ; attempt++ {
		e, err := db.current().Do(op)
		if err == nil {
			db.maybeFold()
			return e, nil
		}
		if attempt > 0 || !db.recoverable(err) {
			return e, err
		}
	}
}

// recoverable handles a refused write that a second attempt may get
// through, and reports whether to try again.
func (db *localDB) recoverable(err error) bool {
	var qe *QuotaError
	switch {
	case errors.Is(err, ErrStale):
		return db.Reload() == nil
	case errors.Is(err, engine.ErrClosed):
		return true // the store was replaced under the write
	case errors.As(err, &qe):
		db.wmu.Lock()
		hasLog := len(db.logs) > 0
		db.wmu.Unlock()
		return hasLog && db.Fold() == nil
	}
	return false
}

// BatchResult is the outcome of one operation of DoBatch.
type BatchResult struct {
	Entry engine.Entry // as Do returns it
	Err   error
}

// maxBatchRun bounds how many writes DoBatch commits as one transaction.
const maxBatchRun = 4096

// DoBatch carries out ops in order, with the results Do would give. Runs of
// unconditional operations commit together as one transaction (one
// revision, one stored log item): that is what makes many queued writes
// cheap. If such a run is refused as a whole (a bad operation, a full
// storage), its operations are carried out one by one instead, so each gets
// its own answer.
func (db *localDB) DoBatch(ops []engine.Op) []BatchResult {
	out := make([]BatchResult, len(ops))
	for i := 0; i < len(ops); {
		j := i
		for j < len(ops) && j-i < maxBatchRun && ops[j].IfRev == 0 {
			j++
		}
		if j-i < 2 {
			out[i].Entry, out[i].Err = db.Do(ops[i])
			i++
			continue
		}
		if res, err := db.bulk(ops[i:j]); err == nil {
			for k, r := range res.Results {
				o := &out[i+k]
				switch {
				case ops[i+k].Type == engine.OpPut:
					o.Entry = r.Entry
				case r.Deleted:
					o.Entry = engine.Entry{Key: r.Entry.Key, ModRev: res.Rev}
				default:
					o.Err = engine.ErrNotFound
				}
			}
		} else {
			for k := i; k < j; k++ {
				out[k].Entry, out[k].Err = db.Do(ops[k])
			}
		}
		i = j
	}
	return out
}

func (db *localDB) bulk(ops []engine.Op) (engine.TxnResult, error) {
	for attempt := 0; ; attempt++ {
		res, err := db.current().Bulk(ops)
		if err == nil {
			db.maybeFold()
			return res, nil
		}
		if attempt > 0 || !db.recoverable(err) {
			return res, err
		}
	}
}

// Put sets key to value; ttl 0 means no expiry; ifRev as in engine.Op.
func (db *localDB) Put(key, value string, ttl time.Duration, ifRev int64) (engine.Entry, error) {
	return db.Do(engine.Op{Type: engine.OpPut, Key: key, Value: value, TTL: ttl, IfRev: ifRev})
}

// Delete removes key and returns the revision of the deletion.
func (db *localDB) Delete(key string, ifRev int64) (int64, error) {
	e, err := db.Do(engine.Op{Type: engine.OpDelete, Key: key, IfRev: ifRev})
	return e.ModRev, err
}

// Get returns key's entry or engine.ErrNotFound.
func (db *localDB) Get(key string) (engine.Entry, error) { return db.current().Get(key) }

// List lists live entries by prefix; see engine.Store.List.
func (db *localDB) List(prefix, after string, limit int) ([]engine.Entry, bool) {
	return db.current().List(prefix, after, limit)
}

// HistoryItem is one change of a key in the copy's own history, shaped as
// the server's GET /v1/history/{key} shapes its changes.
type HistoryItem struct {
	Type      engine.ChangeType `json:"type"`
	Rev       int64             `json:"rev"` // the copy's own revision, not the server's
	Value     *string           `json:"value,omitempty"`
	Version   int64             `json:"version,omitempty"`
	ExpiresAt int64             `json:"expires_at,omitempty"`
	Time      int64             `json:"time,omitempty"`
}

// History returns the changes of key that the copy's change feed holds,
// newest first, at most limit: the changes made in this browser since the
// copy was last loaded from the server (a load replaces the feed).
func (db *localDB) History(key string, limit int) []HistoryItem {
	revs, _, _ := db.current().History(key, limit)
	out := make([]HistoryItem, 0, len(revs))
	for _, r := range revs {
		it := HistoryItem{Type: r.Type, Rev: r.Rev, Time: r.Time}
		if r.Entry != nil {
			it.Value, it.Version, it.ExpiresAt = &r.Entry.Value, r.Entry.Version, r.Entry.ExpiresAt
		}
		out = append(out, it)
	}
	return out
}

// Export returns the copy's state in the snapshot format, as the server's
// GET /v1/export does; the server's POST /v1/import takes it.
func (db *localDB) Export() (string, error) {
	var b strings.Builder
	if err := codec.ExportStore(db.current(), &b); err != nil {
		return "", err
	}
	return b.String(), nil
}

// Import puts every key of a snapshot or flat PyKV file into the copy, as
// one local write (all pending for the next sync). It is the server's
// import; to load the server's export as the copy's base, use Rebase.
func (db *localDB) Import(text string) (codec.ImportResult, error) {
	for attempt := 0; ; attempt++ {
		res, err := codec.ImportStore(db.current(), strings.NewReader(text), codec.ImportMerge)
		if err == nil {
			db.maybeFold()
			return res, nil
		}
		if attempt > 0 || !db.recoverable(err) {
			return res, err
		}
	}
}

// Status describes the copy.
type Status struct {
	Name      string   `json:"name"`
	Rev       int64    `json:"rev"`
	Keys      int      `json:"keys"`
	ServerRev int64    `json:"server_rev"`
	Pending   int      `json:"pending"` // keys changed since the last load from the server
	LogItems  int      `json:"log_items"`
	LogUnits  int      `json:"log_units"`
	SnapUnits int      `json:"snapshot_units"`
	FoldError string   `json:"fold_error,omitempty"` // the last fold's failure, if it failed
	Recovery  Recovery `json:"recovery"`
}

// Status returns the copy's state. Pending counts touched keys, which may
// include a few with nothing to send (see Pending).
func (db *localDB) Status() Status {
	s := db.current()
	st := Status{Name: db.opts.Name, Rev: s.Rev(), Keys: s.Len()}
	db.wmu.Lock()
	defer db.wmu.Unlock()
	st.ServerRev, st.Pending = db.serverRev, len(db.touched)
	st.LogItems, st.LogUnits, st.SnapUnits = len(db.logs), db.logUnits, db.snapUnits
	if db.foldErr != nil {
		st.FoldError = db.foldErr.Error()
	}
	st.Recovery = db.recovery
	return st
}

// Usage measures the room the copy and the rest of the origin take.
func (db *localDB) Usage() Usage { return measure(db.st, db.prefix) }

// Batch is what a subscriber receives: the changes of one or more writes,
// or Reset when the copy was replaced wholesale (another tab folded past
// this tab's history, or a rebase), after which the subscriber should
// list again.
type Batch struct {
	Rev    int64         `json:"rev"`
	Reset  bool          `json:"reset,omitempty"`
	Events []BatchChange `json:"events,omitempty"`
}

// BatchChange is one change in a Batch.
type BatchChange struct {
	Type      string `json:"type"` // put, delete or expire
	Key       string `json:"key"`
	Rev       int64  `json:"rev"`
	Value     string `json:"value,omitempty"`
	ExpiresAt int64  `json:"expires_at,omitempty"`
}

// Subscribe calls fn, from its own goroutine, with every change to the
// copy from now on, including those read from other tabs on reload. The
// returned function stops it.
func (db *localDB) Subscribe(fn func(Batch)) (cancel func()) {
	ctx, stop := context.WithCancel(context.Background())
	db.subscribers.Add(1)
	var once sync.Once
	cancel = func() {
		stop()
		once.Do(func() { db.subscribers.Add(-1) })
	}
	last := db.current().Rev()
	go func() {
		for ctx.Err() == nil {
			db.smu.RLock()
			s, changed := db.store, db.changed
			db.smu.RUnlock()
			w, err := s.Watch(last, "")
			if errors.Is(err, engine.ErrCompacted) {
				last = s.Rev()
				fn(Batch{Rev: last, Reset: true})
				continue
			}
			for err == nil {
				var evs []engine.Event
				evs, err = w.Next(ctx, 0)
				if len(evs) == 0 {
					continue
				}
				b := Batch{Rev: evs[len(evs)-1].Rev, Events: make([]BatchChange, len(evs))}
				for i, ev := range evs {
					c := BatchChange{Type: string(ev.Type), Key: ev.Key, Rev: ev.Rev}
					if ev.Entry != nil {
						c.Value, c.ExpiresAt = ev.Entry.Value, ev.Entry.ExpiresAt
					}
					b.Events[i] = c
				}
				last = b.Rev
				fn(b)
			}
			if errors.Is(err, engine.ErrClosed) {
				select { // the store is being replaced: wait for the new one
				case <-changed:
				case <-ctx.Done():
				}
			}
		}
	}()
	return cancel
}

// jsError describes an error for JavaScript: a stable code plus details.
func jsError(err error) map[string]any {
	out := map[string]any{"message": err.Error(), "code": "internal"}
	var qe *QuotaError
	var ce *engine.ConditionError
	var oe *engine.OpError
	switch {
	case errors.As(err, &qe):
		out["code"], out["what"], out["usage"] = "quota", qe.What, qe.Usage
	case errors.As(err, &ce):
		out["code"], out["key"], out["want"], out["have"] = "conflict", ce.Key, ce.Want, ce.Have
	case errors.Is(err, engine.ErrNotFound):
		out["code"] = "not_found"
	case errors.Is(err, ErrStale):
		out["code"] = "stale"
	case errors.Is(err, engine.ErrClosed):
		out["code"] = "closed"
	case errors.Is(err, codec.ErrBadImport), errors.Is(err, codec.ErrMalformed), errors.Is(err, codec.ErrChecksum):
		out["code"] = "bad_input"
	case errors.As(err, &oe):
		out["code"], out["key"] = "invalid", oe.Key
	}
	return out
}

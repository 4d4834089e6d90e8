package main

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/pykv/pykv/engine"
	"github.com/pykv/pykv/persist/codec"
)

// PendingChange is a key changed in the copy since it was last loaded from
// the server: what a sync sends.
type PendingChange struct {
	Key       string `json:"key"`
	Op        string `json:"op"` // "put" or "delete"
	Value     string `json:"value,omitempty"`
	ExpiresAt int64  `json:"expires_at,omitempty"` // Unix ms, puts only
	// BaseRev is the server revision the change was based on, to send as
	// If-Match: "<BaseRev>"; 0 means the key did not exist there
	// (If-None-Match: *).
	BaseRev int64 `json:"base_rev"`
	// LocalRev is the copy's revision of the latest change to the key; hand
	// it back to Rebase as settled once the change is on the server.
	LocalRev int64 `json:"local_rev"`
}

// Pending returns the changes waiting to be sent, in key order. A key
// created and deleted again offline is not listed: there is nothing to send.
func (db *localDB) Pending() []PendingChange {
	store := db.current()
	db.wmu.Lock()
	touched := make(map[string]touch, len(db.touched))
	for k, t := range db.touched {
		touched[k] = t
	}
	db.wmu.Unlock()
	out := make([]PendingChange, 0, len(touched))
	for k, t := range touched {
		pc := PendingChange{Key: k, BaseRev: t.base, LocalRev: t.local}
		if e, err := store.Get(k); err == nil {
			pc.Op, pc.Value, pc.ExpiresAt = "put", e.Value, e.ExpiresAt
		} else if t.base != 0 {
			pc.Op = "delete"
		} else {
			continue
		}
		out = append(out, pc)
	}
	slices.SortFunc(out, func(a, b PendingChange) int { return cmp.Compare(a.Key, b.Key) })
	return out
}

// ServerRev returns the server revision of the export the copy was last
// loaded from (0: never).
func (db *localDB) ServerRev() int64 {
	db.wmu.Lock()
	defer db.wmu.Unlock()
	return db.serverRev
}

// Rebase loads the server's export (the snapshot format) as the copy's new
// base and plays the pending changes over it again, except those in
// settled: key → the LocalRev that Pending reported when the change was
// sent (or given up for the server's value). A key changed again since then
// stays pending. Pending changes keep the server revision they were based
// on, so a key the server changed meanwhile shows up as a conflict at the
// next sync. The copy's own revisions keep growing (the new state gets a
// revision past both the server's and the old copy's), so other tabs notice.
//
// A damaged export is refused with an error wrapping codec.ErrMalformed or
// codec.ErrChecksum, a full storage with a *QuotaError; the copy is then
// unchanged.
func (db *localDB) Rebase(export string, settled map[string]int64) error {
	serverRev, entries, err := codec.ReadSnapshot(strings.NewReader(export), "server export")
	if err != nil {
		return fmt.Errorf("load the server's export: %w", err)
	}
	db.foldMu.Lock()
	defer db.foldMu.Unlock()
	old := db.current()
	if db.Stale() {
		if err := db.reloadLocked(); err != nil {
			return err
		}
		old = db.current()
	}
	old.Close() // no more writes; reads go on working on the last state
	db.wmu.Lock()
	touched := db.touched
	db.wmu.Unlock()

	onServer := make(map[string]bool, len(entries))
	for i := range entries {
		onServer[entries[i].Key] = true
	}
	var changes []engine.Change
	keep := make(map[string]touch)
	for k, t := range touched {
		if l, ok := settled[k]; ok && l == t.local {
			continue
		}
		if e, err := old.Get(k); err == nil {
			changes = append(changes, engine.Change{Op: engine.OpPut, Key: k, Value: e.Value, ExpiresAt: e.ExpiresAt})
		} else if onServer[k] {
			changes = append(changes, engine.Change{Op: engine.OpDelete, Key: k})
		} else {
			continue // gone locally and on the server: nothing left to send
		}
		keep[k] = t
	}
	slices.SortFunc(changes, func(a, b engine.Change) int { return cmp.Compare(a.Key, b.Key) })

	base := max(serverRev, old.Rev())
	shadow := make(map[string]int64, len(entries)+len(changes))
	for i := range entries {
		shadow[entries[i].Key] = entries[i].ModRev
	}
	eopts := db.opts.Engine
	eopts.Journal = journal{db}
	eopts.InlineCommit = true // writes come from the page's one thread: no committer hop
	store, err := engine.Restore(eopts, func(l *engine.Loader) error {
		if err := l.Load(base, entries); err != nil {
			return err
		}
		if len(changes) == 0 {
			return nil
		}
		return l.Apply(engine.Command{Rev: base + 1, Changes: changes})
	})
	if err != nil {
		db.reloadLocked() // the old state is still what storage holds
		return fmt.Errorf("load the server's export: %w", err)
	}
	rev := store.Rev()
	for k, t := range keep {
		keep[k] = touch{base: t.base, local: rev}
		if e, err := store.Get(k); err == nil {
			shadow[k] = e.ModRev
		} else {
			delete(shadow, k)
		}
	}
	_, all, err := store.Checkpoint(func(int64) error { return nil })
	if err == nil {
		sf := syncFile{ServerRev: serverRev, Pending: make(map[string][2]int64, len(keep))}
		for k, t := range keep {
			sf.Pending[k] = [2]int64{t.base, t.local}
		}
		err = db.writeState(rev, all, sf)
	}
	if err != nil {
		store.Close()
		if rerr := db.reloadLocked(); rerr != nil {
			return errors.Join(err, rerr)
		}
		return err
	}
	db.wmu.Lock()
	db.serverRev, db.touched, db.shadow = serverRev, keep, shadow
	db.foldErr = nil
	db.wmu.Unlock()
	db.replace(store)
	return nil
}

// encodeSync encodes the sync item, byte for byte as encoding/json would
// (keys sorted), by hand: a fold writes it whole, with an entry for every
// key changed offline, and reflection made it most of a fold's work.
func encodeSync(sf syncFile) string {
	b := make([]byte, 0, 40+48*len(sf.Pending))
	b = codec.AppendIntField(b, '{', "server_rev", sf.ServerRev)
	b = append(b, `,"pending":`...)
	if sf.Pending == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '{')
		for i, k := range slices.Sorted(maps.Keys(sf.Pending)) {
			if i > 0 {
				b = append(b, ',')
			}
			p := sf.Pending[k]
			b = codec.AppendJSONString(b, k, true) // the key names the field
			b = append(b, ":["...)
			b = strconv.AppendInt(b, p[0], 10)
			b = append(b, ',')
			b = strconv.AppendInt(b, p[1], 10)
			b = append(b, ']')
		}
		b = append(b, '}')
	}
	return string(append(b, '}'))
}

// jsonDecoder is a strict decoder for the copy's own JSON items.
func jsonDecoder(text string) *json.Decoder {
	dec := json.NewDecoder(strings.NewReader(text))
	dec.DisallowUnknownFields()
	return dec
}

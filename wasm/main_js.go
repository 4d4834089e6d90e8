//go:build js && wasm

package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"syscall/js"
	"time"
	"unsafe"

	"github.com/pykv/pykv/engine"
)

// main publishes globalThis.__pykvOffline, the low-level API that
// static/offline.js wraps, and keeps the program alive for its callbacks.
func main() {
	js.Global().Set("__pykvOffline", js.ValueOf(map[string]any{
		"open": js.FuncOf(jsOpen),
	}))
	select {}
}

// browserStorage is window.localStorage. set and remove, when offline.js
// provides them, are setItem(keyAddress, keyLength, valueAddress,
// valueLength) and removeItem(keyAddress, keyLength), which read the strings
// from the module's memory themselves: the Go side then makes no JavaScript
// strings (each costs a syscall/js call and, later, a finalizer).
type browserStorage struct{ v, set, remove js.Value }

func (s browserStorage) GetItem(key string) (string, bool) {
	r := s.v.Call("getItem", key)
	if r.IsNull() {
		return "", false
	}
	return r.String(), true
}

// SetItem turns the browser's QuotaExceededError into errQuota; setItem
// changes nothing when it throws.
func (s browserStorage) SetItem(key, value string) error {
	if s.set.Truthy() {
		// The helper returns what setItem threw, or null.
		thrown := s.set.Invoke(stringAddr(key), len(key), stringAddr(value), len(value))
		runtime.KeepAlive(key)
		runtime.KeepAlive(value)
		if thrown.IsNull() {
			return nil
		}
		return setItemError(thrown)
	}
	return s.call(key, value)
}

// call is setItem through syscall/js, for pages without offline.js's helper.
func (s browserStorage) call(key, value string) (err error) {
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		je, ok := r.(js.Error)
		if !ok {
			panic(r)
		}
		err = setItemError(je.Value)
	}()
	s.v.Call("setItem", key, value)
	return nil
}

// setItemError describes an exception localStorage.setItem threw.
func setItemError(e js.Value) error {
	if name := e.Get("name").String(); name == "QuotaExceededError" || name == "NS_ERROR_DOM_QUOTA_REACHED" {
		return fmt.Errorf("%w: %s", errQuota, e.Get("message").String())
	}
	return fmt.Errorf("localStorage.setItem: %s", js.Error{Value: e}.Error())
}

// stringAddr is where s's bytes are in the module's memory.
func stringAddr(s string) int {
	return int(uintptr(unsafe.Pointer(unsafe.StringData(s))))
}

func (s browserStorage) RemoveItem(key string) {
	if s.remove.Truthy() {
		s.remove.Invoke(stringAddr(key), len(key))
		runtime.KeepAlive(key)
		return
	}
	s.v.Call("removeItem", key)
}

func (s browserStorage) Keys() []string {
	n := s.v.Get("length").Int()
	keys := make([]string, 0, n)
	for i := range n {
		if k := s.v.Call("key", i); !k.IsNull() {
			keys = append(keys, k.String())
		}
	}
	return keys
}

// openOptions is open's second argument, as JSON.
type openOptions struct {
	Name         string `json:"name"`
	Memory       bool   `json:"memory"` // keep the copy in memory only (tests, or no localStorage)
	FoldMinUnits int    `json:"fold_min_units"`
}

// jsOpen(optionsJSON, host) opens a copy and returns an object of methods;
// each returns a JSON string {"ok": result} or {"error": {...}} (see
// jsError). host holds offline.js's helpers setItem and removeItem (see
// browserStorage).
// Puts and deletes do not go through these methods but through
// pykv_write with the copy's handle (writes_js.go).
func jsOpen(_ js.Value, args []js.Value) any {
	var oo openOptions
	if len(args) > 0 && args[0].Type() == js.TypeString {
		if err := json.Unmarshal([]byte(args[0].String()), &oo); err != nil {
			return reply(nil, fmt.Errorf("open: bad options: %w", err))
		}
	}
	var st storage
	persistent := false
	if !oo.Memory {
		if ls, ok := localStorageValue(); ok {
			bs := browserStorage{v: ls}
			if len(args) > 1 && args[1].Type() == js.TypeObject {
				bs.set, bs.remove = args[1].Get("setItem"), args[1].Get("removeItem")
			}
			st, persistent = bs, true
		}
	}
	if st == nil {
		st = newMemStorage(0)
	}
	db, err := openDB(st, options{Name: oo.Name, FoldMinUnits: oo.FoldMinUnits})
	if err != nil {
		return reply(nil, err)
	}
	handle := register(db)
	methods := map[string]any{
		"persistent": persistent,
		"handle":     handle,
		"get": fn(func(a []js.Value) (any, error) {
			e, err := db.Get(a[0].String())
			if errors.Is(err, engine.ErrNotFound) {
				return nil, nil
			}
			return e, err
		}),
		// put(key, value, ttlSeconds, ifRev)
		"put": fn(func(a []js.Value) (any, error) {
			ttl := time.Duration(a[2].Float() * float64(time.Second))
			return db.Put(a[0].String(), a[1].String(), ttl, int64(a[3].Int()))
		}),
		// delete(key, ifRev): the revision of the deletion
		"delete": fn(func(a []js.Value) (any, error) {
			return db.Delete(a[0].String(), int64(a[1].Int()))
		}),
		// list(prefix, after, limit)
		"list": fn(func(a []js.Value) (any, error) {
			entries, more := db.List(a[0].String(), a[1].String(), a[2].Int())
			if entries == nil {
				entries = []engine.Entry{}
			}
			return map[string]any{"entries": entries, "more": more}, nil
		}),
		// history(key, limit): the copy's own changes of key, newest first
		"history":        fn(func(a []js.Value) (any, error) { return db.History(a[0].String(), a[1].Int()), nil }),
		"exportSnapshot": fn(func([]js.Value) (any, error) { return db.Export() }),
		"importSnapshot": fn(func(a []js.Value) (any, error) { return db.Import(a[0].String()) }),
		"pending":        fn(func([]js.Value) (any, error) { return db.Pending(), nil }),
		// rebase(exportText, settledJSON): settled maps keys to local revisions
		"rebase": fn(func(a []js.Value) (any, error) {
			var settled map[string]int64
			if s := a[1].String(); s != "" {
				if err := json.Unmarshal([]byte(s), &settled); err != nil {
					return nil, fmt.Errorf("rebase: bad settled list: %w", err)
				}
			}
			return nil, db.Rebase(a[0].String(), settled)
		}),
		"usage":  fn(func([]js.Value) (any, error) { return db.Usage(), nil }),
		"status": fn(func([]js.Value) (any, error) { return db.Status(), nil }),
		"stale":  fn(func([]js.Value) (any, error) { return db.Stale(), nil }),
		// catchUp(locked): reload if another tab wrote; locked says the
		// caller holds the cross-tab lock until unlock(), so writes may skip
		// their per-write check.
		"catchUp": fn(func(a []js.Value) (any, error) {
			return db.CatchUp(len(a) > 0 && a[0].Truthy())
		}),
		"unlock":    fn(func([]js.Value) (any, error) { db.Unlock(); return nil, nil }),
		"fold":      fn(func([]js.Value) (any, error) { return nil, db.Fold() }),
		"foldIfDue": fn(func([]js.Value) (any, error) { return nil, db.FoldIfDue() }),
		"close": fn(func([]js.Value) (any, error) {
			unregister(handle)
			return nil, db.Close()
		}),
		// subscribe(callback): callback(batchJSON) for every change; returns
		// a function that stops it.
		"subscribe": js.FuncOf(func(_ js.Value, a []js.Value) any {
			cb := a[0]
			cancel := db.Subscribe(func(b Batch) {
				data, _ := json.Marshal(b)
				cb.Invoke(string(data))
			})
			var stop js.Func
			stop = js.FuncOf(func(js.Value, []js.Value) any {
				cancel()
				stop.Release()
				return nil
			})
			return stop
		}),
	}
	return reply(js.ValueOf(methods), nil)
}

// localStorageValue returns window.localStorage, if this page may use it
// (reading the property throws where storage is disabled).
func localStorageValue() (v js.Value, ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	v = js.Global().Get("localStorage")
	return v, v.Truthy()
}

// fn wraps a method: its result becomes {"ok": …} JSON, its error
// {"error": …} JSON, and a panic an "internal" error rather than a dead
// program.
func fn(f func([]js.Value) (any, error)) js.Func {
	return js.FuncOf(func(_ js.Value, args []js.Value) (out any) {
		defer func() {
			if r := recover(); r != nil {
				out = reply(nil, fmt.Errorf("internal error: %v", r))
			}
		}()
		v, err := f(args)
		return reply(v, err)
	})
}

// reply encodes a method's answer. A js.Value result (open's methods) is
// returned as it is, wrapped in an object.
func reply(v any, err error) any {
	if err != nil {
		data, _ := json.Marshal(map[string]any{"error": jsError(err)})
		return string(data)
	}
	if jv, ok := v.(js.Value); ok {
		return js.ValueOf(map[string]any{"ok": jv})
	}
	data, merr := json.Marshal(map[string]any{"ok": v})
	if merr != nil {
		return reply(nil, merr)
	}
	return string(data)
}

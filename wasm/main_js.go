//go:build js && wasm

package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"syscall/js"
	"time"

	"github.com/pykv/pykv/engine"
	"github.com/pykv/pykv/persist"
)

// main publishes globalThis.__pykvOffline, the low-level API that
// static/offline.js wraps, and keeps the program alive for its callbacks.
func main() {
	js.Global().Set("__pykvOffline", js.ValueOf(map[string]any{
		"open": js.FuncOf(jsOpen),
	}))
	select {}
}

// browserStorage is window.localStorage.
type browserStorage struct{ v js.Value }

func (s browserStorage) GetItem(key string) (string, bool) {
	r := s.v.Call("getItem", key)
	if r.IsNull() {
		return "", false
	}
	return r.String(), true
}

// SetItem turns the browser's QuotaExceededError into errQuota; setItem
// changes nothing when it throws.
func (s browserStorage) SetItem(key, value string) (err error) {
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		je, ok := r.(js.Error)
		if !ok {
			panic(r)
		}
		if name := je.Get("name").String(); name == "QuotaExceededError" || name == "NS_ERROR_DOM_QUOTA_REACHED" {
			err = fmt.Errorf("%w: %s", errQuota, je.Get("message").String())
			return
		}
		err = fmt.Errorf("localStorage.setItem: %s", je.Error())
	}()
	s.v.Call("setItem", key, value)
	return nil
}

func (s browserStorage) RemoveItem(key string) { s.v.Call("removeItem", key) }

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

// jsOpen(optionsJSON) opens a copy and returns an object of methods; each
// returns a JSON string {"ok": result} or {"error": {...}} (see jsError).
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
			st, persistent = browserStorage{ls}, true
		}
	}
	if st == nil {
		st = newMemStorage(0)
	}
	db, err := openDB(st, options{Name: oo.Name, FoldMinUnits: oo.FoldMinUnits})
	if err != nil {
		return reply(nil, err)
	}
	methods := map[string]any{
		"persistent": persistent,
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
		"unlock": fn(func([]js.Value) (any, error) { db.Unlock(); return nil, nil }),
		// batch(opsJSON): [{op: "put"|"delete", key, value, ttl, if_rev}] →
		// [{ok} | {error}], carried out in order.
		"batch": fn(func(a []js.Value) (any, error) {
			var in []batchOp
			if err := json.Unmarshal([]byte(a[0].String()), &in); err != nil {
				return nil, fmt.Errorf("batch: %w", err)
			}
			ops := make([]engine.Op, len(in))
			for i, o := range in {
				ops[i] = engine.Op{Type: engine.ChangeType(o.Op), Key: o.Key, Value: o.Value,
					TTL: time.Duration(o.TTL * float64(time.Second)), IfRev: o.IfRev}
			}
			res := db.DoBatch(ops)
			out := make([]map[string]any, len(res))
			for i, r := range res {
				switch {
				case r.Err != nil:
					out[i] = map[string]any{"error": jsError(r.Err)}
				case ops[i].Type == engine.OpDelete:
					out[i] = map[string]any{"ok": r.Entry.ModRev}
				default:
					out[i] = map[string]any{"ok": r.Entry}
				}
			}
			return out, nil
		}),
		"fold": fn(func([]js.Value) (any, error) { return nil, db.Fold() }),
		"close": fn(func([]js.Value) (any, error) {
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

// batchOp is one write of batch's JSON.
type batchOp struct {
	Op    string  `json:"op"`
	Key   string  `json:"key"`
	Value string  `json:"value"`
	TTL   float64 `json:"ttl"` // seconds
	IfRev int64   `json:"if_rev"`
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
	case errors.Is(err, persist.ErrBadImport), errors.Is(err, persist.ErrMalformed), errors.Is(err, persist.ErrChecksum):
		out["code"] = "bad_input"
	case errors.As(err, &oe):
		out["code"], out["key"] = "invalid", oe.Key
	}
	return out
}

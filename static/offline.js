// PyKV offline copy: the PyKV engine compiled to WebAssembly, kept in
// localStorage in the server's own snapshot and log format (see wasm/doc.go).
//
//   const db = await PyKVOffline.open({name: "default"});
//   await db.put("greeting", "hello", {ttl: 60});   // ttl in seconds
//   db.get("greeting");            // {key, value, create_rev, mod_rev, version, expires_at} or null
//   db.list("gr", "", 100);        // {entries: [...], more: false}
//   const stop = db.subscribe(b => console.log(b));  // {rev, events: [...]} or {rev, reset: true}
//   db.pending();                  // changes made offline, with the server revision each is based on
//   await db.sync();               // send them (If-Match), load the server's state, report conflicts
//
// Reads are synchronous. Writes return promises: they are serialized across
// the tabs of this origin with the Web Locks API and always see the other
// tabs' writes first. Failed writes reject with a PyKVOfflineError whose
// code is "quota" (localStorage full: nothing was saved; err.what and
// err.usage say what and how much room is used), "conflict" (ifRev did not
// hold), "not_found", "invalid", "bad_input", "stale" or "internal".
(function (global) {
  "use strict";

  const DEFAULT_BASE = "/static/wasm/";
  let runtime = null; // promise of the Go module's __pykvOffline

  class PyKVOfflineError extends Error {
    constructor(info) {
      super(info.message);
      this.name = "PyKVOfflineError";
      Object.assign(this, info);
    }
  }

  function unwrap(answer) {
    const r = typeof answer === "string" ? JSON.parse(answer) : answer;
    if (r.error) throw new PyKVOfflineError(r.error);
    return r.ok;
  }

  function loadScript(src) {
    return new Promise((resolve, reject) => {
      const s = document.createElement("script");
      s.src = src;
      s.onload = resolve;
      s.onerror = () => reject(new Error("PyKV offline: cannot load " + src));
      document.head.appendChild(s);
    });
  }

  // FOLD_IDLE_MS is how long writes must have stopped before the copy folds.
  const FOLD_IDLE_MS = 200;

  // SHORT is the longest string Wire converts by hand when it is ASCII.
  const SHORT = 256;

  // Wire carries puts and deletes to the module and their answers back as
  // bytes in a buffer of the module's memory, through two functions the
  // module exports (pykv_buffer, pykv_write): a syscall/js call costs far
  // more than the write. The format is wasm/wire.go's. It also gives the
  // module localStorage's setItem and removeItem taking strings as (address,
  // length) in the module's memory, which spares the module making
  // JavaScript strings.
  class Wire {
    constructor(exports) {
      this._x = exports;
      this._enc = new TextEncoder();
      this._dec = new TextDecoder();
      this._mem = null;
      this.host = {
        // setItem returns what localStorage.setItem threw, or null.
        setItem: (kp, kl, vp, vl) => {
          try {
            localStorage.setItem(this._text(kp, kl), this._text(vp, vl));
            return null;
          } catch (e) {
            return e;
          }
        },
        removeItem: (kp, kl) => { localStorage.removeItem(this._text(kp, kl)); },
      };
    }

    // _bytes views the module's memory. Growing the memory detaches the old
    // buffer (length 0), so the view is made again then.
    _bytes() {
      if (!this._mem || this._mem.byteLength === 0) this._mem = new Uint8Array(this._x.mem.buffer);
      return this._mem;
    }

    // _text reads n bytes of UTF-8 at address at. Short ASCII text (most
    // keys and log items) is made without TextDecoder, whose cost per call
    // is many times the work on a few dozen bytes.
    _text(at, n) {
      const b = this._bytes().subarray(at, at + n);
      if (n > SHORT) return this._dec.decode(b);
      for (let i = 0; i < n; i++) if (b[i] >= 0x80) return this._dec.decode(b);
      return String.fromCharCode.apply(null, b);
    }

    // write carries out ops ({op, key, value, ttl, if_rev}, in order) on the
    // copy with this handle and returns one {ok: entry or revision} or
    // {error} per op. It throws when the call as a whole failed.
    write(handle, ops) {
      let size = 4;
      for (const o of ops) size += 25 + 3 * (o.key.length + o.value.length); // UTF-8 takes ≤ 3 bytes a unit
      if (size > 0x7fffffff) throw new PyKVOfflineError({ code: "too_large", message: "These writes are too large to hand to the copy at once." });
      const start = this._x.pykv_buffer(size);
      const mem = this._bytes(); // after pykv_buffer, which may grow the memory
      const view = new DataView(mem.buffer);
      let at = start;
      const str = (s) => {
        let n = 0;
        if (s.length <= SHORT) { // ASCII by hand, as in _text
          for (let c; n < s.length && (c = s.charCodeAt(n)) < 0x80; n++) mem[at + 4 + n] = c;
        }
        if (n < s.length) n = this._enc.encodeInto(s, mem.subarray(at + 4, start + size)).written;
        view.setUint32(at, n, true);
        at += 4 + n;
      };
      view.setUint32(at, ops.length, true);
      at += 4;
      for (const o of ops) {
        view.setUint8(at, o.op === "delete" ? 2 : 1);
        view.setFloat64(at + 1, o.ttl, true);
        view.setFloat64(at + 9, o.if_rev, true);
        at += 17;
        str(o.key);
        str(o.value);
      }
      const n = this._x.pykv_write(handle, at - start);
      return this._answers(this._x.pykv_buffer(0), n, ops);
    }

    _answers(start, n, ops) {
      const view = new DataView(this._bytes().buffer, start, n);
      const f64 = (at) => view.getFloat64(at, true);
      const error = (at) => {
        const len = view.getUint32(at, true);
        return { info: JSON.parse(this._text(start + at + 4, len)), end: at + 4 + len };
      };
      if (view.getUint8(0) !== 0) throw new PyKVOfflineError(error(1).info); // the call failed as a whole
      const out = [];
      let at = 1;
      for (const o of ops) {
        const kind = view.getUint8(at);
        if (kind === 0) { // a put: its entry
          const e = { key: o.key, value: o.value, create_rev: f64(at + 1), mod_rev: f64(at + 9), version: f64(at + 17) };
          const exp = f64(at + 25);
          if (exp) e.expires_at = exp;
          out.push({ ok: e });
          at += 33;
        } else if (kind === 1) { // a delete: its revision
          out.push({ ok: f64(at + 1) });
          at += 9;
        } else {
          const err = error(at + 1);
          out.push({ error: err.info });
          at = err.end;
        }
      }
      return out;
    }
  }

  // wellFormed replaces lone surrogates, which UTF-8 cannot carry, with
  // U+FFFD, as the module stores them.
  function wellFormed(s) {
    return s.isWellFormed === undefined || s.isWellFormed() ? s : s.toWellFormed();
  }

  // loadRuntime starts the Go program once per page.
  function loadRuntime(base) {
    if (runtime) return runtime;
    runtime = (async () => {
      if (!global.Go) await loadScript(base + "wasm_exec.js");
      const go = new global.Go();
      const url = base + "pykv.wasm";
      let result;
      try {
        result = await WebAssembly.instantiateStreaming(fetch(url), go.importObject);
      } catch (e) {
        // A server that does not send application/wasm: instantiate from bytes.
        const resp = await fetch(url);
        if (!resp.ok) throw new Error("PyKV offline: GET " + url + ": " + resp.status);
        result = await WebAssembly.instantiate(await resp.arrayBuffer(), go.importObject);
      }
      go.run(result.instance); // runs main up to its first wait: the API is set
      if (!global.__pykvOffline) throw new Error("PyKV offline: the WebAssembly module did not start");
      return { api: global.__pykvOffline, wire: new Wire(result.instance.exports) };
    })();
    runtime.catch(() => { runtime = null; });
    return runtime;
  }

  // withLock runs fn holding the copy's cross-tab lock (or directly where
  // the Web Locks API is missing: the Go side still refuses a write that
  // would clash with another tab's, and the copy is reloaded).
  function withLock(name, fn) {
    if (global.navigator && navigator.locks && navigator.locks.request) {
      return navigator.locks.request(name, fn);
    }
    return Promise.resolve().then(fn);
  }

  class OfflineDB {
    constructor(core, wire, name) {
      this._core = core;
      this._wire = wire;
      this.name = name;
      this.persistent = core.persistent;
      this._lock = "pykv/" + name;
      this._queue = [];
      this._draining = false;
      this._listeners = new Set();
      this._stopCore = null;
      this._catchUpTimer = 0;
      this._foldTimer = 0;
      this._closed = false;
      this._onStorage = (e) => {
        if (e.key === null || e.key.startsWith("pykv/" + name + "/")) this._scheduleCatchUp();
      };
      global.addEventListener("storage", this._onStorage);
    }

    // The status of the last open: what recovery found and set aside.
    status() { return unwrap(this._core.status()); }
    // usage(): {items, units, other_items, other_units, snapshot_units, log_units, log_items, corrupt_units};
    // units are UTF-16 code units (2 bytes each in the browser).
    usage() { return unwrap(this._core.usage()); }

    get(key) { return unwrap(this._core.get(String(key))); }
    list(prefix = "", after = "", limit = 0) {
      return unwrap(this._core.list(String(prefix), String(after), limit | 0));
    }
    // history(key): the changes of key made in this copy since it was last
    // loaded from the server, newest first ({type, rev, value, version,
    // expires_at, time}); rev is the copy's own revision.
    history(key, limit = 100) { return unwrap(this._core.history(String(key), limit | 0)); }
    exportSnapshot() { return unwrap(this._core.exportSnapshot()); }
    pending() { return unwrap(this._core.pending()); }

    // put resolves to the new entry. opts.ttl: seconds; opts.ifRev: the
    // key's current mod_rev, or -1 for "must not exist".
    put(key, value, opts = {}) {
      return this._write(null, { op: "put", key: wellFormed(String(key)), value: wellFormed(String(value)), ttl: Number(opts.ttl || 0), if_rev: Number(opts.ifRev || 0) });
    }
    // delete resolves to the revision of the deletion; code "not_found"
    // when the key does not exist.
    delete(key, opts = {}) {
      return this._write(null, { op: "delete", key: wellFormed(String(key)), value: "", ttl: 0, if_rev: Number(opts.ifRev || 0) });
    }
    // importSnapshot puts every key of a snapshot (or flat PyKV) file, as
    // local changes: they are pending for the next sync.
    importSnapshot(text) { return this._write(() => this._core.importSnapshot(String(text))); }
    // rebase loads the server's export as the copy's base and replays the
    // pending changes over it, except the settled ones ({key: local_rev}).
    rebase(exportText, settled = {}) {
      return this._write(() => this._core.rebase(String(exportText), JSON.stringify(settled)));
    }

    // subscribe(fn): fn({rev, events: [{type, key, rev, value, expires_at}]})
    // for every change, including other tabs'; fn({rev, reset: true}) when
    // the copy was replaced wholesale (list again). Returns an unsubscribe
    // function.
    subscribe(fn) {
      this._listeners.add(fn);
      if (!this._stopCore) {
        // Go calls this from a goroutine, possibly in the middle of a write
        // through the wire, where page code must not call back into Go
        // (wasm/writes_js.go): the listeners run once Go has returned.
        this._stopCore = this._core.subscribe((json) => {
          queueMicrotask(() => {
            const batch = JSON.parse(json);
            for (const l of this._listeners) {
              try { l(batch); } catch (e) { setTimeout(() => { throw e; }); }
            }
          });
        });
      }
      return () => {
        this._listeners.delete(fn);
        if (this._listeners.size === 0 && this._stopCore) { this._stopCore(); this._stopCore = null; }
      };
    }

    // sync sends the pending changes to the server with the revision each was
    // based on (If-Match, or If-None-Match: * for new keys), then loads the
    // server's export as the new base. Resolves to {sent, conflicts}: each
    // conflict {key, mine: {op, value}, server: {value, rev} | null} stays
    // pending until resolve(key, "mine" | "server").
    async sync(opts = {}) {
      const base = opts.baseURL || "";
      const doFetch = opts.fetch || global.fetch.bind(global);
      const settled = {};
      const conflicts = [];
      let sent = 0;
      for (const c of this.pending()) {
        const url = base + "/v1/kv/" + encodeURIComponent(c.key);
        const headers = {};
        if (c.base_rev > 0) headers["If-Match"] = '"' + c.base_rev + '"';
        else if (c.op === "put") headers["If-None-Match"] = "*";
        let resp;
        if (c.op === "put") {
          let q = "";
          if (c.expires_at) {
            const ttl = (c.expires_at - Date.now()) / 1000;
            if (ttl <= 0) { settled[c.key] = c.local_rev; continue; } // expired while waiting
            q = "?ttl=" + ttl.toFixed(3);
          }
          resp = await doFetch(url + q, { method: "PUT", headers, body: c.value, credentials: "same-origin" });
        } else {
          resp = await doFetch(url, { method: "DELETE", headers, credentials: "same-origin" });
        }
        if (resp.ok || (c.op === "delete" && resp.status === 404 && c.base_rev === 0)) {
          settled[c.key] = c.local_rev;
          sent++;
        } else if (resp.status === 412 || (c.op === "delete" && resp.status === 404)) {
          const server = await this._serverEntry(doFetch, url);
          if (server && c.op === "put" && server.value === c.value) {
            settled[c.key] = c.local_rev; // the server has it already
          } else if (!server && c.op === "delete") {
            settled[c.key] = c.local_rev;
          } else {
            conflicts.push({ key: c.key, mine: { op: c.op, value: c.value, base_rev: c.base_rev }, server });
          }
        } else {
          throw new Error("PyKV sync: " + c.op + " " + c.key + ": HTTP " + resp.status + " " + (await resp.text()));
        }
      }
      const exp = await doFetch(base + "/v1/export", { credentials: "same-origin" });
      if (!exp.ok) throw new Error("PyKV sync: GET /v1/export: HTTP " + exp.status);
      await this.rebase(await exp.text(), settled);
      this._conflicts = new Map(conflicts.map((c) => [c.key, c]));
      return { sent, conflicts };
    }

    // resolve settles a conflict reported by sync: "mine" writes the local
    // change over the server's current revision, "server" drops it and takes
    // the server's value. Then the copy reloads the server's state.
    async resolve(key, choice, opts = {}) {
      const base = opts.baseURL || "";
      const doFetch = opts.fetch || global.fetch.bind(global);
      const c = this.pending().find((p) => p.key === key);
      if (!c) return;
      const url = base + "/v1/kv/" + encodeURIComponent(key);
      if (choice === "mine") {
        const server = await this._serverEntry(doFetch, url);
        const headers = server ? { "If-Match": '"' + server.rev + '"' } : { "If-None-Match": "*" };
        const init = c.op === "put" ? { method: "PUT", headers, body: c.value } : { method: "DELETE", headers };
        const resp = await doFetch(url, Object.assign(init, { credentials: "same-origin" }));
        if (!resp.ok && !(c.op === "delete" && resp.status === 404)) {
          throw new PyKVOfflineError({ code: "conflict", key, message: "the server's value changed again; sync and choose again" });
        }
      } else if (choice !== "server") {
        throw new Error('PyKV resolve: choice must be "mine" or "server"');
      }
      const exp = await doFetch(base + "/v1/export", { credentials: "same-origin" });
      if (!exp.ok) throw new Error("PyKV resolve: GET /v1/export: HTTP " + exp.status);
      await this.rebase(await exp.text(), { [key]: c.local_rev });
    }

    async _serverEntry(doFetch, url) {
      const resp = await doFetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin", cache: "no-store" });
      if (resp.status === 404) return null;
      if (!resp.ok) throw new Error("PyKV sync: GET " + url + ": HTTP " + resp.status);
      const e = await resp.json(); // the entry: {key, value, mod_rev, …}
      return { value: e.value, rev: e.mod_rev, expires_at: e.expires_at || 0 };
    }

    close() {
      global.removeEventListener("storage", this._onStorage);
      clearTimeout(this._foldTimer);
      this._closed = true;
      if (this._stopCore) { this._stopCore(); this._stopCore = null; }
      unwrap(this._core.close());
    }

    // Writes are queued and run under the lock. Puts and deletes queued
    // together go to the engine in one call and commit as one group (one
    // stored item); an awaited loop of writes keeps the lock between them.
    // call is a core method call for other writes; op a put or delete.
    _write(call, op) {
      return new Promise((resolve, reject) => {
        this._queue.push({ call, op, resolve, reject });
        if (!this._draining) this._drain();
      });
    }

    _runQueued() {
      while (this._queue.length) {
        if (this._queue[0].call) {
          const w = this._queue.shift();
          try { w.resolve(unwrap(w.call())); } catch (e) { w.reject(e); }
          continue;
        }
        let n = 0;
        while (n < this._queue.length && !this._queue[n].call) n++;
        const ws = this._queue.splice(0, n);
        let results;
        try {
          results = this._wire.write(this._core.handle, ws.map((w) => w.op));
        } catch (e) {
          for (const w of ws) w.reject(e);
          continue;
        }
        ws.forEach((w, i) => {
          const r = results[i];
          if (r.error) w.reject(new PyKVOfflineError(r.error));
          else w.resolve(r.ok);
        });
      }
    }

    _drain() {
      this._draining = true;
      const locked = !!(global.navigator && navigator.locks && navigator.locks.request);
      const run = async () => {
        unwrap(this._core.catchUp(locked));
        try {
          for (;;) {
            this._runQueued();
            // Let awaiting callers queue their next write before letting go.
            for (let i = 0; i < 4 && !this._queue.length; i++) await null;
            if (!this._queue.length) return;
          }
        } finally {
          unwrap(this._core.unlock());
        }
      };
      withLock(this._lock, run).catch((e) => {
        for (const w of this._queue.splice(0)) w.reject(e);
      }).finally(() => {
        this._draining = false;
        if (this._queue.length) this._drain();
        else this._scheduleFold();
      });
    }

    // _scheduleFold folds the copy's log into its snapshot, if that is
    // due, once writes have stopped for FOLD_IDLE_MS: while they go on the
    // copy folds only when its log has grown well past due, since a fold
    // rewrites the whole snapshot (wasm/localdb.go, foldPressFactor).
    _scheduleFold() {
      clearTimeout(this._foldTimer);
      this._foldTimer = setTimeout(() => {
        this._foldTimer = 0;
        if (this._draining || this._closed) return; // the drain schedules again
        withLock(this._lock, () => {
          if (this._closed) return;
          unwrap(this._core.catchUp(false)); // fold what other tabs wrote too
          unwrap(this._core.foldIfDue());
        }).catch((e) => console.error("PyKV offline:", e));
      }, FOLD_IDLE_MS);
    }

    _scheduleCatchUp() {
      if (this._catchUpTimer) return;
      this._catchUpTimer = setTimeout(() => {
        this._catchUpTimer = 0;
        withLock(this._lock, () => { unwrap(this._core.catchUp(false)); }).catch((e) => console.error("PyKV offline:", e));
      }, 20);
    }
  }

  // open({name, base, memory}) loads the WebAssembly engine (once per page)
  // and opens the copy called name (default "default"). base is where
  // wasm_exec.js and pykv.wasm are served (default /static/wasm/); memory:
  // true keeps the copy in memory only. Damaged stored data never makes
  // open fail: see db.status().recovery.set_aside.
  async function open(opts = {}) {
    const { api, wire } = await loadRuntime(opts.base || DEFAULT_BASE);
    const name = opts.name || "default";
    const options = JSON.stringify({ name, memory: !!opts.memory, fold_min_units: opts.foldMinUnits | 0 });
    // Open under the lock: another tab may be folding.
    const core = await withLock("pykv/" + name, () => unwrap(api.open(options, wire.host)));
    const db = new OfflineDB(core, wire, name);
    db._scheduleFold(); // a log left due by a page closed before it folded
    return db;
  }

  global.PyKVOffline = { open, PyKVOfflineError };
})(typeof window !== "undefined" ? window : globalThis);

// PyKV dashboard. Plain script, no build step and nothing inline, so the page
// runs under a strict Content-Security-Policy.
//
// The server renders the first page of keys and the revision it was read at
// (data-* attributes of <main>). This script then
//   - pages and searches through GET /v1/kv, never holding more than a page;
//   - writes through PUT and DELETE /v1/kv/{key}, the same API as any client,
//     showing the problem+json title and detail of a refused write;
//   - follows GET /v1/watch from the last revision it has seen, applying
//     every change to the rows on the page and marking them; it reconnects
//     with backoff and resumes with since=, and reloads the page from the
//     API when the server says the history it needs is gone ("compacted");
//   - keeps the offline copy (offline.js: the engine in WebAssembly, stored
//     in localStorage) close to the server, and switches to it when the
//     server cannot be reached or the person ticks "Work offline": reads and
//     writes then go to the copy, and the badge says how many changes wait.
//     Back online the changes are sent with the revision each was based on
//     (compare-and-swap); a key the server changed meanwhile is shown as a
//     conflict, side by side, until the person keeps one of the two values;
//   - registers the service worker (sw.js) that keeps the page, its scripts
//     and the WebAssembly, so the page opens while the server is down.
'use strict';

(function () {
  const SHORT_RUNES = 60; // as dashboardShortRunes in web/dashboard.go
  const EMBED_BYTES = 16 * 1024; // as dashboardEmbedBytes
  const BACKOFF_MIN_MS = 250;
  const BACKOFF_MAX_MS = 10000;
  const CHANGED_MS = 2500; // how long a changed row stays marked
  const UNDO_MS = 8000; // how long Undo is offered after a row's Delete
  const CLOSE_COMPACTED = 4001;
  const CLOSE_LAGGED = 4002;
  // The offline copy is refreshed from GET /v1/export (the whole store) at
  // most this often while online, a little after the changes stop: the
  // export costs as much as the store is large.
  const REFRESH_DEBOUNCE_MS = 1000;
  const REFRESH_MIN_MS = 10000;
  // A store with more keys than this is not copied: its export (tens of
  // bytes a key) could not fit the few MB of localStorage anyway, and
  // downloading it on every page load would slow the page and the server.
  const COPY_MAX_KEYS = 50000;
  const COPY_NAME = 'default'; // the offline copy's name in localStorage (pykv/default/…)
  const PREF_OFFLINE = 'pykv-dashboard/work-offline'; // "1" while offline by hand

  const main = document.getElementById('dashboard');
  if (!main) return;
  const byId = (id) => document.getElementById(id);
  const byTestId = (id) => document.querySelector(`[data-testid="${id}"]`);

  const el = {
    rows: byId('kv-rows'),
    empty: byId('kv-empty'),
    rev: byTestId('rev'),
    keys: byTestId('key-count'),
    sync: byTestId('durability'),
    conn: byTestId('conn-state'),
    putForm: byId('put-form'),
    key: byId('put-key'),
    value: byId('put-value'),
    ttl: byId('put-ttl'),
    create: byId('put-create'),
    del: byId('delete-button'),
    error: byTestId('form-error'),
    status: byTestId('form-status'),
    search: byId('search-form'),
    prefix: byId('search-prefix'),
    firsts: document.querySelectorAll('.page-first'),
    prevs: document.querySelectorAll('.page-prev'),
    nexts: document.querySelectorAll('.page-next'),
    connText: document.querySelector('[data-testid="conn-state"] .conn-text'),
    banner: byId('offline-banner'),
    bannerText: byId('offline-banner-text'),
    count: byTestId('prefix-count'),
    crumbs: byId('crumbs'),
    folders: byId('folders'),
    valueHint: byId('value-hint'),
    delPrefix: byId('delete-prefix'),
    delPrefixBox: byId('delete-prefix-confirm'),
    delPrefixQ: byId('delete-prefix-question'),
    delPrefixYes: byId('delete-prefix-yes'),
    delPrefixNo: byId('delete-prefix-no'),
    undo: byId('undo'),
    undoText: byId('undo-text'),
    undoBtn: byId('undo-button'),
    detail: byId('detail'),
    detailKey: byId('detail-key'),
    detailValue: byId('detail-value'),
    detailFormat: byId('detail-format'),
    detailClose: byId('detail-close'),
    copyValue: byId('copy-value'),
    copyStatus: byId('copy-status'),
    historyList: byId('history-list'),
    historyNote: byId('history-note'),
    syncResult: byTestId('sync-result'),
    importForm: byId('import-form'),
    importFile: byId('import-file'),
    importReplace: byId('import-replace'),
    importButton: byTestId('import-button'),
    importStatus: byTestId('import-status'),
    importError: byTestId('import-error'),
    controls: byTestId('offline-controls'),
    toggle: byId('work-offline'),
    syncBtn: byId('sync-button'),
    notice: byId('offline-notice'),
    conflicts: byId('conflicts'),
    conflictList: byId('conflict-list'),
  };
  const params = new URLSearchParams(location.search);

  const state = {
    rev: Number(main.dataset.rev), // every change up to rev is on the page
    keys: Number(el.keys.textContent),
    // From the address, not the page: offline, the page is the service
    // worker's stored copy of whatever page was last loaded.
    prefix: params.get('prefix') || '',
    after: params.get('after') || '', // the cursor the page starts after
    more: main.dataset.more === 'true',
    next: main.dataset.next || '',
    limit: Number(main.dataset.limit) || 50,
    back: [], // cursors of the pages before this one
    loading: null, // events that arrive while a page loads, applied after it
    removed: new Map(), // key -> rev of deletes done by this page, until seen
    count: Number(main.dataset.count) || 0, // keys under the prefix, on all pages
    open: '', // the key shown in the detail panel
  };

  // ---- keys in the order the server keeps them (UTF-8 bytes, i.e. code
  // points; JavaScript's < compares UTF-16 units, which differs above U+FFFF).
  function cmpKeys(a, b) {
    const n = Math.min(a.length, b.length);
    for (let i = 0; i < n; i++) {
      const x = a.codePointAt(i);
      const y = b.codePointAt(i);
      if (x !== y) return x < y ? -1 : 1;
      if (x > 0xffff) i++;
    }
    return a.length - b.length;
  }

  // ---- rendering: the same markup as keyRow in web/dashboard.templ.
  function node(tag, attrs, ...children) {
    const n = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) n.setAttribute(k, v);
    n.append(...children);
    return n;
  }

  const utf8 = new TextEncoder();

  function sizeText(n) {
    if (n < 1024) return `${n} B`;
    if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
    return `${(n / (1024 * 1024)).toFixed(1)} MiB`;
  }

  function expiryText(ms) {
    if (ms <= 0) return 'expiring';
    if (ms < 60e3) return `in ${Math.ceil(ms / 1e3)}s`;
    if (ms < 3600e3) return `in ${Math.floor(ms / 60e3)}m`;
    if (ms < 48 * 3600e3) return `in ${Math.floor(ms / 3600e3)}h`;
    return `in ${Math.floor(ms / 86400e3)}d`;
  }

  function valueCell(value) {
    const runes = Array.from(value);
    if (value === '') {
      return node('td', { class: 'value', 'data-testid': 'cell-value', 'data-label': 'Value' }, node('span', { class: 'empty-value' }, '(empty)'));
    }
    if (runes.length <= SHORT_RUNES) {
      return node('td', { class: 'value', 'data-testid': 'cell-value', 'data-label': 'Value' }, node('code', { class: 'short' }, value));
    }
    const size = utf8.encode(value).length;
    const full = size <= EMBED_BYTES
      ? node('pre', { class: 'full', 'data-testid': 'value-full' }, value)
      : node('pre', { class: 'full', 'data-testid': 'value-full', 'data-load': '1' });
    const summary = node('summary', {},
      node('code', { class: 'short' }, runes.slice(0, SHORT_RUNES).join('') + '…'), ' ',
      node('span', { class: 'size' }, sizeText(size)));
    return node('td', { class: 'value', 'data-testid': 'cell-value', 'data-label': 'Value' }, node('details', {}, summary, full));
  }

  // buildRow makes the row of entry e; pending (true, nothing else) marks a
  // key changed offline and not sent yet. Never pass buildRow to Array.map
  // directly: map's second argument, the index, would mark every row but
  // the first as not sent.
  function buildRow(e, pending) {
    pending = pending === true;
    const expiry = node('td', { class: 'expiry', 'data-testid': 'cell-expiry' });
    if (e.expires_at) {
      expiry.append(node('time', {
        datetime: new Date(e.expires_at).toISOString(),
        'data-expires': String(e.expires_at),
      }, expiryText(e.expires_at - Date.now())));
    }
    const key = node('td', { class: 'key', 'data-testid': 'cell-key', 'data-label': 'Key' }, keyCode(e.key));
    const attrs = { 'data-testid': 'kv-row', 'data-key': e.key, 'data-rev': String(e.mod_rev) };
    if (pending) {
      attrs.class = 'pending';
      attrs['data-pending'] = 'true';
      key.append(' ', node('span', { class: 'tag', title: 'changed offline, not sent to the server yet' }, 'not sent'));
    }
    expiry.setAttribute('data-label', 'Expires');
    const tr = node('tr', attrs,
      key,
      valueCell(e.value),
      node('td', { class: 'num', 'data-testid': 'cell-rev', 'data-label': 'Revision' }, String(e.mod_rev)),
      node('td', { class: 'num col-version', 'data-testid': 'cell-version', 'data-label': 'Version' }, String(e.version)),
      expiry,
      node('td', { class: 'row-actions', 'data-testid': 'cell-actions' }));
    enhanceRow(tr);
    return tr;
  }

  // keyCode shows a key with a break opportunity after each "/", so a
  // narrow screen wraps it between folders, not inside a word.
  function keyCode(key) {
    const code = node('code', {});
    key.split(/(?<=\/)/).forEach((part, i) => {
      if (i > 0) code.append(node('wbr', {}));
      code.append(part);
    });
    return code;
  }

  // enhanceRow makes a row open on click or Enter and gives it its Edit
  // and Delete buttons (rows rendered by the server get them here too).
  function enhanceRow(tr) {
    const key = tr.dataset.key;
    tr.tabIndex = 0;
    tr.setAttribute('aria-label', `Open ${key}`);
    const cell = tr.querySelector('.row-actions');
    if (cell && cell.children.length === 0) {
      cell.append(
        node('button', { type: 'button', class: 'small quiet', 'data-action': 'edit', 'data-testid': 'row-edit', 'aria-label': `Edit ${key}` }, 'Edit'),
        node('button', { type: 'button', class: 'small danger', 'data-action': 'delete', 'data-testid': 'row-delete', 'aria-label': `Delete ${key}` }, 'Delete'));
    }
  }

  function rows() { return Array.from(el.rows.children); }
  function findRow(key) { return rows().find((r) => r.dataset.key === key); }

  function mark(row) {
    row.classList.add('changed');
    setTimeout(() => row.classList.remove('changed'), CHANGED_MS);
  }

  function updateEmpty() {
    el.empty.hidden = el.rows.children.length > 0;
    el.empty.textContent = state.prefix === ''
      ? 'No keys yet. Write one above, or import a file.'
      : `No keys start with “${state.prefix}”.`;
  }

  function pageHref(after) {
    const q = new URLSearchParams();
    if (state.prefix) q.set('prefix', state.prefix);
    if (after) q.set('after', after);
    const s = q.toString();
    return s ? `/?${s}` : '/';
  }

  function updatePager() {
    for (const a of el.firsts) { a.hidden = state.after === ''; a.href = pageHref(''); }
    for (const a of el.prevs) { a.hidden = state.back.length === 0; a.href = pageHref(state.back[state.back.length - 1] || ''); }
    for (const a of el.nexts) { a.hidden = !state.more; a.href = pageHref(state.next); }
  }

  // inPage reports whether a key not shown yet belongs on this page.
  function inPage(key) {
    if (!key.startsWith(state.prefix)) return false;
    if (state.after !== '' && cmpKeys(key, state.after) <= 0) return false;
    const all = rows();
    if (state.more && all.length > 0 && cmpKeys(key, all[all.length - 1].dataset.key) > 0) return false;
    return true;
  }

  // upsert shows entry e if it is newer than what the page has.
  function upsert(e) {
    const gone = state.removed.get(e.key);
    if (gone !== undefined && gone > e.mod_rev) return;
    const row = findRow(e.key);
    if (row) {
      if (Number(row.dataset.rev) >= e.mod_rev) return;
      const fresh = buildRow(e);
      row.replaceWith(fresh);
      mark(fresh);
      return;
    }
    if (!inPage(e.key)) return;
    const fresh = buildRow(e);
    const before = rows().find((r) => cmpKeys(r.dataset.key, e.key) > 0);
    el.rows.insertBefore(fresh, before || null);
    mark(fresh);
    // Keep the page at its size: the last row moves to the next page.
    if (el.rows.children.length > state.limit) {
      el.rows.lastElementChild.remove();
      state.more = true;
      state.next = el.rows.lastElementChild.dataset.key;
      updatePager();
    }
    updateEmpty();
  }

  function removeRow(key, rev) {
    const row = findRow(key);
    if (row && Number(row.dataset.rev) < rev) {
      row.remove();
      updateEmpty();
    }
  }

  function setRev(rev) {
    state.rev = rev;
    if (off.mode !== 'offline') el.rev.textContent = String(rev);
    for (const [k, r] of state.removed) if (r <= rev) state.removed.delete(k);
  }

  function setKeys(n) {
    state.keys = Math.max(0, n);
    el.keys.textContent = String(state.keys);
  }

  // applyEvent applies one change from the stream.
  function applyEvent(ev) {
    scheduleRefresh();
    const under = ev.key.startsWith(state.prefix);
    if (ev.type === 'put') {
      if (ev.version === 1) {
        setKeys(state.keys + 1);
        if (under) setCount(state.count + 1);
      }
    } else {
      setKeys(state.keys - 1);
      if (under) setCount(state.count - 1);
    }
    if (ev.key === state.open) scheduleHistory();
    if (under) scheduleFolders();
    if (state.loading) {
      state.loading.push(ev);
      return;
    }
    showEvent(ev);
  }

  function showEvent(ev) {
    if (ev.type === 'put') {
      upsert({
        key: ev.key, value: ev.value, mod_rev: ev.rev, create_rev: ev.create_rev,
        version: ev.version, expires_at: ev.expires_at || 0,
      });
    } else {
      removeRow(ev.key, ev.rev);
    }
  }

  // ---- the REST API.
  async function problemText(resp) {
    const type = resp.headers.get('Content-Type') || '';
    if (type.includes('json')) {
      try {
        const p = await resp.json();
        const text = p.detail || p.title;
        if (text) return text;
      } catch (_) { /* not JSON after all */ }
    }
    return `The server answered ${resp.status} ${resp.statusText}.`.replace(' .', '.');
  }

  // loadServerPage shows the server's page of keys after the cursor and
  // returns the listing. Events arriving meanwhile are applied after it, if
  // newer.
  async function loadServerPage(after) {
    const q = new URLSearchParams({ limit: String(state.limit) });
    if (state.prefix) q.set('prefix', state.prefix);
    if (after) q.set('after', after);
    state.loading = state.loading || [];
    try {
      const resp = await fetch(`/v1/kv?${q}`, { headers: { Accept: 'application/json' }, cache: 'no-store' });
      if (!resp.ok) throw new Error(await problemText(resp));
      const page = await resp.json();
      if (off.mode === 'offline') { // went offline meanwhile: the copy's page stays
        state.loading = null;
        return page;
      }
      state.after = after || '';
      state.more = Boolean(page.more);
      state.next = page.next || '';
      el.rows.replaceChildren(...page.entries.map((e) => buildRow(e)));
      if (typeof page.count === 'number') setCount(page.count);
      const queued = state.loading || [];
      state.loading = null;
      for (const ev of queued) if (ev.rev > page.rev) showEvent(ev);
      updateEmpty();
      updatePager();
      renderCrumbs();
      loadFolders();
      return page;
    } finally {
      if (state.loading) { // failed: show what arrived on the old rows
        const queued = state.loading;
        state.loading = null;
        queued.forEach(showEvent);
      }
    }
  }

  async function refreshStatus() {
    try {
      const resp = await fetch('/v1/status', { headers: { Accept: 'application/json' }, cache: 'no-store' });
      if (!resp.ok) return;
      const st = await resp.json();
      if (typeof st.keys === 'number') setKeys(st.keys);
      if (typeof st.fsync === 'string' && st.fsync) el.sync.textContent = st.fsync;
    } catch (_) { /* the header keeps its counts */ }
  }

  // ---- the put/delete form.
  function showError(text) {
    el.status.textContent = '';
    el.error.textContent = text;
    el.error.hidden = false;
  }

  function showStatus(text) {
    el.error.hidden = true;
    el.error.textContent = '';
    el.status.textContent = text;
  }

  function setBusy(busy) {
    for (const b of el.putForm.querySelectorAll('button')) b.disabled = busy;
  }

  async function write(kind) {
    const key = el.key.value;
    if (key === '') {
      showError('Enter a key.');
      el.key.focus();
      return;
    }
    if (off.mode === 'offline') {
      await writeLocal(kind, key);
      return;
    }
    let unreachable = false;
    let url = `/v1/kv/${encodeURIComponent(key)}`;
    const init = { method: kind === 'put' ? 'PUT' : 'DELETE', headers: { Accept: 'application/json' } };
    if (kind === 'put') {
      const ttl = el.ttl.value.trim();
      if (ttl) url += `?ttl=${encodeURIComponent(ttl)}`;
      init.body = el.value.value;
      init.headers['Content-Type'] = 'text/plain; charset=utf-8';
      if (el.create.checked) init.headers['If-None-Match'] = '*';
    }
    setBusy(true);
    try {
      const resp = await fetch(url, init);
      if (!resp.ok) {
        showError(await writeErrorText(resp, kind, key));
        return;
      }
      const body = await resp.json();
      if (kind === 'put') {
        showStatus(`Stored “${key}” at revision ${body.mod_rev}.`);
        upsert(body);
      } else {
        showStatus(`Deleted “${key}” at revision ${body.rev}.`);
        if (body.rev > state.rev) state.removed.set(key, body.rev);
        removeRow(key, body.rev);
      }
    } catch (err) {
      unreachable = true;
      showError('Could not reach the server, so nothing was saved there.');
    } finally {
      setBusy(false);
    }
    // The server went away: the write goes to the offline copy instead. (If
    // the server did store it and only the answer was lost, sync finds the
    // server holding the same value and settles it.)
    if (unreachable && off.db) {
      goOffline('unreachable');
      await writeLocal(kind, key);
    }
  }

  // writeErrorText says in plain words why the server refused a write.
  async function writeErrorText(resp, kind, key) {
    if (resp.status === 412 && kind === 'put' && el.create.checked) {
      return `“${key}” already exists. Untick “Only if new” to replace its value.`;
    }
    if (resp.status === 404 && kind === 'delete') {
      return `The key “${key}” does not exist, so there is nothing to delete.`;
    }
    if (resp.status === 412) {
      return `“${key}” changed on the server since you opened it; open it again to see the new value.`;
    }
    return problemText(resp);
  }

  el.putForm.addEventListener('submit', (e) => {
    e.preventDefault();
    write('put');
  });
  // The form's Delete, like a row's, acts at once and offers Undo.
  el.del.addEventListener('click', () => {
    const key = el.key.value;
    if (key === '') {
      showError('Enter a key.');
      el.key.focus();
      return;
    }
    deleteRow(key);
  });

  // ---- search and paging.
  // go shows the page after the cursor (back: the cursors of the pages
  // before it). push adds an entry to the browser's history, so Back and
  // Forward move between pages and prefixes; popstate replays one.
  async function go(after, back, push = true) {
    try {
      if (off.mode === 'offline') {
        state.after = after || '';
        renderLocal();
      } else {
        await loadServerPage(after);
      }
      state.back = back;
      updatePager();
      saveURL(push);
    } catch (err) {
      showError(`Could not load keys: ${err.message}`);
    }
  }

  function saveURL(push) {
    const h = { prefix: state.prefix, after: state.after, back: state.back };
    if (push) history.pushState(h, '', pageHref(state.after));
    else history.replaceState(h, '', pageHref(state.after));
  }

  function setPrefix(prefix) {
    state.prefix = prefix;
    el.prefix.value = prefix;
    hideDeletePrefix();
  }

  window.addEventListener('popstate', (e) => {
    const h = e.state || {};
    const q = new URLSearchParams(location.search);
    setPrefix(typeof h.prefix === 'string' ? h.prefix : (q.get('prefix') || ''));
    go(typeof h.after === 'string' ? h.after : (q.get('after') || ''), Array.isArray(h.back) ? h.back : [], false);
  });

  el.search.addEventListener('submit', (e) => {
    e.preventDefault();
    setPrefix(el.prefix.value);
    go('', []);
  });
  for (const a of el.nexts) {
    a.addEventListener('click', (e) => {
      e.preventDefault();
      go(state.next, [...state.back, state.after]);
    });
  }
  for (const a of el.prevs) {
    a.addEventListener('click', (e) => {
      e.preventDefault();
      const back = state.back.slice(0, -1);
      go(state.back[state.back.length - 1] || '', back);
    });
  }
  for (const a of el.firsts) {
    a.addEventListener('click', (e) => {
      e.preventDefault();
      go('', []);
    });
  }

  // A value too long to embed is fetched when its disclosure opens.
  el.rows.addEventListener('toggle', async (e) => {
    const details = e.target;
    const pre = details.querySelector && details.querySelector('pre[data-load]');
    if (!details.open || !pre) return;
    const key = details.closest('tr').dataset.key;
    pre.removeAttribute('data-load');
    pre.textContent = 'Loading…';
    if (off.mode === 'offline' && off.db) {
      const e = off.db.get(key);
      pre.textContent = e ? e.value : 'The key is not in the offline copy.';
      return;
    }
    try {
      const resp = await fetch(`/v1/kv/${encodeURIComponent(key)}`, { cache: 'no-store' });
      if (!resp.ok) throw new Error(await problemText(resp));
      const type = resp.headers.get('Content-Type') || '';
      pre.textContent = type.includes('json') ? (await resp.json()).value : await resp.text();
    } catch (err) {
      pre.textContent = `Could not load the value: ${err.message}`;
      pre.setAttribute('data-load', '1');
    }
  }, true);

  // Expiry countdowns.
  setInterval(() => {
    const now = Date.now();
    for (const t of el.rows.querySelectorAll('time[data-expires]')) {
      t.textContent = expiryText(Number(t.dataset.expires) - now);
    }
  }, 1000);

  // ---- the live stream.
  let sock = null;
  let attempt = 0; // failed connections in a row
  let timer = 0;
  let resync = false; // reload the page before watching again

  // setConn records the stream's state; renderIndicator shows it with
  // where reads and writes go, as one indicator.
  function setConn(s, text) {
    el.conn.dataset.state = s;
    conn.text = text;
    renderIndicator();
  }
  const conn = { text: 'connecting…' };

  function connect() {
    clearTimeout(timer);
    if (sock || off.manual) return;
    setConn('connecting', 'connecting…');
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const ws = new WebSocket(`${scheme}//${location.host}/v1/watch?since=${state.rev}`);
    sock = ws;
    let first = true;
    ws.onmessage = (e) => {
      if (ws !== sock) return;
      let m;
      try { m = JSON.parse(e.data); } catch (_) { return; }
      if (m.type === 'progress') {
        if (first && m.rev < state.rev) {
          // The server is behind what this page showed (it lost its
          // latest writes, or is another server): start over.
          resync = true;
          ws.close();
          return;
        }
        if (first && attempt > 0) refreshStatus();
        const wasFirst = first;
        first = false;
        attempt = 0;
        setConn('live', 'online');
        if (m.rev > state.rev) setRev(m.rev);
        if (wasFirst) afterLive();
      } else if (m.type === 'events') {
        for (const ev of m.events) applyEvent(ev);
        setRev(m.rev);
      } else if (m.type === 'compacted') {
        resync = true;
        setConn('resyncing', 'resyncing…');
      }
    };
    ws.onclose = (e) => {
      if (ws !== sock) return;
      sock = null;
      // Never live: the server cannot be reached. Work on the copy until
      // a retry gets through.
      if (first && !resync) goOffline('unreachable');
      if (resync || e.code === CLOSE_COMPACTED || e.code === CLOSE_LAGGED) {
        resync = true;
        reload();
        return;
      }
      retry();
    };
  }

  // closeStream stops watching (offline by hand).
  function closeStream() {
    clearTimeout(timer);
    const ws = sock;
    sock = null;
    if (ws) ws.close();
  }

  function retry() {
    if (off.manual) return;
    const delay = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** attempt) * (0.5 + Math.random() / 2);
    attempt++;
    setConn('reconnecting', `reconnecting in ${Math.max(1, Math.round(delay / 1000))}s…`);
    timer = setTimeout(resync ? reload : connect, delay);
  }

  // reload shows the current page afresh and watches from its revision.
  async function reload() {
    setConn('resyncing', 'resyncing…');
    try {
      const page = await loadServerPage(state.after);
      setRev(page.rev);
      resync = false;
      await refreshStatus();
      connect();
    } catch (err) {
      if (err instanceof TypeError) goOffline('unreachable');
      retry(); // resync stays set: reload again on the next close
    }
  }

  // ---- the offline copy.
  const off = {
    db: null, // the copy (offline.js) once open
    mode: 'online', // where reads and writes go: 'online' (the API) or 'offline' (the copy)
    manual: readPref(), // offline by hand ("Work offline")
    chain: Promise.resolve(), // work between the server and the copy, one at a time
    conflicts: new Map(), // key -> {key, mine, server} from the last sync
    notices: new Map(), // id -> text shown in the notice panel
    refreshTimer: 0,
    lastRefresh: 0,
    renderTimer: 0,
  };

  function readPref() {
    try { return localStorage.getItem(PREF_OFFLINE) === '1'; } catch (_) { return false; }
  }

  function savePref(on) {
    try {
      if (on) localStorage.setItem(PREF_OFFLINE, '1');
      else localStorage.removeItem(PREF_OFFLINE);
    } catch (_) { /* storage full or disabled: the choice lasts this page only */ }
  }

  // serial runs fn after the work queued before it: a sync, a refresh and
  // a conflict resolution never interleave, so an older export can never
  // be loaded over a newer one.
  function serial(fn) {
    const p = off.chain.then(() => fn());
    off.chain = p.catch(() => {});
    return p;
  }

  function pendingCount() {
    if (!off.db) return 0;
    try { return off.db.pending().length; } catch (_) { return 0; }
  }

  function plural(n, word) { return `${n} ${word}${n === 1 ? '' : 's'}`; }

  // updateBadge refreshes the indicator, the banner and the sync button.
  function updateBadge() { renderIndicator(); }

  // renderIndicator shows, in one place, whether the page is online,
  // reconnecting or offline and how many changes wait to be sent; while
  // offline a banner says in plain words what happens to changes.
  function renderIndicator() {
    const n = pendingCount();
    const mode = off.mode;
    const waiting = n > 0 ? ` · ${plural(n, 'change')} waiting` : '';
    const s = el.conn.dataset.state;
    let text;
    if (mode === 'offline') {
      text = (off.manual ? 'offline (by hand)' : 'offline') + waiting;
      if (!off.db) text += ' · no offline copy';
      if (!off.manual && (s === 'reconnecting' || s === 'connecting')) text += ` · ${conn.text}`;
    } else if (s === 'live') {
      text = 'online' + waiting;
    } else {
      text = conn.text + waiting;
    }
    el.connText.textContent = text;
    el.conn.dataset.mode = mode;
    el.conn.dataset.pending = String(n);
    if (off.db) {
      try { el.conn.dataset.copyRev = String(off.db.status().server_rev); } catch (_) { /* keep the last */ }
    }
    el.syncBtn.hidden = n === 0;
    el.toggle.checked = off.manual;
    el.banner.hidden = mode !== 'offline';
    if (mode === 'offline') {
      const why = off.manual ? 'You chose to work offline.' : 'The server cannot be reached.';
      el.bannerText.textContent = !off.db
        ? `${why} This browser has no offline copy, so changes cannot be saved until the server is back.`
        : `${why} Changes you make are saved in this browser and sent to the server when it is back` +
          (n > 0 ? ` (${plural(n, 'change')} waiting).` : '.');
    }
    el.delPrefix.disabled = mode === 'offline';
  }

  // ---- notices: storage full, damaged data set aside, failed refreshes.
  function setNotice(id, text) {
    off.notices.set(id, text);
    renderNotices();
  }

  function clearNotice(id) {
    if (off.notices.delete(id)) renderNotices();
  }

  function renderNotices() {
    el.notice.replaceChildren(...[...off.notices].map(([id, text]) => node('p', { 'data-notice': id }, text)));
    el.notice.hidden = off.notices.size === 0;
  }

  function kib(units) { return sizeText(2 * units); } // localStorage keeps 2 bytes a unit

  function quotaNotice(e) {
    const u = e.usage || {};
    setNotice('quota', `Browser storage is full: ${e.what ? `${e.what} was not saved` : 'a change was not saved'}. ` +
      `The offline copy uses ${kib(u.units || 0)}, other data of this site ${kib(u.other_units || 0)}. ` +
      'Everything saved before is kept; free some room (or go online) and write again.');
  }

  // reportRecovery says what opening the copy found damaged and set aside.
  function reportRecovery() {
    let st;
    try { st = off.db.status(); } catch (e) { return; }
    const aside = (st.recovery && st.recovery.set_aside) || [];
    if (aside.length > 0) {
      const items = aside.map((a) => `${a.key}${a.moved_to ? ` (moved to ${a.moved_to})` : ' (left in place)'}: ${a.reason}`);
      setNotice('recovery', `Damaged data in this browser's offline copy was set aside, not deleted: ${items.join('; ')}. ` +
        'The copy opened without it.');
    }
    if (!off.db.persistent) {
      setNotice('memory', 'This browser does not let the page keep data: the offline copy lasts only as long as this page.');
    }
  }

  // handleBackground reports a failed sync or refresh; a lost connection
  // is left to the stream, which notices it too.
  function handleBackground(err, what) {
    if (err instanceof TypeError) return;
    if (err && err.code === 'quota') {
      quotaNotice(err);
      return;
    }
    setNotice(what, `${what === 'sync' ? 'The changes made offline could not be sent' : 'The offline copy could not be brought up to date'}: ` +
      `${err.message}. Nothing was lost; it is tried again later.`);
  }

  // ---- switching between the server and the copy.
  function goOffline(reason) {
    if (reason === 'manual') setConn('offline', 'offline (by hand)');
    if (off.mode === 'offline') return;
    off.mode = 'offline';
    clearTimeout(off.refreshTimer);
    off.refreshTimer = 0;
    state.removed.clear();
    state.loading = null;
    updateBadge();
    renderLocal();
  }

  // afterLive runs when the stream is live: back online, the waiting
  // changes are sent (or the copy refreshed), then the page is shown from
  // the server again.
  function afterLive() {
    const wasOffline = off.mode === 'offline';
    off.mode = 'online';
    el.rev.textContent = String(state.rev);
    updateBadge();
    const work = off.db ? serial(async () => {
      if (off.mode !== 'online') return;
      if (pendingCount() > 0) await syncNow();
      else await refreshCopy();
    }) : Promise.resolve();
    work.catch((err) => handleBackground(err, 'sync')).finally(() => {
      updateBadge();
      if (wasOffline && off.mode === 'online') {
        loadServerPage(state.after).then(refreshStatus).catch(() => { /* the stream retries */ });
      }
    });
  }

  async function workOffline() {
    off.manual = true;
    savePref(true);
    if (off.mode === 'online' && off.db) {
      // Bring the copy up to date while the server can still be reached.
      el.toggle.disabled = true;
      try {
        await serial(refreshCopy);
      } catch (err) {
        handleBackground(err, 'refresh');
      } finally {
        el.toggle.disabled = false;
      }
    }
    if (!off.manual) return; // unticked meanwhile
    closeStream();
    goOffline('manual');
  }

  function workOnline() {
    off.manual = false;
    savePref(false);
    attempt = 0;
    resync = false;
    connect();
  }

  // ---- the copy and the server.
  // refreshCopy loads the server's export into the copy (pending changes
  // stay, played over it), unless the copy holds that revision already.
  async function refreshCopy() {
    if (!off.db || off.mode !== 'online') return;
    if (off.db.status().server_rev === state.rev && state.rev > 0) return;
    if (state.keys > COPY_MAX_KEYS) {
      setNotice('too-large', `The store holds ${state.keys.toLocaleString('en-US')} keys, more than this browser's offline copy ` +
        `can keep (its storage holds a few MB), so there is no offline copy: the dashboard works while the server can be reached.`);
      return;
    }
    clearNotice('too-large');
    const resp = await fetch('/v1/export', { cache: 'no-store' });
    if (!resp.ok) throw new Error(`GET /v1/export: ${await problemText(resp)}`);
    await off.db.rebase(await resp.text());
    off.lastRefresh = Date.now();
    clearNotice('refresh');
    updateBadge();
  }

  function scheduleRefresh() {
    if (!off.db || off.mode !== 'online' || off.refreshTimer) return;
    const wait = Math.max(REFRESH_DEBOUNCE_MS, off.lastRefresh + REFRESH_MIN_MS - Date.now());
    off.refreshTimer = setTimeout(() => {
      off.refreshTimer = 0;
      serial(refreshCopy).catch((err) => handleBackground(err, 'refresh'));
    }, wait);
  }

  // syncNow sends the waiting changes (db.sync: If-Match with the revision
  // each was based on) and shows the conflicts. Call it through serial.
  async function syncNow() {
    const n = pendingCount();
    const res = await off.db.sync();
    off.lastRefresh = Date.now();
    off.conflicts = new Map(res.conflicts.map((c) => [c.key, c]));
    renderConflicts();
    clearNotice('sync');
    clearNotice('quota');
    const c = res.conflicts.length;
    el.syncResult.textContent = '';
    if (n > 0 && c === 0) {
      showStatus(`Sent ${plural(res.sent, 'change')} made offline to the server.`);
    } else if (n > 0 && res.sent === 0) {
      el.syncResult.textContent = `None of your offline changes could be sent: ${c === 1 ? 'the key' : `all ${c} keys`} changed on the server meanwhile. Choose below which value to keep.`;
    } else if (n > 0) {
      el.syncResult.textContent = `Sent ${plural(res.sent, 'change')} made offline. ${plural(c, 'key')} changed on the server meanwhile: choose below which value to keep.`;
    }
    updateBadge();
    return res;
  }

  // ---- conflicts, side by side.
  function sideValue(op, value) {
    return op === 'delete' || value === null
      ? node('p', { class: 'deleted' }, 'deleted')
      : node('pre', { class: 'cvalue', 'data-testid': 'conflict-value' }, value);
  }

  function conflictItem(c) {
    const mine = node('button', { type: 'button', 'data-choice': 'mine' }, 'Keep mine');
    const theirs = node('button', { type: 'button', 'data-choice': 'server' }, "Keep the server's");
    const item = node('div', { class: 'conflict', 'data-testid': 'conflict', 'data-key': c.key },
      node('h3', {}, node('code', {}, c.key)),
      node('div', { class: 'sides' },
        node('div', { class: 'side', 'data-testid': 'conflict-mine' },
          node('h4', {}, c.mine.base_rev > 0 ? `Mine (offline, based on revision ${c.mine.base_rev})` : 'Mine (offline, new key)'),
          sideValue(c.mine.op, c.mine.value)),
        node('div', { class: 'side', 'data-testid': 'conflict-server' },
          node('h4', {}, c.server ? `The server's (revision ${c.server.rev})` : "The server's"),
          sideValue(c.server ? 'put' : 'delete', c.server ? c.server.value : null))),
      node('div', { class: 'actions' }, mine, theirs));
    for (const b of [mine, theirs]) {
      b.addEventListener('click', () => resolveConflict(c.key, b.dataset.choice, item));
    }
    return item;
  }

  function renderConflicts() {
    el.conflictList.replaceChildren(...[...off.conflicts.values()].map(conflictItem));
    el.conflicts.hidden = off.conflicts.size === 0;
  }

  async function resolveConflict(key, choice, item) {
    for (const b of item.querySelectorAll('button')) b.disabled = true;
    try {
      await serial(() => off.db.resolve(key, choice));
      off.conflicts.delete(key);
      showStatus(choice === 'mine' ? `Kept your value of “${key}” and sent it to the server.` : `Kept the server's value of “${key}”.`);
    } catch (err) {
      if (err.code === 'conflict') {
        showError(`“${key}” changed on the server again; compare once more.`);
        await serial(syncNow).catch((e) => handleBackground(e, 'sync'));
      } else {
        showError(`Could not settle “${key}”: ${err.message}`);
      }
    } finally {
      renderConflicts();
      updateBadge();
      if (off.mode === 'offline') renderLocal();
    }
  }

  // ---- reading and writing the copy.
  // renderLocal shows the page of keys from the copy.
  function renderLocal() {
    if (!off.db || off.mode !== 'offline') return;
    clearTimeout(off.renderTimer);
    off.renderTimer = 0;
    try {
      const page = off.db.list(state.prefix, state.after, state.limit);
      const pending = new Set(off.db.pending().map((p) => p.key));
      state.more = Boolean(page.more);
      state.next = page.more && page.entries.length ? page.entries[page.entries.length - 1].key : '';
      el.rows.replaceChildren(...page.entries.map((e) => buildRow(e, pending.has(e.key))));
      const st = off.db.status();
      setKeys(st.keys);
      // The rows are the copy's: the header shows the copy's revision too.
      el.rev.textContent = String(st.rev);
      updateEmpty();
      updatePager();
      renderCrumbs();
      localFolders();
      if (state.open) scheduleHistory();
    } catch (err) {
      showError(`Could not read the offline copy: ${err.message}`);
    }
  }

  // scheduleRender re-lists the page once per burst of changes to the copy.
  function scheduleRender() {
    if (!off.renderTimer) off.renderTimer = setTimeout(renderLocal, 30);
  }

  // parseTTL reads a TTL as the server does: seconds, or a Go duration
  // such as 1h30m; it returns seconds.
  function parseTTL(text) {
    if (text === '') return 0;
    if (/^\d+(\.\d+)?$/.test(text)) return Number(text);
    const unit = { ns: 1e-9, us: 1e-6, 'µs': 1e-6, ms: 1e-3, s: 1, m: 60, h: 3600 };
    const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/y;
    let total = 0;
    let m;
    while (re.lastIndex < text.length && (m = re.exec(text))) total += Number(m[1]) * unit[m[2]];
    if (re.lastIndex !== text.length || total <= 0) {
      throw new Error(`The TTL “${text}” is not a duration such as 30s, 5m or 1h30m.`);
    }
    return total;
  }

  function localErrorText(err, key) {
    switch (err.code) {
      case 'quota': return err.message.charAt(0).toUpperCase() + err.message.slice(1); // "Not saved: put …
      case 'conflict': return `“${key}” exists already in the offline copy (Only if new).`;
      case 'not_found': return `The key “${key}” does not exist in the offline copy.`;
      default: return err.message;
    }
  }

  async function writeLocal(kind, key) {
    if (!off.db) {
      showError('The server cannot be reached and the offline copy is not available, so nothing was saved.');
      return;
    }
    setBusy(true);
    try {
      if (kind === 'put') {
        const ttl = parseTTL(el.ttl.value.trim());
        await off.db.put(key, el.value.value, { ttl, ifRev: el.create.checked ? -1 : 0 });
        showStatus(`Stored “${key}” in the offline copy; it is sent when the server is back.`);
      } else {
        await off.db.delete(key);
        showStatus(`Deleted “${key}” in the offline copy; it is sent when the server is back.`);
      }
      clearNotice('quota');
    } catch (err) {
      showError(localErrorText(err, key));
      if (err.code === 'quota') quotaNotice(err);
    } finally {
      setBusy(false);
      updateBadge();
      renderLocal();
    }
  }

  // openCopy loads the WebAssembly engine and opens the copy. The page
  // works without it (online only), saying why.
  async function openCopy() {
    try {
      if (!window.PyKVOffline) throw new Error('offline.js did not load');
      off.db = await window.PyKVOffline.open({ name: COPY_NAME });
    } catch (err) {
      main.dataset.copy = 'failed';
      setNotice('open', `The offline copy is not available (${err.message}); the dashboard works only while the server can be reached.`);
      updateBadge();
      return;
    }
    reportRecovery();
    off.db.subscribe(() => {
      updateBadge();
      if (off.mode === 'offline') scheduleRender();
    });
    el.controls.hidden = false;
    main.dataset.copy = 'ready';
    updateBadge();
    if (off.mode === 'offline') renderLocal();
    else if (el.conn.dataset.state === 'live') afterLive();
  }

  el.toggle.addEventListener('change', () => {
    if (el.toggle.checked) workOffline();
    else workOnline();
  });

  // "Sync now": online, send at once; offline, try the server now (the
  // changes are sent as soon as the stream is live).
  el.syncBtn.addEventListener('click', () => {
    if (off.mode === 'online') {
      serial(syncNow).catch((err) => handleBackground(err, 'sync')).finally(updateBadge);
    } else if (off.manual) {
      workOnline();
    } else {
      attempt = 0;
      connect();
    }
  });

  function registerServiceWorker() {
    if (!('serviceWorker' in navigator)) return;
    const base = main.dataset.static || '/static/';
    navigator.serviceWorker.register(`${base}sw.js`, { scope: '/' })
      .then(() => navigator.serviceWorker.ready)
      .then(() => { main.dataset.serviceWorker = 'ready'; })
      .catch((err) => { console.warn('PyKV: no service worker, the page needs the server to open:', err); });
  }


  // ---- counts, breadcrumbs and folders.
  function plainCount(n) { return n.toLocaleString('en-US'); }

  function setCount(n) {
    state.count = Math.max(0, n);
    const keys = state.count === 1 ? 'key' : 'keys';
    el.count.textContent = state.prefix === ''
      ? `${plainCount(state.count)} ${keys} in all`
      : `${plainCount(state.count)} ${keys} ${state.count === 1 ? 'starts' : 'start'} with “${state.prefix}”`;
    el.delPrefix.hidden = state.prefix === '' || state.count === 0;
  }

  // renderCrumbs shows the prefix folder by folder, each a link to it.
  function renderCrumbs() {
    const parts = state.prefix.split(/(?<=\/)/).filter(Boolean);
    const items = [{ label: 'All keys', prefix: '' }];
    let acc = '';
    for (const p of parts) {
      acc += p;
      items.push({ label: p, prefix: acc });
    }
    el.crumbs.replaceChildren(...items.map((c, i) => {
      const a = node('a', { href: prefixHref(c.prefix), 'data-prefix': c.prefix }, c.label);
      if (i === items.length - 1) a.setAttribute('aria-current', 'page');
      return node('li', {}, a);
    }));
  }

  function prefixHref(prefix) { return prefix ? `/?${new URLSearchParams({ prefix })}` : '/'; }

  function renderFolders(list, more) {
    el.folders.replaceChildren(...list.map((f) => node('li', {},
      node('a', { href: prefixHref(f.name), 'data-prefix': f.name, 'data-testid': 'folder', class: 'folder' },
        node('span', { class: 'folder-icon', 'aria-hidden': 'true' }, '▸'), ' ',
        node('span', { class: 'folder-name' }, f.name.slice(state.prefix.length)), ' ',
        node('span', { class: 'folder-count', 'data-testid': 'folder-count' }, `${plainCount(f.keys)} ${f.keys === 1 ? 'key' : 'keys'}`)))));
    if (more) el.folders.append(node('li', { class: 'muted' }, 'More folders not shown; search for a longer prefix.'));
    el.folders.hidden = el.folders.children.length === 0;
  }

  // loadFolders asks the server for the folders under the prefix; each
  // answer costs O(log² n) per folder, not a visit of every key.
  let foldersSeq = 0;
  async function loadFolders() {
    const seq = ++foldersSeq;
    const q = new URLSearchParams({ prefix: state.prefix, limit: '100' });
    try {
      const resp = await fetch(`/v1/folders?${q}`, { headers: { Accept: 'application/json' }, cache: 'no-store' });
      if (!resp.ok || seq !== foldersSeq || off.mode === 'offline') return;
      const page = await resp.json();
      if (seq !== foldersSeq || page.prefix !== state.prefix) return;
      renderFolders(page.folders, page.more);
      setCount(page.count);
    } catch (_) { /* the folders stay as they were; the stream notices a lost server */ }
  }

  let foldersTimer = 0;
  function scheduleFolders() {
    if (foldersTimer) return;
    foldersTimer = setTimeout(() => {
      foldersTimer = 0;
      if (off.mode === 'offline') localFolders();
      else loadFolders();
    }, 300);
  }

  // localFolders computes the folders from the offline copy, which is
  // small enough (it lives in the browser's storage) to list whole.
  function localFolders() {
    if (!off.db) return;
    try {
      const all = off.db.list(state.prefix, '', 0).entries;
      const seen = new Map();
      for (const e of all) {
        const i = e.key.indexOf('/', state.prefix.length);
        if (i < 0) continue;
        const name = e.key.slice(0, i + 1);
        seen.set(name, (seen.get(name) || 0) + 1);
      }
      renderFolders([...seen].map(([name, keys]) => ({ name, keys })), false);
      setCount(all.length);
    } catch (_) { /* keep what is shown */ }
  }

  // Breadcrumbs and folders move to a prefix, as a search does.
  function onPrefixLink(e) {
    const a = e.target.closest('a[data-prefix]');
    if (!a || e.button !== 0 || e.ctrlKey || e.metaKey || e.shiftKey) return;
    e.preventDefault();
    setPrefix(a.dataset.prefix);
    go('', []);
  }
  el.crumbs.addEventListener('click', onPrefixLink);
  el.folders.addEventListener('click', onPrefixLink);

  // ---- opening a row: the form, the value in full, the history.
  function ttlLeft(expiresAt) {
    if (!expiresAt) return '';
    return `${Math.max(1, Math.ceil((expiresAt - Date.now()) / 1000))}s`;
  }

  // asJSON returns the value pretty-printed when it is a JSON object or
  // array, or null.
  function asJSON(value) {
    const t = value.trim();
    if (!(t.startsWith('{') || t.startsWith('['))) return null;
    try { return JSON.stringify(JSON.parse(t), null, 2); } catch (_) { return null; }
  }

  async function readEntry(key) {
    if (off.mode === 'offline') {
      if (!off.db) throw new Error('the offline copy is not available');
      return off.db.get(key);
    }
    const resp = await fetch(`/v1/kv/${encodeURIComponent(key)}?format=json`, { headers: { Accept: 'application/json' }, cache: 'no-store' });
    if (resp.status === 404) return null;
    if (!resp.ok) throw new Error(await problemText(resp));
    return resp.json();
  }

  // openKey loads key into the form and shows its value and history.
  async function openKey(key, focusValue) {
    let e;
    try {
      e = await readEntry(key);
    } catch (err) {
      showError(`Could not open “${key}”: ${err.message}`);
      return;
    }
    if (!e) {
      showError(`“${key}” no longer exists.`);
      return;
    }
    el.key.value = e.key;
    el.value.value = e.value;
    el.ttl.value = ttlLeft(e.expires_at);
    el.create.checked = false;
    checkValue();
    state.open = key;
    el.detail.hidden = false;
    el.detailKey.textContent = key;
    showDetailValue(e.value);
    for (const r of rows()) r.classList.toggle('open', r.dataset.key === key);
    showStatus(`Opened “${key}” (revision ${e.mod_rev}). Change it and press Put.`);
    await loadHistory();
    (focusValue ? el.value : el.detail).scrollIntoView({ block: 'nearest' });
    if (focusValue) el.value.focus();
  }

  // showDetailValue shows the opened key's value in the panel: JSON
  // pretty-printed, text as it is; null says the key is gone.
  function showDetailValue(value) {
    el.copyStatus.textContent = '';
    el.copyValue.hidden = value === null;
    if (value === null) {
      el.detailValue.textContent = 'This key no longer exists.';
      el.detailValue.classList.add('empty-value');
      el.detailFormat.textContent = 'Deleted';
      el.detailValue.dataset.raw = '';
      return;
    }
    const pretty = asJSON(value);
    el.detailValue.textContent = pretty !== null ? pretty : (value === '' ? '(empty)' : value);
    el.detailValue.classList.toggle('empty-value', value === '');
    el.detailFormat.textContent = pretty !== null ? 'JSON, shown formatted' : `Text, ${sizeText(utf8.encode(value).length)}`;
    el.detailValue.dataset.raw = value;
  }

  function closeDetail() {
    state.open = '';
    el.detail.hidden = true;
    for (const r of rows()) r.classList.remove('open');
  }
  el.detailClose.addEventListener('click', closeDetail);

  el.copyValue.addEventListener('click', async () => {
    const raw = el.detailValue.dataset.raw || '';
    try {
      await navigator.clipboard.writeText(raw);
      el.copyStatus.textContent = 'Copied.';
    } catch (_) {
      // No clipboard permission: select the text, so Ctrl+C copies it.
      const range = document.createRange();
      range.selectNodeContents(el.detailValue);
      const sel = window.getSelection();
      sel.removeAllRanges();
      sel.addRange(range);
      el.copyStatus.textContent = 'Selected; press Ctrl+C (⌘C) to copy.';
    }
  });

  function timeText(ms) {
    if (!ms) return 'time not known';
    const d = new Date(ms);
    return d.toLocaleString('en-GB', { dateStyle: 'medium', timeStyle: 'medium' });
  }

  function historyItem(c, local) {
    const what = c.type === 'put' ? (c.version === 1 ? 'created' : 'changed') : (c.type === 'expire' ? 'expired' : 'deleted');
    const head = node('div', { class: 'history-head' },
      node('span', { class: `history-type type-${c.type}`, 'data-testid': 'history-type' }, what),
      ` at ${local ? 'local revision' : 'revision'} `,
      node('span', { 'data-testid': 'history-rev' }, String(c.rev)),
      ' · ',
      c.time ? node('time', { datetime: new Date(c.time).toISOString() }, timeText(c.time)) : node('span', {}, timeText(0)));
    const item = node('li', { 'data-testid': 'history-item', 'data-type': c.type, 'data-rev': String(c.rev) }, head);
    if (c.type === 'put') {
      const v = c.value || '';
      item.append(v === ''
        ? node('span', { class: 'empty-value', 'data-testid': 'history-value' }, '(empty)')
        : node('pre', { class: 'history-value', 'data-testid': 'history-value' }, v.length > 2000 ? `${v.slice(0, 2000)}…` : v));
    }
    return item;
  }

  // loadHistory shows the open key's history: the server's, from its
  // change history, or offline the copy's own changes.
  let historySeq = 0;
  async function loadHistory() {
    const key = state.open;
    if (!key) return;
    const seq = ++historySeq;
    el.historyList.setAttribute('aria-busy', 'true');
    try {
      if (off.mode === 'offline') {
        const items = off.db ? off.db.history(key, 100) : [];
        if (seq !== historySeq) return;
        el.historyList.replaceChildren(...items.map((c) => historyItem(c, true)));
        if (items.length > 0) showDetailValue(items[0].type === 'put' ? (items[0].value || '') : null);
        el.historyNote.textContent = items.length
          ? 'Offline: the changes made in this browser since the copy was last brought up to date, newest first.'
          : 'Offline: no change of this key was made in this browser since the copy was last brought up to date.';
        el.historyNote.dataset.source = 'copy';
        return;
      }
      const resp = await fetch(`/v1/history/${encodeURIComponent(key)}?limit=100`, { headers: { Accept: 'application/json' }, cache: 'no-store' });
      if (!resp.ok) throw new Error(await problemText(resp));
      const h = await resp.json();
      if (seq !== historySeq || state.open !== key) return;
      el.historyList.replaceChildren(...h.changes.map((c) => historyItem(c, false)));
      // The newest change is the value now: a change made elsewhere shows
      // in the panel (the form is left as the person is editing it).
      if (h.changes.length > 0) showDetailValue(h.changes[0].type === 'put' ? (h.changes[0].value || '') : null);
      const older = h.from > 0 ? `Older changes than revision ${h.from + 1} are no longer kept by the server.` : 'Every change since the server started is here.';
      el.historyNote.textContent = h.changes.length
        ? `${plural(h.changes.length, 'change')}, newest first. ${h.more ? 'Older ones are not shown.' : older}`
        : `No change of this key is in the server's recent history. ${older}`;
      el.historyNote.dataset.source = 'server';
    } catch (err) {
      if (seq === historySeq) el.historyNote.textContent = `Could not load the history: ${err.message}`;
    } finally {
      if (seq === historySeq) el.historyList.removeAttribute('aria-busy');
    }
  }

  let historyTimer = 0;
  function scheduleHistory() {
    if (!historyTimer) historyTimer = setTimeout(() => { historyTimer = 0; loadHistory(); }, 100);
  }

  // ---- row buttons, clicks and keys.
  el.rows.addEventListener('click', (e) => {
    const tr = e.target.closest('tr[data-key]');
    if (!tr) return;
    const btn = e.target.closest('button[data-action]');
    if (btn) {
      e.stopPropagation();
      if (btn.dataset.action === 'edit') openKey(tr.dataset.key, true);
      else deleteRow(tr.dataset.key);
      return;
    }
    // Clicks meant for the value's disclosure or a selection stay theirs.
    if (e.target.closest('summary, details pre, a') || String(window.getSelection())) return;
    openKey(tr.dataset.key, false);
  });
  el.rows.addEventListener('keydown', (e) => {
    if (e.key !== 'Enter' || e.target.tagName !== 'TR') return;
    e.preventDefault();
    openKey(e.target.dataset.key, false);
  });

  // deleteRow deletes a key at once (if it is still the value read, by
  // If-Match) and offers Undo for a few seconds: the value, TTL left and
  // all are put back if the key is still absent. A server that cannot be
  // reached sends the delete to the offline copy, as the form's writes do.
  let undoTimer = 0;
  async function deleteRow(key) {
    let e;
    try {
      e = await readEntry(key);
    } catch (err) {
      if (err instanceof TypeError && off.mode === 'online' && off.db) {
        goOffline('unreachable');
        return deleteRow(key);
      }
      showError(`Could not delete “${key}”: ${err.message}`);
      return;
    }
    if (!e) {
      showError(`The key “${key}” does not exist, so there is nothing to delete.`);
      return;
    }
    let done;
    if (off.mode === 'offline') {
      try {
        await off.db.delete(key, { ifRev: e.mod_rev });
      } catch (err) {
        showError(localErrorText(err, key));
        return;
      }
      done = `Deleted “${key}” in the offline copy; it is sent when the server is back.`;
      updateBadge();
      renderLocal();
    } else {
      try {
        const resp = await fetch(`/v1/kv/${encodeURIComponent(key)}`, { method: 'DELETE', headers: { Accept: 'application/json', 'If-Match': `"${e.mod_rev}"` } });
        if (!resp.ok) {
          showError(await writeErrorText(resp, 'delete', key));
          return;
        }
        const body = await resp.json();
        if (body.rev > state.rev) state.removed.set(key, body.rev);
        removeRow(key, body.rev);
        done = `Deleted “${key}” at revision ${body.rev}.`;
      } catch (_) {
        if (off.db) {
          goOffline('unreachable');
          return deleteRow(key);
        }
        showError('Could not reach the server, so nothing was deleted.');
        return;
      }
    }
    if (state.open === key) closeDetail();
    showStatus('');
    clearTimeout(undoTimer);
    el.undoText.textContent = done;
    el.undo.hidden = false;
    el.undoBtn.onclick = () => undoDelete(e);
    undoTimer = setTimeout(() => { el.undo.hidden = true; }, UNDO_MS);
  }

  async function undoDelete(e) {
    clearTimeout(undoTimer);
    el.undo.hidden = true;
    if (e.expires_at && e.expires_at <= Date.now()) {
      showError(`“${e.key}” would have expired by now, so it was not put back.`);
      return;
    }
    const ttlSec = e.expires_at ? Math.max(1, Math.ceil((e.expires_at - Date.now()) / 1000)) : 0;
    if (off.mode === 'offline') {
      try {
        await off.db.put(e.key, e.value, { ttl: ttlSec, ifRev: -1 });
        showStatus(`Put “${e.key}” back in the offline copy.`);
      } catch (err) {
        showError(localErrorText(err, e.key));
      }
      updateBadge();
      renderLocal();
      return;
    }
    let url = `/v1/kv/${encodeURIComponent(e.key)}`;
    if (ttlSec) url += `?ttl=${ttlSec}s`;
    try {
      const resp = await fetch(url, { method: 'PUT', body: e.value, headers: { Accept: 'application/json', 'Content-Type': 'text/plain; charset=utf-8', 'If-None-Match': '*' } });
      if (resp.status === 412) {
        showError(`“${e.key}” was written again meanwhile, so the deleted value was not put back.`);
        return;
      }
      if (!resp.ok) {
        showError(await problemText(resp));
        return;
      }
      const body = await resp.json();
      state.removed.delete(e.key);
      upsert(body);
      showStatus(`Put “${e.key}” back at revision ${body.mod_rev}.`);
    } catch (_) {
      showError('Could not reach the server, so the key was not put back.');
    }
  }

  // ---- the form's JSON hint: a value meant as JSON that does not parse
  // is pointed out, and stored as text all the same.
  function checkValue() {
    const t = el.value.value.trim();
    let hint = '';
    if (t.startsWith('{') || t.startsWith('[')) {
      try {
        JSON.parse(t);
        hint = 'Valid JSON.';
      } catch (err) {
        hint = `This looks like JSON but does not parse (${err.message}). It will be stored as plain text.`;
      }
    }
    el.valueHint.textContent = hint;
    el.valueHint.dataset.state = hint === '' ? '' : (hint === 'Valid JSON.' ? 'ok' : 'warn');
  }
  el.value.addEventListener('input', checkValue);

  // ---- delete by prefix, after saying how many keys go.
  function hideDeletePrefix() { el.delPrefixBox.hidden = true; }
  el.delPrefix.addEventListener('click', async () => {
    if (off.mode === 'offline') return;
    try {
      const resp = await fetch(`/v1/folders?${new URLSearchParams({ prefix: state.prefix, limit: '1' })}`, { headers: { Accept: 'application/json' }, cache: 'no-store' });
      if (resp.ok) setCount((await resp.json()).count);
    } catch (_) { /* ask with the count shown */ }
    el.delPrefixQ.textContent = `Delete all ${plural(state.count, 'key')} that start with “${state.prefix}”? This cannot be undone.`;
    el.delPrefixYes.textContent = `Delete ${plural(state.count, 'key')}`;
    el.delPrefixBox.hidden = false;
    el.delPrefixNo.focus();
  });
  el.delPrefixNo.addEventListener('click', () => { hideDeletePrefix(); el.delPrefix.focus(); });
  el.delPrefixYes.addEventListener('click', async () => {
    const prefix = state.prefix;
    hideDeletePrefix();
    try {
      const resp = await fetch(`/v1/kv?${new URLSearchParams({ prefix })}`, { method: 'DELETE', headers: { Accept: 'application/json' } });
      if (!resp.ok) {
        showError(await problemText(resp));
        return;
      }
      const body = await resp.json();
      showStatus(body.deleted === 0
        ? `No key starts with “${prefix}” any more; nothing was deleted.`
        : `Deleted ${plural(body.deleted, 'key')} starting with “${prefix}” at revision ${body.rev}.`);
      if (body.rev > state.rev) {
        for (const r of rows()) if (r.dataset.key.startsWith(prefix)) state.removed.set(r.dataset.key, body.rev);
      }
      for (const r of rows()) if (r.dataset.key.startsWith(prefix)) removeRow(r.dataset.key, body.rev);
    } catch (_) {
      showError('Could not reach the server, so nothing was deleted.');
    }
  });

  // ---- import and export.
  el.importForm.addEventListener('submit', async (e) => {
    e.preventDefault();
    el.importError.hidden = true;
    el.importStatus.textContent = '';
    const file = el.importFile.files[0];
    if (!file) {
      el.importError.textContent = 'Choose a file to import first.';
      el.importError.hidden = false;
      return;
    }
    if (off.mode === 'offline') {
      el.importError.textContent = 'Importing needs the server; try again when it is back.';
      el.importError.hidden = false;
      return;
    }
    const btn = el.importForm.querySelector('button');
    btn.disabled = true;
    try {
      const url = el.importReplace.checked ? '/v1/import?mode=replace' : '/v1/import';
      const resp = await fetch(url, { method: 'POST', body: file, headers: { Accept: 'application/json', 'Content-Type': 'application/json' } });
      if (!resp.ok) {
        el.importError.textContent = `“${file.name}” was not imported: ${await problemText(resp)}`;
        el.importError.hidden = false;
        return;
      }
      el.importStatus.textContent = importText(file.name, await resp.json());
      loadServerPage(state.after).then(refreshStatus).catch(() => { /* the stream shows the changes */ });
    } catch (_) {
      el.importError.textContent = 'Could not reach the server, so nothing was imported.';
      el.importError.hidden = false;
    } finally {
      btn.disabled = false;
    }
  });

  // Replacing says what it does on the button itself.
  el.importReplace.addEventListener('change', () => {
    el.importButton.textContent = el.importReplace.checked ? 'Import and replace' : 'Import';
  });

  // importText reports an import: the counts of keys added, changed and
  // left unchanged when the server gives them, else how many keys it read.
  function importText(name, r) {
    const n = (x) => (typeof x === 'number' ? x : null);
    const added = n(r.added);
    const changed = n(r.changed);
    const unchanged = n(r.unchanged);
    if (added !== null || changed !== null || unchanged !== null) {
      const parts = [];
      if (added !== null) parts.push(`${plainCount(added)} added`);
      if (changed !== null) parts.push(`${plainCount(changed)} changed`);
      if (unchanged !== null) parts.push(`${plainCount(unchanged)} unchanged`);
      if (n(r.deleted) !== null && (r.mode === 'replace' || r.deleted > 0)) {
        parts.push(`${plainCount(r.deleted)} deleted (not in the file)`);
      }
      if (n(r.expired) !== null && r.expired > 0) parts.push(`${plainCount(r.expired)} skipped as already expired`);
      return `Imported “${name}”: ${parts.join(', ')}.`;
    }
    return `Imported “${name}”: ${plural(r.keys || 0, 'key')} read${r.rev ? `, written at revision ${r.rev}` : ''}.`;
  }

  window.addEventListener('online', () => { if (!sock && !off.manual) { attempt = 0; connect(); } });
  window.addEventListener('offline', () => {
    closeStream();
    goOffline('unreachable');
    setConn('offline', 'offline');
  });
  el.prefix.value = state.prefix;
  for (const r of rows()) enhanceRow(r);
  history.replaceState({ prefix: state.prefix, after: state.after, back: state.back }, '', location.href);
  updatePager();
  setCount(state.count);
  renderCrumbs();
  updateEmpty();
  updateBadge();
  if (!off.manual) loadFolders();
  registerServiceWorker();
  openCopy();
  if (off.manual) goOffline('manual');
  else connect();
}());

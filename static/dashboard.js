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
//     API when the server says the history it needs is gone ("compacted").
'use strict';

(function () {
  const SHORT_RUNES = 60; // as dashboardShortRunes in web/dashboard.go
  const EMBED_BYTES = 16 * 1024; // as dashboardEmbedBytes
  const BACKOFF_MIN_MS = 250;
  const BACKOFF_MAX_MS = 10000;
  const CHANGED_MS = 2500; // how long a changed row stays marked
  const CLOSE_COMPACTED = 4001;
  const CLOSE_LAGGED = 4002;

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
    first: byId('page-first'),
    prev: byId('page-prev'),
    next: byId('page-next'),
  };

  const state = {
    rev: Number(main.dataset.rev), // every change up to rev is on the page
    keys: Number(el.keys.textContent),
    prefix: main.dataset.prefix || '',
    after: main.dataset.after || '', // the cursor the page starts after
    more: main.dataset.more === 'true',
    next: main.dataset.next || '',
    limit: Number(main.dataset.limit) || 50,
    back: [], // cursors of the pages before this one
    loading: null, // events that arrive while a page loads, applied after it
    removed: new Map(), // key -> rev of deletes done by this page, until seen
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
    if (runes.length <= SHORT_RUNES) {
      return node('td', { class: 'value', 'data-testid': 'cell-value' }, node('code', { class: 'short' }, value));
    }
    const size = utf8.encode(value).length;
    const full = size <= EMBED_BYTES
      ? node('pre', { class: 'full', 'data-testid': 'value-full' }, value)
      : node('pre', { class: 'full', 'data-testid': 'value-full', 'data-load': '1' });
    const summary = node('summary', {},
      node('code', { class: 'short' }, runes.slice(0, SHORT_RUNES).join('') + '…'), ' ',
      node('span', { class: 'size' }, sizeText(size)));
    return node('td', { class: 'value', 'data-testid': 'cell-value' }, node('details', {}, summary, full));
  }

  function buildRow(e) {
    const expiry = node('td', { class: 'expiry', 'data-testid': 'cell-expiry' });
    if (e.expires_at) {
      expiry.append(node('time', {
        datetime: new Date(e.expires_at).toISOString(),
        'data-expires': String(e.expires_at),
      }, expiryText(e.expires_at - Date.now())));
    }
    return node('tr', { 'data-testid': 'kv-row', 'data-key': e.key, 'data-rev': String(e.mod_rev) },
      node('td', { class: 'key', 'data-testid': 'cell-key' }, node('code', {}, e.key)),
      valueCell(e.value),
      node('td', { class: 'num', 'data-testid': 'cell-rev' }, String(e.mod_rev)),
      node('td', { class: 'num col-version', 'data-testid': 'cell-version' }, String(e.version)),
      expiry);
  }

  function rows() { return Array.from(el.rows.children); }
  function findRow(key) { return rows().find((r) => r.dataset.key === key); }

  function mark(row) {
    row.classList.add('changed');
    setTimeout(() => row.classList.remove('changed'), CHANGED_MS);
  }

  function updateEmpty() { el.empty.hidden = el.rows.children.length > 0; }

  function pageHref(after) {
    const q = new URLSearchParams();
    if (state.prefix) q.set('prefix', state.prefix);
    if (after) q.set('after', after);
    const s = q.toString();
    return s ? `/?${s}` : '/';
  }

  function updatePager() {
    el.first.hidden = state.after === '';
    el.first.href = pageHref('');
    el.prev.hidden = state.back.length === 0;
    el.prev.href = pageHref(state.back[state.back.length - 1] || '');
    el.next.hidden = !state.more;
    el.next.href = pageHref(state.next);
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
    el.rev.textContent = String(rev);
    for (const [k, r] of state.removed) if (r <= rev) state.removed.delete(k);
  }

  function setKeys(n) {
    state.keys = Math.max(0, n);
    el.keys.textContent = String(state.keys);
  }

  // applyEvent applies one change from the stream.
  function applyEvent(ev) {
    if (ev.type === 'put') {
      if (ev.version === 1) setKeys(state.keys + 1);
    } else {
      setKeys(state.keys - 1);
    }
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
        const text = [p.title, p.detail].filter(Boolean).join(': ');
        if (text) return text;
      } catch (_) { /* not JSON after all */ }
    }
    return `The server answered ${resp.status} ${resp.statusText}.`.replace(' .', '.');
  }

  // loadPage shows the page of keys after the cursor and returns the
  // listing. Events arriving meanwhile are applied after it, if newer.
  async function loadPage(after) {
    const q = new URLSearchParams({ limit: String(state.limit) });
    if (state.prefix) q.set('prefix', state.prefix);
    if (after) q.set('after', after);
    state.loading = state.loading || [];
    try {
      const resp = await fetch(`/v1/kv?${q}`, { headers: { Accept: 'application/json' }, cache: 'no-store' });
      if (!resp.ok) throw new Error(await problemText(resp));
      const page = await resp.json();
      state.after = after || '';
      state.more = Boolean(page.more);
      state.next = page.next || '';
      el.rows.replaceChildren(...page.entries.map(buildRow));
      const queued = state.loading;
      state.loading = null;
      for (const ev of queued) if (ev.rev > page.rev) showEvent(ev);
      updateEmpty();
      updatePager();
      history.replaceState(null, '', pageHref(state.after));
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
        showError(await problemText(resp));
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
      showError(`Could not reach the server: ${err.message}`);
    } finally {
      setBusy(false);
    }
  }

  el.putForm.addEventListener('submit', (e) => {
    e.preventDefault();
    write('put');
  });
  el.del.addEventListener('click', () => write('delete'));

  // ---- search and paging.
  async function go(after, back) {
    try {
      await loadPage(after);
      state.back = back;
      updatePager();
    } catch (err) {
      showError(`Could not load keys: ${err.message}`);
    }
  }

  el.search.addEventListener('submit', (e) => {
    e.preventDefault();
    state.prefix = el.prefix.value;
    go('', []);
  });
  el.next.addEventListener('click', (e) => {
    e.preventDefault();
    go(state.next, [...state.back, state.after]);
  });
  el.prev.addEventListener('click', (e) => {
    e.preventDefault();
    const back = state.back.slice(0, -1);
    go(state.back[state.back.length - 1] || '', back);
  });
  el.first.addEventListener('click', (e) => {
    e.preventDefault();
    go('', []);
  });

  // A value too long to embed is fetched when its disclosure opens.
  el.rows.addEventListener('toggle', async (e) => {
    const details = e.target;
    const pre = details.querySelector && details.querySelector('pre[data-load]');
    if (!details.open || !pre) return;
    const key = details.closest('tr').dataset.key;
    pre.removeAttribute('data-load');
    pre.textContent = 'Loading…';
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

  function setConn(s, text) {
    el.conn.dataset.state = s;
    el.conn.textContent = text;
  }

  function connect() {
    clearTimeout(timer);
    if (sock) return;
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
        first = false;
        attempt = 0;
        setConn('live', 'live');
        if (m.rev > state.rev) setRev(m.rev);
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
      if (resync || e.code === CLOSE_COMPACTED || e.code === CLOSE_LAGGED) {
        resync = true;
        reload();
        return;
      }
      retry();
    };
  }

  function retry() {
    const delay = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** attempt) * (0.5 + Math.random() / 2);
    attempt++;
    setConn('reconnecting', `reconnecting in ${Math.max(1, Math.round(delay / 1000))}s…`);
    timer = setTimeout(resync ? reload : connect, delay);
  }

  // reload shows the current page afresh and watches from its revision.
  async function reload() {
    setConn('resyncing', 'resyncing…');
    try {
      const page = await loadPage(state.after);
      setRev(page.rev);
      resync = false;
      await refreshStatus();
      connect();
    } catch (_) {
      retry(); // resync stays set: reload again on the next close
    }
  }

  window.addEventListener('online', () => { if (!sock) { attempt = 0; connect(); } });
  updatePager();
  connect();
}());

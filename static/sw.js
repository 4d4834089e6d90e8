// PyKV dashboard service worker: keeps the dashboard's shell (the page at
// /), its scripts, styles, icon and the offline copy's WebAssembly in the
// Cache API, so the page opens while the server is down. Plain script, no
// build step; registered by dashboard.js with scope "/" (the server sends it
// with Service-Worker-Allowed: /).
//
// Strategy: network first, cache as the fallback.
//   - Every GET of the shell or an asset goes to the server first; a 200
//     answer is served and stored, so while the server is reachable the page
//     always runs the server's current build (assets are revalidated with
//     their ETags, so an unchanged asset costs a 304, and is not written to
//     the cache again when its ETag matches the stored one).
//   - If the server cannot be reached (or has not answered within
//     NETWORK_TIMEOUT_MS), the stored copy is served: the last build seen.
//   - install stores every asset at once, so the page works offline after
//     its first visit even for files it had not fetched yet.
//   - Nothing else is touched: the API (/v1/...), the docs and sign-in go
//     to the network as if there were no worker.
// CACHE names the layout of the cache; bump it when that changes, and
// activate deletes caches of other versions.
'use strict';

const CACHE = 'pykv-dashboard-v1';
const NETWORK_TIMEOUT_MS = 4000;

const scope = new URL(self.registration.scope); // the dashboard: "/"
const base = new URL('./', self.location); // where the assets are: "/static/"
const shell = new URL('./', scope).href;
const assets = ['dashboard.js', 'dashboard.css', 'cluster.js', 'favicon.svg', 'offline.js', 'wasm/wasm_exec.js', 'wasm/pykv.wasm']
  .map((f) => new URL(f, base).href);
const assetSet = new Set(assets);

self.addEventListener('install', (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(CACHE);
    // One by one: a missing file (a server built without the wasm) must
    // not stop the rest from being kept.
    await Promise.allSettled([shell, ...assets].map(async (url) => {
      const resp = await fetch(url, { cache: 'no-cache', credentials: 'same-origin' });
      if (cacheable(resp)) await cache.put(url, resp);
    }));
    await self.skipWaiting();
  })());
});

self.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) {
      if (name.startsWith('pykv-dashboard-') && name !== CACHE) await caches.delete(name);
    }
    await self.clients.claim();
  })());
});

self.addEventListener('fetch', (event) => {
  const req = event.request;
  if (req.method !== 'GET') return;
  const url = new URL(req.url);
  if (url.origin !== scope.origin) return;
  if (req.mode === 'navigate' && url.pathname === scope.pathname) {
    // Any page of the dashboard (?prefix=, ?after=) falls back to the one
    // stored shell; the script renders the page from the offline copy.
    event.respondWith(networkFirst(event, shell));
    return;
  }
  const plain = url.origin + url.pathname;
  if (assetSet.has(plain)) event.respondWith(networkFirst(event, plain));
});

// cacheable: a whole, successful, same-origin answer (not a redirect to a
// sign-in page, not a partial answer).
function cacheable(resp) {
  return resp && resp.status === 200 && resp.type === 'basic' && !resp.redirected;
}

// networkFirst answers from the server, storing the answer under key, or
// from the cache when the server is unreachable or slow.
async function networkFirst(event, key) {
  const cache = await caches.open(CACHE);
  const network = fetch(event.request).then((resp) => {
    if (cacheable(resp)) event.waitUntil(store(cache, key, resp.clone()));
    return resp;
  });
  network.catch(() => {}); // handled below; not an unhandled rejection
  let timer = 0;
  const timeout = new Promise((resolve) => { timer = setTimeout(resolve, NETWORK_TIMEOUT_MS); });
  try {
    const resp = await Promise.race([network, timeout]);
    if (resp) return resp;
  } catch (_) {
    // unreachable: fall back to the cache below
  } finally {
    clearTimeout(timer);
  }
  const cached = await cache.match(key, { ignoreVary: true });
  if (cached) return cached;
  // Nothing stored: wait for the network after all, or say why it failed.
  try {
    return await network;
  } catch (_) {
    return new Response('PyKV: the server cannot be reached, and this browser has no offline copy of the dashboard yet.\n', {
      status: 503, headers: { 'Content-Type': 'text/plain; charset=utf-8' },
    });
  }
}

// store keeps resp under key, unless the cache holds the same version (same
// ETag) already: the wasm is megabytes, and most loads change nothing.
async function store(cache, key, resp) {
  const tag = resp.headers.get('ETag');
  const old = await cache.match(key, { ignoreVary: true });
  if (old && tag && old.headers.get('ETag') === tag) return;
  await cache.put(key, resp);
}

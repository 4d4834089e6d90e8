// Command wasm is PyKV's offline copy: the engine compiled to WebAssembly,
// kept in the browser's localStorage in the server's own snapshot and log
// format, with the bookkeeping needed to send offline changes back.
//
// # Basics
//
// A copy named N keeps these localStorage items (the prefix is pykv/N/):
//
//	pykv/N/snapshot        the state at some revision, in persist's snapshot format
//	pykv/N/log/<rev>       the records of one write group, in persist's log format;
//	                       <rev> is the group's first revision, 20 digits
//	pykv/N/head            the snapshot's revision, in decimal: other tabs read
//	                       it to find out that they are behind
//	pykv/N/sync            what sync needs: the server revision the copy was last
//	                       loaded from and, for every key changed since, the server
//	                       revision the change was based on (JSON)
//	pykv/N/corrupt/<ms>/…  items that failed their checks, set aside untouched
//
// A write costs one small setItem: the engine's journal encodes the group of
// commands with codec.AppendRecord and stores it under a new log key before
// the engine applies it. Puts and deletes reach Go through two functions the
// module exports rather than through syscall/js, which costs more than the
// write itself (writes_js.go, wire.go). Once the log outgrows both 64 Ki
// UTF-16 units and the snapshot, the copy is folded when the page is idle
// (during writes only at twice that, or past 512 Ki units: foldPressFactor):
// the sync item is written, then the snapshot, then head,
// and only then are the log items the snapshot covers removed, so a tab
// closed at any step reopens to the same state. Recovery loads the snapshot
// and replays the log items in revision order.
//
// # Offline changes and sync
//
// The copy is loaded from the server's export (Rebase). Every key changed
// locally after that is remembered with the server revision it had before
// the first local change (or "absent"): Pending lists them with their local
// value, which is what a sync sends with If-Match (or If-None-Match: *).
// Keys that are not pending hold the server's own revisions. Rebase loads a
// newer export and plays the pending changes over it again, dropping those
// the caller says were settled (sent, or given up for the server's value).
//
// # Caveats
//
// localStorage has no transactions: each setItem is atomic, no more. Damage
// never stops the copy from opening: an item that fails its checks (and
// every log item after it, which no longer has the state it was written
// against) is moved to pykv/N/corrupt/… and reported, and the copy is folded
// at once so that storage and memory agree again. A full localStorage
// (QuotaExceededError) refuses the write with a *QuotaError and changes
// nothing; writes work again once room is freed.
//
// Tabs: writers are serialized across tabs by the JavaScript side with the
// Web Locks API; inside the lock a tab first checks (two small getItems)
// whether another tab wrote since it loaded, and if so reloads from storage
// before writing. Without Web Locks the same check still refuses a write
// that would clash (ErrStale); the JavaScript side reloads and retries once.
// Other tabs' writes also trigger a reload through the storage event.
package main

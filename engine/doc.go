// Package engine is PyKV's in-memory store: a hash map for O(1) reads and
// writes, an ordered index beside it for prefix listing, per-key revisions,
// conditional writes, atomic batches, TTLs and a change feed.
//
// # Basics
//
// Every write is turned into a [Command]: a self-contained, already-checked
// list of changes tagged with the next global revision. Commands are applied
// in revision order by one deterministic function, so the same commands can
// be written to a log ([Journal]), replayed after a crash ([Restore]), sent to
// watchers ([Store.Watch]) and applied to a copy of the store in a browser.
// Conditions and TTLs are resolved before a command is built: a command holds
// absolute expiry times and no conditions, so applying it never depends on the
// clock or on anything but the state before it.
//
// With a [Journal], a write is made durable before it becomes visible: one
// goroutine (the committer) gathers the writes that arrive while the previous
// group is being written, hands them to the journal as one group, and applies
// them to memory only once the journal returns. With Options.InlineCommit the
// writer does the same on its own goroutine, writers taking turns (the
// browser copy, where writes come from one thread). A [Batch] gathers
// writes from one goroutine that reads many clients (web's poller) and
// commits them as one group on that goroutine, taking turns with the
// committer. Without a journal, writes are applied at once under the
// store's lock.
//
// Browsing a large store costs little: [Store.Count] and [Store.Folders]
// rank keys in the ordered index (a counted B-tree) instead of visiting
// them, so a folder of a million keys is counted in O(log² n), and
// [Store.DeletePrefix] gathers the keys under a prefix in the same turn of
// the writers that deletes them, one change per key at one revision. Each
// event of the change feed carries the time the store applied it, and
// [Store.History] reads one key's changes from the feed.
//
// # Caveats
//
// The engine does no I/O and imports neither os nor net/http, so it builds
// for GOOS=js GOARCH=wasm. Expiry times are wall-clock milliseconds; a clock
// that jumps forward expires keys early. The change feed is bounded
// (Options.History, HistoryBytes) and starts afresh at Restore, so
// [Store.History] shows recent changes, not a key's whole past; events of
// replayed commands carry no time.
package engine

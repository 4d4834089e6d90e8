// Package cluster replicates a PyKV store over raft (hashicorp/raft): three
// or more members, each with the whole store, any of which can take over
// when the leader dies, with nothing acknowledged lost.
//
// # Basics
//
// Every write is one engine.Proposal in the raft log: the operations as
// the client asked for them, TTLs already turned into absolute times by
// the proposer, and the proposer's clock reading. A write proposed while
// a raft entry is being replicated waits for the next entry with the
// others that arrived meanwhile (a batch entry: the writes' proposals in
// order, each applied and answered on its own; see batcher), which also
// waits briefly for the last entry's writers to come back. Once a
// majority has the entry durably, every member applies it in log order with
// engine.Store.ApplyProposal, which checks conditions and assigns the
// revision at that moment; so every member has the same revisions, the
// same mod_revs and the same change feed. A write is answered once a
// majority stored it and the leader applied it (Node.Write).
//
// The raft log and the raft votes live in raft.db (raft-boltdb, bbolt,
// with its freelist rebuilt on open rather than written on every commit,
// and the file's holes zero-filled behind it: see boltStore), fsynced on
// every append, with the newest entries of up to 64 KiB cached in memory
// (logCache); entries are JSON, encoded and decoded by hand
// (entrycodec.go); raft
// snapshots in snapshots/. They are the only
// persistence of a member: there is no separate log whose applied position
// is kept apart from the state. A raft snapshot is one JSON header line
// (format "pykv.cluster": the applied index and the members' API
// addresses) followed by a snapshot in persist's format.
//
// Reads: Node.ReadIndex, on the leader, returns an index covering every
// acknowledged write, after confirming this member still leads: by
// asking other voters whether they follow it in its term
// (Options.PeerCheck; one at a time while a majority can still say yes),
// or without that by committing a barrier entry. Concurrent reads share
// one round; a member
// that has applied that index (Node.WaitApplied) answers a linearizable
// read from its own copy. Node.Store serves reads that may be stale.
//
// Member traffic is TCP with mutual TLS (Options.PeerTLS); plain TCP is
// refused beyond loopback.
//
// # Caveats
//
// hashicorp/raft's heartbeat fast path races its main loop and can let
// logs diverge after a partition heals (hashicorp/raft#695). The transport
// here declines the fast path (see transport); heartbeats queue behind
// other RPCs in the main loop instead, so a very busy follower may answer
// them later. Expiry is proposed by the leader: keys whose TTL ran out are
// invisible to reads at once on every member, but their removal (an
// expire change in the feed) comes from the leader, so it waits while
// there is none. Members are told apart by ID; reusing the ID of a removed
// member for a new, empty member is allowed and makes it join afresh.
package cluster

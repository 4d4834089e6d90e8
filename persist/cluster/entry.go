package cluster

import (
	"errors"

	"github.com/pykv/pykv/engine"
)

// Kinds of raft log entries the FSM applies.
const (
	kindWrite  = "write"  // a transaction: engine.Proposal with Ops
	kindExpire = "expire" // keys whose TTL ran out: engine.Proposal with Expire
	kindMember = "member" // a member's HTTP API address
	kindForget = "forget" // a removed member's address is dropped
	kindBatch  = "batch"  // several entries of the kinds above, applied in order
)

// entry is one raft log entry, as JSON: the same bytes on every member, so
// the FSM applies the same thing everywhere. It never holds a relative time.
// The JSON is what encoding/json makes of this struct, written and read by
// hand in entrycodec.go: a change to a field here needs one there.
type entry struct {
	Kind   string     `json:"kind"`
	At     int64      `json:"at,omitempty"` // proposer's clock, Unix ms
	Ops    []entryOp  `json:"ops,omitempty"`
	Expire []entryExp `json:"expire,omitempty"`
	ID     string     `json:"id,omitempty"`  // member entries
	API    string     `json:"api,omitempty"` // member entries
	// Batch holds a batch entry's entries (never batches themselves).
	Batch []entry `json:"batch,omitempty"`
}

type entryOp struct {
	Op        engine.ChangeType `json:"op"`
	Key       string            `json:"key"`
	Value     string            `json:"value,omitempty"`
	ExpiresAt int64             `json:"expires_at,omitempty"`
	IfRev     int64             `json:"if_rev,omitempty"`
}

type entryExp struct {
	Key string `json:"key"`
	At  int64  `json:"at"`
}

// errBadEntry: a log entry that does not decode. Members only append
// entries they encoded, so this means damage or a newer member's format.
var errBadEntry = errors.New("malformed raft log entry")

// proposal returns the engine proposal a write or expire entry holds.
func (e *entry) proposal() *engine.Proposal {
	p := &engine.Proposal{At: e.At}
	for _, op := range e.Ops {
		p.Ops = append(p.Ops, engine.Op{Type: op.Op, Key: op.Key, Value: op.Value, ExpiresAt: op.ExpiresAt, IfRev: op.IfRev})
	}
	for _, x := range e.Expire {
		p.Expire = append(p.Expire, engine.ExpiryKey{Key: x.Key, At: x.At})
	}
	return p
}

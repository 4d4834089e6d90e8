package web

import (
	"bytes"
	"encoding/json"
	"net/http"
	"time"

	"github.com/pykv/pykv/engine"
)

// txnRequest is the body of POST /v1/txn.
type txnRequest struct {
	Ops []txnOp `json:"ops"`
}

// txnOp is one operation of a transaction. A put needs a value; if_rev
// (the key's mod_rev must be this) and if_absent (the key must not exist)
// are the conditions, at most one per operation.
type txnOp struct {
	Op       string   `json:"op"`
	Key      string   `json:"key"`
	Value    *string  `json:"value,omitempty"`
	TTL      ttlField `json:"ttl,omitzero"`
	IfRev    *int64   `json:"if_rev,omitempty"`
	IfAbsent bool     `json:"if_absent,omitempty"`
}

// ttlField is a TTL in JSON: a duration string ("30s") or a number of seconds.
type ttlField struct{ d time.Duration }

func (t *ttlField) UnmarshalJSON(b []byte) error {
	if bytes.Equal(b, []byte("null")) {
		return nil
	}
	var s string
	if len(b) > 0 && b[0] == '"' {
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
	} else {
		s = string(b)
	}
	d, err := parseTTL(s)
	if err != nil {
		return err
	}
	t.d = d
	return nil
}

func (t ttlField) IsZero() bool { return t.d == 0 }

func (t ttlField) MarshalJSON() ([]byte, error) { return json.Marshal(t.d.String()) }

// txnResponse is the answer to a transaction: the revision its changes got
// (the current revision if it changed nothing) and one result per operation.
type txnResponse struct {
	Rev     int64       `json:"rev"`
	Results []txnResult `json:"results"`
}

// txnResult is what one operation did: a put gives the new entry, a
// delete whether the key existed.
type txnResult struct {
	Op      string        `json:"op"`
	Key     string        `json:"key"`
	Entry   *engine.Entry `json:"entry,omitempty"`
	Deleted *bool         `json:"deleted,omitempty"`
}

// ops checks the request's shape and turns it into engine operations.
func (t *txnRequest) ops() ([]engine.Op, error) {
	if t.Ops == nil {
		return nil, badRequest(`The body must hold "ops", a list of operations.`)
	}
	ops := make([]engine.Op, len(t.Ops))
	for i, o := range t.Ops {
		op := engine.Op{Key: o.Key, TTL: o.TTL.d}
		switch o.Op {
		case "put":
			op.Type = engine.OpPut
			if o.Value == nil {
				return nil, badRequest(`Operation %d (put %q) has no "value".`, i, o.Key)
			}
			op.Value = *o.Value
		case "delete":
			op.Type = engine.OpDelete
			if o.Value != nil || o.TTL.d != 0 {
				return nil, badRequest(`Operation %d (delete %q) must not have a "value" or "ttl".`, i, o.Key)
			}
		case "":
			return nil, badRequest(`Operation %d has no "op"; it must be "put" or "delete".`, i)
		default:
			return nil, badRequest(`Operation %d has op %q; it must be "put" or "delete".`, i, o.Op)
		}
		switch {
		case o.IfRev != nil && o.IfAbsent:
			return nil, badRequest(`Operation %d has both "if_rev" and "if_absent"; give one condition.`, i)
		case o.IfRev != nil && *o.IfRev <= 0:
			return nil, badRequest(`Operation %d has "if_rev" %d; revisions start at 1 (use "if_absent" for a key that must not exist).`, i, *o.IfRev)
		case o.IfRev != nil:
			op.IfRev = *o.IfRev
		case o.IfAbsent:
			op.IfRev = engine.Absent
		}
		ops[i] = op
	}
	return ops, nil
}

// handleTxn carries out a batch atomically: all operations under one
// revision, or none. A failed condition answers 409 naming the operation,
// its key and the revision the key had.
func (s *server) handleTxn(w http.ResponseWriter, r *http.Request) {
	var req txnRequest
	if err := decode(w, r, s.opts.MaxBodyBytes, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	ops, err := req.ops()
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	res, err := s.write(w, r, ops, false)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := txnResponse{Rev: res.Rev, Results: make([]txnResult, len(res.Results))}
	for i, rr := range res.Results {
		tr := txnResult{Op: string(ops[i].Type), Key: ops[i].Key}
		if ops[i].Type == engine.OpPut {
			e := rr.Entry
			tr.Entry = &e
		} else {
			d := rr.Deleted
			tr.Deleted = &d
		}
		out.Results[i] = tr
	}
	encode(w, http.StatusOK, out)
}

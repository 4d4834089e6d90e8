package web

import (
	"net/http"

	"github.com/pykv/pykv/persist"
	"github.com/pykv/pykv/persist/cluster"
)

// health is the answer of /healthz and /readyz.
type health struct {
	Status string `json:"status"` // "ok"
}

// handleHealthz answers 200 as long as the process serves HTTP.
func (s *server) handleHealthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	encode(w, http.StatusOK, health{Status: "ok"})
}

// handleReadyz answers 200 while the store is open and takes writes, 503
// (with the reason) once it refuses them.
func (s *server) handleReadyz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if err := s.writable(); err != nil {
		s.writeError(w, r, err)
		return
	}
	encode(w, http.StatusOK, health{Status: "ok"})
}

// writable returns why the store cannot take writes, or nil.
func (s *server) writable() error {
	if s.db == nil {
		return nil
	}
	if err := s.db.Err(); err != nil {
		return err
	}
	return nil
}

// statusInfo is the answer of /v1/status: the persistence status plus the
// limits a client must respect.
type statusInfo struct {
	persist.Status
	Limits limits `json:"limits"`
	// Raft is the member's raft state, in cluster mode only.
	Raft *cluster.Status `json:"raft,omitempty"`
}

// limits are the sizes the server accepts.
type limits struct {
	MaxKeyBytes    int   `json:"max_key_bytes"`
	MaxValueBytes  int   `json:"max_value_bytes"`
	MaxTxnOps      int   `json:"max_txn_ops"`
	MaxBodyBytes   int64 `json:"max_body_bytes"`
	MaxImportBytes int64 `json:"max_import_bytes"`
}

// handleStatus answers the revision, key count, durability mode, log and
// snapshot sizes and the last recovery report.
func (s *server) handleStatus(w http.ResponseWriter, r *http.Request) {
	var info statusInfo
	if s.db != nil {
		info.Status = s.db.Status()
	} else {
		info.Status = persist.Status{Rev: s.store.Rev(), Keys: s.store.Len(), Sync: "memory"}
	}
	info.Limits.MaxKeyBytes, info.Limits.MaxValueBytes, info.Limits.MaxTxnOps = s.store.Limits()
	info.Limits.MaxBodyBytes, info.Limits.MaxImportBytes = s.opts.MaxBodyBytes, s.opts.MaxImportBytes
	if s.cluster != nil {
		st := s.cluster.node.Status()
		info.Raft = &st
	}
	w.Header().Set("Cache-Control", "no-store")
	encode(w, http.StatusOK, info)
}

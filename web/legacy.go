package web

import (
	"net/http"

	"github.com/pykv/pykv/engine"
)

// The original PyKV endpoints, kept for its clients: JSON in and out, and
// 404 with a "detail" member (as FastAPI's errors have) for a missing key.

// legacyPair is the body of POST /put and the answer of GET /get/{key}.
type legacyPair struct {
	Key   *string `json:"key"`
	Value *string `json:"value"`
}

// legacyStored is the answer to POST /put and DELETE /delete/{key}.
type legacyStored struct {
	Status string `json:"status"` // always "ok"
	Key    string `json:"key"`
	Rev    int64  `json:"rev"`
}

// handleLegacyPut stores {"key","value"}.
func (s *server) handleLegacyPut(w http.ResponseWriter, r *http.Request) {
	var p legacyPair
	if err := decode(w, r, s.opts.MaxBodyBytes, &p); err != nil {
		s.writeError(w, r, err)
		return
	}
	if p.Key == nil || p.Value == nil {
		s.writeError(w, r, badRequest(`The body must hold "key" and "value", both strings.`))
		return
	}
	e, err := s.do(w, r, engine.Op{Type: engine.OpPut, Key: *p.Key, Value: *p.Value})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	encode(w, http.StatusOK, legacyStored{Status: "ok", Key: e.Key, Rev: e.ModRev})
}

// handleLegacyGet answers {"key","value"}.
func (s *server) handleLegacyGet(w http.ResponseWriter, r *http.Request) {
	key, err := keyParam(r, "/get/")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	e, err := s.store.Get(key)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	encode(w, http.StatusOK, legacyPair{Key: &e.Key, Value: &e.Value})
}

// handleLegacyDelete removes a key.
func (s *server) handleLegacyDelete(w http.ResponseWriter, r *http.Request) {
	key, err := keyParam(r, "/delete/")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	e, err := s.do(w, r, engine.Op{Type: engine.OpDelete, Key: key})
	rev := e.ModRev
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	encode(w, http.StatusOK, legacyStored{Status: "ok", Key: key, Rev: rev})
}

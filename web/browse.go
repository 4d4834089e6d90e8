package web

import (
	"net/http"
	"strconv"

	"github.com/pykv/pykv/engine"
)

// Bounds of GET /v1/folders.
const (
	// DefaultFolderLimit and MaxFolderLimit bound the folders of one answer.
	DefaultFolderLimit = 100
	MaxFolderLimit     = 1000
	// folderSteps bounds the keys directly under the prefix (no further
	// "/") stepped over in one answer: each folder costs O(log² n) however
	// many keys it holds, but loose keys are visited one by one, and a
	// million of them must not make every page load read them all.
	folderSteps = 10_000
	// DefaultHistoryLimit bounds the changes GET /v1/history returns.
	DefaultHistoryLimit = 100
	MaxHistoryLimit     = 10_000
)

// prefixDeleted is the answer to DELETE /v1/kv?prefix=.
type prefixDeleted struct {
	Prefix  string `json:"prefix"`
	Deleted int    `json:"deleted"` // keys removed
	Rev     int64  `json:"rev"`     // the revision of the deletion; the current one if none was removed
}

// handleKVDeletePrefix removes every key under ?prefix= atomically, at one
// revision. An empty or missing prefix would remove everything, so it is
// refused unless ?all=true asks for exactly that.
func (s *server) handleKVDeletePrefix(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	prefix := q.Get("prefix")
	all := q.Get("all")
	switch {
	case all != "" && all != "true" && all != "false":
		s.writeError(w, r, badRequest("all must be true or false, not %q.", all))
		return
	case prefix == "" && all != "true":
		s.writeError(w, r, badRequest("Say which keys to delete with ?prefix=…; to delete every key, ask with ?all=true."))
		return
	case prefix != "" && all == "true":
		s.writeError(w, r, badRequest("Give either a prefix or all=true, not both."))
		return
	}
	if r.Header.Get("If-Match") != "" || r.Header.Get("If-None-Match") != "" {
		s.writeError(w, r, badRequest("A delete by prefix takes no If-Match or If-None-Match; use a transaction to delete keys on conditions."))
		return
	}
	rev, n, err := s.deletePrefix(w, r, prefix)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	encode(w, http.StatusOK, prefixDeleted{Prefix: prefix, Deleted: n, Rev: rev})
}

// folderPage is the answer to GET /v1/folders.
type folderPage struct {
	Prefix  string          `json:"prefix"`
	Count   int             `json:"count"` // keys starting with prefix
	Folders []engine.Folder `json:"folders"`
	More    bool            `json:"more"`           // folders may follow: ask again with after=next
	Next    string          `json:"next,omitempty"` // the after= of the next page, when More
	Rev     int64           `json:"rev"`
}

// handleFolders lists the next level of "folders" under ?prefix= (keys
// read as paths split at "/") with the number of keys in each, and the
// number of keys under the prefix. Its cost grows with the folders listed
// and the loose keys stepped over (at most folderSteps), not with the keys
// in the folders.
func (s *server) handleFolders(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, err := limitParam(q.Get("limit"), DefaultFolderLimit, MaxFolderLimit)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	prefix := q.Get("prefix")
	var p folderPage
	p.Prefix = prefix
	p.Folders, p.More, p.Next, p.Rev = s.store.Folders(prefix, q.Get("after"), limit, folderSteps)
	if p.Folders == nil {
		p.Folders = []engine.Folder{}
	}
	p.Count = s.store.Count(prefix)
	encode(w, http.StatusOK, p)
}

// limitParam reads a ?limit= of at least 1; above max counts as max.
func limitParam(v string, def, max int) (int, error) {
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return 0, badRequest("The limit must be a positive whole number, not %q.", v)
	}
	return min(n, max), nil
}

// keyChange is one change of a key in GET /v1/history.
type keyChange struct {
	Type      engine.ChangeType `json:"type"` // put, delete or expire
	Rev       int64             `json:"rev"`
	Value     *string           `json:"value,omitempty"` // puts only
	Version   int64             `json:"version,omitempty"`
	ExpiresAt int64             `json:"expires_at,omitempty"`
	Time      int64             `json:"time,omitempty"` // Unix ms when applied; absent when not known
}

// keyHistory is the answer to GET /v1/history/{key}.
type keyHistory struct {
	Key     string      `json:"key"`
	Changes []keyChange `json:"changes"` // newest first
	More    bool        `json:"more"`    // older changes held beyond limit
	From    int64       `json:"from"`    // every change after this revision is held; older ones may be missing
	Rev     int64       `json:"rev"`     // the store's revision when read
}

// handleHistory lists the changes of one key that the server's change
// history (the same one /v1/watch resumes from) still holds, newest first.
// A key with no change held answers 200 with no changes: it may never have
// existed, or its changes are older than from.
func (s *server) handleHistory(w http.ResponseWriter, r *http.Request) {
	key, err := keyParam(r, "/v1/history/")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	limit, err := limitParam(r.URL.Query().Get("limit"), DefaultHistoryLimit, MaxHistoryLimit)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	rev := s.store.Rev()
	revs, more, from := s.store.History(key, limit)
	h := keyHistory{Key: key, Changes: make([]keyChange, 0, len(revs)), More: more, From: from, Rev: rev}
	for _, kr := range revs {
		c := keyChange{Type: kr.Type, Rev: kr.Rev, Time: kr.Time}
		if kr.Entry != nil {
			c.Value = &kr.Entry.Value
			c.Version = kr.Entry.Version
			c.ExpiresAt = kr.Entry.ExpiresAt
		}
		h.Changes = append(h.Changes, c)
	}
	encode(w, http.StatusOK, h)
}

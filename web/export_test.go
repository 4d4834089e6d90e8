package web

import (
	"log/slog"
	"net/http"
)

// WriteErrorForTest answers err as the server's handlers do.
func WriteErrorForTest(w http.ResponseWriter, r *http.Request, err error) {
	s := &server{log: slog.New(slog.DiscardHandler)}
	s.writeError(w, r, err)
}

// NewServerChiOnly is NewServer without the key routes' fast path: every
// request goes through chi (see router).
func NewServerChiOnly(opts Options) http.Handler { return newServer(opts, true) }

package web

import (
	"errors"
	"log/slog"
	"net/http"

	"github.com/pykv/pykv/engine"
	"github.com/pykv/pykv/persist"
	"github.com/pykv/pykv/persist/codec"
)

// handleExport streams the whole store in the snapshot format, consistent
// at one revision. An error after the first byte cannot change the status,
// so the connection is cut instead: the client sees a truncated download,
// never a complete-looking wrong one.
func (s *server) handleExport(w http.ResponseWriter, r *http.Request) {
	if s.db == nil {
		s.writeError(w, r, errStatus(http.StatusServiceUnavailable, "This server has no persistence to export from."))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Disposition", `attachment; filename="pykv-export.json"`)
	w.Header().Set("Cache-Control", "no-store")
	cw := &countingWriter{w: w}
	if err := s.db.Export(cw); err != nil {
		if cw.n == 0 {
			w.Header().Del("Content-Disposition")
			s.writeError(w, r, err)
			return
		}
		s.log.LogAttrs(r.Context(), slog.LevelError, "export failed", slog.Int64("bytes_sent", cw.n), slog.String("err", err.Error()))
		panic(http.ErrAbortHandler)
	}
}

// countingWriter counts the bytes written through it.
type countingWriter struct {
	w http.ResponseWriter
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// handleImport loads a snapshot (as export writes it) or an original PyKV
// flat file ({"key": "value", ...}) as one write: keys whose value and
// expiry are unchanged are skipped, and with ?mode=replace the keys the
// file does not hold are deleted in the same write. The body is read as a
// stream, never whole.
func (s *server) handleImport(w http.ResponseWriter, r *http.Request) {
	if s.db == nil {
		s.writeError(w, r, errStatus(http.StatusServiceUnavailable, "This server has no persistence to import into."))
		return
	}
	if err := requireJSON(r); err != nil {
		s.writeError(w, r, err)
		return
	}
	mode, err := persist.ParseImportMode(r.URL.Query().Get("mode"))
	if err != nil {
		s.writeError(w, r, badRequest("mode must be merge (the default: keys the file does not hold are kept) or replace (they are deleted), not %q.", r.URL.Query().Get("mode")))
		return
	}
	body := http.MaxBytesReader(w, r.Body, s.opts.MaxImportBytes)
	var res persist.ImportResult
	if s.cluster != nil {
		res, err = codec.ImportThrough(s.store, body, mode, func(ops []engine.Op) (engine.TxnResult, error) {
			return s.write(w, r, ops, true)
		})
	} else {
		res, err = s.db.Import(body, mode)
	}
	if err != nil {
		if errors.Is(err, persist.ErrBadImport) {
			err = badRequest("The file cannot be imported: %v. Send a snapshot as GET /v1/export writes it, or a flat JSON object of string values.", err)
		}
		s.writeError(w, r, err)
		return
	}
	encode(w, http.StatusOK, res)
}

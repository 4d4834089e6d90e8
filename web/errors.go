package web

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"syscall"

	"github.com/pykv/pykv/engine"
)

// Problem is an error answer in the RFC 9457 "problem details" shape, sent as
// application/problem+json. Type is a stable URN a program can switch on;
// Title is the same for every problem of a type; Detail is written for the
// person reading it. Key and CurrentRev are extension members set when the
// problem concerns one key (a failed condition tells the key's revision).
type Problem struct {
	Type       string `json:"type"`
	Title      string `json:"title"`
	Status     int    `json:"status"`
	Detail     string `json:"detail"`
	Key        string `json:"key,omitempty"`
	CurrentRev *int64 `json:"current_rev,omitempty"`
	OpIndex    *int   `json:"op_index,omitempty"`
}

// problemTypes gives each status its type URN and title.
var problemTypes = map[int][2]string{
	http.StatusBadRequest:                   {"urn:pykv:problem:bad-request", "The request is not valid"},
	http.StatusUnauthorized:                 {"urn:pykv:problem:unauthorized", "A valid token is required"},
	http.StatusForbidden:                    {"urn:pykv:problem:forbidden", "The token does not allow this"},
	http.StatusNotFound:                     {"urn:pykv:problem:not-found", "Not found"},
	http.StatusMethodNotAllowed:             {"urn:pykv:problem:method-not-allowed", "Method not allowed"},
	http.StatusNotAcceptable:                {"urn:pykv:problem:not-acceptable", "Not acceptable"},
	http.StatusConflict:                     {"urn:pykv:problem:txn-conflict", "A transaction condition failed"},
	http.StatusPreconditionFailed:           {"urn:pykv:problem:precondition-failed", "The key's revision does not match"},
	http.StatusRequestEntityTooLarge:        {"urn:pykv:problem:too-large", "The request is too large"},
	http.StatusUnsupportedMediaType:         {"urn:pykv:problem:unsupported-media-type", "Unsupported content type"},
	http.StatusTooManyRequests:              {"urn:pykv:problem:too-many-requests", "Too many requests"},
	http.StatusInternalServerError:          {"urn:pykv:problem:internal", "Internal server error"},
	http.StatusServiceUnavailable:           {"urn:pykv:problem:unavailable", "The store cannot take writes"},
	http.StatusInsufficientStorage:          {"urn:pykv:problem:disk-full", "The disk is full"},
	http.StatusRequestHeaderFieldsTooLarge:  {"urn:pykv:problem:headers-too-large", "Request headers too large"},
	http.StatusRequestedRangeNotSatisfiable: {"urn:pykv:problem:range", "Range not satisfiable"},
	http.StatusMisdirectedRequest:           {"urn:pykv:problem:wrong-host", "This server does not answer for that host name"},
	http.StatusNotImplemented:               {"urn:pykv:problem:not-implemented", "Not implemented"},
	http.StatusHTTPVersionNotSupported:      {"urn:pykv:problem:http-version", "HTTP version not supported"},
}

// crossOriginProblem is the 403 of a cross-site browser request: a problem
// of its own type, since it has nothing to do with tokens.
func crossOriginProblem(detail string) *Problem {
	return &Problem{Type: "urn:pykv:problem:cross-origin", Title: "Cross-origin browser requests are refused",
		Status: http.StatusForbidden, Detail: detail}
}

// newProblem builds a problem of the given status with a detail message.
func newProblem(status int, detail string) *Problem {
	t, ok := problemTypes[status]
	if !ok {
		t = [2]string{"about:blank", http.StatusText(status)}
	}
	return &Problem{Type: t[0], Title: t[1], Status: status, Detail: detail}
}

// requestError is an error the handlers raise about the request itself:
// it carries the status to answer and a message for the client.
type requestError struct {
	status int
	msg    string
}

func (e *requestError) Error() string { return e.msg }

// badRequest returns a 400 error with a formatted message.
func badRequest(format string, args ...any) error {
	return &requestError{http.StatusBadRequest, fmt.Sprintf(format, args...)}
}

// errStatus returns an error answered with status and msg.
func errStatus(status int, format string, args ...any) error {
	return &requestError{status, fmt.Sprintf(format, args...)}
}

// preconditionFailed turns a failed condition into the 412 problem of a
// conditional request, telling the key's current revision.
func preconditionFailed(err error, ifRev int64) error {
	var ce *engine.ConditionError
	if !errors.As(err, &ce) {
		return err
	}
	var msg string
	switch {
	case ifRev == engine.Absent:
		msg = fmt.Sprintf("The key already exists (at revision %d); If-None-Match: * allows only creating it.", ce.Have)
	case ce.Have == 0:
		msg = "The key does not exist, so it cannot match If-Match."
	default:
		msg = fmt.Sprintf("The key is at revision %d, not %d as If-Match asked; read it again and retry.", ce.Have, ifRev)
	}
	return &conditionFailed{ce: ce, msg: msg}
}

// conditionFailed is a failed If-Match or If-None-Match: a 412.
type conditionFailed struct {
	ce  *engine.ConditionError
	msg string
}

func (e *conditionFailed) Error() string { return e.msg }

// classify maps an error to the problem a client is told. internal reports
// whether the error is the server's fault (and so worth logging). Writes are
// refused with 503 after the persistence layer failed (reads keep working),
// 507 when the disk is full.
func (s *server) classify(err error) (p *Problem, internal bool) {
	var (
		re   *requestError
		ce   *engine.ConditionError
		oe   *engine.OpError
		mbe  *http.MaxBytesError
		cf   *conditionFailed
		opIx *int
		key  string
	)
	if errors.As(err, &oe) {
		ix := oe.Index
		opIx, key = &ix, oe.Key
	}
	if cp := classifyCluster(err); cp != nil {
		return cp, false
	}
	switch {
	case errors.As(err, &re):
		p = newProblem(re.status, re.msg)
	case errors.As(err, &mbe):
		p = newProblem(http.StatusRequestEntityTooLarge,
			fmt.Sprintf("The request body is larger than the limit of %d bytes.", mbe.Limit))
	case errors.As(err, &cf):
		have := cf.ce.Have
		p = newProblem(http.StatusPreconditionFailed, cf.msg)
		p.Key, p.CurrentRev = cf.ce.Key, &have
		return p, false
	case errors.As(err, &ce):
		// Callers that want 412 (If-Match on /v1/kv) turn this into a
		// requestError themselves; in a transaction it is a 409.
		have := ce.Have
		ix := ce.Index
		p = newProblem(http.StatusConflict, ce.Error()+".")
		p.Key, p.CurrentRev, p.OpIndex = ce.Key, &have, &ix
		return p, false
	case errors.Is(err, engine.ErrNotFound):
		p = newProblem(http.StatusNotFound, "The key does not exist (or has expired).")
	case errors.Is(err, engine.ErrKeyTooLarge):
		maxKey, _, _ := s.store.Limits()
		p = newProblem(http.StatusRequestEntityTooLarge, fmt.Sprintf("The key is longer than the limit of %d bytes.", maxKey))
	case errors.Is(err, engine.ErrValueTooLarge):
		_, maxValue, _ := s.store.Limits()
		p = newProblem(http.StatusRequestEntityTooLarge, fmt.Sprintf("The value is longer than the limit of %d bytes.", maxValue))
	case errors.Is(err, engine.ErrTxnTooLarge):
		_, _, maxOps := s.store.Limits()
		p = newProblem(http.StatusBadRequest, fmt.Sprintf("A transaction may hold at most %d operations.", maxOps))
	case errors.Is(err, engine.ErrEmptyKey):
		p = newProblem(http.StatusBadRequest, "The key is empty; keys must be at least one byte long.")
	case errors.Is(err, engine.ErrInvalidUTF8):
		p = newProblem(http.StatusBadRequest, "Keys and values must be valid UTF-8 text.")
	case errors.Is(err, engine.ErrTTLTooLong):
		p = newProblem(http.StatusBadRequest, "The TTL is longer than the limit of 100 years.")
	case errors.Is(err, engine.ErrBadTTL):
		p = newProblem(http.StatusBadRequest, "The TTL must not be negative.")
	case errors.Is(err, engine.ErrBadOp):
		p = newProblem(http.StatusBadRequest, `The operation must be "put" or "delete".`)
	case errors.Is(err, engine.ErrEmptyTxn):
		p = newProblem(http.StatusBadRequest, "The transaction has no operations.")
	case errors.Is(err, syscall.ENOSPC):
		p = newProblem(http.StatusInsufficientStorage, "The server's disk is full; the write was not made. Reads keep working.")
		internal = true
	case isUnavailable(err):
		p = newProblem(http.StatusServiceUnavailable, "The store refuses writes after a storage failure until the server is restarted; this write was not acknowledged (one that failed while being flushed may still appear after the restart). Reads keep working.")
		internal = true
	case errors.Is(err, engine.ErrClosed):
		p = newProblem(http.StatusServiceUnavailable, "The server is shutting down.")
	default:
		p = newProblem(http.StatusInternalServerError, "Something went wrong on the server; it has been logged.")
		internal = true
	}
	if opIx != nil && p.Status != http.StatusInternalServerError {
		p.OpIndex, p.Key = opIx, key
	}
	return p, internal
}

// writeError answers err as a problem. Internal errors are logged; client
// errors are not, since they are the client's to read. A request whose
// client has gone away is answered with nothing.
func (s *server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		return
	}
	p, internal := s.classify(err)
	if internal {
		s.log.LogAttrs(r.Context(), slog.LevelError, "request failed",
			slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.Int("status", p.Status), slog.String("err", err.Error()))
	}
	writeProblem(w, p)
}

// writeProblem sends p.
func writeProblem(w http.ResponseWriter, p *Problem) {
	w.Header()["Content-Type"] = hdrProblemJSON
	w.Header()["X-Content-Type-Options"] = hdrNosniff
	w.WriteHeader(p.Status)
	_ = jsonEncode(w, p)
}

package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"unsafe"
)

// jsonEncode writes v as one line of JSON, with HTML left unescaped so keys
// and values read as they are.
func jsonEncode(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// encode answers status with v as JSON. An encoding error can only come from
// the connection (the types sent are all plain), so it is dropped.
func encode(w http.ResponseWriter, status int, v any) {
	w.Header()["Content-Type"] = hdrJSON
	w.WriteHeader(status)
	_ = jsonEncode(w, v)
}

// decode reads the request body, at most limit bytes, as JSON into v. It
// returns a requestError a client can act on: 415 for a content type other
// than JSON (none at all is accepted), 413 past the limit, 400 for malformed
// JSON, unknown fields or trailing data.
func decode(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	if err := requireJSON(r); err != nil {
		return err
	}
	body := http.MaxBytesReader(w, r.Body, limit)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		return badRequest("The body holds more than one JSON value.")
	}
	return nil
}

// requireJSON refuses a body whose declared type is not JSON.
func requireJSON(r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return nil
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
		return errStatus(http.StatusUnsupportedMediaType,
			"The body must be JSON (Content-Type: application/json), not %q.", ct)
	}
	return nil
}

// jsonError turns a decoding error into a message naming what is wrong and where.
func jsonError(err error) error {
	var (
		syn *json.SyntaxError
		typ *json.UnmarshalTypeError
		mbe *http.MaxBytesError
	)
	switch {
	case errors.As(err, &mbe):
		return err
	case errors.Is(err, io.EOF):
		return badRequest("The body is empty; a JSON object was expected.")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("The body ends in the middle of a JSON value.")
	case errors.As(err, &syn):
		return badRequest("The body is not valid JSON (at byte %d): %v.", syn.Offset, syn)
	case errors.As(err, &typ):
		if typ.Field != "" {
			return badRequest("Field %q must be %s, not a JSON %s.", typ.Field, jsonTypeName(typ.Type.Kind().String()), typ.Value)
		}
		return badRequest("The body must be a JSON object, not a JSON %s.", typ.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return badRequest("The body has an unknown field %s.", strings.TrimPrefix(err.Error(), "json: unknown field "))
	default:
		var re *requestError
		if errors.As(err, &re) {
			return err // from a field's UnmarshalJSON
		}
		return badRequest("The body could not be read as JSON: %v.", err)
	}
}

func jsonTypeName(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "int", "int64", "int32", "uint", "uint64", "float64":
		return "a number"
	case "slice":
		return "an array"
	case "struct", "map", "ptr":
		return "an object"
	}
	return "a " + kind
}

// readValue reads the whole request body as a string, at most limit bytes
// (413 past it). It is the value of a PUT, the store's hot write path, so
// when the length is declared (and within the limit) it costs one
// allocation: net/http's body already ends after that many bytes, so no
// MaxBytesReader is needed, and the bytes read become the string without a
// copy (nothing else holds them, and nothing writes them again).
func readValue(w http.ResponseWriter, r *http.Request, limit int64) (string, error) {
	if n := r.ContentLength; n >= 0 && n <= limit {
		if n == 0 {
			return "", nil
		}
		b := make([]byte, n)
		if _, err := io.ReadFull(r.Body, b); err != nil {
			return "", fmt.Errorf("read request body: %w", err)
		}
		return unsafe.String(&b[0], len(b)), nil
	}
	var buf bytes.Buffer // length unknown (chunked): read in pieces
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return "", err
		}
		return "", fmt.Errorf("read request body: %w", err)
	}
	return buf.String(), nil
}

package web_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
)

// specChecker checks answers against openapi.json: the path and method are
// described, the status is one the operation lists, the content type is
// one it lists, and a JSON body matches its schema (types, required
// fields, enums, nested objects and arrays, $ref, oneOf).
type specChecker struct {
	doc   map[string]any
	paths []string
}

// loadSpec fetches /openapi.json from h.
func loadSpec(tb testing.TB, h http.Handler) *specChecker {
	tb.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "http://127.0.0.1/openapi.json", nil))
	if rec.Code != http.StatusOK {
		tb.Fatalf("GET /openapi.json: status %d", rec.Code)
	}
	var doc map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
		tb.Fatalf("GET /openapi.json: %v", err)
	}
	c := &specChecker{doc: doc}
	for p := range doc["paths"].(map[string]any) {
		c.paths = append(c.paths, p)
	}
	sort.Strings(c.paths)
	return c
}

// findPath returns the spec path template matching an escaped request
// path: a {param} matches one segment.
func (c *specChecker) findPath(escaped string) (string, bool) {
	segs := strings.Split(escaped, "/")
	for _, p := range c.paths {
		ps := strings.Split(p, "/")
		// A trailing {param} may hold unencoded slashes (a key).
		if len(ps) != len(segs) && !(len(segs) > len(ps) && strings.HasPrefix(ps[len(ps)-1], "{")) {
			continue
		}
		match := true
		for i := range ps {
			if strings.HasPrefix(ps[i], "{") {
				continue
			}
			if ps[i] != segs[i] {
				match = false
				break
			}
		}
		if match {
			return p, true
		}
	}
	return "", false
}

func (c *specChecker) check(req *http.Request, resp *http.Response, body []byte) error {
	tmpl, ok := c.findPath(req.URL.EscapedPath())
	if !ok {
		if resp.StatusCode == http.StatusNotFound {
			return nil // an unknown path: answered by NotFound, described nowhere
		}
		return fmt.Errorf("path %s is not in the spec", req.URL.EscapedPath())
	}
	item := c.doc["paths"].(map[string]any)[tmpl].(map[string]any)
	op, ok := item[strings.ToLower(req.Method)].(map[string]any)
	if !ok {
		if resp.StatusCode == http.StatusMethodNotAllowed {
			return nil
		}
		return fmt.Errorf("%s %s is not in the spec", req.Method, tmpl)
	}
	responses := op["responses"].(map[string]any)
	rs, ok := responses[fmt.Sprint(resp.StatusCode)]
	if !ok {
		return fmt.Errorf("status %d is not listed for %s %s (listed: %v)", resp.StatusCode, req.Method, tmpl, keys(responses))
	}
	r := c.resolve(rs)
	content, _ := r["content"].(map[string]any)
	if len(content) == 0 {
		return nil
	}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	var media map[string]any
	for k, v := range content {
		kt, _, _ := mime.ParseMediaType(k)
		if kt == mt || kt == "*/*" {
			media = v.(map[string]any)
			break
		}
	}
	if media == nil {
		return fmt.Errorf("content type %q is not listed for %d (listed: %v)", mt, resp.StatusCode, keys(content))
	}
	if mt != "application/json" && !strings.HasSuffix(mt, "+json") {
		return nil
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return fmt.Errorf("body is not JSON: %v", err)
	}
	return c.validate(media["schema"], v, "body")
}

func (c *specChecker) resolve(v any) map[string]any {
	m, _ := v.(map[string]any)
	for m != nil {
		ref, ok := m["$ref"].(string)
		if !ok {
			return m
		}
		var cur any = c.doc
		for _, part := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
			cur = cur.(map[string]any)[part]
		}
		m = cur.(map[string]any)
	}
	return m
}

func (c *specChecker) validate(schema any, v any, at string) error {
	s := c.resolve(schema)
	if s == nil {
		return nil
	}
	if alts, ok := s["oneOf"].([]any); ok {
		var errs []error
		for _, alt := range alts {
			err := c.validate(alt, v, at)
			if err == nil {
				return nil
			}
			errs = append(errs, err)
		}
		return fmt.Errorf("%s matches no alternative: %w", at, errors.Join(errs...))
	}
	if want, ok := s["const"]; ok && fmt.Sprint(want) != fmt.Sprint(v) {
		return fmt.Errorf("%s = %v, want %v", at, v, want)
	}
	if enum, ok := s["enum"].([]any); ok && !slices.ContainsFunc(enum, func(e any) bool { return fmt.Sprint(e) == fmt.Sprint(v) }) {
		return fmt.Errorf("%s = %v, not one of %v", at, v, enum)
	}
	typ, _ := s["type"].(string)
	switch typ {
	case "object":
		m, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("%s is %T, want an object", at, v)
		}
		for _, r := range asList(s["required"]) {
			if _, ok := m[r.(string)]; !ok {
				return fmt.Errorf("%s lacks required field %q", at, r)
			}
		}
		props, _ := s["properties"].(map[string]any)
		for k, fv := range m {
			if ps, ok := props[k]; ok {
				if err := c.validate(ps, fv, at+"."+k); err != nil {
					return err
				}
			} else if ap, ok := s["additionalProperties"]; ok {
				if err := c.validate(ap, fv, at+"."+k); err != nil {
					return err
				}
			} else if props != nil {
				return fmt.Errorf("%s has field %q the spec does not describe", at, k)
			}
		}
	case "array":
		a, ok := v.([]any)
		if !ok {
			return fmt.Errorf("%s is %T, want an array", at, v)
		}
		for i, e := range a {
			if err := c.validate(s["items"], e, fmt.Sprintf("%s[%d]", at, i)); err != nil {
				return err
			}
		}
	case "string":
		if _, ok := v.(string); !ok {
			return fmt.Errorf("%s is %T, want a string", at, v)
		}
	case "integer":
		f, ok := v.(float64)
		if !ok || f != float64(int64(f)) {
			return fmt.Errorf("%s is %v, want an integer", at, v)
		}
	case "number":
		if _, ok := v.(float64); !ok {
			return fmt.Errorf("%s is %T, want a number", at, v)
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			return fmt.Errorf("%s is %T, want a boolean", at, v)
		}
	}
	return nil
}

func asList(v any) []any { l, _ := v.([]any); return l }

func keys(m map[string]any) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// specPath turns a chi pattern into the spec's: a trailing wildcard is the
// one path parameter the spec names there.
func (c *specChecker) specPath(pattern string) string {
	if !strings.HasSuffix(pattern, "/*") {
		return pattern
	}
	prefix := strings.TrimSuffix(pattern, "*")
	for _, p := range c.paths {
		if rest, ok := strings.CutPrefix(p, prefix); ok && strings.HasPrefix(rest, "{") && !strings.Contains(rest, "/") {
			return p
		}
	}
	return pattern
}

// TestOpenAPI_Routes checks that every route the router has is described,
// and that every described operation is routed.
func TestOpenAPI_Routes(t *testing.T) {
	srv := mustOpenServer(t)
	routed := map[string]bool{}
	err := chi.Walk(srv.Handler.(chi.Routes), func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		p := srv.spec.specPath(route)
		routed[method+" "+p] = true
		item, ok := srv.spec.doc["paths"].(map[string]any)[p].(map[string]any)
		if !ok {
			t.Errorf("route %s %s: path %s is not in openapi.json", method, route, p)
			return nil
		}
		if _, ok := item[strings.ToLower(method)]; !ok {
			t.Errorf("route %s %s: method is not in openapi.json under %s", method, route, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Cluster mode adds routes of its own.
	member := mustOpenCluster(t, 1)[0]
	err = chi.Walk(member.Handler.(chi.Routes), func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		p := srv.spec.specPath(route)
		routed[method+" "+p] = true
		if item, ok := srv.spec.doc["paths"].(map[string]any)[p].(map[string]any); !ok || item[strings.ToLower(method)] == nil {
			t.Errorf("cluster route %s %s is not in openapi.json", method, route)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for path, item := range srv.spec.doc["paths"].(map[string]any) {
		for method := range item.(map[string]any) {
			if method == "parameters" {
				continue
			}
			m := strings.ToUpper(method)
			if !routed[m+" "+path] && !(path == "/v1/watch" && !watchRouted(routed)) {
				t.Errorf("openapi.json describes %s %s, which is not routed", m, path)
			}
		}
	}
}

// watchRouted reports whether the stream is mounted; until the websocket
// handler exists its description is allowed to run ahead.
func watchRouted(routed map[string]bool) bool { return routed["GET /v1/watch"] }

// TestOpenAPI_File checks openapi.json on disk is what the server serves
// and declares OpenAPI 3.1.
func TestOpenAPI_File(t *testing.T) {
	data, err := os.ReadFile("openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if v, _ := doc["openapi"].(string); !strings.HasPrefix(v, "3.1") {
		t.Errorf("openapi.json declares openapi %q, want 3.1.x", v)
	}
}

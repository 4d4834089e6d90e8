package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gorilla/websocket"
)

// defaultServer is where the client commands look for PyKV.
const defaultServer = "http://127.0.0.1:8080"

// apiClient talks to one server.
type apiClient struct {
	base  *url.URL
	token string
	http  *http.Client
}

// problem is an error answer of the server (RFC 9457).
type problem struct {
	Status int    `json:"status"`
	Title  string `json:"title"`
	Detail string `json:"detail"`
}

// client runs one client command.
func client(ctx context.Context, cmd string, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet(cmd, stderr)
	server := fs.String("server", defaultServer, "URL of the PyKV server (env PYKV_SERVER)")
	token := fs.String("token", "", "access token, when the server wants one (env PYKV_TOKEN)")
	var (
		asJSON   = new(bool)
		ttl      = new(string)
		ifRev    = new(int64)
		ifAbsent = new(bool)
		limit    = new(int)
		values   = new(bool)
		since    = new(int64)
		prev     = new(bool)
		prefix   = new(string)
		all      = new(bool)
		replace  = new(bool)
	)
	switch cmd {
	case "get":
		fs.BoolVar(asJSON, "json", false, "print the entry as JSON instead of the raw value")
	case "put":
		fs.StringVar(ttl, "ttl", "", "time to live: a duration like 30s or a number of seconds")
		fs.Int64Var(ifRev, "if-rev", 0, "write only if the key is at this revision")
		fs.BoolVar(ifAbsent, "if-absent", false, "write only if the key does not exist")
	case "del", "delete":
		fs.Int64Var(ifRev, "if-rev", 0, "delete only if the key is at this revision")
		fs.StringVar(prefix, "prefix", "", "delete every key starting with this, atomically (instead of KEY)")
		fs.BoolVar(all, "all", false, "delete every key in the store, atomically (instead of KEY)")
	case "ls", "list":
		fs.IntVar(limit, "limit", 0, "list at most this many keys (default: all)")
		fs.BoolVar(values, "values", false, "print key<TAB>value lines")
		fs.BoolVar(asJSON, "json", false, "print one entry JSON object per line")
	case "import":
		fs.BoolVar(replace, "replace", false, "make the store equal to the file: also delete the keys it does not hold, in the same write (default: merge, keeping them)")
	case "cluster":
		fs.BoolVar(asJSON, "json", false, "print the answer as JSON")
	case "watch":
		fs.Int64Var(since, "since", -1, "print changes after this revision (0: all the history kept; default: only new ones)")
		fs.BoolVar(prev, "prev", false, "include each key's previous value")
	}
	pos, err := parseInterleaved(fs, args, getenv)
	if err != nil {
		return err
	}
	base, err := url.Parse(strings.TrimSuffix(*server, "/"))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return usageError("--server %q is not an http:// or https:// URL", *server)
	}
	c := &apiClient{base: base, token: *token, http: &http.Client{}}

	switch cmd {
	case "get":
		key, err := oneKey(cmd, pos, 1)
		if err != nil {
			return err
		}
		return c.get(ctx, key, *asJSON, stdout)
	case "put":
		if len(pos) < 1 || len(pos) > 2 {
			return usageError("usage: pykv put KEY [VALUE] (the value is read from stdin when not given)")
		}
		if *ifRev != 0 && *ifAbsent {
			return usageError("--if-rev and --if-absent cannot be combined")
		}
		var value io.Reader = stdin
		if len(pos) == 2 {
			value = strings.NewReader(pos[1])
		}
		return c.put(ctx, pos[0], value, *ttl, *ifRev, *ifAbsent, stdout)
	case "del", "delete":
		byPrefix := flagSet(fs, "prefix")
		switch {
		case byPrefix && *all:
			return usageError("--prefix and --all cannot be combined")
		case (byPrefix || *all) && len(pos) > 0:
			return usageError("usage: pykv del --prefix PREFIX (or --all), without a KEY")
		case (byPrefix || *all) && *ifRev != 0:
			return usageError("--if-rev applies to one key, not to --prefix or --all")
		case byPrefix && *prefix == "":
			return usageError("--prefix is empty, which would delete every key; say --all to do that")
		case byPrefix || *all:
			return c.delPrefix(ctx, *prefix, *all, stdout)
		}
		key, err := oneKey(cmd, pos, 1)
		if err != nil {
			return err
		}
		return c.del(ctx, key, *ifRev, stdout)
	case "ls", "list":
		if len(pos) > 1 {
			return usageError("usage: pykv ls [PREFIX]")
		}
		prefix := ""
		if len(pos) == 1 {
			prefix = pos[0]
		}
		return c.list(ctx, prefix, *limit, *values, *asJSON, stdout)
	case "watch":
		if len(pos) > 1 {
			return usageError("usage: pykv watch [PREFIX]")
		}
		prefix := ""
		if len(pos) == 1 {
			prefix = pos[0]
		}
		return c.watch(ctx, prefix, *since, *prev, stdout)
	case "export":
		if len(pos) > 1 {
			return usageError("usage: pykv export [FILE]")
		}
		return c.export(ctx, pos, stdout)
	case "import":
		if len(pos) > 1 {
			return usageError("usage: pykv import [--replace] [FILE]")
		}
		return c.importFile(ctx, pos, *replace, stdin, stdout)
	case "cluster":
		switch {
		case len(pos) == 1 && pos[0] == "members":
			return c.clusterMembers(ctx, *asJSON, stdout)
		case len(pos) == 2 && pos[0] == "remove":
			return c.clusterRemove(ctx, pos[1], stdout)
		}
		return usageError("usage: pykv cluster members | pykv cluster remove ID")
	}
	return usageError("unknown command %q", cmd)
}

// parseInterleaved parses flags that may come before, between or after the
// positional arguments ("pykv get KEY --server URL"); everything after
// "--" is positional.
func parseInterleaved(fs *flag.FlagSet, args []string, getenv func(string) string) ([]string, error) {
	if err := parseFlags(fs, nil, getenv); err != nil {
		return nil, err
	}
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, &exitError{exitUsage, err}
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

func oneKey(cmd string, pos []string, n int) (string, error) {
	if len(pos) != n {
		return "", usageError("usage: pykv %s KEY", cmd)
	}
	return pos[0], nil
}

// keyURL is the path of key, escaped as one segment.
func keyURL(key string) string { return "/v1/kv/" + url.PathEscape(key) }

// request sends a request to path (escaped) and returns the answer if it
// is a success; an error answer becomes an exitError whose code tells what
// happened.
func (c *apiClient) request(ctx context.Context, method, path string, query url.Values, body io.Reader, header http.Header) (resp *http.Response, err error) {
	// path is escaped already (see keyURL): keep it as it is on the wire.
	u := *c.base
	u.RawPath = c.base.EscapedPath() + path
	u.Path, err = url.PathUnescape(u.RawPath)
	if err != nil {
		return nil, err
	}
	u.RawQuery = query.Encode()
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err = c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &exitError{exitUnavailable, fmt.Errorf("cannot reach the server at %s: %w", c.base, err)}
	}
	if resp.StatusCode < 400 {
		return resp, nil
	}
	defer resp.Body.Close()
	return nil, answerError(resp)
}

// answerError turns an error answer into an exitError.
func answerError(resp *http.Response) error {
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var p problem
	msg := strings.TrimSpace(string(data))
	if json.Unmarshal(data, &p) == nil && p.Detail != "" {
		msg = p.Detail
	}
	if msg == "" {
		msg = resp.Status
	}
	code := exitFailure
	switch resp.StatusCode {
	case http.StatusNotFound:
		code = exitNotFound
	case http.StatusConflict, http.StatusPreconditionFailed:
		code = exitConflict
	case http.StatusUnauthorized, http.StatusForbidden:
		code = exitAuth
	case http.StatusServiceUnavailable, http.StatusInsufficientStorage:
		code = exitUnavailable
	}
	return &exitError{code, fmt.Errorf("%s (%d)", msg, resp.StatusCode)}
}

func (c *apiClient) get(ctx context.Context, key string, asJSON bool, stdout io.Writer) error {
	q := url.Values{}
	if asJSON {
		q.Set("format", "json")
	}
	resp, err := c.request(ctx, "GET", keyURL(key), q, nil, nil)
	if err != nil {
		return fmt.Errorf("get %q: %w", key, err)
	}
	defer resp.Body.Close()
	// On a terminal the value ends with a newline, so the prompt does not
	// follow it on the same line; piped, the bytes are the value exactly.
	lw := &lastByteWriter{w: stdout}
	if _, err = io.Copy(lw, resp.Body); err != nil {
		return err
	}
	if !asJSON && lw.n > 0 && lw.last != '\n' && isTerminal(stdout) {
		_, err = io.WriteString(stdout, "\n")
	}
	return err
}

// lastByteWriter passes writes on and remembers the last byte written.
type lastByteWriter struct {
	w    io.Writer
	n    int64
	last byte
}

func (l *lastByteWriter) Write(p []byte) (int, error) {
	n, err := l.w.Write(p)
	if n > 0 {
		l.n += int64(n)
		l.last = p[n-1]
	}
	return n, err
}

// flagSet reports whether the flag name was given on the command line
// (even as an empty string).
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) {
		if f.Name == name {
			set = true
		}
	})
	return set
}

// delPrefix deletes every key under prefix (or every key, with all) in one
// request, which the server carries out atomically, and prints its answer.
func (c *apiClient) delPrefix(ctx context.Context, prefix string, all bool, stdout io.Writer) error {
	q := url.Values{"prefix": {prefix}}
	if all {
		q = url.Values{"all": {"true"}}
	}
	resp, err := c.request(ctx, "DELETE", "/v1/kv", q, nil, nil)
	if err != nil {
		return fmt.Errorf("del --prefix %q: %w", prefix, err)
	}
	defer resp.Body.Close()
	_, err = io.Copy(stdout, resp.Body)
	return err
}

func (c *apiClient) put(ctx context.Context, key string, value io.Reader, ttl string, ifRev int64, ifAbsent bool, stdout io.Writer) error {
	q := url.Values{}
	if ttl != "" {
		q.Set("ttl", ttl)
	}
	h := http.Header{"Content-Type": {"text/plain; charset=utf-8"}}
	switch {
	case ifRev != 0:
		h.Set("If-Match", strconv.Quote(strconv.FormatInt(ifRev, 10)))
	case ifAbsent:
		h.Set("If-None-Match", "*")
	}
	// Read the value first so that a value from a pipe has a length.
	data, err := io.ReadAll(value)
	if err != nil {
		return fmt.Errorf("put %q: read value: %w", key, err)
	}
	resp, err := c.request(ctx, "PUT", keyURL(key), q, bytes.NewReader(data), h)
	if err != nil {
		return fmt.Errorf("put %q: %w", key, err)
	}
	defer resp.Body.Close()
	_, err = io.Copy(stdout, resp.Body)
	return err
}

func (c *apiClient) del(ctx context.Context, key string, ifRev int64, stdout io.Writer) error {
	h := http.Header{}
	if ifRev != 0 {
		h.Set("If-Match", strconv.Quote(strconv.FormatInt(ifRev, 10)))
	}
	resp, err := c.request(ctx, "DELETE", keyURL(key), nil, nil, h)
	if err != nil {
		return fmt.Errorf("del %q: %w", key, err)
	}
	defer resp.Body.Close()
	_, err = io.Copy(stdout, resp.Body)
	return err
}

// quoteField returns s as it is, or quoted as a Go (and, for printable
// text, JSON) string literal when it holds what would break a
// "key<TAB>value" line apart: a tab, a line break, another control
// character, or a leading double quote (which would read as quoted).
// So every line of ls --values is one key, and a script can tell the
// quoted fields by their first character.
func quoteField(s string) string {
	if strings.HasPrefix(s, `"`) || strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f || r == '\u2028' || r == '\u2029' || r == '\u0085' }) {
		return strconv.Quote(s)
	}
	return s
}

// listEntry is one entry of a listing.
type listEntry struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// list prints the keys under prefix, following pages until the end (or
// limit keys).
func (c *apiClient) list(ctx context.Context, prefix string, limit int, values, asJSON bool, stdout io.Writer) error {
	after, n := "", 0
	for {
		q := url.Values{"prefix": {prefix}, "limit": {"1000"}}
		if after != "" {
			q.Set("after", after)
		}
		resp, err := c.request(ctx, "GET", "/v1/kv", q, nil, nil)
		if err != nil {
			return fmt.Errorf("ls: %w", err)
		}
		var page struct {
			Entries []json.RawMessage `json:"entries"`
			More    bool              `json:"more"`
			Next    string            `json:"next"`
		}
		err = json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("ls: read answer: %w", err)
		}
		for _, raw := range page.Entries {
			if limit > 0 && n == limit {
				return nil
			}
			n++
			var e listEntry
			if err := json.Unmarshal(raw, &e); err != nil {
				return fmt.Errorf("ls: read answer: %w", err)
			}
			switch {
			case asJSON:
				_, err = fmt.Fprintf(stdout, "%s\n", raw)
			case values:
				_, err = fmt.Fprintf(stdout, "%s\t%s\n", quoteField(e.Key), quoteField(e.Value))
			default:
				_, err = fmt.Fprintln(stdout, e.Key)
			}
			if err != nil {
				return err
			}
		}
		if !page.More {
			return nil
		}
		after = page.Next
	}
}

func (c *apiClient) export(ctx context.Context, pos []string, stdout io.Writer) error {
	resp, err := c.request(ctx, "GET", "/v1/export", nil, nil, nil)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	defer resp.Body.Close()
	if len(pos) == 0 {
		_, err = io.Copy(stdout, resp.Body)
		return err
	}
	// Written beside the target and renamed, so a failed export never
	// leaves a truncated file under the name asked for.
	tmp, err := os.CreateTemp(dirOf(pos[0]), ".pykv-export-*")
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, resp.Body); err != nil {
		tmp.Close()
		return fmt.Errorf("export: download: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("export: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	return os.Rename(tmp.Name(), pos[0])
}

func dirOf(path string) string {
	if i := strings.LastIndexByte(path, os.PathSeparator); i >= 0 {
		return path[:i+1]
	}
	return "."
}

// importFile sends FILE (or stdin) to POST /v1/import, with mode=replace
// when replace is set, and prints the server's answer: the counts of keys
// added, changed, unchanged and deleted.
func (c *apiClient) importFile(ctx context.Context, pos []string, replace bool, stdin io.Reader, stdout io.Writer) error {
	body := stdin
	if len(pos) == 1 {
		f, err := os.Open(pos[0])
		if err != nil {
			return fmt.Errorf("import: %w", err)
		}
		defer f.Close()
		body = f
	}
	var q url.Values
	if replace {
		q = url.Values{"mode": {"replace"}}
	}
	resp, err := c.request(ctx, "POST", "/v1/import", q, body, http.Header{"Content-Type": {"application/json"}})
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	defer resp.Body.Close()
	_, err = io.Copy(stdout, resp.Body)
	return err
}

// watch prints the changes under prefix, one JSON event per line, until ctx
// ends (exit 0) or the server ends the stream (an error).
func (c *apiClient) watch(ctx context.Context, prefix string, since int64, prev bool, stdout io.Writer) error {
	u := *c.base
	u.Scheme = map[string]string{"http": "ws", "https": "wss"}[c.base.Scheme]
	u.Path = strings.TrimSuffix(c.base.Path, "/") + "/v1/watch"
	q := url.Values{}
	if prefix != "" {
		q.Set("prefix", prefix)
	}
	if since >= 0 {
		q.Set("since", strconv.FormatInt(since, 10))
	}
	if prev {
		q.Set("prev", "true")
	}
	u.RawQuery = q.Encode()
	h := http.Header{}
	if c.token != "" {
		h.Set("Authorization", "Bearer "+c.token)
	}
	dialer := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	conn, resp, err := dialer.DialContext(ctx, u.String(), h)
	if err != nil {
		if resp != nil && resp.StatusCode >= 400 {
			defer resp.Body.Close()
			return fmt.Errorf("watch: %w", answerError(resp))
		}
		if ctx.Err() != nil {
			return nil
		}
		return &exitError{exitUnavailable, fmt.Errorf("watch: cannot reach the server at %s: %w", c.base, err)}
	}
	defer conn.Close()
	// Closing the connection is how a cancelled context stops the read.
	stop := context.AfterFunc(ctx, func() {
		_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
		_ = conn.Close()
	})
	defer stop()
	for {
		var msg struct {
			Type    string            `json:"type"`
			Rev     int64             `json:"rev"`
			Events  []json.RawMessage `json:"events"`
			Message string            `json:"message"`
		}
		if err := conn.ReadJSON(&msg); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ce *websocket.CloseError
			if errors.As(err, &ce) && ce.Code == websocket.CloseGoingAway {
				return &exitError{exitUnavailable, errors.New("watch: the server closed the stream (shutting down); run again with --since to resume")}
			}
			return fmt.Errorf("watch: %w", err)
		}
		switch msg.Type {
		case "events":
			for _, ev := range msg.Events {
				if _, err := fmt.Fprintf(stdout, "%s\n", ev); err != nil {
					return err
				}
			}
			if f, ok := stdout.(interface{ Sync() error }); ok {
				_ = f.Sync()
			}
		case "compacted":
			return fmt.Errorf("watch: %s (the server is at revision %d; reload with pykv ls and watch with --since from there)", msg.Message, msg.Rev)
		}
	}
}

// clusterView is the answer of GET /v1/cluster.
type clusterView struct {
	Leader  string `json:"leader"`
	Members []struct {
		ID         string `json:"id"`
		APIAddr    string `json:"api_addr"`
		RaftAddr   string `json:"raft_addr"`
		Role       string `json:"role"`
		Voter      bool   `json:"voter"`
		AppliedRev *int64 `json:"applied_rev"`
		Healthy    bool   `json:"healthy"`
	} `json:"members"`
}

// clusterMembers prints the members, one a line: ID, role, applied
// revision, health, API and raft addresses.
func (c *apiClient) clusterMembers(ctx context.Context, asJSON bool, stdout io.Writer) error {
	resp, err := c.request(ctx, http.MethodGet, "/v1/cluster", nil, nil, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return err
	}
	if asJSON {
		_, err = stdout.Write(data)
		return err
	}
	var v clusterView
	if err := json.Unmarshal(data, &v); err != nil {
		return fmt.Errorf("the server's member list: %w", err)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tROLE\tAPPLIED REV\tHEALTH\tAPI\tRAFT")
	for _, m := range v.Members {
		rev, health := "?", "unreachable"
		if m.AppliedRev != nil {
			rev = strconv.FormatInt(*m.AppliedRev, 10)
			health = "no leader"
			if m.Healthy {
				health = "ok"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", m.ID, m.Role, rev, health, m.APIAddr, m.RaftAddr)
	}
	return tw.Flush()
}

// clusterRemove takes a member out of the cluster.
func (c *apiClient) clusterRemove(ctx context.Context, id string, stdout io.Writer) error {
	resp, err := c.request(ctx, http.MethodDelete, "/v1/cluster/members/"+url.PathEscape(id), nil, nil, nil)
	if err != nil {
		return err
	}
	resp.Body.Close()
	fmt.Fprintf(stdout, "removed %s\n", id)
	return nil
}

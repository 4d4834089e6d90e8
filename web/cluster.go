package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pykv/pykv/engine"
	"github.com/pykv/pykv/persist"
	"github.com/pykv/pykv/persist/cluster"
	"github.com/pykv/pykv/persist/codec"
)

// Headers between cluster members.
const (
	// hdrForwarded marks a request a follower passed to the leader, which
	// must not pass it on again (leadership moved: it answers 503).
	hdrForwarded = "X-Pykv-Forwarded"
	// hdrRaftIndex is the raft index a write was applied at, so a follower
	// relaying the leader's answer can wait until it applied it too.
	hdrRaftIndex = "X-Pykv-Raft-Index"
	// hdrRevision is the store revision a read reflects (at least).
	hdrRevision = "X-Pykv-Revision"
	// forwardApplyWait bounds how long a follower waits to apply a write
	// it relays; past it, the answer goes out anyway (it is true: the
	// write is committed) and a warning is logged.
	forwardApplyWait = 5 * time.Second
	// memberProbeTimeout bounds asking another member for its status.
	memberProbeTimeout = time.Second
)

// clusterState is what a server in cluster mode keeps: the member, and the
// HTTP client and read-index rounds it uses to talk to the leader.
type clusterState struct {
	node   *cluster.Node
	client *http.Client
	proxy  *httputil.ReverseProxy
	reads  leaderReads
}

func newClusterState(s *server, node *cluster.Node) *clusterState {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 256 // followers forward many concurrent writes
	c := &clusterState{node: node, client: &http.Client{Transport: tr}}
	c.reads.s = s
	c.proxy = &httputil.ReverseProxy{
		Transport: tr,
		Rewrite: func(pr *httputil.ProxyRequest) {
			target, _ := pr.In.Context().Value(leaderKey{}).(*url.URL)
			pr.SetURL(target) // Host becomes the leader's, which its host check allows
			pr.Out.Header.Set(hdrForwarded, node.ID())
			pr.SetXForwarded()
		},
		ModifyResponse: func(resp *http.Response) error {
			idx, err := strconv.ParseUint(resp.Header.Get(hdrRaftIndex), 10, 64)
			if err != nil {
				return nil // no write happened (an error answer)
			}
			ctx, cancel := context.WithTimeout(resp.Request.Context(), forwardApplyWait)
			defer cancel()
			if err := node.WaitApplied(ctx, idx); err != nil {
				s.log.Warn("relaying a forwarded write before this member applied it", "index", idx, "err", err)
			}
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			// The leader was not reached, or its answer was cut: the
			// write may have reached it.
			p := newProblem(http.StatusServiceUnavailable, "The leader could not be reached or its answer was cut off; a write sent to it may or may not have been applied. Read the key to find out before retrying.")
			p.Type, p.Title = problemOutcomeUnknown, titleOutcomeUnknown
			s.log.Warn("forwarding to the leader failed", "path", r.URL.Path, "err", err)
			writeProblem(w, p)
		},
	}
	return c
}

type leaderKey struct{}

// Problem types of a cluster.
const (
	problemOutcomeUnknown = "urn:pykv:problem:outcome-unknown"
	titleOutcomeUnknown   = "The write's outcome is unknown"
	problemNoLeader       = "urn:pykv:problem:no-leader"
	titleNoLeader         = "The cluster has no leader"
)

// classifyCluster maps the cluster's errors to problems, or returns nil.
func classifyCluster(err error) *Problem {
	switch {
	case errors.Is(err, cluster.ErrOutcomeUnknown):
		p := newProblem(http.StatusServiceUnavailable, "Leadership of the cluster changed while this write was being replicated; it may or may not have been applied. Read the key to find out before retrying.")
		p.Type, p.Title = problemOutcomeUnknown, titleOutcomeUnknown
		return p
	case errors.Is(err, cluster.ErrNotLeader):
		p := newProblem(http.StatusServiceUnavailable, "The cluster is electing a leader or this member cannot reach it; nothing was done. Retry in a moment.")
		p.Type, p.Title = problemNoLeader, titleNoLeader
		return p
	case errors.Is(err, cluster.ErrUnknownMember):
		return newProblem(http.StatusNotFound, err.Error()+".")
	}
	return nil
}

// toLeader passes writes on a follower to the leader and relays its answer
// unchanged, once this member applied the write too. A request already
// forwarded is never forwarded again: leadership moved under it, so it is
// refused (nothing was written).
func (s *server) toLeader(next http.Handler) http.Handler {
	node := s.cluster.node
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if node.IsLeader() {
			next.ServeHTTP(w, r)
			return
		}
		id, api := node.Leader()
		if id == "" || api == "" || r.Header.Get(hdrForwarded) != "" {
			s.writeError(w, r, &cluster.NotLeaderError{})
			return
		}
		target, err := url.Parse(api)
		if err != nil {
			s.writeError(w, r, fmt.Errorf("the leader's address %q: %w", api, err))
			return
		}
		// The leader's answer is relayed as it is, headers included: drop
		// those this member's middleware set already, or they would double.
		clear(w.Header())
		s.cluster.proxy.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), leaderKey{}, target)))
	})
}

// consistent makes a read linearizable unless it asks for
// ?consistency=local: the leader confirms it leads, a follower asks the
// leader for the read index, and the read waits until this member applied
// it. Either way the answer carries the revision it reflects (at least).
func (s *server) consistent(next http.Handler) http.Handler {
	node := s.cluster.node
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var level string
		if r.URL.RawQuery != "" {
			level = r.URL.Query().Get("consistency")
		}
		switch level {
		case "local":
		case "", "linearizable":
			var err error
			if node.IsLeader() {
				_, err = node.Linearize(r.Context())
			} else {
				err = s.cluster.reads.wait(r)
			}
			if err != nil {
				s.writeError(w, r, err)
				return
			}
		default:
			s.writeError(w, r, badRequest(`consistency must be "linearizable" (the default) or "local", not %q.`, level))
			return
		}
		w.Header().Set(hdrRevision, strconv.FormatInt(s.store.Rev(), 10))
		next.ServeHTTP(w, r)
	})
}

// leaderReads shares the follower's requests for a read index among
// concurrent reads: a read joins a request not sent yet, never one already
// sent (its answer may predate the read). Up to maxReadRounds requests
// are out at once.
type leaderReads struct {
	s        *server
	mu       sync.Mutex
	next     *readRound
	inFlight int
}

const maxReadRounds = 2

type readRound struct {
	auth []string // the first reader's credentials, to pass to the leader
	done chan struct{}
	idx  uint64
	err  error
}

func (lr *leaderReads) wait(r *http.Request) error {
	lr.mu.Lock()
	rd := lr.next
	if rd == nil {
		rd = &readRound{done: make(chan struct{}), auth: r.Header.Values("Authorization")}
		if lr.inFlight < maxReadRounds {
			lr.inFlight++
			go lr.run(rd)
		} else {
			lr.next = rd
		}
	}
	lr.mu.Unlock()
	select {
	case <-rd.done:
	case <-r.Context().Done():
		return r.Context().Err()
	}
	if rd.err != nil {
		return rd.err
	}
	return lr.s.cluster.node.WaitApplied(r.Context(), rd.idx)
}

// run asks for rd, then for the round that gathered meanwhile, if any.
func (lr *leaderReads) run(rd *readRound) {
	for rd != nil {
		rd.idx, rd.err = lr.fetch(rd.auth)
		close(rd.done)
		lr.mu.Lock()
		rd, lr.next = lr.next, nil
		if rd == nil {
			lr.inFlight--
		}
		lr.mu.Unlock()
	}
}

// fetch asks the leader for a read index.
func (lr *leaderReads) fetch(auth []string) (uint64, error) {
	c := lr.s.cluster
	_, api := c.node.Leader()
	if api == "" {
		return 0, &cluster.NotLeaderError{}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(api, "/")+"/v1/cluster/read-index", nil)
	if err != nil {
		return 0, err
	}
	req.Header[hdrForwarded] = []string{c.node.ID()}
	req.Header["Authorization"] = auth
	resp, err := c.client.Do(req)
	if err != nil {
		return 0, &cluster.NotLeaderError{}
	}
	defer resp.Body.Close()
	var out readIndex
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
		if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
			return 0, errStatus(resp.StatusCode, "The leader refused this member's read-index request with %s; members must share tokens.", resp.Status)
		}
		return 0, &cluster.NotLeaderError{}
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&out); err != nil {
		return 0, fmt.Errorf("the leader's read index: %w", err)
	}
	return out.Index, nil
}

// handleLeaderCheck answers whether this member is ?member= and, now,
// follows ?leader= in ?term=: 200 if so, 409 if not. A leader asks voters
// this for each round of linearizable reads (see NewPeerCheck); ?member=
// keeps a yes from counting for another voter whose recorded address this
// member now serves.
func (s *server) handleLeaderCheck(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	term, err := strconv.ParseUint(q.Get("term"), 10, 64)
	if err != nil || q.Get("leader") == "" || q.Get("member") == "" {
		s.writeError(w, r, badRequest("Give ?term= (a raft term), ?leader= and ?member= (member IDs)."))
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	if !s.cluster.node.Follows(q.Get("member"), term, q.Get("leader")) {
		s.writeError(w, r, errStatus(http.StatusConflict, "This member is not %s following %s in term %d.", q.Get("member"), q.Get("leader"), term))
		return
	}
	encode(w, http.StatusOK, map[string]bool{"follows": true})
}

// NewPeerCheck returns the cluster.Options.PeerCheck of a member whose
// peers serve this package's API: it asks GET /v1/cluster/leader-check,
// with token (members share tokens; empty when there are none).
func NewPeerCheck(token string) func(ctx context.Context, apiAddr, memberID string, term uint64, leaderID string) error {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 16
	client := &http.Client{Transport: tr}
	return func(ctx context.Context, apiAddr, memberID string, term uint64, leaderID string) error {
		u := strings.TrimRight(apiAddr, "/") + "/v1/cluster/leader-check?term=" + strconv.FormatUint(term, 10) +
			"&leader=" + url.QueryEscape(leaderID) + "&member=" + url.QueryEscape(memberID)
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return err
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s is not %s following %s in term %d: %s", apiAddr, memberID, leaderID, term, resp.Status)
		}
		return nil
	}
}

// readIndex is the answer of GET /v1/cluster/read-index.
type readIndex struct {
	Index uint64 `json:"index"`
}

// handleReadIndex answers, on the leader, the raft index a linearizable
// read on any member must wait for.
func (s *server) handleReadIndex(w http.ResponseWriter, r *http.Request) {
	idx, err := s.cluster.node.ReadIndex(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	encode(w, http.StatusOK, readIndex{Index: idx})
}

// clusterView is the answer of GET /v1/cluster.
type clusterView struct {
	Leader  string       `json:"leader"` // the leader's ID, empty during an election
	Members []memberView `json:"members"`
}

type memberView struct {
	cluster.Member
	AppliedRev *int64 `json:"applied_rev"` // nil when the member did not answer
	Healthy    bool   `json:"healthy"`     // it answered, and knows the leader
}

// handleCluster answers the members, the leader and each member's applied
// revision, asking the others for theirs (each within a second).
func (s *server) handleCluster(w http.ResponseWriter, r *http.Request) {
	node := s.cluster.node
	members, err := node.Members()
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	leader, _ := node.Leader()
	view := clusterView{Leader: leader, Members: make([]memberView, len(members))}
	var wg sync.WaitGroup
	for i, m := range members {
		view.Members[i].Member = m
		if m.ID == node.ID() {
			rev := s.store.Rev()
			view.Members[i].AppliedRev, view.Members[i].Healthy = &rev, leader != ""
			continue
		}
		if m.APIAddr == "" {
			continue
		}
		wg.Add(1)
		go func(mv *memberView) {
			defer wg.Done()
			st, err := s.probe(r, mv.APIAddr)
			if err == nil {
				mv.AppliedRev, mv.Healthy = &st.Rev, st.Raft != nil && st.Raft.Leader != ""
			}
		}(&view.Members[i])
	}
	wg.Wait()
	w.Header().Set("Cache-Control", "no-store")
	encode(w, http.StatusOK, view)
}

// probe asks a member for its /v1/status.
func (s *server) probe(r *http.Request, api string) (statusInfo, error) {
	var st statusInfo
	ctx, cancel := context.WithTimeout(r.Context(), memberProbeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(api, "/")+"/v1/status", nil)
	if err != nil {
		return st, err
	}
	req.Header["Authorization"] = r.Header.Values("Authorization")
	resp, err := s.cluster.client.Do(req)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("status %s", resp.Status)
	}
	return st, json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&st)
}

// joinRequest is the body of POST /v1/cluster/members.
type joinRequest struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	APIAddr  string `json:"api_addr"`
}

// handleJoin adds a member as a voter (or updates its addresses), on the
// leader; followers forward it there.
func (s *server) handleJoin(w http.ResponseWriter, r *http.Request) {
	var req joinRequest
	if err := decode(w, r, 64<<10, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.ID == "" || req.RaftAddr == "" {
		s.writeError(w, r, badRequest(`A member needs an "id" and a "raft_addr" (host:port).`))
		return
	}
	if err := s.cluster.node.Join(r.Context(), req.ID, req.RaftAddr, req.APIAddr); err != nil {
		s.writeError(w, r, err)
		return
	}
	encode(w, http.StatusOK, req)
}

// handleRemoveMember takes a member out of the cluster, on the leader;
// followers forward it there.
func (s *server) handleRemoveMember(w http.ResponseWriter, r *http.Request) {
	id, err := keyParam(r, "/v1/cluster/members/")
	if err != nil {
		s.writeError(w, r, badRequest("Name the member to remove: DELETE /v1/cluster/members/{id}."))
		return
	}
	if err := s.cluster.node.Remove(r.Context(), id); err != nil {
		s.writeError(w, r, err)
		return
	}
	encode(w, http.StatusOK, map[string]string{"removed": id})
}

// write carries out ops as one transaction: on the store directly on a
// single node, through the cluster's log on a member (the leader: toLeader
// forwarded the request otherwise), telling the raft index in a header so
// a forwarding follower can wait to apply it.
func (s *server) write(w http.ResponseWriter, r *http.Request, ops []engine.Op, bulk bool) (engine.TxnResult, error) {
	if s.cluster == nil {
		if bulk {
			return s.store.Bulk(ops)
		}
		return s.store.Txn(ops)
	}
	res, err := s.cluster.node.Write(r.Context(), ops, bulk)
	if err == nil {
		w.Header().Set(hdrRaftIndex, strconv.FormatUint(s.cluster.node.AppliedIndex(), 10))
	}
	return res, err
}

// do carries out one operation as Store.Do does.
func (s *server) do(w http.ResponseWriter, r *http.Request, op engine.Op) (engine.Entry, error) {
	if s.cluster == nil {
		return s.store.Do(op)
	}
	res, err := s.write(w, r, []engine.Op{op}, false)
	if err != nil {
		return engine.Entry{}, opCause(err)
	}
	rr := res.Results[0]
	if op.Type == engine.OpDelete {
		if !rr.Deleted {
			return engine.Entry{}, engine.ErrNotFound
		}
		return engine.Entry{Key: op.Key, ModRev: res.Rev}, nil
	}
	return rr.Entry, nil
}

// opCause is the error of a one-operation write through the log as the
// store's own method for it returns it: without the *engine.OpError
// naming the operation, which would make the answer name an operation
// index the client never sent.
func opCause(err error) error {
	if oe, ok := errors.AsType[*engine.OpError](err); ok {
		return oe.Err
	}
	return err
}

// deletePrefix removes every key under prefix as Store.DeletePrefix does.
func (s *server) deletePrefix(w http.ResponseWriter, r *http.Request, prefix string) (int64, int, error) {
	if s.cluster == nil {
		return s.store.DeletePrefix(prefix)
	}
	res, err := s.write(w, r, []engine.Op{{Type: engine.OpDeletePrefix, Key: prefix}}, false)
	if err != nil {
		return 0, 0, opCause(err)
	}
	return res.Rev, res.Results[0].Removed, nil
}

// clusterDB is the DB of a cluster member: status, export and import over
// the replicated store (import goes through the log).
type clusterDB struct {
	node *cluster.Node
}

func (d clusterDB) Status() persist.Status {
	return persist.Status{Rev: d.node.Store().Rev(), Keys: d.node.Store().Len(), Sync: "raft"}
}

func (d clusterDB) Export(w io.Writer) error { return codec.ExportStore(d.node.Store(), w) }

func (d clusterDB) Import(r io.Reader, mode persist.ImportMode) (persist.ImportResult, error) {
	return codec.ImportThrough(d.node.Store(), r, mode, func(ops []engine.Op) (engine.TxnResult, error) {
		return d.node.Write(context.Background(), ops, true)
	})
}

// Err is why the member is not ready: no leader, or not caught up; /readyz
// answers 503 with it.
func (d clusterDB) Err() error {
	if err := d.node.Ready(); err != nil {
		if errors.Is(err, cluster.ErrNoLeader) {
			return err
		}
		return errStatus(http.StatusServiceUnavailable, "This member is %v.", err)
	}
	return nil
}

package cluster

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/pykv/pykv/engine"
	"github.com/pykv/pykv/persist"
)

// Defaults for the zero values of Options.
const (
	DefaultElectionTimeout   = time.Second
	DefaultSnapshotThreshold = 8192
	DefaultTrailingLogs      = 10240
	// applyEnqueueTimeout bounds how long a write waits to enter the
	// leader's queue; past it the write was not proposed (a safe failure).
	applyEnqueueTimeout = 5 * time.Second
	// logCacheEntries is how many of the newest raft log entries stay in
	// memory (see logCache): entries of at most maxCachedEntryBytes, a
	// batch of at most maxBatchWrites small writes.
	logCacheEntries = 512
	// expireInterval is how often the leader looks for expired keys.
	expireInterval = 100 * time.Millisecond
)

// Errors a Node returns. Check them with errors.Is.
var (
	// ErrNotLeader: the write or read needs the leader and this member is
	// not it. It arrives inside a *NotLeaderError naming the leader, if
	// one is known, so the caller can forward.
	ErrNotLeader = errors.New("this member is not the leader")
	// ErrOutcomeUnknown: leadership changed (or the member stopped) while
	// a write was being replicated. It may or may not be applied; a
	// client must read to find out, or retry a write that is safe to
	// repeat.
	ErrOutcomeUnknown = errors.New("leadership changed while the write was in flight; its outcome is unknown")
	// ErrNoLeader: no leader is known (an election is running, or this
	// member is cut off from a majority).
	ErrNoLeader = errors.New("the cluster has no leader")
	// ErrUnknownMember: the ID names no member of the cluster.
	ErrUnknownMember = errors.New("no such cluster member")
)

// NotLeaderError says who leads instead, as far as this member knows.
type NotLeaderError struct {
	LeaderID  string // empty when no leader is known
	LeaderAPI string // the leader's HTTP API address, if recorded
}

func (e *NotLeaderError) Error() string {
	if e.LeaderID == "" {
		return ErrNoLeader.Error()
	}
	return fmt.Sprintf("%v (the leader is %s at %s)", ErrNotLeader, e.LeaderID, e.LeaderAPI)
}

// Unwrap makes errors.Is match ErrNotLeader, and ErrNoLeader when no
// leader is known.
func (e *NotLeaderError) Unwrap() []error {
	if e.LeaderID == "" {
		return []error{ErrNotLeader, ErrNoLeader}
	}
	return []error{ErrNotLeader}
}

// Options configure a Node. ID, RaftAddr and Dir are required; the zero
// value of every other field gives the defaults.
type Options struct {
	ID       string // this member's ID, unique in the cluster and fixed for life
	RaftAddr string // host:port raft listens on and peers dial; port 0 picks one
	// RaftAdvertise, when set, is the host:port peers dial instead of
	// RaftAddr (a port forwarder or NAT between them).
	RaftAdvertise string
	APIAddr       string // this member's HTTP API base URL, told to the others
	Dir           string // data folder: raft.db (log and votes) and snapshots/
	// PeerTLS, when set, makes raft traffic mutual TLS: its Certificates
	// are presented, and peers must show a certificate signed by RootCAs
	// (ClientCAs defaults to RootCAs). Without it RaftAddr and every peer
	// must be on loopback (ErrPlainBeyondLoopback).
	PeerTLS *tls.Config
	// Bootstrap makes a member with no raft state start a one-member
	// cluster of itself. Members that join leave it false.
	Bootstrap bool
	Engine    engine.Options // limits and clock; Replicated is set by Open
	Logger    *slog.Logger   // default: discard
	// ElectionTimeout (default 1s) is how long a follower waits without
	// hearing from a leader before it stands; heartbeats go ten times as
	// often, and a leader steps down after as long without a quorum.
	ElectionTimeout time.Duration
	// SnapshotThreshold (default 8192) is how many entries trigger a raft
	// snapshot; TrailingLogs (default 10240) how many stay in the log after
	// one, so a follower a little behind catches up without a snapshot.
	SnapshotThreshold uint64
	TrailingLogs      uint64
	// SnapshotInterval is how often raft checks whether to snapshot
	// (default 30s).
	SnapshotInterval time.Duration
	// PeerCheck, when set, is how the leader confirms it still leads for
	// reads: it asks the member whose HTTP API is at apiAddr whether it is
	// memberID and follows leaderID in term now (its answer must be made
	// after the call, as GET /v1/cluster/leader-check does with
	// Node.Follows). A majority of yes proves no other leader can have
	// been elected before the round began. The answerer must check it is
	// memberID: a voter's recorded address can be stale (it is recorded
	// when the member joins or leads), and a yes from whoever serves
	// there now must not count for the voter. Without PeerCheck a round
	// commits a barrier entry, which is as safe but costs a log write
	// (and an fsync) on a majority.
	PeerCheck func(ctx context.Context, apiAddr, memberID string, term uint64, leaderID string) error
}

// Node is one member of a cluster: a replicated store whose writes are
// raft log entries, applied by every member in the same order.
type Node struct {
	opts   Options
	raft   *raft.Raft
	fsm    *fsm
	store  *engine.Store
	logs   *boltStore
	trans  *raft.NetworkTransport
	logger *slog.Logger

	reads verifier
	// checkTurn picks which peers a read confirmation asks first.
	checkTurn atomic.Uint64
	batch     *batcher
	changes   atomic.Int64  // leader changes seen
	ready     atomic.Uint64 // the term in which this member, as leader, applied every earlier entry
	obsCh     chan raft.Observation
	obs       *raft.Observer
	stop      chan struct{}
	wg        sync.WaitGroup
	once      sync.Once
	err       error
	fresh     bool // opened on a folder without raft state
	// noLeaderSince is when this member lost its leader (Unix ns), 0 while
	// it knows one.
	noLeaderSince atomic.Int64
}

// Open starts a member in opts.Dir. A folder with raft state rejoins its
// cluster with it; an empty one bootstraps (opts.Bootstrap) or waits to be
// added by the leader (see Join). A folder another process holds gives
// persist.ErrLocked.
func Open(opts Options) (*Node, error) {
	if opts.ID == "" || opts.RaftAddr == "" || opts.Dir == "" {
		return nil, errors.New("cluster: ID, RaftAddr and Dir are required")
	}
	if host, _, err := net.SplitHostPort(opts.RaftAddr); err != nil {
		return nil, fmt.Errorf("raft address %q: %w", opts.RaftAddr, err)
	} else if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		return nil, fmt.Errorf("raft address %q: give the address peers reach this member at, not a wildcard", opts.RaftAddr)
	} else if opts.PeerTLS == nil && !isLoopback(host) {
		return nil, fmt.Errorf("raft address %s: %w", opts.RaftAddr, ErrPlainBeyondLoopback)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.ElectionTimeout <= 0 {
		opts.ElectionTimeout = DefaultElectionTimeout
	}
	if opts.SnapshotThreshold == 0 {
		opts.SnapshotThreshold = DefaultSnapshotThreshold
	}
	if opts.TrailingLogs == 0 {
		opts.TrailingLogs = DefaultTrailingLogs
	}
	if opts.SnapshotInterval <= 0 {
		opts.SnapshotInterval = 30 * time.Second
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("create data folder: %w", err)
	}
	n := &Node{opts: opts, logger: opts.Logger, stop: make(chan struct{})}
	n.noLeaderSince.Store(time.Now().UnixNano())
	hlog := hclog.New(&hclog.LoggerOptions{Name: "raft", Level: hclog.Warn, Output: logWriter{opts.Logger}})

	dbPath := filepath.Join(opts.Dir, "raft.db")
	logs, err := openBoltStore(dbPath)
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("%w: %s", persist.ErrLocked, dbPath)
	}
	if err != nil {
		return nil, fmt.Errorf("open raft log: %w", err)
	}
	n.logs = logs
	fail := func(err error) (*Node, error) {
		if n.trans != nil {
			n.trans.Close()
		}
		logs.Close()
		return nil, err
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(filepath.Join(opts.Dir, "snapshots"), 2, hlog)
	if err != nil {
		return fail(fmt.Errorf("open raft snapshots: %w", err))
	}
	stream, err := newStreamLayer(opts.RaftAddr, opts.RaftAdvertise, opts.PeerTLS)
	if err != nil {
		return fail(err)
	}
	n.trans = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  stream,
		MaxPool: 3,
		Timeout: 10 * time.Second,
		Logger:  hlog,
	})
	n.opts.RaftAddr = string(n.trans.LocalAddr())

	eopts := opts.Engine
	eopts.Journal, eopts.InlineCommit, eopts.Replicated = nil, false, true
	n.store = engine.New(eopts)
	n.fsm = newFSM(n.store)

	conf := raft.DefaultConfig()
	conf.LocalID = raft.ServerID(opts.ID)
	conf.HeartbeatTimeout = opts.ElectionTimeout
	conf.ElectionTimeout = opts.ElectionTimeout
	conf.LeaderLeaseTimeout = opts.ElectionTimeout
	conf.CommitTimeout = 5 * time.Millisecond
	conf.SnapshotThreshold = opts.SnapshotThreshold
	conf.TrailingLogs = opts.TrailingLogs
	conf.SnapshotInterval = opts.SnapshotInterval
	conf.BatchApplyCh = true
	// Up to this many writes share one log append (one bbolt commit, two
	// fsyncs) and one replication round: group commit for the cluster.
	conf.MaxAppendEntries = 512
	conf.Logger = hlog

	existing, err := raft.HasExistingState(logs, logs, snaps)
	if err != nil {
		return fail(fmt.Errorf("read raft state: %w", err))
	}
	if !existing && opts.Bootstrap {
		cfg := raft.Configuration{Servers: []raft.Server{{ID: conf.LocalID, Address: n.trans.LocalAddr()}}}
		if err := raft.BootstrapCluster(conf, logs, logs, snaps, n.trans, cfg); err != nil {
			return fail(fmt.Errorf("bootstrap cluster: %w", err))
		}
	}
	n.fresh = !existing
	n.obsCh = make(chan raft.Observation, 16)
	// The cache keeps the newest entries in memory as they are stored:
	// the leader reads each entry back to send it to every follower, and
	// every member reads it back to apply it; without the cache each read
	// is a bbolt transaction and a msgpack decode.
	// Only entries up to maxCachedEntryBytes are kept (see logCache).
	r, err := raft.NewRaft(conf, n.fsm, newLogCache(logCacheEntries, logs), logs, snaps, transport{n.trans})
	if err != nil {
		return fail(fmt.Errorf("start raft: %w", err))
	}
	n.raft = r
	n.reads.raft = r
	n.reads.node = n
	n.obs = raft.NewObserver(n.obsCh, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.LeaderObservation)
		return ok
	})
	r.RegisterObserver(n.obs)
	n.batch = newBatcher(n)
	n.wg.Add(3)
	go n.batch.run()
	go n.watchLeader()
	go n.expireLoop()
	n.logger.Info("cluster member started", "id", opts.ID, "raft_addr", n.opts.RaftAddr, "existing_state", existing,
		"bootstrap", !existing && opts.Bootstrap)
	return n, nil
}

// Fresh reports whether the member started on a folder without raft state
// (it bootstrapped, or must be added with Join); a restarted member is not
// fresh and rejoins its cluster by itself.
func (n *Node) Fresh() bool { return n.fresh }

// Store returns the replicated store, for reads and watches. Its write
// methods return engine.ErrReplicated: writes go through Write.
func (n *Node) Store() *engine.Store { return n.store }

// ID returns this member's ID.
func (n *Node) ID() string { return n.opts.ID }

// RaftAddr returns the address peers reach this member's raft at.
func (n *Node) RaftAddr() string { return n.opts.RaftAddr }

// watchLeader follows leadership: it counts changes and, when this member
// becomes leader, records its API address if the log does not hold it yet.
func (n *Node) watchLeader() {
	defer n.wg.Done()
	var last raft.ServerID
	for {
		select {
		case <-n.stop:
			return
		case o := <-n.obsCh:
			lo := o.Data.(raft.LeaderObservation)
			if lo.LeaderID == "" {
				n.noLeaderSince.CompareAndSwap(0, time.Now().UnixNano())
			} else {
				n.noLeaderSince.Store(0)
			}
			if lo.LeaderID != last {
				last = lo.LeaderID
				n.changes.Add(1)
				n.logger.Info("raft leader", "leader", string(lo.LeaderID), "self", n.opts.ID)
			}
			if lo.LeaderID == raft.ServerID(n.opts.ID) {
				n.wg.Add(1)
				go n.becameLeader()
			}
		}
	}
}

func (n *Node) becameLeader() {
	defer n.wg.Done()
	term := n.raft.CurrentTerm()
	if err := n.wait(n.raft.Barrier(0)); err != nil {
		return // lost leadership again; the next leader does this
	}
	if n.raft.CurrentTerm() == term {
		n.ready.Store(term) // the commit index now covers earlier terms
	}
	if n.opts.APIAddr != "" && n.fsm.memberAPIs()[n.opts.ID] != n.opts.APIAddr {
		data := encodeEntry(&entry{Kind: kindMember, ID: n.opts.ID, API: n.opts.APIAddr})
		if err := n.wait(n.raft.Apply(data, applyEnqueueTimeout)); err != nil {
			n.logger.Warn("recording this member's API address failed", "err", err)
		}
	}
}

// wait waits for f, or until the member stops. A future raft queued as it
// shut down is never answered (with BatchApplyCh the queue is buffered and
// nobody drains it), so waiting on it alone can hang Close.
func (n *Node) wait(f raft.Future) error {
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		return err
	case <-n.stop:
		return raft.ErrRaftShutdown
	}
}

// notLeader returns the error telling who leads.
func (n *Node) notLeader() error {
	id, api := n.Leader()
	return &NotLeaderError{LeaderID: id, LeaderAPI: api}
}

// Leader returns the leader's ID and HTTP API address, both empty when no
// leader is known (the address alone is empty if not recorded yet).
func (n *Node) Leader() (id, apiAddr string) {
	_, lid := n.raft.LeaderWithID()
	if lid == "" {
		return "", ""
	}
	return string(lid), n.fsm.memberAPIs()[string(lid)]
}

// RecordedAPI returns the HTTP API address the cluster's log holds for
// member id (empty when none is recorded yet).
func (n *Node) RecordedAPI(id string) string { return n.fsm.memberAPIs()[id] }

// IsLeader reports whether this member leads now.
func (n *Node) IsLeader() bool { return n.raft.State() == raft.Leader }

// Write carries out ops as one transaction through the log (Bulk's rules
// when bulk is set: no limit on their number). It returns once a majority
// has the entry durably and this member applied it, with what it did, or
// the engine's error for a refused write (a failed condition, a limit).
// A member that is not the leader returns a *NotLeaderError and proposes
// nothing. ErrOutcomeUnknown means leadership changed in flight; a
// cancelled ctx also gives ErrOutcomeUnknown once the entry was proposed.
func (n *Node) Write(ctx context.Context, ops []engine.Op, bulk bool) (engine.TxnResult, error) {
	return n.SubmitWrite(ops, bulk).Wait(ctx)
}

// SubmitWrite is Write without the waiting: it checks ops and queues them
// on the leader, and returns at once; the write's Wait returns what Write
// would have (a refused or a not-leader write's error included). Writes
// submitted one after the other are applied in that order, and those
// submitted while earlier ones are replicated share a log entry, so a
// caller with several writes at hand submits them all, then waits.
func (n *Node) SubmitWrite(ops []engine.Op, bulk bool) *PendingWrite {
	maxOps := 0
	if bulk {
		maxOps = int(^uint(0) >> 1)
	}
	p, err := n.store.Prepare(ops, maxOps)
	if err != nil {
		return &PendingWrite{err: err}
	}
	return n.submit(encodeProposal(&p))
}

// ReadIndex returns, on the leader, a raft index that covers every write
// acknowledged before the call: once a member has applied it (WaitApplied),
// its state is at least as new as any client has seen. The leader proves
// it still leads by committing a barrier entry of its term after the call
// arrived, or with Options.PeerCheck by a majority saying they follow it
// in its term when asked after the call arrived; concurrent calls share
// one such round. A member that is not the leader returns a
// *NotLeaderError.
//
// Why not raft's VerifyLeader: VerifyLeader counts any
// successful reply that arrives after it starts, including replies to
// heartbeats sent before, so a leader paused (SIGSTOP) and resumed can
// count replies its followers sent before they elected someone else, and
// serve a stale read (TestNode_LinearizableRead caught this with stopped
// followers). A barrier is a new log index: only followers that accept it
// in this term can commit it. A PeerCheck answer is made after the
// question, by a member that has not moved to a later term.
func (n *Node) ReadIndex(ctx context.Context) (uint64, error) {
	if n.raft.State() != raft.Leader {
		return 0, n.notLeader()
	}
	idx := n.raft.CommitIndex()
	if n.opts.PeerCheck != nil {
		// A new leader's commit index covers earlier terms' entries once
		// it applied them (becameLeader); until then, wait.
		for n.ready.Load() != n.raft.CurrentTerm() {
			if n.raft.State() != raft.Leader {
				return 0, n.notLeader()
			}
			select {
			case <-ctx.Done():
				return 0, ctx.Err()
			case <-time.After(time.Millisecond):
			}
			idx = n.raft.CommitIndex()
		}
	}
	if err := n.reads.confirm(ctx); err != nil {
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) || errors.Is(err, raft.ErrLeadershipTransferInProgress) || errors.Is(err, ErrNotLeader) {
			return 0, n.notLeader()
		}
		return 0, err
	}
	if n.opts.PeerCheck == nil {
		idx = n.raft.CommitIndex() // at least the barrier's index
	}
	return idx, nil
}

// Follows reports whether this member is memberID and, now, is in term
// and follows leaderID: the answer a leader's PeerCheck asks for. A
// member asked under another's ID says no (the asker holds a stale
// address; its yes would count for a voter that did not answer).
func (n *Node) Follows(memberID string, term uint64, leaderID string) bool {
	if memberID != n.opts.ID {
		return false
	}
	_, id := n.raft.LeaderWithID()
	return n.raft.State() == raft.Follower && n.raft.CurrentTerm() == term && string(id) == leaderID
}

// confirmByPeers asks the other voters, now, whether they follow this
// member in its current term; a majority of the latest configuration's
// voters (this member among them only if it is one) proves it led when
// the round began.
func (n *Node) confirmByPeers() error {
	term := n.raft.CurrentTerm()
	if n.raft.State() != raft.Leader {
		return ErrNotLeader
	}
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return err
	}
	var peers []peer
	voters, self := 0, false
	apis := n.fsm.memberAPIs()
	for _, s := range f.Configuration().Servers {
		if s.Suffrage != raft.Voter {
			continue
		}
		voters++
		if string(s.ID) == n.opts.ID {
			self = true
		} else {
			peers = append(peers, peer{id: string(s.ID), api: apis[string(s.ID)]})
		}
	}
	need := voters/2 + 1
	if self {
		// This member counts for itself only while the configuration
		// has it as a voter: a leader removing itself (or demoted) leads
		// on until the change commits, and a majority of the new
		// configuration could elect another leader without it.
		need--
	}
	if need > 0 && n.askPeers(peers, need, term) < need {
		return ErrNotLeader
	}
	if n.raft.State() != raft.Leader || n.raft.CurrentTerm() != term {
		return ErrNotLeader
	}
	return nil
}

// peer is a voter a read confirmation asks: its ID and recorded API
// address.
type peer struct{ id, api string }

// askPeers asks peers whether they follow this member in term and returns
// how many said yes, up to need. It asks need of them first, starting
// with the next in turn (each check costs a request on both sides, and on
// a busy machine CPU is what limits reads), and another for each that
// fails, or all still unasked once those asked are slower than a
// twentieth of the election timeout (a peer cut off answers nothing).
func (n *Node) askPeers(peers []peer, need int, term uint64) int {
	ctx, cancel := context.WithTimeout(context.Background(), n.opts.ElectionTimeout)
	defer cancel()
	yes := make(chan bool, len(peers))
	first, asked := int(n.checkTurn.Add(1)), 0
	ask := func(k int) {
		for ; k > 0 && asked < len(peers); k-- {
			p := peers[(first+asked)%len(peers)]
			asked++
			go func() { yes <- p.api != "" && n.opts.PeerCheck(ctx, p.api, p.id, term, n.opts.ID) == nil }()
		}
	}
	ask(need)
	hedge := time.NewTimer(n.opts.ElectionTimeout / 20)
	defer hedge.Stop()
	answered, got := 0, 0
	for got < need && answered < asked {
		select {
		case ok := <-yes:
			answered++
			if ok {
				got++
			} else {
				ask(1)
			}
		case <-hedge.C:
			ask(len(peers))
		}
	}
	return got
}

// WaitApplied waits until this member has applied every entry up to idx
// (a ReadIndex), or ctx ends.
func (n *Node) WaitApplied(ctx context.Context, idx uint64) error {
	for {
		applied, changed := n.fsm.appliedIndex()
		if applied >= idx || n.onlyInvisible(applied, idx) {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		case <-n.stop:
			return engine.ErrClosed
		case <-time.After(5 * time.Millisecond):
			// Entries the FSM never sees (a new leader's no-op, barriers)
			// move raft's applied index alone: look again.
		}
	}
}

// onlyInvisible reports whether every entry after applied up to idx is one
// raft handles without the FSM (no-op, barrier) and raft has applied them:
// the state then already reflects idx. Entries older than the log's first
// were applied before a snapshot dropped them.
func (n *Node) onlyInvisible(applied, idx uint64) bool {
	if n.raft.AppliedIndex() < idx {
		return false
	}
	first, err := n.logs.FirstIndex()
	if err != nil {
		return false
	}
	for i := max(applied+1, first); i <= idx; i++ {
		var l raft.Log
		if err := n.logs.GetLog(i, &l); err != nil {
			return false
		}
		if l.Type == raft.LogCommand || l.Type == raft.LogConfiguration {
			return false
		}
	}
	return true
}

// Linearize waits, on the leader, until a read of the store reflects every
// write acknowledged before the call, and returns the store's revision
// then. Followers get a *NotLeaderError: they ask the leader for a
// ReadIndex and WaitApplied it.
func (n *Node) Linearize(ctx context.Context) (int64, error) {
	idx, err := n.ReadIndex(ctx)
	if err != nil {
		return 0, err
	}
	if err := n.WaitApplied(ctx, idx); err != nil {
		return 0, err
	}
	return n.store.Rev(), nil
}

// verifier shares leadership confirmations among concurrent reads. A read
// joins a round that has not started yet, never one already running (its
// question may predate the read), so a round's success proves leadership
// after every read it answers arrived. Up to maxRounds rounds run at once:
// a read arriving while one runs starts the next at once instead of
// waiting for it to end.
type verifier struct {
	raft     *raft.Raft
	node     *Node
	mu       sync.Mutex
	next     *round // gathering reads, not started
	inFlight int
}

const maxRounds = 2

type round struct {
	done chan struct{}
	err  error
}

func (v *verifier) confirm(ctx context.Context) error {
	v.mu.Lock()
	r := v.next
	if r == nil {
		r = &round{done: make(chan struct{})}
		if v.inFlight < maxRounds {
			v.inFlight++
			go v.run(r)
		} else {
			v.next = r // started by the next round to finish
		}
	}
	v.mu.Unlock()
	select {
	case <-r.done:
		return r.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// run carries out round r, then the round that gathered meanwhile, if any.
func (v *verifier) run(r *round) {
	for r != nil {
		if v.node.opts.PeerCheck != nil {
			r.err = v.node.confirmByPeers()
		} else {
			r.err = v.node.wait(v.raft.Barrier(0))
		}
		close(r.done)
		v.mu.Lock()
		r, v.next = v.next, nil
		if r == nil {
			v.inFlight--
		}
		v.mu.Unlock()
	}
}

// expireLoop has the leader propose the removal of keys whose TTL ran out;
// every member applies it at the same point of the log.
func (n *Node) expireLoop() {
	defer n.wg.Done()
	t := time.NewTicker(expireInterval)
	defer t.Stop()
	for {
		select {
		case <-n.stop:
			return
		case <-t.C:
		}
		if n.raft.State() != raft.Leader {
			continue
		}
		now := time.Now().UnixMilli()
		if n.opts.Engine.Now != nil {
			now = n.opts.Engine.Now().UnixMilli()
		}
		due := n.store.DueExpiry(now, 1000)
		if len(due) == 0 {
			continue
		}
		p := engine.Proposal{At: now, Expire: due}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if _, err := n.propose(ctx, encodeProposal(&p)); err != nil && !errors.Is(err, ErrNotLeader) {
			n.logger.Warn("proposing expired keys failed", "err", err)
		}
		cancel()
	}
}

// Member is one member of the cluster as GET /v1/cluster shows it.
type Member struct {
	ID       string `json:"id"`
	APIAddr  string `json:"api_addr"`
	RaftAddr string `json:"raft_addr"`
	Role     string `json:"role"` // leader, follower, or nonvoter
	Voter    bool   `json:"voter"`
}

// Members returns the cluster's members as the latest configuration this
// member knows has them, sorted by ID.
func (n *Node) Members() ([]Member, error) {
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, err
	}
	apis := n.fsm.memberAPIs()
	leaderID, _ := n.Leader()
	var out []Member
	for _, s := range f.Configuration().Servers {
		m := Member{ID: string(s.ID), APIAddr: apis[string(s.ID)], RaftAddr: string(s.Address), Voter: s.Suffrage == raft.Voter}
		switch {
		case m.ID == leaderID:
			m.Role = "leader"
		case m.Voter:
			m.Role = "follower"
		default:
			m.Role = "nonvoter"
		}
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// Join adds a member as a voter, or updates its addresses if its ID is
// already a member; on the leader only (else a *NotLeaderError). It
// returns once the new configuration is committed.
func (n *Node) Join(ctx context.Context, id, raftAddr, apiAddr string) error {
	if id == "" || raftAddr == "" {
		return errors.New("joining needs the member's ID and raft address")
	}
	if n.raft.State() != raft.Leader {
		return n.notLeader()
	}
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return err
	}
	known := false
	for _, s := range f.Configuration().Servers {
		if string(s.ID) == id && string(s.Address) == raftAddr && s.Suffrage == raft.Voter {
			known = true
		}
	}
	if !known {
		if err := n.wait(n.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(raftAddr), 0, 0)); err != nil {
			return n.configErr(err)
		}
		n.logger.Info("member added", "id", id, "raft_addr", raftAddr, "api_addr", apiAddr)
	}
	if apiAddr != "" && n.fsm.memberAPIs()[id] != apiAddr {
		if _, err := n.propose(ctx, encodeEntry(&entry{Kind: kindMember, ID: id, API: apiAddr})); err != nil {
			return err
		}
	}
	return nil
}

// Remove takes a member out of the cluster, on the leader only (else a
// *NotLeaderError). A leader removing itself steps down once the change
// is committed. ErrUnknownMember if no member has the ID.
func (n *Node) Remove(ctx context.Context, id string) error {
	if n.raft.State() != raft.Leader {
		return n.notLeader()
	}
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return err
	}
	found := false
	for _, s := range f.Configuration().Servers {
		found = found || string(s.ID) == id
	}
	if !found {
		return fmt.Errorf("%w: %q", ErrUnknownMember, id)
	}
	if err := n.wait(n.raft.RemoveServer(raft.ServerID(id), 0, 0)); err != nil {
		return n.configErr(err)
	}
	n.logger.Info("member removed", "id", id)
	if id != n.opts.ID {
		// Best effort: a stale address of a member no configuration holds
		// is never shown.
		_, _ = n.propose(ctx, encodeEntry(&entry{Kind: kindForget, ID: id}))
	}
	return nil
}

func (n *Node) configErr(err error) error {
	if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipTransferInProgress) {
		return n.notLeader()
	}
	if errors.Is(err, raft.ErrLeadershipLost) {
		return fmt.Errorf("%w: %v", ErrOutcomeUnknown, err)
	}
	return err
}

// Status is a member's raft state for /v1/status, /metrics and /readyz.
type Status struct {
	ID            string    `json:"id"`
	State         string    `json:"state"` // Leader, Follower, Candidate, Shutdown
	Leader        string    `json:"leader"`
	Term          uint64    `json:"term"`
	CommitIndex   uint64    `json:"commit_index"`
	AppliedIndex  uint64    `json:"applied_index"`
	LastIndex     uint64    `json:"last_index"`
	LeaderChanges int64     `json:"leader_changes"`
	LastContact   time.Time `json:"last_contact"` // last time a follower heard from the leader
	Rev           int64     `json:"rev"`
}

// Status reports the member's raft figures.
func (n *Node) Status() Status {
	applied, _ := n.fsm.appliedIndex()
	leader, _ := n.Leader()
	return Status{
		ID:            n.opts.ID,
		State:         n.raft.State().String(),
		Leader:        leader,
		Term:          n.raft.CurrentTerm(),
		CommitIndex:   n.raft.CommitIndex(),
		AppliedIndex:  applied,
		LastIndex:     n.raft.LastIndex(),
		LeaderChanges: n.changes.Load(),
		LastContact:   n.raft.LastContact(),
		Rev:           n.store.Rev(),
	}
}

// AppliedIndex returns the raft index of the last entry this member
// applied to its store.
func (n *Node) AppliedIndex() uint64 {
	idx, _ := n.fsm.appliedIndex()
	return idx
}

// readyLag is how many committed entries a member may still have to apply
// and count as caught up: under steady load a healthy follower is always a
// few entries behind the commit index.
const readyLag = 1024

// Ready returns nil when the member knows a leader, has heard from it
// within three election timeouts (a follower), and has applied all but a
// few committed entries; otherwise an error saying which is missing (a
// *NotLeaderError when there is no leader).
func (n *Node) Ready() error {
	if id, _ := n.Leader(); id == "" {
		return &NotLeaderError{}
	}
	if n.raft.State() != raft.Leader {
		last := n.raft.LastContact()
		if last.IsZero() {
			return fmt.Errorf("catching up: no entries from the leader accepted yet")
		}
		if since := time.Since(last); since > 3*n.opts.ElectionTimeout {
			return fmt.Errorf("%w: no word from the leader for %v", ErrNoLeader, since.Round(time.Millisecond))
		}
	}
	if commit, applied := n.raft.CommitIndex(), n.raft.AppliedIndex(); commit > applied+readyLag {
		return fmt.Errorf("catching up: %d committed entries not applied yet", commit-applied)
	}
	return nil
}

// LeaderlessFor returns how long this member has been without a leader:
// zero while it knows one (or leads).
func (n *Node) LeaderlessFor() time.Duration {
	if _, id := n.raft.LeaderWithID(); id != "" {
		return 0
	}
	since := n.noLeaderSince.Load()
	if since == 0 { // the observation was dropped: count from now
		n.noLeaderSince.CompareAndSwap(0, time.Now().UnixNano())
		return 0
	}
	return time.Since(time.Unix(0, since))
}

// ElectionTimeout returns the member's election timeout.
func (n *Node) ElectionTimeout() time.Duration { return n.opts.ElectionTimeout }

// Snapshot makes raft take a snapshot now (tests, and an operator who
// wants the log trimmed).
func (n *Node) Snapshot() error { return n.raft.Snapshot().Error() }

// Close stops the member: raft, the transport, the store and the log.
// Writes in flight end with ErrOutcomeUnknown.
func (n *Node) Close() error {
	n.once.Do(func() {
		close(n.stop)
		err := n.raft.Shutdown().Error()
		n.raft.DeregisterObserver(n.obs)
		n.wg.Wait()
		n.store.Close()
		err = errors.Join(err, n.trans.Close(), n.logs.Close())
		n.err = err
	})
	return n.err
}

// logWriter passes raft's log lines to slog.
type logWriter struct{ l *slog.Logger }

func (w logWriter) Write(p []byte) (int, error) {
	line := strings.TrimSpace(string(p))
	level := slog.LevelInfo
	switch {
	case strings.Contains(line, "[ERROR]"):
		level = slog.LevelError
	case strings.Contains(line, "[WARN]"):
		level = slog.LevelWarn
	case strings.Contains(line, "[DEBUG]"), strings.Contains(line, "[TRACE]"):
		level = slog.LevelDebug
	}
	w.l.Log(context.Background(), level, line)
	return len(p), nil
}

var _ io.Writer = logWriter{}

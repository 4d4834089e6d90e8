package main

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pykv/pykv/engine"
	"github.com/pykv/pykv/persist"
	"github.com/pykv/pykv/persist/cluster"
	"github.com/pykv/pykv/web"
)

// joinRetry is how long a joining member waits between attempts.
const joinRetry = 500 * time.Millisecond

// checkClusterFlags checks the cluster flags belong together.
func checkClusterFlags(c serveConfig) error {
	if c.nodeID == "" {
		if c.raftAddr != "" || c.raftAdv != "" || c.join != "" || c.peerCert != "" || c.peerKey != "" || c.peerCA != "" {
			return usageError("--raft-addr, --join and --peer-* are for cluster mode: give --node-id (or PYKV_NODE_ID) too")
		}
		return nil
	}
	if c.raftAddr == "" {
		return usageError("cluster mode needs --raft-addr (or PYKV_RAFT_ADDR): the host:port members reach this one's raft at")
	}
	if strings.ContainsAny(c.nodeID, "/ \t\n") {
		return usageError("--node-id %q: use letters, digits, '-', '_' or '.'", c.nodeID)
	}
	n := 0
	for _, f := range []string{c.peerCert, c.peerKey, c.peerCA} {
		if f != "" {
			n++
		}
	}
	if n != 0 && n != 3 {
		return usageError("peer TLS needs all of --peer-cert, --peer-key and --peer-ca")
	}
	host, _, err := net.SplitHostPort(c.raftAddr)
	if err != nil {
		return usageError("--raft-addr %q: %v", c.raftAddr, err)
	}
	if n == 0 && !isLoopback(host) {
		return usageError("refusing raft on %s without peer TLS: set --peer-cert, --peer-key and --peer-ca, or use a loopback --raft-addr", c.raftAddr)
	}
	if c.join != "" {
		u, err := url.Parse(c.join)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return usageError("--join %q is not the http:// URL of a member", c.join)
		}
	}
	return nil
}

// refuseClusterFolder refuses to open a cluster member's folder as a
// single node: its data is in the raft log, which a single node would not
// read, and writes would fork it.
func refuseClusterFolder(dir string) error {
	if _, err := os.Stat(filepath.Join(dir, "raft.db")); err == nil {
		return usageError("data folder %s belongs to a cluster member (it holds raft.db); start it with --node-id and --raft-addr, or choose another --data-dir", dir)
	}
	return nil
}

// refuseSingleFolder refuses to start a member on a single node's folder:
// a member keeps its data in the raft log and would ignore those files.
func refuseSingleFolder(dir string) error {
	names, err := os.ReadDir(dir)
	if err != nil {
		return nil // missing: Open creates it
	}
	for _, e := range names {
		if e.Name() == "snapshot.json" || strings.HasPrefix(e.Name(), "wal-") {
			return usageError("data folder %s holds a single node's data (%s); a cluster member starts empty. Export it with `pykv export`, start the cluster on a new --data-dir and `pykv import` it", dir, e.Name())
		}
	}
	return nil
}

// peerTLS loads the peer certificate, key and CA.
func peerTLS(c serveConfig) (*tls.Config, error) {
	if c.peerCert == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(c.peerCert, c.peerKey)
	if err != nil {
		return nil, fmt.Errorf("load --peer-cert and --peer-key: %w", err)
	}
	pem, err := os.ReadFile(c.peerCA)
	if err != nil {
		return nil, fmt.Errorf("read --peer-ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("--peer-ca %s holds no PEM certificate", c.peerCA)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, ClientCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

// serveCluster runs a cluster member: raft in the data folder, the HTTP API
// on --addr. A fresh folder bootstraps a cluster of one, or with --join
// asks a member to add this one; a folder with raft state rejoins by
// itself (--join is then ignored).
func serveCluster(ctx context.Context, c serveConfig, logger *slog.Logger, metrics *web.Metrics, stdout io.Writer) error {
	if err := refuseSingleFolder(c.dataDir); err != nil {
		return err
	}
	tlsConf, err := peerTLS(c)
	if err != nil {
		return err
	}
	host, _, _ := net.SplitHostPort(c.addr)
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		return usageError("in cluster mode --addr must name the host other members reach this one's HTTP API at, not %q", c.addr)
	}
	ln, err := net.Listen("tcp", c.addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", c.addr, err)
	}
	ln = limitConnsPerIP(web.ProblemListener(ln, maxHeaderBytes), c.maxConnsPerIP)
	base := "http://" + ln.Addr().String()

	_, statErr := os.Stat(filepath.Join(c.dataDir, "raft.db"))
	node, err := cluster.Open(cluster.Options{
		ID: c.nodeID, RaftAddr: c.raftAddr, RaftAdvertise: c.raftAdv, APIAddr: base, Dir: c.dataDir, PeerTLS: tlsConf,
		Bootstrap:         c.join == "" && errors.Is(statErr, os.ErrNotExist),
		SnapshotThreshold: c.snapEntries, TrailingLogs: c.snapEntries + 2048,
		PeerCheck: web.NewPeerCheck(cmp.Or(c.authToken, c.readToken)),
		Engine:    engine.Options{MaxKeyBytes: c.maxKeyBytes, MaxValueBytes: c.maxValueBytes, MaxTxnOps: c.maxTxnOps},
		Logger:    logger,
	})
	if err != nil {
		ln.Close()
		if errors.Is(err, persist.ErrLocked) {
			return fmt.Errorf("data folder %s is in use by another PyKV process; stop it first or choose another --data-dir: %w", c.dataDir, err)
		}
		if errors.Is(err, cluster.ErrPlainBeyondLoopback) {
			return usageError("refusing raft on %s without peer TLS: set --peer-cert, --peer-key and --peer-ca, or use a loopback --raft-addr", c.raftAddr)
		}
		return fmt.Errorf("start cluster member: %w", err)
	}
	closeNode := func() error {
		if err := node.Close(); err != nil {
			return fmt.Errorf("stop cluster member: %w", err)
		}
		logger.Info("cluster member stopped", "rev", node.Store().Rev())
		return nil
	}

	srv := newHTTPServer(ctx, c, web.Options{Cluster: node, Logger: logger, Metrics: metrics})

	fmt.Fprintf(stdout, "PyKV serving %s (cluster member %s, raft %s, data in %s)\n  dashboard  %s/\n  API docs   %s/docs\n",
		base, c.nodeID, node.RaftAddr(), c.dataDir, base, base)
	logger.Info("listening", "addr", ln.Addr().String(), "data_dir", c.dataDir, "node_id", c.nodeID,
		"raft_addr", node.RaftAddr(), "auth", c.authToken != "" || c.readToken != "")

	if node.Fresh() && c.join != "" {
		go joinCluster(ctx, c, node, base, logger, c.join)
	} else {
		if c.join != "" {
			logger.Info("already a cluster member: --join ignored", "join", c.join)
		}
		go updateAPIAddr(ctx, c, node, base, logger)
	}
	return serveUntilDone(ctx, srv, ln, closeNode, logger)
}

// joinCluster asks the member at --join to add this one, again and again
// until it is added or ctx ends: the cluster may be electing a leader.
func joinCluster(ctx context.Context, c serveConfig, node *cluster.Node, apiAddr string, logger *slog.Logger, via string) {
	body, _ := json.Marshal(map[string]string{"id": c.nodeID, "raft_addr": node.RaftAddr(), "api_addr": apiAddr})
	target := strings.TrimRight(via, "/") + "/v1/cluster/members"
	client := &http.Client{Timeout: 30 * time.Second}
	for attempt := 1; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
		if err != nil {
			logger.Error("cannot build the join request", "err", err)
			return
		}
		req.Header.Set("Content-Type", "application/json")
		if c.authToken != "" {
			req.Header.Set("Authorization", "Bearer "+c.authToken)
		}
		resp, err := client.Do(req)
		if err == nil {
			msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				logger.Info("joined the cluster", "via", via, "attempts", attempt)
				return
			}
			err = fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(msg)))
		}
		logger.Warn("joining the cluster failed; retrying", "via", via, "attempt", attempt, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(joinRetry):
		}
	}
}

// updateAPIAddr tells the cluster this member's HTTP address when the log
// holds another (it restarted with a different --addr): once a leader is
// known, it asks the leader to update it, as a join that changes nothing
// else. Without it, followers would forward writes to a dead address
// while this member leads, and /v1/cluster would show the old one.
func updateAPIAddr(ctx context.Context, c serveConfig, node *cluster.Node, apiAddr string, logger *slog.Logger) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(joinRetry):
		}
		if node.RecordedAPI(c.nodeID) == apiAddr {
			return
		}
		if node.IsLeader() {
			continue // the leader records its own address (cluster.Node)
		}
		if _, leaderAPI := node.Leader(); leaderAPI != "" {
			logger.Info("telling the cluster this member's new HTTP address", "api_addr", apiAddr)
			joinCluster(ctx, c, node, apiAddr, logger, leaderAPI)
			return
		}
	}
}

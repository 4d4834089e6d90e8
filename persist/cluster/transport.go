package cluster

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/hashicorp/raft"
)

// ErrPlainBeyondLoopback: raft traffic without peer TLS was asked for on an
// address other than loopback. Members would then accept log entries from
// anyone who can reach the port.
var ErrPlainBeyondLoopback = errors.New("raft traffic beyond loopback needs peer TLS (--peer-cert, --peer-key, --peer-ca)")

// streamLayer carries raft's connections over TCP, with mutual TLS when a
// config is given. Without one, both the listener and every peer dialled
// must be on loopback: plain TCP is only for a cluster on one machine.
type streamLayer struct {
	net.Listener
	tls    *tls.Config // nil: plain TCP, loopback only
	advert net.Addr
	local  *net.TCPAddr // outgoing connections come from this IP (the listener's), when it is a specific one
}

// newStreamLayer listens on bind; peers reach it at advertise (bind's
// address when empty: a port forwarder or NAT may stand between). With
// tlsConf, connections in both directions use mutual TLS: the listener asks
// for and verifies a client certificate, and dialling presents ours and
// verifies the peer's. Outgoing connections leave from bind's IP, so peers
// (and anything between) see one address per member.
func newStreamLayer(bind, advertise string, tlsConf *tls.Config) (*streamLayer, error) {
	host, _, err := net.SplitHostPort(bind)
	if err != nil {
		return nil, fmt.Errorf("raft address %q: %w", bind, err)
	}
	if tlsConf == nil && !isLoopback(host) {
		return nil, fmt.Errorf("raft address %s: %w", bind, ErrPlainBeyondLoopback)
	}
	ln, err := net.Listen("tcp", bind)
	if err != nil {
		return nil, fmt.Errorf("listen for raft on %s: %w", bind, err)
	}
	s := &streamLayer{Listener: ln, tls: tlsConf, advert: ln.Addr()}
	if ip := net.ParseIP(host); ip != nil && !ip.IsUnspecified() {
		s.local = &net.TCPAddr{IP: ip}
	}
	if advertise != "" {
		ahost, _, err := net.SplitHostPort(advertise)
		if err != nil {
			ln.Close()
			return nil, fmt.Errorf("raft advertise address %q: %w", advertise, err)
		}
		if tlsConf == nil && !isLoopback(ahost) {
			ln.Close()
			return nil, fmt.Errorf("raft advertise address %s: %w", advertise, ErrPlainBeyondLoopback)
		}
		a, err := net.ResolveTCPAddr("tcp", advertise)
		if err != nil {
			ln.Close()
			return nil, fmt.Errorf("raft advertise address %q: %w", advertise, err)
		}
		s.advert = a
	}
	if tlsConf != nil {
		srv := tlsConf.Clone()
		srv.ClientAuth = tls.RequireAndVerifyClientCert
		if srv.ClientCAs == nil {
			srv.ClientCAs = srv.RootCAs
		}
		s.Listener = tls.NewListener(ln, srv)
	}
	return s, nil
}

// Addr is the address peers reach this member at.
func (s *streamLayer) Addr() net.Addr { return s.advert }

// Dial opens a connection to a peer's raft address.
func (s *streamLayer) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	host, _, err := net.SplitHostPort(string(addr))
	if err != nil {
		return nil, fmt.Errorf("peer address %q: %w", addr, err)
	}
	d := &net.Dialer{Timeout: timeout}
	if s.local != nil {
		d.LocalAddr = s.local
	}
	if s.tls == nil {
		if !isLoopback(host) {
			return nil, fmt.Errorf("dial %s: %w", addr, ErrPlainBeyondLoopback)
		}
		return d.Dial("tcp", string(addr))
	}
	conf := s.tls.Clone()
	if conf.ServerName == "" {
		conf.ServerName = host
	}
	return tls.DialWithDialer(d, "tcp", string(addr), conf)
}

// transport is raft's NetworkTransport with the heartbeat fast path
// declined: SetHeartbeatHandler keeps no handler, so heartbeats reach the
// raft main loop like every other RPC.
//
// Why: hashicorp/raft#695 (found with Antithesis) shows the fast path,
// which handles a heartbeat on the transport's goroutine while the main
// loop runs, racing that loop; after a partition heals, followers' logs
// can diverge. The Transport contract lets a transport ignore the handler
// ("it may be ignored"), which costs a heartbeat a trip through the main
// loop: a busy follower answers heartbeats a little later, which the
// election timeouts here leave room for. TestTransport_NoHeartbeatFastPath
// holds the decline; the cluster tests check replicas never diverge.
type transport struct {
	*raft.NetworkTransport
}

// SetHeartbeatHandler ignores cb; see transport.
func (transport) SetHeartbeatHandler(cb func(raft.RPC)) {}

// isLoopback reports whether host names only this machine.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

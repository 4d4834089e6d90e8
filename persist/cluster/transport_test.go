package cluster

import (
	"crypto/tls"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// TestTransport_NoHeartbeatFastPath: a heartbeat reaches raft's main loop
// (the consumer channel), never the fast-path handler raft installs; see
// transport for hashicorp/raft#695.
func TestTransport_NoHeartbeatFastPath(t *testing.T) {
	a, b := mustStream(t, nil), mustStream(t, nil)
	ta := transport{raft.NewNetworkTransport(a, 1, time.Second, io.Discard)}
	tb := raft.NewNetworkTransport(b, 1, time.Second, io.Discard)
	t.Cleanup(func() { ta.Close(); tb.Close() })
	var tr raft.Transport = ta
	fast := make(chan struct{}, 1)
	tr.SetHeartbeatHandler(func(rpc raft.RPC) {
		fast <- struct{}{}
		rpc.Respond(&raft.AppendEntriesResponse{Success: true}, nil)
	})
	go func() {
		select {
		case rpc := <-tr.Consumer():
			rpc.Respond(&raft.AppendEntriesResponse{Success: true}, nil)
		case <-time.After(5 * time.Second):
		}
	}()
	hb := &raft.AppendEntriesRequest{RPCHeader: raft.RPCHeader{ID: []byte("b"), Addr: []byte(tb.LocalAddr())}, Term: 1}
	var resp raft.AppendEntriesResponse
	if err := tb.AppendEntries("a", ta.LocalAddr(), hb, &resp); err != nil {
		t.Fatal(err)
	}
	if !resp.Success {
		t.Fatal("heartbeat not answered")
	}
	select {
	case <-fast:
		t.Fatal("the heartbeat took the fast path")
	default:
	}
}

func mustStream(t *testing.T, conf *tls.Config) *streamLayer {
	t.Helper()
	s, err := newStreamLayer("127.0.0.1:0", "", conf)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestStreamLayer(t *testing.T) {
	t.Run("PlainBeyondLoopback", func(t *testing.T) {
		if _, err := newStreamLayer("0.0.0.0:0", "", nil); !errors.Is(err, ErrPlainBeyondLoopback) {
			t.Errorf("plain listener on 0.0.0.0 = %v, want ErrPlainBeyondLoopback", err)
		}
		s := mustStream(t, nil)
		defer s.Close()
		if _, err := s.Dial("192.0.2.1:7000", time.Second); !errors.Is(err, ErrPlainBeyondLoopback) {
			t.Errorf("plain dial beyond loopback = %v, want ErrPlainBeyondLoopback", err)
		}
	})
	certs := MakeCerts(t, "a", "b")
	other := MakeCerts(t, "stranger")["stranger"]
	// handshake dials srv from a stream layer with the given config and
	// returns the errors of both sides' handshakes.
	handshake := func(srvConf, cliConf *tls.Config) (srvErr, cliErr error) {
		srv := mustStream(t, srvConf)
		defer srv.Close()
		accepted := make(chan error, 1)
		go func() {
			c, err := srv.Accept()
			if err == nil {
				err = c.(*tls.Conn).Handshake()
				c.Close()
			}
			accepted <- err
		}()
		var conn interface {
			Close() error
		}
		if cliConf == nil {
			cli := mustStream(t, nil)
			defer cli.Close()
			c, err := cli.Dial(raft.ServerAddress(srv.Addr().String()), time.Second)
			if err == nil {
				c.Write([]byte("hello, plain")) // not a TLS handshake
				conn = c
			}
			cliErr = err
		} else {
			cli := mustStream(t, cliConf)
			defer cli.Close()
			c, err := cli.Dial(raft.ServerAddress(srv.Addr().String()), time.Second)
			if err == nil {
				err = c.(*tls.Conn).Handshake()
				conn = c
			}
			cliErr = err
		}
		srvErr = <-accepted
		if conn != nil {
			conn.Close()
		}
		return srvErr, cliErr
	}
	t.Run("MutualTLS", func(t *testing.T) {
		if s, c := handshake(certs["a"], certs["b"]); s != nil || c != nil {
			t.Fatalf("handshake between members: server %v, client %v", s, c)
		}
	})
	t.Run("NoClientCert", func(t *testing.T) {
		noCert := certs["b"].Clone()
		noCert.Certificates = nil
		if s, _ := handshake(certs["a"], noCert); s == nil {
			t.Fatal("a peer without a certificate was accepted")
		}
	})
	t.Run("OtherCA", func(t *testing.T) {
		if s, c := handshake(certs["a"], other); s == nil && c == nil {
			t.Fatal("a peer with a certificate from another CA was accepted")
		}
	})
	t.Run("PlainClient", func(t *testing.T) {
		if s, _ := handshake(certs["a"], nil); s == nil {
			t.Fatal("a plain TCP peer was accepted by a TLS member")
		}
	})
}

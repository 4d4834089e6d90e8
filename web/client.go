package web

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// A reverse proxy in front of the server makes every request come from the
// proxy's address, and ends TLS itself. For the proxies in
// Options.TrustedProxies (and only those: anyone can send the headers),
// the server believes what they add: X-Forwarded-For names the client and
// X-Forwarded-Proto: https says the browser used TLS.

// peerAddr returns the address of the connection's other end.
func peerAddr(r *http.Request) netip.Addr {
	host := r.RemoteAddr
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}

// trusted reports whether a is one of the configured proxies.
func (s *server) trusted(a netip.Addr) bool {
	for _, p := range s.opts.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// clientAddr returns the address a request is limited by: the peer, or,
// when the peer is a trusted proxy, the last address in X-Forwarded-For
// that is not a trusted proxy (the ones before it are the client's to
// write and so cannot be believed).
func (s *server) clientAddr(r *http.Request) netip.Addr {
	peer := peerAddr(r)
	if !s.trusted(peer) {
		return peer
	}
	var hops []string
	for _, v := range r.Header.Values("X-Forwarded-For") {
		hops = append(hops, strings.Split(v, ",")...)
	}
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break // a garbled hop: the proxy's own view is all that is sure
		}
		a = a.Unmap()
		if !s.trusted(a) {
			return a
		}
		peer = a
	}
	return peer
}

// overTLS reports whether the browser reached the server over TLS: the
// connection is TLS, or a trusted proxy says X-Forwarded-Proto: https.
func (s *server) overTLS(r *http.Request) bool {
	if r.TLS != nil {
		return true
	}
	if !s.trusted(peerAddr(r)) {
		return false
	}
	v := r.Header.Get("X-Forwarded-Proto")
	if i := strings.LastIndexByte(v, ','); i >= 0 {
		v = v[i+1:]
	}
	return strings.EqualFold(strings.TrimSpace(v), "https")
}

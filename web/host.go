package web

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// DNS rebinding: a page on an attacker's name (rebind.attacker.example)
// whose DNS answer later turns to 127.0.0.1 reaches a server on loopback
// from the victim's browser. To the browser those requests are same-origin
// (the Origin names the attacker's host, and so does Host), so the
// cross-origin checks let them through. What gives them away is the Host:
// a name this server was never told it has. checkHost refuses such
// requests with 421 before anything else runs, as etcd and Jupyter do.

// hostAllowList is the parsed Options.AllowedHosts.
type hostAllowList struct {
	any      bool            // "*": every Host is allowed
	names    map[string]bool // exact names, lower case
	suffixes []string        // ".example.com" for "*.example.com"
}

func newHostAllowList(hosts []string) hostAllowList {
	l := hostAllowList{names: map[string]bool{}}
	for _, h := range hosts {
		h = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(h), "."))
		switch {
		case h == "":
		case h == "*":
			l.any = true
		case strings.HasPrefix(h, "*."):
			l.suffixes = append(l.suffixes, h[1:])
		default:
			l.names[h] = true
		}
	}
	return l
}

// hostAllowed reports whether a request may name host (the Host header,
// port included or not): a loopback name ("localhost", "*.localhost",
// which browsers resolve to loopback themselves) or address, the address
// the client connected to (naming it involved no DNS, so no rebinding), or
// a configured name. An empty Host (HTTP/1.0; no browser sends one) is
// allowed.
func (l hostAllowList) hostAllowed(r *http.Request) bool {
	if l.any || r.Host == "" {
		return true // before looking up the local address, which costs
	}
	var local netip.Addr
	if la, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		local = addrIP(la)
	}
	return l.hostNameAllowed(r.Host, local)
}

// addrIP returns the IP address of a connection's address (unmapped from
// IPv4-in-IPv6), or the zero Addr when it has none.
func addrIP(a net.Addr) netip.Addr {
	if ta, ok := a.(*net.TCPAddr); ok {
		ip, _ := netip.AddrFromSlice(ta.IP)
		return ip.Unmap()
	}
	if h, _, err := net.SplitHostPort(a.String()); err == nil {
		if ip, err := netip.ParseAddr(h); err == nil {
			return ip.Unmap()
		}
	}
	return netip.Addr{}
}

// hostNameAllowed is hostAllowed for a Host header's value and the
// address the client connected to (invalid when unknown): the one
// implementation, which the connection loop calls directly.
func (l hostAllowList) hostNameAllowed(host string, local netip.Addr) bool {
	if l.any || host == "" {
		return true
	}
	if strings.IndexByte(host, ':') >= 0 { // without one there is no port to cut, and no error to allocate
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
	}
	host = strings.ToLower(strings.TrimSuffix(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"), "."))
	// netip parses without allocating; an address with a zone is taken as
	// a name, as net.ParseIP (which refuses zones) took it before.
	if ip, err := netip.ParseAddr(host); err == nil && ip.Zone() == "" {
		ip = ip.Unmap()
		if ip.IsLoopback() || (local.IsValid() && local == ip) {
			return true
		}
		return l.names[ip.String()]
	}
	if host == "localhost" || strings.HasSuffix(host, ".localhost") || l.names[host] {
		return true
	}
	for _, s := range l.suffixes {
		if strings.HasSuffix(host, s) {
			return true
		}
	}
	return false
}

// checkHost refuses, with 421, requests whose Host the server does not
// answer for (see hostAllowed).
func (s *server) checkHost(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.hosts.hostAllowed(r) {
			writeProblem(w, newProblem(http.StatusMisdirectedRequest, fmt.Sprintf(
				"This server does not answer for the host %q (a defence against DNS rebinding). "+
					"Use a loopback address or localhost, or start the server with --allowed-hosts (PYKV_ALLOWED_HOSTS) naming it.",
				r.Host)))
			return
		}
		next.ServeHTTP(w, r)
	})
}

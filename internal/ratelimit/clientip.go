package ratelimit

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// DefaultIPv6Prefix groups IPv6 clients by /64: one host or home network
// commonly holds a whole /64, so keying by single address would let it
// make up as many keys as it likes.
const DefaultIPv6Prefix = 64

// maxHops bounds how many forwarding entries are examined from the right.
const maxHops = 16

// unknownClient keys requests whose address cannot be read (e.g. over a
// Unix socket): they share one bucket, which errs towards limiting.
const unknownClient = "unknown"

// ClientIP finds a request's client address: RemoteAddr, or, only when
// RemoteAddr is one of TrustedProxies, the forwarding header those proxies
// set. Without trusted proxies the header is never read, since any client
// can send one. The zero value uses RemoteAddr only.
type ClientIP struct {
	trusted []netip.Prefix
	header  string
	v6Bits  int
}

// NewClientIP returns a ClientIP trusting the proxies in cidrs (e.g.
// "10.0.0.0/8", "192.0.2.10/32") to set header (X-Forwarded-For when
// empty). A header of that form lists addresses left to right, each proxy
// appending the address it received the request from; the client is the
// right-most address not of a trusted proxy.
func NewClientIP(cidrs []string, header string) (*ClientIP, error) {
	c := &ClientIP{header: header, v6Bits: DefaultIPv6Prefix}
	if c.header == "" {
		c.header = "X-Forwarded-For"
	}
	for _, s := range cidrs {
		p, err := netip.ParsePrefix(strings.TrimSpace(s))
		if err != nil {
			// The address is configuration, not request input.
			return nil, fmt.Errorf("ratelimit: trusted proxy %q is not a CIDR: %w", s, err)
		}
		c.trusted = append(c.trusted, p.Masked())
	}
	return c, nil
}

func (c *ClientIP) isTrusted(a netip.Addr) bool {
	for _, p := range c.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Addr returns the client's address, or false when RemoteAddr is not an
// IP address.
func (c *ClientIP) Addr(r *http.Request) (netip.Addr, bool) {
	remote, ok := parseHop(r.RemoteAddr)
	if !ok {
		return netip.Addr{}, false
	}
	if len(c.trusted) == 0 || !c.isTrusted(remote) {
		return remote, true
	}
	var hops []string
	for _, v := range r.Header.Values(c.header) {
		hops = append(hops, strings.Split(v, ",")...)
	}
	client := remote
	for i := len(hops) - 1; i >= 0 && i >= len(hops)-maxHops; i-- {
		a, ok := parseHop(strings.TrimSpace(hops[i]))
		if !ok {
			// A hop we cannot read: the last address we could
			// attribute is as far as we can trust.
			return client, true
		}
		client = a
		if !c.isTrusted(a) {
			return a, true
		}
	}
	return client, true
}

// Key is a KeyFunc: the client's address, IPv6 addresses grouped by /64.
func (c *ClientIP) Key(r *http.Request) string {
	a, ok := c.Addr(r)
	if !ok {
		return unknownClient
	}
	if a.Is6() {
		bits := c.v6Bits
		if bits == 0 {
			bits = DefaultIPv6Prefix
		}
		if p, err := a.Prefix(bits); err == nil {
			return p.String()
		}
	}
	return a.String()
}

// parseHop reads "addr", "addr:port" or "[addr]:port", without a zone,
// IPv4-mapped IPv6 as IPv4.
func parseHop(s string) (netip.Addr, bool) {
	if s == "" || len(s) > 64 {
		return netip.Addr{}, false
	}
	if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
		return a.Unmap(), true
	}
	host, _, err := net.SplitHostPort(s)
	if err != nil {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(host)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

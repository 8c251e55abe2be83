package ratelimit

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestClientIP_Key(t *testing.T) {
	tests := []struct {
		name    string
		trusted []string
		header  string
		remote  string
		values  []string // header values, one line each
		want    string
	}{
		{name: "remote address", remote: "192.0.2.7:51000", want: "192.0.2.7"},
		{name: "header ignored without trusted proxies", remote: "192.0.2.7:51000",
			values: []string{"198.51.100.1"}, want: "192.0.2.7"},
		{name: "header ignored from an untrusted peer", trusted: []string{"10.0.0.0/8"},
			remote: "192.0.2.7:51000", values: []string{"198.51.100.1"}, want: "192.0.2.7"},
		{name: "client from a trusted proxy", trusted: []string{"10.0.0.0/8"},
			remote: "10.1.2.3:4000", values: []string{"198.51.100.1"}, want: "198.51.100.1"},
		{name: "right-most untrusted wins over a forged left part", trusted: []string{"10.0.0.0/8"},
			remote: "10.1.2.3:4000", values: []string{"203.0.113.66, 198.51.100.1, 10.9.9.9"}, want: "198.51.100.1"},
		{name: "several header lines read in order", trusted: []string{"10.0.0.0/8"},
			remote: "10.1.2.3:4000", values: []string{"203.0.113.66", "198.51.100.1"}, want: "198.51.100.1"},
		{name: "unreadable hop stops at the last trusted one", trusted: []string{"10.0.0.0/8"},
			remote: "10.1.2.3:4000", values: []string{"198.51.100.1, not-an-ip, 10.9.9.9"}, want: "10.9.9.9"},
		{name: "trusted proxy without header", trusted: []string{"10.0.0.0/8"},
			remote: "10.1.2.3:4000", want: "10.1.2.3"},
		{name: "hop with port", trusted: []string{"10.0.0.0/8"},
			remote: "10.1.2.3:4000", values: []string{"198.51.100.1:5555"}, want: "198.51.100.1"},
		{name: "other header name", trusted: []string{"10.0.0.0/8"}, header: "X-Real-IP",
			remote: "10.1.2.3:4000", values: []string{"198.51.100.1"}, want: "198.51.100.1"},
		{name: "IPv6 grouped by /64", remote: "[2001:db8:1:2:aaaa:bbbb:cccc:dddd]:443", want: "2001:db8:1:2::/64"},
		{name: "IPv6 neighbour in the same /64", remote: "[2001:db8:1:2::1]:443", want: "2001:db8:1:2::/64"},
		{name: "IPv4-mapped IPv6 is IPv4", remote: "[::ffff:192.0.2.7]:443", want: "192.0.2.7"},
		{name: "IPv6 hop from a trusted IPv6 proxy", trusted: []string{"fd00::/8"},
			remote: "[fd00::1]:443", values: []string{"2001:db8:5::9"}, want: "2001:db8:5::/64"},
		{name: "unreadable remote address", remote: "@", want: unknownClient},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := NewClientIP(tc.trusted, tc.header)
			if err != nil {
				t.Fatal(err)
			}
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.RemoteAddr = tc.remote
			h := tc.header
			if h == "" {
				h = "X-Forwarded-For"
			}
			for _, v := range tc.values {
				r.Header.Add(h, v)
			}
			if got := c.Key(r); got != tc.want {
				t.Errorf("Key = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestNewClientIP_RefusesBadCIDR(t *testing.T) {
	for _, bad := range []string{"10.0.0.1", "not a cidr", "10.0.0.0/33"} {
		t.Run(bad, func(t *testing.T) {
			if _, err := NewClientIP([]string{bad}, ""); err == nil {
				t.Errorf("accepted %q", bad)
			}
		})
	}
}

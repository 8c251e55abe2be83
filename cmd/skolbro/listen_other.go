//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package main

import (
	"context"
	"net"
)

// listenReusePort listens on addr; this platform has no SO_REUSEPORT, so
// a restart must wait until the old process has closed the port.
func listenReusePort(ctx context.Context, addr string) (net.Listener, error) {
	var lc net.ListenConfig
	return lc.Listen(ctx, "tcp", addr)
}

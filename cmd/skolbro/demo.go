package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/skolbro/skolbro/internal/demo"
)

func cmdDemo(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("demo", stdout, stderr, "skolbro demo [--addr ADDR]",
		"Runs a self-contained demo: a test school IdP, the bridge and demo vendors, with TEST ONLY keys deleted on exit.")
	addr := fs.String("addr", "127.0.0.1:8080", "listen address")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	host, port, err := net.SplitHostPort(*addr)
	if err != nil {
		fmt.Fprintf(stderr, "skolbro demo: --addr: %v\n", err)
		return 2
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	base := "http://" + net.JoinHostPort(host, port)
	dir, err := os.MkdirTemp("", "skolbro-demo-")
	if err != nil {
		fmt.Fprintf(stderr, "skolbro demo: %v\n", err)
		return 1
	}
	defer os.RemoveAll(dir)
	log := newLogger(stderr, "info")
	d, err := demo.Setup(base, dir, time.Now())
	if err != nil {
		fmt.Fprintf(stderr, "skolbro demo: %v\n", err)
		return 1
	}
	h, err := d.Handler(log)
	if err != nil {
		fmt.Fprintf(stderr, "skolbro demo: %v\n", err)
		return 1
	}
	return listenAndServe(*addr, h, log, func(net.Addr) {
		fmt.Fprintf(stdout, "\nskolbro demo is running. Open %s/demo/ in your browser.\n", base)
		fmt.Fprintf(stdout, "Two organisers: Demo kommun at the root URLs, Grannkommun under %s/o/grannkommun/ (two school IdPs: its logins show the discovery page).\n", base)
		fmt.Fprintf(stdout, "Admin interface: %s/admin/ (log in as the test identity \"Lärare och administratör\").\n", base)
		fmt.Fprintf(stdout, "Test keys and configuration (TEST ONLY, deleted on exit): %s\n\n", dir)
	}, nil)
}
